/*
 * Login throttling: attempt counters per username and per client address,
 * in a small fixed-size table in shared memory (SessionDemoLoginThrottle).
 *
 * The table is bounded and cannot be used to forget anyone: a counter whose
 * window is still running is never given to another key, and a key that
 * finds no room is throttled instead. Slot positions are keyed with a
 * secret made when the table is formatted, so nobody can choose names that
 * land on someone else's slots. It lives beside the session store and, like
 * it, outlives graceful restarts. sd_throttle.c explains the sizing.
 *
 * Use: sd_throttle_hit() once per login attempt, before the password is
 * checked, for each key (the username and the client address); a wait > 0
 * refuses the attempt. After a successful login, sd_throttle_undo() with
 * forget=1 clears the username's counter (and with forget=0 takes the
 * address's attempt back); when one key said wait and the other had
 * counted, undo(forget=0) takes that attempt back.
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

/** Use the table already laid out in @a base (by an earlier generation
 *  of the module). APR_EINVAL when it is not a table of this build's
 *  layout: the caller then formats a fresh one. */
apr_status_t sd_throttle_attach(apr_pool_t *pool, void *base, apr_size_t size,
                                sd_throttle_t **t);

/**
 * One attempt of @a key, decided and counted atomically (under the table's
 * lock, so concurrent attempts in many processes cannot all pass a check
 * before any of them is counted).
 *
 * When @a key has @a limit or more attempts in its current window, nothing
 * is counted and *wait gets the seconds left in that window (at least 1).
 * Otherwise one attempt is counted (a window of @a window seconds starts at
 * a key's first attempt) and *wait is 0. When the table has no slot the key
 * may use (its probe sequence is full of running counters of other keys),
 * nothing is counted and *wait is @a window (at least 1): the key is
 * throttled rather than another key's counter forgotten.
 *
 * @return APR_SUCCESS; or the lock's error, with *wait = @a window (an
 *         attempt that cannot be counted is refused).
 */
apr_status_t sd_throttle_hit(sd_throttle_t *t, const char *key, apr_size_t len,
                             apr_uint32_t limit, apr_uint32_t window,
                             apr_int64_t now, apr_int64_t *wait);

/**
 * Take back what sd_throttle_hit() counted for @a key: with @a forget 0,
 * one attempt (never below 0); with @a forget 1, the whole counter (after
 * a successful login). A key without a counter is left alone.
 */
void sd_throttle_undo(sd_throttle_t *t, const char *key, apr_size_t len,
                      int forget);

/**
 * A read-only probe, for tests and tools. Never decide a login with it
 * and sd_throttle_fail(): check-then-count is racy (every concurrent
 * attempt passes the check before any is counted); sd_throttle_hit()
 * decides and counts in one step.
 *
 * Seconds until @a key may try again: 0 when it has fewer than @a limit
 * attempts in its current window of @a window seconds, else the time left
 * in that window; @a window when it has no counter and no slot could take
 * one.
 */
apr_int64_t sd_throttle_check(sd_throttle_t *t, const char *key,
                              apr_size_t len, apr_uint32_t limit,
                              apr_uint32_t window, apr_int64_t now);

/** Count one attempt of @a key whatever the limit (tests and tools; see
 *  sd_throttle_check()). */
void sd_throttle_fail(sd_throttle_t *t, const char *key, apr_size_t len,
                      apr_uint32_t window, apr_int64_t now);

#endif
