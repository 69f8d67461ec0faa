/*
 * Login throttling: failure counters per username and per client address,
 * in a small fixed-size table in shared memory (SPEC B3,
 * SessionDemoLoginThrottle).
 *
 * The table is bounded: an attacker who sprays names or addresses can only
 * push out the oldest counters, never grow memory. It lives beside the
 * session store and, like it, outlives restarts.
 */
#ifndef SD_THROTTLE_H
#define SD_THROTTLE_H

#include <apr_pools.h>
#include <apr_errno.h>

typedef struct sd_throttle_t sd_throttle_t;

/** Bytes of shared memory a table of @a slots counters needs. */
apr_size_t sd_throttle_size(apr_uint32_t slots);

/** Lay out an empty table in @a base (zero-filled, @a size bytes). */
apr_status_t sd_throttle_format(apr_pool_t *pool, void *base, apr_size_t size,
                                apr_uint32_t slots, sd_throttle_t **t);

/**
 * Seconds until @a key may try again: 0 when it has fewer than @a limit
 * failures in its current window of @a window seconds, else the time left
 * in that window.
 */
apr_int64_t sd_throttle_check(sd_throttle_t *t, const char *key,
                              apr_size_t len, apr_uint32_t limit,
                              apr_uint32_t window, apr_int64_t now);

/** Count one failure of @a key; a window starts at its first failure. */
void sd_throttle_fail(sd_throttle_t *t, const char *key, apr_size_t len,
                      apr_uint32_t window, apr_int64_t now);

/** Forget @a key's failures (after a successful login). */
void sd_throttle_reset(sd_throttle_t *t, const char *key, apr_size_t len);

#endif
