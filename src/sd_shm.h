/*
 * The session store: a hash table of variable-size records in one block of
 * shared memory, used by every httpd process and thread at once.
 *
 * The caller (the httpd glue, or a unit test) maps the memory and hands it
 * to sd_shm_format() once; sd_shm_attach() takes up a segment that already
 * holds a store (one that outlived a generation of the module), and says
 * why when it cannot. Everything in the segment is an offset, so each
 * process may map it anywhere. The table is split into stripes, each with
 * its own robust process-shared lock, entries and data chunks, so
 * operations on different sessions rarely meet, and a process killed while
 * holding a lock costs only a repair of its stripe.
 *
 * A session may have an owner (sd_owner_t, from sd_store.h): all sessions
 * of one owner live in one stripe, so that listing, capping and ending
 * them is one lock and the owner's own sessions, never a scan of the store.
 * The caller makes that so by drawing session IDs until
 * sd_shm_key_fits().
 *
 * Times are whole seconds passed in by the caller (@a now), so expiry is
 * testable without sleeping.
 */
#ifndef SD_SHM_H
#define SD_SHM_H

#include <apr_pools.h>
#include <apr_errno.h>
#include <apr_tables.h>
#include "sd_id.h"
#include "sd_store.h"

typedef struct sd_shm_t sd_shm_t;

typedef enum {
    SD_SHM_FULL_EVICT = 0,          /* drop the least recently used session
                                     * of the store (see sd_shm.c) */
    SD_SHM_FULL_REFUSE = 1          /* refuse the new session */
} sd_shm_when_full_t;

typedef struct {
    apr_uint64_t capacity;      /* most live sessions */
    apr_uint64_t memory;        /* bytes for record data */
    apr_uint32_t max_data;      /* most bytes in one record */
    sd_shm_when_full_t when_full;   /* policy when out of entries or memory */
} sd_shm_params_t;

/** What sd_shm_get() tells about a session besides its record. */
typedef struct {
    apr_int64_t created;        /* when it was created */
    apr_int64_t last_access;    /* previous access, before this one */
    apr_int64_t expires;        /* when it ends if not used again */
    apr_uint32_t version;       /* changes on every sd_shm_replace() */
    apr_uint32_t idle;          /* its idle timeout, seconds */
    apr_uint32_t max_age;       /* its absolute timeout, seconds */
} sd_shm_meta_t;

/** Store-wide counters, summed over stripes. */
typedef struct {
    apr_uint64_t capacity;      /* most live sessions */
    apr_uint64_t sessions;      /* live sessions now */
    apr_uint64_t memory_used;   /* bytes of data chunks in use */
    apr_uint64_t memory_total;  /* bytes of data chunks in all */
    apr_uint64_t segment_size;  /* the whole segment, tables included */
    apr_uint64_t hits;          /* lookups that found a live session */
    apr_uint64_t misses;        /* lookups that found none */
    apr_uint64_t expirations;   /* sessions ended by a timeout */
    apr_uint64_t evictions;     /* live sessions dropped for room */
    apr_uint64_t refusals;      /* new sessions refused for room */
    apr_uint64_t repairs;       /* stripes repaired after a crash */
    apr_uint64_t capped;        /* sessions ended by a per-owner cap */
    apr_uint64_t logins_ok;     /* see sd_shm_count() */
    apr_uint64_t logins_failed;
    apr_uint64_t logins_throttled;
} sd_shm_stats_t;

typedef enum {
    SD_SHM_COUNT_LOGIN_OK,
    SD_SHM_COUNT_LOGIN_FAILED,
    SD_SHM_COUNT_LOGIN_THROTTLED
} sd_shm_counter_t;

/** Reasons a full store reports through the log callback. */
typedef void (*sd_shm_log_fn)(void *baton, int level, const char *msg);

/**
 * Check @a p: APR_SUCCESS for every configuration the store can honour,
 * else APR_EINVAL and *why names the directives (SessionDemoCapacity,
 * SessionDemoMemory, SessionDemoMaxDataSize, SessionDemoWhenFull), says
 * what is wrong and what would work. *why is valid until the next call in
 * the same thread.
 */
apr_status_t sd_shm_check_params(const sd_shm_params_t *p,
                                   const char **why);

/** Bytes of shared memory a store with @a p needs; 0 when
 *  sd_shm_check_params() refuses @a p. */
apr_size_t sd_shm_size(const sd_shm_params_t *p);

/** Lay out a fresh, empty store in @a base (@a size bytes, zero-filled). */
apr_status_t sd_shm_format(apr_pool_t *pool, void *base, apr_size_t size,
                             const sd_shm_params_t *p, sd_shm_t **st);

/**
 * The layout version of the segment: how the header, stripes, tables and
 * entries are arranged and what their fields mean. Every layout begins
 * with the same twelve bytes, the magic (8 bytes, host order) and this
 * number (4 bytes), so a build can tell a segment of another layout from
 * one that holds no store.
 *
 * Bump it in the same commit as any change to what a segment holds or
 * where: a field added, removed, moved, resized or given a new meaning (in
 * the header, a stripe or an entry), the order or size of the tables, a
 * flag, or the geometry computed from the parameters. A build attaches
 * only to segments of its own layout; one of another layout is refused
 * with SD_SHM_ELAYOUT, never guessed at.
 *
 * History: 1, the first; 2, session owners (an owner digest and owner
 * chain links in every entry, an owner bucket table per stripe), times as
 * 32-bit seconds and the LIVE flag inside the location word (80-byte
 * entries), the newest LRU time, an unsorted-LRU mark and a cap counter
 * per stripe.
 */
#ifndef SD_SHM_LAYOUT /* a test build may pose as another layout */
#define SD_SHM_LAYOUT 2
#endif

/** sd_shm_attach(): the segment holds no store (no magic: fresh, zero, or
 *  something else). Start with an empty store. */
#define SD_SHM_ENOTSTORE (APR_OS_START_USERERR + 111)
/** sd_shm_attach(): a store of another layout version (an older or newer
 *  build of the module). Its sessions cannot be read: start empty, and say
 *  so (sd_shm_layout_of() gives the version found). */
#define SD_SHM_ELAYOUT (APR_OS_START_USERERR + 112)
/** sd_shm_attach(): a store of this layout whose header does not describe
 *  this segment (smaller than recorded, or damaged). Start empty. */
#define SD_SHM_EMISMATCH (APR_OS_START_USERERR + 113)

/**
 * Use the store already laid out in @a base (@a size bytes), for example a
 * segment a previous generation of the module formatted and that outlived
 * it. APR_SUCCESS, or SD_SHM_ENOTSTORE, SD_SHM_ELAYOUT or SD_SHM_EMISMATCH:
 * the segment is then left alone, and the caller formats a fresh one.
 * Sessions of an attached store of other parameters move into a new one
 * with sd_shm_migrate().
 */
apr_status_t sd_shm_attach(apr_pool_t *pool, void *base, apr_size_t size,
                             sd_shm_t **st);

/** The layout version of the store in @a base, or 0 when it holds none. */
apr_uint32_t sd_shm_layout_of(const void *base, apr_size_t size);

/** The parameters @a st was formatted with. */
void sd_shm_params(const sd_shm_t *st, sd_shm_params_t *p);

/** Change the full-store policy of a live store (a restart may do this). */
void sd_shm_set_when_full(sd_shm_t *st, sd_shm_when_full_t w);

/**
 * Can @a key be the key of a session of @a owner? All sessions of an owner
 * live in the stripe its digest names, and a key's stripe is fixed by its
 * bits, so the caller draws random IDs until their key fits (any key fits
 * a NULL or all-zero owner). The test is the low six bits of the first
 * word of key and owner, whatever the store's size, so a session keeps its
 * owner when it moves into a store of another size (sd_shm_migrate(),
 * snapshots). Expected 64 draws (an SHA-256 each, well under a millisecond
 * in all); the cost in entropy is those 6 bits of the ID's 256.
 */
int sd_shm_key_fits(const sd_shm_t *st, const sd_key_t *key,
                    const sd_owner_t *owner);

/**
 * Add a new session under @a key for @a owner (NULL: none), ending after
 * @a lim->idle seconds unused or @a lim->max_age in all. When
 * @a lim->per_user is set and the owner already has that many live
 * sessions, its least recently used ones end first, under the same lock
 * (never another owner's); *ended (if not NULL) says how many, also when
 * the create itself then fails. APR_ENOSPC when the store is full and
 * refuses; APR_EEXIST if the key is present (never, for random IDs);
 * APR_EINVAL if @a len is over max_data, a timeout is over a year, @a now
 * is before 1970 or past 2104, or @a key does not fit @a owner.
 */
apr_status_t sd_shm_create_owned(sd_shm_t *st, const sd_key_t *key,
                                   const sd_owner_t *owner, const void *data,
                                   apr_size_t len, apr_int64_t now,
                                   const sd_store_limits_t *lim,
                                   apr_uint32_t *ended);

/** sd_shm_create_owned() of a session with no owner and no cap. */
apr_status_t sd_shm_create(sd_shm_t *st, const sd_key_t *key,
                             const void *data, apr_size_t len,
                             apr_int64_t now, apr_uint32_t idle,
                             apr_uint32_t max_age);

/**
 * Look up @a key and mark it used at @a now. Copies up to @a cap bytes of
 * the record into @a buf and its full length into *len. APR_NOTFOUND when
 * absent; APR_TIMEUP when it has just ended by a timeout: it is removed on
 * the spot, and its last record is still copied out (so the caller can say
 * whose session ended), but it must be treated as gone.
 */
apr_status_t sd_shm_get(sd_shm_t *st, const sd_key_t *key,
                          apr_int64_t now, void *buf, apr_size_t cap,
                          apr_size_t *len, sd_shm_meta_t *meta);

/**
 * Replace the record of @a key if its version is still @a version
 * (optimistic concurrency: read, change outside the lock, replace, and on
 * APR_EAGAIN read again). APR_NOTFOUND if it ended meanwhile, APR_ENOSPC if
 * there is no room (the old record is kept), APR_EINVAL if over max_data.
 */
apr_status_t sd_shm_replace(sd_shm_t *st, const sd_key_t *key,
                              apr_uint32_t version, const void *data,
                              apr_size_t len, apr_int64_t now);

/** Remove @a key; when @a owner is not NULL, only if the session is that
 *  owner's (an all-zero @a owner: only if it has none). APR_NOTFOUND if
 *  there was no such session, or it is someone else's. */
apr_status_t sd_shm_remove_owned(sd_shm_t *st, const sd_key_t *key,
                                   const sd_owner_t *owner);

/** Remove @a key, whoever's it is. APR_NOTFOUND if it was not there. */
apr_status_t sd_shm_delete(sd_shm_t *st, const sd_key_t *key);

/**
 * The live sessions of @a owner as sd_store_entry_t (key: its stored
 * part; record: a copy from @a pool, NUL-terminated beyond len), most
 * recently used first. Sessions found ended are removed, not listed. One
 * stripe lock; the work is the owner's own sessions plus the few other
 * owners sharing its chain. APR_EINVAL (and an empty array) for a NULL or
 * all-zero owner.
 */
apr_status_t sd_shm_list_owner(sd_shm_t *st, const sd_owner_t *owner,
                                 apr_int64_t now, apr_pool_t *pool,
                                 apr_array_header_t **entries);

/** End every session of @a owner ("log out everywhere"); *ended says how
 *  many. One stripe lock, as sd_shm_list_owner(). APR_EINVAL for a NULL or
 *  all-zero owner. */
apr_status_t sd_shm_end_owner(sd_shm_t *st, const sd_owner_t *owner,
                                apr_uint64_t *ended);

/** Add one to a login counter. */
void sd_shm_count(sd_shm_t *st, sd_shm_counter_t c);

/** Sum the counters. Takes no lock: figures may be a moment apart. */
void sd_shm_stats(sd_shm_t *st, sd_shm_stats_t *out);

/**
 * Called once for each session the store evicts to make room (at most four
 * per operation), after the lock is released, with the session's key (its
 * stored part) and the first bytes of its record (up to 160), so that the
 * caller can log whose session went.
 */
typedef void (*sd_shm_evict_fn)(void *baton, const sd_key_t *key,
                                  const void *head, apr_size_t len);
void sd_shm_set_evict_hook(sd_shm_t *st, sd_shm_evict_fn fn,
                             void *baton);

/** Install the callback that receives the store's warnings. */
void sd_shm_set_log(sd_shm_t *st, sd_shm_log_fn fn, void *baton);

/**
 * Check every invariant of the segment (key and owner chains, LRU and free
 * lists, counts, chunk ownership, every owned session in its owner's
 * stripe), taking each stripe lock in turn. APR_SUCCESS, or APR_EGENERAL
 * with the first broken invariant in @a why.
 */
apr_status_t sd_shm_validate(sd_shm_t *st, char *why, apr_size_t whylen);

/**
 * The store tells sessions apart by the first SD_SHM_KEY_BYTES bytes of
 * their key (128 bits of a SHA-256 digest: no two of even 10^7 sessions
 * collide in practice), and keeps only those; the rest of a key passed to
 * sd_shm_foreach()'s callback is zero.
 */
#define SD_SHM_KEY_BYTES 16

/**
 * Call @a fn for every live session with its owner (NULL for none), one
 * stripe at a time, each stripe's least recently used first, with that
 * stripe's lock held (so @a fn must not call into the store). Used to
 * write snapshots. Stops early when @a fn returns non-zero.
 */
typedef int (*sd_shm_visit_owned_fn)(void *baton, const sd_key_t *key,
                                       const sd_owner_t *owner,
                                       const void *data, apr_size_t len,
                                       apr_int64_t created,
                                       apr_int64_t last_access,
                                       apr_uint32_t idle,
                                       apr_uint32_t max_age);
void sd_shm_foreach_owned(sd_shm_t *st, sd_shm_visit_owned_fn fn,
                            void *baton);

/** sd_shm_foreach_owned() for callers that do not keep owners. */
typedef int (*sd_shm_visit_fn)(void *baton, const sd_key_t *key,
                                 const void *data, apr_size_t len,
                                 apr_int64_t created, apr_int64_t last_access,
                                 apr_uint32_t idle, apr_uint32_t max_age);
void sd_shm_foreach(sd_shm_t *st, sd_shm_visit_fn fn, void *baton);

/**
 * Move every live session of @a from into @a to (a store of another size,
 * same layout), owners included, least recently used first, so that a
 * smaller @a to under "evict" keeps the most recently used ones. Returns
 * how many sessions @a to holds afterwards. Needs 16 bytes of heap per
 * live session for the ordering.
 */
apr_uint64_t sd_shm_migrate(sd_shm_t *from, sd_shm_t *to,
                              apr_int64_t now);

/** Insert a session of @a owner (NULL: none) with its times as they were
 *  (snapshots, migration); no per-owner cap applies. APR_NOTFOUND if it
 *  has ended by @a now; APR_EINVAL for impossible times (before 1970 or
 *  past 2104, last access before creation or a day past @a now), timeouts
 *  over a year (more than any directive allows), or a key that does not
 *  fit the owner. */
apr_status_t sd_shm_restore_owned(sd_shm_t *st, const sd_key_t *key,
                                    const sd_owner_t *owner,
                                    const void *data, apr_size_t len,
                                    apr_int64_t created,
                                    apr_int64_t last_access,
                                    apr_uint32_t idle, apr_uint32_t max_age,
                                    apr_int64_t now);

/** sd_shm_restore_owned() of a session with no owner. */
apr_status_t sd_shm_restore(sd_shm_t *st, const sd_key_t *key,
                              const void *data, apr_size_t len,
                              apr_int64_t created, apr_int64_t last_access,
                              apr_uint32_t idle, apr_uint32_t max_age,
                              apr_int64_t now);

/**
 * Test-only fault injection: when set, @a fn is called at numbered points
 * inside critical sections (while a stripe lock is held), so a test can
 * kill the process there and check recovery.
 */
typedef void (*sd_shm_fault_fn)(int point);
void sd_shm_set_fault_hook(sd_shm_fault_fn fn);

#endif
