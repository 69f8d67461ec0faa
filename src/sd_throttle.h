/*
 * Login throttling: attempt counters per username and per client address,
 * in a small fixed-size table in shared memory (SPEC B3,
 * SessionDemoLoginThrottle).
 *
 * The table is bounded and cannot be used to forget anyone: a counter whose
 * window is still running is never given to another key, and a key that
 * finds no room is throttled instead. Slot positions are keyed with a
 * secret made when the table is formatted, so nobody can choose names that
 * land on someone else's slots. It lives beside the session store and, like
 * it, outlives graceful restarts. sd_throttle.c explains the sizing.
 */
#ifndef SD_THROTTLE_H
#define SD_THROTTLE_H

#include <apr_pools.h>
#include <apr_errno.h>

/** The module's table size: 65536 counters, 1.5 MB (see sd_throttle.c). */
#define SD_THROTTLE_SLOTS_DEFAULT 65536

typedef struct sd_throttle_t sd_throttle_t;

/** Bytes of shared memory a table of @a slots counters needs. */
apr_size_t sd_throttle_size(apr_uint32_t slots);

/**
 * Lay out an empty table in @a base (@a size bytes), with a new random
 * secret for slot positions.
 *
 * @return APR_EINVAL when @a slots is under 8 or @a size is under
 *         sd_throttle_size(@a slots); the status of the random source or of
 *         the lock's creation when those fail.
 */
apr_status_t sd_throttle_format(apr_pool_t *pool, void *base, apr_size_t size,
                                apr_uint32_t slots, sd_throttle_t **t);

/**
 * Seconds until @a key may try again: 0 when it has fewer than @a limit
 * failures in its current window of @a window seconds, else the time left
 * in that window; @a window when it has no counter and no slot could take
 * one.
 */
apr_int64_t sd_throttle_check(sd_throttle_t *t, const char *key,
                              apr_size_t len, apr_uint32_t limit,
                              apr_uint32_t window, apr_int64_t now);

/** Count one failure of @a key; a window starts at its first failure.
 *  Nothing is counted when no slot can take the key's counter (then
 *  sd_throttle_check() throttles it). */
void sd_throttle_fail(sd_throttle_t *t, const char *key, apr_size_t len,
                      apr_uint32_t window, apr_int64_t now);

/** Forget @a key's failures (after a successful login). */
void sd_throttle_reset(sd_throttle_t *t, const char *key, apr_size_t len);

#endif
