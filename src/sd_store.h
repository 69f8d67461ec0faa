/*
 * The session store interface: everything the module needs from a place
 * that keeps sessions, and nothing about how a particular store keeps
 * them.
 *
 * A store holds records (opaque bytes, the encoded session) under keys
 * (the hash of a session ID, never the ID), each with its times, its
 * timeouts, a version that changes on every replace, and an owner: a
 * digest of who the session belongs to (the user and the user database
 * they logged in against), so that a user's sessions can be listed, capped
 * and ended together. It also keeps the login-throttle counters, because a
 * store shared by several servers must share those too, and the counters
 * the status page shows.
 *
 * Every operation answers with an apr_status_t. SD_EUNAVAIL means "the
 * store cannot answer now" (a backend down, slow or refusing) and is never
 * confused with APR_NOTFOUND ("there is no such session"): the first must
 * become a 503 that leaves the visitor's cookie alone, the second makes
 * the visitor anonymous. Callers use the sd_store_*() wrappers below; a
 * store is one file that fills in an sd_store_ops_t (sd_store_shm.c,
 * sd_store_redis.c, and the fault-injecting wrapper sd_store_fault.c).
 *
 * Times are whole seconds passed in by the caller (@a now).
 */
#ifndef SD_STORE_H
#define SD_STORE_H

#include <apr_pools.h>
#include <apr_errno.h>
#include <apr_tables.h>
#include "sd_id.h"

/** The store cannot answer now; try again later (never "not found"). */
#define SD_EUNAVAIL (APR_OS_START_USERERR + 101)

/** Bytes of an owner digest (see sd_owner()). */
#define SD_OWNER_LEN 16

typedef struct {
    unsigned char b[SD_OWNER_LEN];
} sd_owner_t;

/** The times and version of a session, as a get() saw them. */
typedef struct {
    apr_int64_t created;        /* when it was created */
    apr_int64_t last_access;    /* the access before this one */
    apr_int64_t expires;        /* when it ends if not used again */
    apr_uint32_t idle;          /* its idle timeout, seconds */
    apr_uint32_t max_age;       /* its absolute timeout, seconds */
    apr_uint64_t version;       /* changes on every replace() */
} sd_store_meta_t;

/** One of a user's sessions, as list() reports it. */
typedef struct {
    sd_key_t key;               /* its store key (only the stored part) */
    apr_int64_t created;
    apr_int64_t last_access;
    apr_int64_t expires;
    const char *record;         /* its record, from the caller's pool */
    apr_size_t len;
} sd_store_entry_t;

/** What a new session may cost others (sd_store_create()). */
typedef struct {
    apr_uint32_t idle;          /* idle timeout, seconds */
    apr_uint32_t max_age;       /* absolute timeout, seconds */
    apr_uint32_t per_user;      /* most sessions of one owner; 0 = no cap */
} sd_store_limits_t;

/** Login counters kept by the store (shared, for a shared store). */
typedef enum {
    SD_COUNT_LOGIN_OK,
    SD_COUNT_LOGIN_FAILED,
    SD_COUNT_LOGIN_THROTTLED
} sd_counter_t;

/** Which figures a store's stats() filled in. */
#define SD_STATS_CAPACITY 0x01  /* capacity, memory_used, memory_total */
#define SD_STATS_REPLICATION 0x02 /* failovers, unreplicated */

/** Store figures for the status page. A figure a store does not have is
 *  left out (see have), never faked. */
typedef struct {
    const char *kind;           /* "shm", "redis", ... */
    const char *address;        /* where it is (redis: host:port), or NULL */
    int connected;              /* the last operation reached the store */
    unsigned have;              /* SD_STATS_* bits */
    apr_uint64_t capacity;      /* most live sessions */
    apr_uint64_t sessions;      /* live sessions now */
    apr_uint64_t memory_used;   /* bytes of session data in use */
    apr_uint64_t memory_total;  /* bytes for session data in all */
    apr_uint64_t hits;          /* lookups that found a live session */
    apr_uint64_t misses;        /* lookups that found none */
    apr_uint64_t expirations;   /* sessions ended by a timeout */
    apr_uint64_t evictions;     /* live sessions dropped for room */
    apr_uint64_t refusals;      /* new sessions refused for room */
    apr_uint64_t repairs;       /* shm: stripes repaired after a crash */
    apr_uint64_t logins_ok;
    apr_uint64_t logins_failed;
    apr_uint64_t logins_throttled;
    apr_uint64_t errors;        /* operations that got SD_EUNAVAIL */
    apr_uint64_t latency_us;    /* last round trip to the store */
    const char *last_error;     /* the last backend error, or NULL */
    apr_uint64_t failovers;     /* master changes this process saw */
    apr_uint64_t unreplicated;  /* writes fewer replicas acknowledged
                                 * than asked for */
} sd_store_stats_t;

typedef struct sd_store_t sd_store_t;

/** Levels of what a store reports through its log callback. */
typedef enum { SD_LOG_ERR, SD_LOG_WARN, SD_LOG_NOTICE, SD_LOG_INFO }
    sd_log_level_t;

/**
 * How a store reports what admins must know (an outage, its end, a repair,
 * a full store). @a msg starts with its own "SDEMOnnnnn: " tag. Called
 * without any store lock held.
 */
typedef void (*sd_store_log_fn)(void *baton, sd_log_level_t level,
                                const char *msg);

/** What a store implements. Each function gets the store it was set in. */
typedef struct {
    const char *kind;
    apr_status_t (*create)(sd_store_t *st, const sd_key_t *key,
                           const sd_owner_t *owner, const void *data,
                           apr_size_t len, apr_int64_t now,
                           const sd_store_limits_t *lim, apr_uint32_t *ended);
    apr_status_t (*get)(sd_store_t *st, const sd_key_t *key, apr_int64_t now,
                        apr_pool_t *pool, char **data, apr_size_t *len,
                        sd_store_meta_t *meta);
    apr_status_t (*replace)(sd_store_t *st, const sd_key_t *key,
                            apr_uint64_t version, const void *data,
                            apr_size_t len, apr_int64_t now);
    apr_status_t (*remove)(sd_store_t *st, const sd_key_t *key,
                           const sd_owner_t *owner);
    apr_status_t (*end_owner)(sd_store_t *st, const sd_owner_t *owner,
                              apr_uint64_t *ended);
    apr_status_t (*list_owner)(sd_store_t *st, const sd_owner_t *owner,
                               apr_int64_t now, apr_pool_t *pool,
                               apr_array_header_t **entries);
    apr_status_t (*throttle_hit)(sd_store_t *st, const char *key,
                                 apr_size_t len, apr_uint32_t limit,
                                 apr_uint32_t window, apr_int64_t now,
                                 apr_int64_t *wait);
    apr_status_t (*throttle_undo)(sd_store_t *st, const char *key,
                                  apr_size_t len, int forget);
    apr_status_t (*count)(sd_store_t *st, sd_counter_t c);
    apr_status_t (*stats)(sd_store_t *st, apr_pool_t *pool,
                          sd_store_stats_t *out);
    int (*key_fits)(const sd_store_t *st, const sd_key_t *key,
                    const sd_owner_t *owner);   /* NULL: every key fits */
} sd_store_ops_t;

/** The part of every store that callers may see. A store embeds this as
 *  the first member of its own struct. */
struct sd_store_t {
    const sd_store_ops_t *ops;
    apr_uint32_t max_data;      /* largest record it takes */
    apr_uint32_t retry_after;   /* seconds to suggest after SD_EUNAVAIL */
    int logs_outages;           /* the store logs its own outages and
                                 * their end (else the caller does) */
};

/** Owner digest of @a user under @a realm (the user database's identity):
 *  the same name in two user files is two owners. */
void sd_owner(const char *realm, const char *user, sd_owner_t *out);

/**
 * Add a new session under @a key for @a owner. When @a lim->per_user is
 * set and @a owner already has that many, the owner's least recently used
 * sessions end first (*ended says how many), never another owner's.
 * APR_ENOSPC when the store is full and refuses; APR_EINVAL when @a len is
 * over max_data; SD_EUNAVAIL.
 */
static APR_INLINE apr_status_t
sd_store_create(sd_store_t *st, const sd_key_t *key, const sd_owner_t *owner,
                const void *data, apr_size_t len, apr_int64_t now,
                const sd_store_limits_t *lim, apr_uint32_t *ended)
{
    return st->ops->create(st, key, owner, data, len, now, lim, ended);
}

/**
 * Look up @a key, mark it used at @a now, and copy its record into @a pool.
 * APR_NOTFOUND when absent; APR_TIMEUP when it has just ended by a timeout
 * (removed on the spot; its last record is still returned so the caller
 * can say whose session ended); SD_EUNAVAIL.
 */
static APR_INLINE apr_status_t
sd_store_get(sd_store_t *st, const sd_key_t *key, apr_int64_t now,
             apr_pool_t *pool, char **data, apr_size_t *len,
             sd_store_meta_t *meta)
{
    return st->ops->get(st, key, now, pool, data, len, meta);
}

/**
 * Replace the record of @a key if its version is still @a version (read,
 * change outside any lock, replace, and on APR_EAGAIN read again).
 * APR_NOTFOUND if it ended meanwhile; APR_ENOSPC if there is no room (the
 * old record stays); APR_EINVAL if over max_data; SD_EUNAVAIL.
 */
static APR_INLINE apr_status_t
sd_store_replace(sd_store_t *st, const sd_key_t *key, apr_uint64_t version,
                 const void *data, apr_size_t len, apr_int64_t now)
{
    return st->ops->replace(st, key, version, data, len, now);
}

/** Remove @a key; when @a owner is given, only if it is that owner's.
 *  APR_NOTFOUND if there was no such session; SD_EUNAVAIL. */
static APR_INLINE apr_status_t
sd_store_remove(sd_store_t *st, const sd_key_t *key, const sd_owner_t *owner)
{
    return st->ops->remove(st, key, owner);
}

/** End every session of @a owner; *ended says how many. */
static APR_INLINE apr_status_t
sd_store_end_owner(sd_store_t *st, const sd_owner_t *owner,
                   apr_uint64_t *ended)
{
    return st->ops->end_owner(st, owner, ended);
}

/** The live sessions of @a owner, as sd_store_entry_t, most recently used
 *  first. */
static APR_INLINE apr_status_t
sd_store_list_owner(sd_store_t *st, const sd_owner_t *owner, apr_int64_t now,
                    apr_pool_t *pool, apr_array_header_t **entries)
{
    return st->ops->list_owner(st, owner, now, pool, entries);
}

/**
 * Count one login attempt of @a key (a name, an address) before its
 * password is checked. If @a key already has @a limit attempts in its
 * current window of @a window seconds, nothing is counted and *wait is the
 * time left in that window; else the attempt is counted and *wait is 0.
 * Atomic, so concurrent attempts cannot all pass the check.
 */
static APR_INLINE apr_status_t
sd_store_throttle_hit(sd_store_t *st, const char *key, apr_size_t len,
                      apr_uint32_t limit, apr_uint32_t window,
                      apr_int64_t now, apr_int64_t *wait)
{
    return st->ops->throttle_hit(st, key, len, limit, window, now, wait);
}

/** After a successful login: take back the attempt that
 *  sd_store_throttle_hit() counted, or with @a forget every failure of
 *  @a key. */
static APR_INLINE apr_status_t
sd_store_throttle_undo(sd_store_t *st, const char *key, apr_size_t len,
                       int forget)
{
    return st->ops->throttle_undo(st, key, len, forget);
}

/**
 * Whether a new session of @a owner may take @a key. A store may place an
 * owner's sessions together (the shared-memory store keeps them in one
 * stripe, under one lock); the caller draws random IDs until one fits,
 * which costs a store of S places at most log2(S) of the ID's 256 bits.
 */
static APR_INLINE int sd_store_key_fits(const sd_store_t *st,
                                        const sd_key_t *key,
                                        const sd_owner_t *owner)
{
    return !st->ops->key_fits || st->ops->key_fits(st, key, owner);
}

static APR_INLINE apr_status_t sd_store_count(sd_store_t *st, sd_counter_t c)
{
    return st->ops->count(st, c);
}

static APR_INLINE apr_status_t
sd_store_stats(sd_store_t *st, apr_pool_t *pool, sd_store_stats_t *out)
{
    return st->ops->stats(st, pool, out);
}

#endif
