/*
 * The session store: a striped hash table of variable-size records in one
 * block of shared memory.
 *
 * Every httpd process maps the same segment (the parent creates it and
 * children inherit it across fork; it outlives configuration generations,
 * and a new one, with the sessions moved over, replaces it only when its
 * size changes), so a session written by one child is read by any other.
 * Lookups, updates and deletes are O(1): a key names its stripe and its
 * bucket directly, and every list is intrusive and linked through indices.
 *
 * Segment layout (every position is an offset from the segment's base, and
 * every link an index, so each process may map the segment anywhere):
 *
 *   0                 +-------------------------------+
 *                     | sd_header_t                   |  magic, layout,
 *                     |                               |  geometry, counters
 *   hdr->stripes_off  +-------------------------------+
 *                     | sd_stripe_t [S]               |  lock, list heads,
 *                     |                               |  counters; one cache
 *                     |                               |  line apart
 *   hdr->buckets_off  +-------------------------------+
 *                     | apr_uint32_t bucket [S][B]    |  first entry of the
 *                     |                               |  key chain, 0 = empty
 *   hdr->obuckets_off +-------------------------------+
 *                     | apr_uint32_t obucket [S][O]   |  first entry of the
 *                     |                               |  owner chain
 *   hdr->entries_off  +-------------------------------+
 *                     | sd_entry_t [S][E], 80 bytes   |  key, owner, times,
 *                     |                               |  where the record lies
 *   hdr->links_off    +-------------------------------+
 *                     | apr_uint32_t link [S][C]      |  next chunk of the
 *                     |                               |  record or free list
 *   hdr->chunks_off   +-------------------------------+
 *                     | chunk [S][C], SD_CHUNK bytes  |  record data
 *   hdr->size         +-------------------------------+
 *
 * Indices inside a stripe are 1-based so that 0 means "none" and a zeroed
 * segment is a valid empty store. A record of n bytes takes ceil(n /
 * SD_CHUNK) chunks chained through link[], so a session costs what its data
 * needs rather than a slot sized for the largest one.
 *
 * Why stripes: each has its own lock, its own entries and its own chunks,
 * so two requests on different sessions almost never wait for each other
 * and nothing on the hot path takes a global lock.
 *
 * Owners: a session may belong to an owner (a 16-byte digest of a user and
 * the user database). All sessions of one owner live in one stripe: the
 * caller draws random IDs until the key's stripe bits equal the owner's
 * (sd_shm_key_fits()), so listing, capping or ending one user's sessions
 * takes one stripe lock and reads only that user's entries, never the whole
 * store. Inside the stripe every owned entry is on the chain of its owner's
 * bucket (obucket[]), doubly linked, with the entries of one owner kept
 * next to each other: a walk passes the few other owners that share the
 * bucket, reads the owner's own entries and stops.
 *
 * "Full" has two meanings. The store is full when it holds
 * SessionDemoCapacity sessions: then the least recently used session of
 * the whole store goes, wherever it is. The tails of all stripes' LRU lists
 * are compared without locks, and the oldest is removed under its own
 * stripe's lock alone: a process holds one stripe lock at a time, never
 * two, so there is no lock order to get wrong and a process killed anywhere
 * costs one stripe's repair. A stripe is full when its own entries or its
 * share of SessionDemoMemory run out (with uniformly spread keys and owners
 * that is about four standard deviations above its share; an owner with
 * more sessions than a stripe's share gets there sooner): then the stripe's
 * own least recently used session goes, since one stripe's chunks cannot
 * hold another's data.
 *
 * Why robust locks: an httpd child killed while holding a stripe lock
 * (kill -9, OOM killer, a crash in another module) must not hang every
 * other process. The locks are process-shared robust pthread mutexes; the
 * next locker is told the owner died and rebuilds that stripe's derived
 * structures (key buckets, owner chains, LRU, free lists) from the entry
 * table. Updates are ordered so that the entry table is always meaningful:
 * a record's chunks are written before the entry points at them, and the
 * entry's location word (first chunk, length and the LIVE flag) changes in
 * one 64-bit store; LIVE is the last thing set and the first thing cleared.
 * A half-done change is therefore either invisible after repair or
 * complete.
 */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <apr_strings.h>
#include "sd_shm.h"

/* ---------------------------------------------------------------------
 * Geometry and on-segment structures
 * --------------------------------------------------------------------- */

/* The first twelve bytes of a segment are the same in every layout: the
 * magic (host order), then the layout version (see SD_SHM_LAYOUT in
 * sd_shm.h, and the rule for bumping it there). */
#define SD_SHM_MAGIC 0x5344535430305354ULL /* "SDST00ST" */
#define SD_CHUNK 64               /* bytes of record data per chunk */
#define SD_MAX_STRIPES 64         /* a power of two; see sd_shm_key_fits() */
#define SD_MIN_PER_STRIPE 1024    /* below this, fewer stripes */
#define SD_RECLAIM_SCAN 4         /* LRU-tail entries looked at per insert */
#define SD_SWEEP_SCAN 16          /* entries the sweep looks at per insert */
#define SD_EVICT_ROUNDS 8         /* tries at the oldest before a local LRU */
#define SD_OLDEST_TRIES 16        /* looks at the tails per such try */
#define SD_LRU_SLACK 2            /* seconds an LRU list may be out of order */
#define SD_CAPACITY_MAX 10000000ULL
#define SD_MAX_DATA_MAX (16 * 1024 * 1024) /* most bytes in one record */
#define SD_TIMEOUT_MAX 31536000   /* a year: the directives' own limit */
/* Times are stored as unsigned 32-bit seconds. A live session's times lie
 * between its creation and a timeout later, so creations up to this leave
 * every stored time below 2^32 (the year 2104). */
#define SD_TIME_MAX (0xffffffffLL - 2LL * SD_TIMEOUT_MAX)
#define SD_ALIGN(x) (((x) + 63) & ~(apr_uint64_t)63)

typedef struct {
    apr_uint64_t magic;           /* SD_SHM_MAGIC, at offset 0 always */
    apr_uint32_t layout;          /* SD_SHM_LAYOUT, at offset 8 always */
    apr_uint32_t nstripes;        /* S, a power of two */
    apr_uint32_t entries;         /* E, entries per stripe */
    apr_uint32_t buckets;         /* B, key buckets per stripe, power of 2 */
    apr_uint32_t obuckets;        /* O, owner buckets per stripe, power of 2 */
    apr_uint32_t chunks;          /* C, chunks per stripe, reserve included */
    apr_uint32_t reserve;         /* chunks per stripe kept for replaces */
    apr_uint32_t max_data;        /* most bytes in one record */
    apr_uint32_t when_full;       /* sd_shm_when_full_t */
    apr_uint32_t pad0;
    apr_uint64_t capacity;        /* as configured */
    apr_uint64_t memory;          /* as configured */
    apr_uint64_t size;            /* bytes of the whole segment */
    apr_uint64_t stripes_off;     /* offsets of the tables, see above */
    apr_uint64_t buckets_off;
    apr_uint64_t obuckets_off;
    apr_uint64_t entries_off;
    apr_uint64_t links_off;
    apr_uint64_t chunks_off;
    apr_uint64_t logins[3];       /* sd_shm_counter_t, atomic adds */
    apr_int64_t last_full_warn;   /* when "store full" was last logged */
} sd_header_t;

typedef struct {
    pthread_mutex_t lock;         /* robust, process-shared */
    apr_uint32_t live;            /* live entries */
    apr_uint32_t entry_free;      /* free entries, chained through hnext */
    apr_uint32_t entry_bump;      /* entries 1..bump have ever been used */
    apr_uint32_t chunk_free;      /* free chunks, chained through link[] */
    apr_uint32_t chunk_bump;      /* chunks 1..bump have ever been used */
    apr_uint32_t chunks_used;     /* chunks held by live records */
    apr_uint32_t lru_head;        /* most recently used */
    apr_uint32_t lru_tail;        /* least recently used */
    apr_uint32_t lru_newest;      /* latest last access put at the head */
    apr_uint32_t lru_unsorted;    /* an old session was put at the head:
                                   * sort before trusting the tail */
    apr_uint32_t sweep;           /* next entry the expiry sweep looks at */
    apr_uint64_t hits;            /* counters, changed under the lock */
    apr_uint64_t misses;
    apr_uint64_t expirations;
    apr_uint64_t evictions;
    apr_uint64_t refusals;
    apr_uint64_t repairs;
    apr_uint64_t capped;          /* ended by a per-owner cap */
} sd_stripe_t;

/* Store keys are SHA-256 digests; 128 of their bits identify a session
 * (collisions among 10^7 sessions: ~10^-25) and keep the entry small. */
#define SD_ENTRY_KEY SD_SHM_KEY_BYTES

/* One session. The fields a lookup reads (key, location, bucket chain,
 * times, LRU links: the first 56 bytes) come first; the owner, read only
 * by owner operations, last. 80 bytes:
 * times are 32-bit and the LIVE flag rides in the location word, which is
 * what keeps a million sessions within 128 bytes of overhead each. */
typedef struct {
    unsigned char key[SD_ENTRY_KEY]; /* first bytes of the session key */
    apr_uint64_t where;           /* first chunk << 32 | LIVE | length */
    apr_uint32_t hnext;           /* key bucket chain, or free list */
    apr_uint32_t version;         /* bumped by every replace */
    apr_uint32_t created;         /* seconds since 1970 */
    apr_uint32_t last_access;     /* seconds since 1970 */
    apr_uint32_t idle;            /* idle timeout, seconds */
    apr_uint32_t max_age;         /* absolute timeout, seconds */
    apr_uint32_t lru_prev;        /* towards the head */
    apr_uint32_t lru_next;        /* towards the tail */
    apr_uint32_t oprev;           /* owner chain, towards its bucket */
    apr_uint32_t onext;           /* owner chain, away from its bucket */
    unsigned char owner[SD_OWNER_LEN]; /* owner digest, all zero = none */
} sd_entry_t;

typedef char sd_entry_is_80_bytes[sizeof(sd_entry_t) == 80 ? 1 : -1];

struct sd_shm_t {
    char *base;                   /* where this process mapped the segment */
    sd_header_t *hdr;
    sd_shm_log_fn log;          /* warnings go here */
    void *log_baton;
    sd_shm_evict_fn evicted;    /* told of each eviction, after unlock */
    void *evict_baton;
};

/* Evictions noted under a stripe lock and reported after it is released,
 * so that the glue's logging never runs under the lock. Only the start of
 * each record is kept: enough for the codec to read the user's name. */
#define SD_EVICT_NOTE 4
#define SD_EVICT_HEAD 160

typedef struct {
    int n;                        /* evictions in all */
    struct {
        sd_key_t key;             /* stored part of the key, rest zero */
        char head[SD_EVICT_HEAD]; /* first bytes of the record */
        apr_uint32_t len;         /* how many of them */
    } v[SD_EVICT_NOTE];
} sd_evictions_t;

/* Per-process pointers into the segment, from offsets and indices. */
#define STRIPE(st, s)                                                        \
    ((sd_stripe_t *)((st)->base + (st)->hdr->stripes_off +                   \
                     (apr_size_t)(s) * SD_ALIGN(sizeof(sd_stripe_t))))
#define BUCKETS(st, s)                                                       \
    ((apr_uint32_t *)((st)->base + (st)->hdr->buckets_off) +                 \
     (apr_size_t)(s) * (st)->hdr->buckets)
#define OBUCKETS(st, s)                                                      \
    ((apr_uint32_t *)((st)->base + (st)->hdr->obuckets_off) +                \
     (apr_size_t)(s) * (st)->hdr->obuckets)
#define ENTRY(st, s, i)                                                      \
    ((sd_entry_t *)((st)->base + (st)->hdr->entries_off) +                   \
     (apr_size_t)(s) * (st)->hdr->entries + ((i) - 1))
#define LINKS(st, s)                                                         \
    ((apr_uint32_t *)((st)->base + (st)->hdr->links_off) +                   \
     (apr_size_t)(s) * (st)->hdr->chunks - 1)
#define CHUNK(st, s, c)                                                      \
    ((st)->base + (st)->hdr->chunks_off +                                    \
     ((apr_size_t)(s) * (st)->hdr->chunks + ((c) - 1)) * SD_CHUNK)

/* The location word: first chunk in the high half; in the low half the
 * LIVE flag and the length (up to SD_MAX_DATA_MAX, 25 bits). */
#define W_LIVE 0x80000000u
#define WHERE(chunk, len) (((apr_uint64_t)(chunk) << 32) | (apr_uint32_t)(len))
#define WHERE_CHUNK(w) ((apr_uint32_t)((w) >> 32))
#define WHERE_LEN(w) ((apr_uint32_t)((w) & 0x01ffffffu))
#define LIVE(e) ((__atomic_load_n(&(e)->where, __ATOMIC_ACQUIRE) & W_LIVE) != 0)
#define NCHUNKS(len) (((len) + SD_CHUNK - 1) / SD_CHUNK)

static sd_shm_fault_fn fault_hook;
#define FAULT(n)                                                             \
    do {                                                                     \
        if (fault_hook)                                                      \
            fault_hook(n);                                                   \
    } while (0)

void sd_shm_set_fault_hook(sd_shm_fault_fn fn)
{
    fault_hook = fn;
}

/* ---------------------------------------------------------------------
 * Geometry
 *
 * All of it in 64 bits: SessionDemoMemory may be anything up to what the
 * glue parses, and a count that wrapped in 32 bits once gave a segment far
 * smaller than the data written into it. sd_shm_check_params() refuses
 * every configuration whose geometry the 32-bit indices of the segment
 * cannot express, so that format and the operations never see one.
 * --------------------------------------------------------------------- */

/* Largest index (entry or chunk) in one stripe. Indices are 32-bit and 0
 * means "none"; keeping them below 2^31 leaves every count and loop over
 * them clear of wrapping. */
#define SD_INDEX_MAX 0x80000000ULL
/* More memory than 64 stripes of SD_INDEX_MAX chunks can never be used;
 * refusing it first keeps the arithmetic below far from overflow. */
#define SD_MEMORY_MAX ((apr_uint64_t)SD_MAX_STRIPES * SD_INDEX_MAX * SD_CHUNK)

static apr_uint64_t pow2_at_least(apr_uint64_t n)
{
    apr_uint64_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* The smallest m with m * m >= x (x below 2^62). */
static apr_uint64_t isqrt_up(apr_uint64_t x)
{
    apr_uint64_t lo = 0, hi = 1ULL << 31;
    while (lo < hi) {
        apr_uint64_t mid = lo + (hi - lo) / 2;
        if (mid * mid >= x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Fewer stripes for small stores, so that each stripe's share is large
 * beside the margins it gets on top (see geometry()), and enough memory in
 * each stripe for four of the largest records. */
static apr_uint64_t stripes_for(const sd_shm_params_t *p)
{
    apr_uint64_t s = SD_MAX_STRIPES;
    while (s > 1 && (p->capacity / s < SD_MIN_PER_STRIPE ||
                     p->memory / s < (apr_uint64_t)p->max_data * 4))
        s >>= 1;
    return s;
}

typedef struct {
    apr_uint64_t nstripes, entries, buckets, obuckets, chunks, reserve;
    apr_uint64_t stripes_off, buckets_off, obuckets_off, entries_off;
    apr_uint64_t links_off, chunks_off;
    apr_uint64_t size;
} sd_geometry_t;

/* The layout for @a p, which must be within the ranges check_params()
 * tests first (capacity, max_data, memory <= SD_MEMORY_MAX). */
static void geometry(const sd_shm_params_t *p, sd_geometry_t *g)
{
    apr_uint64_t off;

    g->nstripes = stripes_for(p);
    /* Keys hash evenly but not exactly: a stripe holds its share plus a
     * margin of four standard deviations, so that the store as a whole
     * reaches SessionDemoCapacity (enforced over all stripes) before any
     * one stripe runs out. */
    {
        apr_uint64_t share = (p->capacity + g->nstripes - 1) / g->nstripes;
        apr_uint64_t margin = g->nstripes > 1 ? isqrt_up(16 * share) + 8 : 0;
        g->entries = share + margin;
    }
    g->buckets = pow2_at_least(g->entries);
    /* Owner chains hang off a quarter as many buckets: a walk passes the
     * entries of about four other owners on average (fewer where owners
     * have several sessions), and the table costs one byte per entry. */
    g->obuckets = pow2_at_least((g->entries + 3) / 4);
    /* On top of SessionDemoMemory, each stripe keeps room for one largest
     * record: a replace writes the new copy before it frees the old one
     * (so a crash leaves one whole version), and with this reserve a
     * session can always be rewritten at the same size even when the
     * store is full, without evicting anyone. */
    g->reserve = NCHUNKS((apr_uint64_t)p->max_data);
    {
        /* Data, like keys, spreads over the stripes only on average: each
         * gets its share of SessionDemoMemory plus a margin of about four
         * standard deviations (for records of a few chunks), so the store
         * fills as a whole rather than one stripe early. */
        apr_uint64_t share = p->memory / g->nstripes / SD_CHUNK;
        apr_uint64_t margin = g->nstripes > 1 ? isqrt_up(64 * share) + 8 : 0;
        g->chunks = share + margin + g->reserve;
    }

    off = SD_ALIGN(sizeof(sd_header_t));
    g->stripes_off = off;
    off += g->nstripes * SD_ALIGN(sizeof(sd_stripe_t));
    g->buckets_off = off = SD_ALIGN(off);
    off += g->nstripes * g->buckets * sizeof(apr_uint32_t);
    g->obuckets_off = off = SD_ALIGN(off);
    off += g->nstripes * g->obuckets * sizeof(apr_uint32_t);
    g->entries_off = off = SD_ALIGN(off);
    off += g->nstripes * g->entries * sizeof(sd_entry_t);
    g->links_off = off = SD_ALIGN(off);
    off += g->nstripes * g->chunks * sizeof(apr_uint32_t);
    g->chunks_off = off = SD_ALIGN(off);
    off += g->nstripes * g->chunks * SD_CHUNK;
    g->size = SD_ALIGN(off);
}

/* Does the geometry fit the segment's 32-bit indices, the address space,
 * and one largest record in a stripe's own memory? */
static int geometry_ok(const sd_shm_params_t *p)
{
    sd_geometry_t g;
    geometry(p, &g);
    return g.entries <= SD_INDEX_MAX && g.chunks <= SD_INDEX_MAX &&
           g.size <= (apr_size_t)-1 &&
           g.chunks - g.reserve >= NCHUNKS((apr_uint64_t)p->max_data);
}

/* A byte count the way the directives take it: in the largest unit that
 * divides it exactly (G, M, K), else in bytes. */
static const char *size_str(char *buf, apr_size_t len, apr_uint64_t v)
{
    static const char units[] = "GMK";
    int u;
    for (u = 0; u < 3; u++) {
        apr_uint64_t m = 1ULL << (10 * (3 - u));
        if (v && v % m == 0) {
            apr_snprintf(buf, len, "%" APR_UINT64_T_FMT "%c", v / m, units[u]);
            return buf;
        }
    }
    apr_snprintf(buf, len, "%" APR_UINT64_T_FMT " bytes", v);
    return buf;
}

/* *why is formatted here: the messages name the directives and the values
 * that would work. Configuration is read by one thread. */
static __thread char why_buf[400];

#define WHY(...)                                                             \
    do {                                                                     \
        apr_snprintf(why_buf, sizeof(why_buf), __VA_ARGS__);                 \
        *why = why_buf;                                                      \
        return APR_EINVAL;                                                   \
    } while (0)

apr_status_t sd_shm_check_params(const sd_shm_params_t *p,
                                   const char **why)
{
    sd_geometry_t g;
    sd_shm_params_t q;
    char b1[32], b2[32], b3[32], b4[32];

    if (p->capacity < 1 || p->capacity > SD_CAPACITY_MAX)
        WHY("SessionDemoCapacity %" APR_UINT64_T_FMT " is out of range: "
            "it must be between 1 and %" APR_UINT64_T_FMT " sessions",
            p->capacity, (apr_uint64_t)SD_CAPACITY_MAX);
    if (p->max_data < SD_CHUNK || p->max_data > SD_MAX_DATA_MAX)
        WHY("SessionDemoMaxDataSize %s is out of range: it must be between "
            "%d bytes and %s",
            size_str(b1, sizeof(b1), p->max_data), SD_CHUNK,
            size_str(b2, sizeof(b2), SD_MAX_DATA_MAX));
    if (p->when_full != SD_SHM_FULL_EVICT &&
        p->when_full != SD_SHM_FULL_REFUSE)
        WHY("SessionDemoWhenFull must be evict or refuse");
    if (p->memory > SD_MEMORY_MAX)
        WHY("SessionDemoMemory %s is more than the store can ever index: "
            "give at most %s",
            size_str(b1, sizeof(b1), p->memory),
            size_str(b2, sizeof(b2), SD_MEMORY_MAX));
    geometry(p, &g);
    /* One record of SessionDemoMaxDataSize must fit in a stripe's own
     * memory: a stripe never borrows another's. Only a store small enough
     * for one stripe can miss this (more stripes are used only when each
     * gets four largest records). */
    if (g.chunks - g.reserve < NCHUNKS((apr_uint64_t)p->max_data))
        WHY("SessionDemoMemory %s cannot hold one session of "
            "SessionDemoMaxDataSize %s: give SessionDemoMemory at least %s, "
            "or SessionDemoMaxDataSize at most %s",
            size_str(b1, sizeof(b1), p->memory),
            size_str(b2, sizeof(b2), p->max_data),
            size_str(b3, sizeof(b3), NCHUNKS((apr_uint64_t)p->max_data) *
                                         SD_CHUNK * g.nstripes),
            size_str(b4, sizeof(b4), (g.chunks - g.reserve) * SD_CHUNK));
    if (g.entries > SD_INDEX_MAX || g.chunks > SD_INDEX_MAX ||
        g.size > (apr_size_t)-1) {
        /* Too much memory for the stripes this capacity gives: say how
         * much would fit (in whole K), and which capacity (more stripes)
         * would take this memory. */
        apr_uint64_t lo = 0, hi = p->memory >> 10, cap = 0;
        q = *p;
        while (lo < hi) {
            apr_uint64_t mid = lo + (hi - lo + 1) / 2;
            q.memory = mid << 10;
            if (geometry_ok(&q))
                lo = mid;
            else
                hi = mid - 1;
        }
        for (q = *p; q.capacity <= SD_CAPACITY_MAX; q.capacity *= 2) {
            if (q.capacity < SD_MIN_PER_STRIPE * 2)
                q.capacity = SD_MIN_PER_STRIPE * 2;
            if (geometry_ok(&q)) {
                cap = q.capacity;
                break;
            }
        }
        if (cap)
            WHY("SessionDemoMemory %s is more than a store of "
                "SessionDemoCapacity %" APR_UINT64_T_FMT " can index (%"
                APR_UINT64_T_FMT " stripe(s)): give SessionDemoMemory at "
                "most %s, or SessionDemoCapacity at least %" APR_UINT64_T_FMT,
                size_str(b1, sizeof(b1), p->memory), p->capacity, g.nstripes,
                size_str(b2, sizeof(b2), lo << 10), cap);
        WHY("SessionDemoMemory %s is more than a store of "
            "SessionDemoCapacity %" APR_UINT64_T_FMT " can index, even in "
            "64 stripes: give SessionDemoMemory at most %s",
            size_str(b1, sizeof(b1), p->memory), p->capacity,
            size_str(b2, sizeof(b2), lo << 10));
    }
    return APR_SUCCESS;
}

apr_size_t sd_shm_size(const sd_shm_params_t *p)
{
    sd_geometry_t g;
    const char *why;

    if (sd_shm_check_params(p, &why) != APR_SUCCESS)
        return 0;
    geometry(p, &g);
    return (apr_size_t)g.size;
}

/* ---------------------------------------------------------------------
 * Setup
 * --------------------------------------------------------------------- */

static apr_status_t init_lock(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rv;

    if ((rv = pthread_mutexattr_init(&a)) != 0)
        return rv;
    if ((rv = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) == 0 &&
        (rv = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) == 0)
        rv = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return rv;
}

static sd_shm_t *handle(apr_pool_t *pool, void *base)
{
    sd_shm_t *st = apr_pcalloc(pool, sizeof(*st));
    st->base = base;
    st->hdr = base;
    return st;
}

apr_status_t sd_shm_format(apr_pool_t *pool, void *base, apr_size_t size,
                             const sd_shm_params_t *p, sd_shm_t **out)
{
    sd_geometry_t g;
    sd_header_t *h = base;
    sd_shm_t *st;
    const char *why;
    apr_uint32_t s;
    apr_status_t rv;

    if (sd_shm_check_params(p, &why) != APR_SUCCESS)
        return APR_EINVAL;
    geometry(p, &g);
    if (size < g.size)
        return APR_ENOSPC;

    /* Only the header and the stripes need writing: the tables are zero
     * in fresh memory, and zero means empty, so a million-session store
     * starts without touching its pages. */
    memset(h, 0, g.stripes_off);
    h->layout = SD_SHM_LAYOUT;
    h->nstripes = (apr_uint32_t)g.nstripes;
    h->entries = (apr_uint32_t)g.entries;
    h->buckets = (apr_uint32_t)g.buckets;
    h->obuckets = (apr_uint32_t)g.obuckets;
    h->chunks = (apr_uint32_t)g.chunks;
    h->reserve = (apr_uint32_t)g.reserve;
    h->max_data = p->max_data;
    h->when_full = p->when_full;
    h->capacity = p->capacity;
    h->memory = p->memory;
    h->size = g.size;
    h->stripes_off = g.stripes_off;
    h->buckets_off = g.buckets_off;
    h->obuckets_off = g.obuckets_off;
    h->entries_off = g.entries_off;
    h->links_off = g.links_off;
    h->chunks_off = g.chunks_off;
    h->last_full_warn = -1000000;

    st = handle(pool, base);
    for (s = 0; s < g.nstripes; s++) {
        sd_stripe_t *sp = STRIPE(st, s);
        memset(sp, 0, sizeof(*sp));
        if ((rv = init_lock(&sp->lock)) != 0)
            return rv;
    }
    __atomic_store_n(&h->magic, SD_SHM_MAGIC, __ATOMIC_RELEASE);
    *out = st;
    return APR_SUCCESS;
}

apr_uint32_t sd_shm_layout_of(const void *base, apr_size_t size)
{
    const sd_header_t *h = base;
    if (size < sizeof(*h) || h->magic != SD_SHM_MAGIC)
        return 0;
    return h->layout;
}

apr_status_t sd_shm_attach(apr_pool_t *pool, void *base, apr_size_t size,
                             sd_shm_t **out)
{
    sd_header_t *h = base;
    sd_shm_params_t p;
    sd_geometry_t g;
    const char *why;

    if (size < sizeof(*h) || h->magic != SD_SHM_MAGIC)
        return SD_SHM_ENOTSTORE;
    if (h->layout != SD_SHM_LAYOUT)
        return SD_SHM_ELAYOUT;
    /* Our layout: the header must describe exactly this segment, as
     * format would have laid it out for the parameters it records. */
    p.capacity = h->capacity;
    p.memory = h->memory;
    p.max_data = h->max_data;
    p.when_full = h->when_full;
    if (h->size > size || sd_shm_check_params(&p, &why) != APR_SUCCESS)
        return SD_SHM_EMISMATCH;
    geometry(&p, &g);
    if (g.size != h->size || g.nstripes != h->nstripes ||
        g.entries != h->entries || g.buckets != h->buckets ||
        g.obuckets != h->obuckets || g.chunks != h->chunks ||
        g.reserve != h->reserve || g.stripes_off != h->stripes_off ||
        g.buckets_off != h->buckets_off ||
        g.obuckets_off != h->obuckets_off ||
        g.entries_off != h->entries_off || g.links_off != h->links_off ||
        g.chunks_off != h->chunks_off)
        return SD_SHM_EMISMATCH;
    *out = handle(pool, base);
    return APR_SUCCESS;
}

void sd_shm_params(const sd_shm_t *st, sd_shm_params_t *p)
{
    p->capacity = st->hdr->capacity;
    p->memory = st->hdr->memory;
    p->max_data = st->hdr->max_data;
    p->when_full = (sd_shm_when_full_t)st->hdr->when_full;
}

void sd_shm_set_when_full(sd_shm_t *st, sd_shm_when_full_t w)
{
    __atomic_store_n(&st->hdr->when_full, (apr_uint32_t)w, __ATOMIC_RELAXED);
}

void sd_shm_set_evict_hook(sd_shm_t *st, sd_shm_evict_fn fn,
                             void *baton)
{
    st->evicted = fn;
    st->evict_baton = baton;
}

static void report_evictions(sd_shm_t *st, const sd_evictions_t *ev)
{
    int i;
    if (!st->evicted)
        return;
    for (i = 0; i < ev->n && i < SD_EVICT_NOTE; i++)
        st->evicted(st->evict_baton, &ev->v[i].key, ev->v[i].head,
                    ev->v[i].len);
}

void sd_shm_set_log(sd_shm_t *st, sd_shm_log_fn fn, void *baton)
{
    st->log = fn;
    st->log_baton = baton;
}

/* ---------------------------------------------------------------------
 * Hashing: which stripe, which bucket
 * --------------------------------------------------------------------- */

static apr_uint32_t word_at(const unsigned char *b)
{
    return ((apr_uint32_t)b[0] << 24) | ((apr_uint32_t)b[1] << 16) |
           ((apr_uint32_t)b[2] << 8) | b[3];
}

/* A key's stripe: the low bits of its first word. An owner's stripe: the
 * same bits of the owner digest. Both are taken modulo the largest stripe
 * count, so a key that fits an owner fits it in a store of any size. */
static apr_uint32_t stripe_of(const sd_shm_t *st, const unsigned char *k)
{
    return word_at(k) & (st->hdr->nstripes - 1);
}

static apr_uint32_t bucket_of(const sd_shm_t *st, const unsigned char *k)
{
    return word_at(k + 4) & (st->hdr->buckets - 1);
}

static apr_uint32_t obucket_of(const sd_shm_t *st, const unsigned char *o)
{
    return word_at(o + 4) & (st->hdr->obuckets - 1);
}

static const unsigned char no_owner[SD_OWNER_LEN];

/* The owner's digest, or NULL for none (a NULL or all-zero owner). */
static const unsigned char *owner_bytes(const sd_owner_t *o)
{
    if (!o || memcmp(o->b, no_owner, SD_OWNER_LEN) == 0)
        return NULL;
    return o->b;
}

static int is_owned(const sd_entry_t *e)
{
    return memcmp(e->owner, no_owner, SD_OWNER_LEN) != 0;
}

int sd_shm_key_fits(const sd_shm_t *st, const sd_key_t *key,
                    const sd_owner_t *owner)
{
    const unsigned char *o = owner_bytes(owner);
    (void)st;
    return !o || ((word_at(key->b) ^ word_at(o)) & (SD_MAX_STRIPES - 1)) == 0;
}

/* ---------------------------------------------------------------------
 * Locking and crash repair
 * --------------------------------------------------------------------- */

static void stripe_repair(sd_shm_t *st, apr_uint32_t s);

/* Take a stripe's lock. When its previous owner died holding it, the
 * stripe may be mid-change: rebuild it before anyone uses it. */
static sd_stripe_t *stripe_lock(sd_shm_t *st, apr_uint32_t s)
{
    sd_stripe_t *sp = STRIPE(st, s);
    int rv = pthread_mutex_lock(&sp->lock);

    if (rv == EOWNERDEAD) {
        stripe_repair(st, s);
        sp->repairs++;
        pthread_mutex_consistent(&sp->lock);
        if (st->log)
            st->log(st->log_baton, 1,
                    "a process died while changing the session store; "
                    "its stripe was checked and repaired");
    }
    /* Any other error (there is none for a valid robust mutex) would mean
     * the segment itself is gone; carrying on unlocked is the lesser evil
     * than hanging, and validate() would report it. */
    return sp;
}

static void stripe_unlock(sd_stripe_t *sp)
{
    pthread_mutex_unlock(&sp->lock);
}

/* ---------------------------------------------------------------------
 * Lists inside one stripe (caller holds the stripe lock)
 * --------------------------------------------------------------------- */

static void lru_unlink(sd_shm_t *st, apr_uint32_t s, sd_stripe_t *sp,
                       apr_uint32_t i)
{
    sd_entry_t *e = ENTRY(st, s, i);
    if (e->lru_prev)
        ENTRY(st, s, e->lru_prev)->lru_next = e->lru_next;
    else
        sp->lru_head = e->lru_next;
    if (e->lru_next)
        ENTRY(st, s, e->lru_next)->lru_prev = e->lru_prev;
    else
        sp->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = 0;
}

/* The tail is read without the lock by other processes choosing whom to
 * evict (a hint they check under the lock), hence the atomic stores. */
static void lru_push_head(sd_shm_t *st, apr_uint32_t s, sd_stripe_t *sp,
                          apr_uint32_t i)
{
    sd_entry_t *e = ENTRY(st, s, i);
    e->lru_prev = 0;
    e->lru_next = sp->lru_head;
    if (sp->lru_head)
        ENTRY(st, s, sp->lru_head)->lru_prev = i;
    else
        __atomic_store_n(&sp->lru_tail, i, __ATOMIC_RELAXED);
    sp->lru_head = i;
}

/* Put entry @a i at the head after it was used (or made). Requests in
 * parallel pass times a second or two apart, so the list is in order only
 * to within SD_LRU_SLACK seconds: every entry put at the head is at most
 * that much older than the newest put there before, hence than any entry
 * nearer the tail, and the tail is within that much of the stripe's
 * oldest. An entry older still (a restored session, or the @a now of a
 * request that took long) marks the list, so that eviction sorts the
 * stripe before it trusts the tail. A time past @a now (a restored
 * session from a clock a little ahead) counts as @a now: it must not make
 * every later entry look old. */
static void lru_to_head(sd_shm_t *st, apr_uint32_t s, sd_stripe_t *sp,
                        apr_uint32_t i, apr_int64_t now)
{
    apr_uint32_t t = ENTRY(st, s, i)->last_access;
    if (now >= 0 && (apr_int64_t)t > now)
        t = (apr_uint32_t)(now < 0xffffffffLL ? now : 0xffffffffLL);
    if (t > sp->lru_newest)
        sp->lru_newest = t;
    else if (t + SD_LRU_SLACK < sp->lru_newest)
        __atomic_store_n(&sp->lru_unsorted, 1, __ATOMIC_RELAXED);
    lru_push_head(st, s, sp, i);
}

/* Relink the LRU list of the @a n entries in @a order (each packed as
 * last_access << 32 | index) oldest at the tail. */
static int by_u64(const void *a, const void *b)
{
    apr_uint64_t x = *(const apr_uint64_t *)a, y = *(const apr_uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void lru_relink(sd_shm_t *st, apr_uint32_t s, sd_stripe_t *sp,
                       apr_uint64_t *order, apr_uint32_t n)
{
    apr_uint32_t k;
    qsort(order, n, sizeof(*order), by_u64);
    sp->lru_head = 0;
    __atomic_store_n(&sp->lru_tail, 0, __ATOMIC_RELAXED);
    for (k = 0; k < n; k++) {
        if (k == n / 2)
            FAULT(32);
        lru_push_head(st, s, sp, (apr_uint32_t)order[k]);
    }
    sp->lru_newest = n ? (apr_uint32_t)(order[n - 1] >> 32) : 0;
    __atomic_store_n(&sp->lru_unsorted, 0, __ATOMIC_RELAXED);
}

/* A restore may put a long-idle session at the head of the LRU list, so
 * that the tail is no longer the stripe's oldest. Eviction sorts such a
 * stripe once before it trusts the tail: a few milliseconds, once after a
 * snapshot is loaded into a store with fewer stripes, and never on the
 * request path otherwise. */
static void lru_sort(sd_shm_t *st, apr_uint32_t s, sd_stripe_t *sp)
{
    apr_uint64_t *order = malloc(((apr_size_t)sp->live + 1) * sizeof(*order));
    apr_uint32_t i, n = 0;

    if (!order)
        return; /* the list stays as it is, in a usable if rough order */
    for (i = sp->lru_head; i && n < sp->live; i = ENTRY(st, s, i)->lru_next)
        order[n++] = ((apr_uint64_t)ENTRY(st, s, i)->last_access << 32) | i;
    lru_relink(st, s, sp, order, n);
    free(order);
}

static apr_uint32_t find(sd_shm_t *st, apr_uint32_t s, const unsigned char *k,
                         apr_uint32_t **slot)
{
    apr_uint32_t *p = &BUCKETS(st, s)[bucket_of(st, k)];
    while (*p) {
        sd_entry_t *e = ENTRY(st, s, *p);
        if (memcmp(e->key, k, SD_ENTRY_KEY) == 0) {
            if (slot)
                *slot = p;
            return *p;
        }
        p = &e->hnext;
    }
    return 0;
}

/* The first entry of @a owner's run on its owner chain, or 0. */
static apr_uint32_t owner_first(sd_shm_t *st, apr_uint32_t s,
                                const unsigned char *owner)
{
    apr_uint32_t i = OBUCKETS(st, s)[obucket_of(st, owner)];
    while (i && memcmp(ENTRY(st, s, i)->owner, owner, SD_OWNER_LEN) != 0)
        i = ENTRY(st, s, i)->onext;
    return i;
}

/* The next entry of the same owner's run after @a i, or 0. */
static apr_uint32_t owner_next(sd_shm_t *st, apr_uint32_t s, apr_uint32_t i)
{
    apr_uint32_t n = ENTRY(st, s, i)->onext;
    if (n && memcmp(ENTRY(st, s, n)->owner, ENTRY(st, s, i)->owner,
                    SD_OWNER_LEN) == 0)
        return n;
    return 0;
}

/* Put owned entry @a i on its owner chain: first in its owner's run if
 * the owner has one, else first on the chain. */
static void owner_link(sd_shm_t *st, apr_uint32_t s, apr_uint32_t i)
{
    sd_entry_t *e = ENTRY(st, s, i);
    apr_uint32_t *head = &OBUCKETS(st, s)[obucket_of(st, e->owner)];
    apr_uint32_t at = owner_first(st, s, e->owner);

    if (!at)
        at = *head;
    e->onext = at;
    e->oprev = at ? ENTRY(st, s, at)->oprev : 0;
    FAULT(24);
    if (e->oprev)
        ENTRY(st, s, e->oprev)->onext = i;
    else
        *head = i;
    if (at)
        ENTRY(st, s, at)->oprev = i;
}

static void owner_unlink(sd_shm_t *st, apr_uint32_t s, apr_uint32_t i)
{
    sd_entry_t *e = ENTRY(st, s, i);
    if (e->oprev)
        ENTRY(st, s, e->oprev)->onext = e->onext;
    else
        OBUCKETS(st, s)[obucket_of(st, e->owner)] = e->onext;
    FAULT(25);
    if (e->onext)
        ENTRY(st, s, e->onext)->oprev = e->oprev;
    e->onext = e->oprev = 0;
}

static void chunks_free(sd_shm_t *st, apr_uint32_t s, sd_stripe_t *sp,
                        apr_uint64_t where)
{
    apr_uint32_t *link = LINKS(st, s);
    apr_uint32_t c = WHERE_CHUNK(where), n = NCHUNKS(WHERE_LEN(where));

    while (n--) {
        apr_uint32_t next = link[c];
        link[c] = sp->chunk_free;
        sp->chunk_free = c;
        sp->chunks_used--;
        c = next;
    }
}

/* Take @a n chunks (the caller made sure they exist) and fill them with
 * @a data; returns the first. The chain is complete before anyone can
 * see it. */
static apr_uint32_t chunks_write(sd_shm_t *st, apr_uint32_t s,
                                 sd_stripe_t *sp, const char *data,
                                 apr_size_t len)
{
    apr_uint32_t *link = LINKS(st, s);
    apr_uint32_t first = 0, prev = 0, n = NCHUNKS(len);

    while (n--) {
        apr_uint32_t c;
        apr_size_t part = len < SD_CHUNK ? len : SD_CHUNK;
        if (sp->chunk_free) {
            c = sp->chunk_free;
            sp->chunk_free = link[c];
        }
        else {
            c = ++sp->chunk_bump;
        }
        sp->chunks_used++;
        memcpy(CHUNK(st, s, c), data, part);
        data += part;
        len -= part;
        link[c] = 0;
        if (prev)
            link[prev] = c;
        else
            first = c;
        prev = c;
    }
    return first;
}

static void chunks_read(sd_shm_t *st, apr_uint32_t s, apr_uint64_t where,
                        char *buf, apr_size_t cap)
{
    apr_uint32_t *link = LINKS(st, s);
    apr_uint32_t c = WHERE_CHUNK(where);
    apr_size_t len = WHERE_LEN(where);

    if (len > cap)
        len = cap;
    while (len) {
        apr_size_t part = len < SD_CHUNK ? len : SD_CHUNK;
        memcpy(buf, CHUNK(st, s, c), part);
        buf += part;
        len -= part;
        c = link[c];
    }
}

/* Remove live entry @a i, found through bucket slot @a slot (or looked
 * up again when NULL). The LIVE flag goes first: from then on a repair
 * would treat the entry as free, whatever else is half done. */
static void entry_remove(sd_shm_t *st, apr_uint32_t s, sd_stripe_t *sp,
                         apr_uint32_t i, apr_uint32_t *slot)
{
    sd_entry_t *e = ENTRY(st, s, i);
    apr_uint64_t where = e->where;

    if (!slot)
        find(st, s, e->key, &slot);
    __atomic_store_n(&e->where, where & ~(apr_uint64_t)W_LIVE,
                     __ATOMIC_RELEASE);
    FAULT(20);
    *slot = e->hnext;
    lru_unlink(st, s, sp, i);
    FAULT(21);
    if (is_owned(e))
        owner_unlink(st, s, i);
    FAULT(23);
    chunks_free(st, s, sp, where);
    FAULT(22);
    e->where = 0;
    e->hnext = sp->entry_free;
    sp->entry_free = i;
    __atomic_fetch_sub(&sp->live, 1, __ATOMIC_RELAXED);
}

static int expired(const sd_entry_t *e, apr_int64_t now)
{
    return now - (apr_int64_t)e->last_access > (apr_int64_t)e->idle ||
           now - (apr_int64_t)e->created > (apr_int64_t)e->max_age;
}

static apr_int64_t expiry_of(const sd_entry_t *e)
{
    apr_int64_t idle_end = (apr_int64_t)e->last_access + e->idle;
    apr_int64_t age_end = (apr_int64_t)e->created + e->max_age;
    return idle_end < age_end ? idle_end : age_end;
}

/* Live sessions in the whole store. Read without the other stripes'
 * locks: at worst a few off while others change, which only moves the
 * moment "full" is noticed by as much. Only inserts ask. */
static apr_uint64_t live_total(sd_shm_t *st)
{
    apr_uint64_t n = 0;
    apr_uint32_t s;
    for (s = 0; s < st->hdr->nstripes; s++)
        n += __atomic_load_n(&STRIPE(st, s)->live, __ATOMIC_RELAXED);
    return n;
}

/* Bounded reclaim: the least recently used entries are the ones an idle
 * timeout ends first, so a look at the few at the tail finds expired
 * sessions without ever scanning the stripe. */
static int reclaim_expired(sd_shm_t *st, apr_uint32_t s, sd_stripe_t *sp,
                           apr_int64_t now, apr_uint32_t keep)
{
    apr_uint32_t i = sp->lru_tail;
    int n;

    for (n = 0; i && n < SD_RECLAIM_SCAN; n++) {
        apr_uint32_t prev = ENTRY(st, s, i)->lru_prev;
        if (i != keep && expired(ENTRY(st, s, i), now)) {
            entry_remove(st, s, sp, i, NULL);
            sp->expirations++;
            return 1;
        }
        i = prev;
    }
    /* Sessions that ended by their absolute timeout, or by a shorter idle
     * timeout of another virtual host, can sit anywhere in LRU order. A
     * clock hand over the entry table finds them too, a few entries per
     * call, so over time every entry is looked at and the work per call
     * stays bounded. */
    for (n = 0; sp->entry_bump && n < SD_SWEEP_SCAN; n++) {
        sd_entry_t *e;
        if (sp->sweep < 1 || sp->sweep > sp->entry_bump)
            sp->sweep = 1;
        i = sp->sweep++;
        e = ENTRY(st, s, i);
        if (i != keep && LIVE(e) && expired(e, now)) {
            entry_remove(st, s, sp, i, NULL);
            sp->expirations++;
            return 1;
        }
    }
    return 0;
}

/* Keep the start of a session about to be evicted, for the hook. */
static void note_eviction(sd_shm_t *st, apr_uint32_t s, const sd_entry_t *e,
                          sd_evictions_t *ev)
{
    if (ev->n < SD_EVICT_NOTE) {
        apr_uint32_t len = WHERE_LEN(e->where);
        memset(&ev->v[ev->n].key, 0, sizeof(ev->v[ev->n].key));
        memcpy(ev->v[ev->n].key.b, e->key, SD_ENTRY_KEY);
        ev->v[ev->n].len = len < SD_EVICT_HEAD ? len : SD_EVICT_HEAD;
        chunks_read(st, s, e->where, ev->v[ev->n].head, SD_EVICT_HEAD);
    }
    ev->n++;
}

/* ---------------------------------------------------------------------
 * Eviction across stripes
 *
 * When the store holds SessionDemoCapacity sessions, the session to drop
 * is the least recently used one of the whole store. Each stripe's LRU
 * tail is its oldest, so the oldest of the store is the oldest of the S
 * tails. They are read without locks (an index and a time, both checked
 * before use: a stale read costs a retry, never a wrong removal), and the
 * chosen stripe is then locked on its own and its tail removed if it is
 * still no newer than the next best candidate. The caller holds no lock
 * meanwhile, so a process never holds two stripe locks.
 * --------------------------------------------------------------------- */

typedef struct {
    apr_uint32_t stripe;          /* whose tail is the oldest */
    apr_uint32_t oldest;          /* its last access */
    apr_uint32_t next;            /* the oldest of the other tails */
    int unsorted;                 /* some stripe needs lru_sort() first */
} sd_oldest_t;

/* Find the stripe with the oldest LRU tail, without locks. 0 when every
 * stripe is empty. */
static int peek_oldest(sd_shm_t *st, sd_oldest_t *o)
{
    apr_uint32_t s, n = 0;

    o->oldest = o->next = 0xffffffffu;
    o->stripe = 0;
    o->unsorted = 0;
    for (s = 0; s < st->hdr->nstripes; s++) {
        sd_stripe_t *sp = STRIPE(st, s);
        apr_uint32_t i = __atomic_load_n(&sp->lru_tail, __ATOMIC_RELAXED), t;
        if (__atomic_load_n(&sp->lru_unsorted, __ATOMIC_RELAXED))
            o->unsorted = 1;
        if (i < 1 || i > st->hdr->entries)
            continue;
        t = __atomic_load_n(&ENTRY(st, s, i)->last_access, __ATOMIC_RELAXED);
        if (!n++ || t < o->oldest) {
            if (n > 1)
                o->next = o->oldest;
            o->oldest = t;
            o->stripe = s;
        }
        else if (t < o->next) {
            o->next = t;
        }
    }
    return n > 0;
}

/* Remove the least recently used session of the store (an ended one is
 * counted as such). Called with no lock held; returns 1 if a session
 * went. */
static int evict_oldest(sd_shm_t *st, apr_int64_t now, sd_evictions_t *ev)
{
    int round;

    for (round = 0; round < SD_OLDEST_TRIES; round++) {
        sd_oldest_t o;
        sd_stripe_t *sp;
        apr_uint32_t i;

        if (!peek_oldest(st, &o))
            return 0;
        if (o.unsorted) {
            apr_uint32_t s;
            for (s = 0; s < st->hdr->nstripes; s++) {
                sd_stripe_t *u = STRIPE(st, s);
                if (!__atomic_load_n(&u->lru_unsorted, __ATOMIC_RELAXED))
                    continue;
                stripe_lock(st, s);
                if (u->lru_unsorted)
                    lru_sort(st, s, u);
                stripe_unlock(u);
            }
            continue;
        }
        sp = stripe_lock(st, o.stripe);
        i = sp->lru_tail;
        /* Tails only get newer (sessions are used, evicted, or added at
         * the heads), so this tail, if still no newer than the next best
         * one we saw, is the oldest of the store now. If it is newer,
         * someone used or removed the one we saw: look again, and after
         * many tries (only under heavy contention) take it anyway. */
        if (i && (ENTRY(st, o.stripe, i)->last_access <= o.next ||
                  round == SD_OLDEST_TRIES - 1)) {
            sd_entry_t *e = ENTRY(st, o.stripe, i);
            FAULT(31);
            if (expired(e, now)) {
                entry_remove(st, o.stripe, sp, i, NULL);
                sp->expirations++;
            }
            else {
                note_eviction(st, o.stripe, e, ev);
                entry_remove(st, o.stripe, sp, i, NULL);
                sp->evictions++;
            }
            stripe_unlock(sp);
            return 1;
        }
        stripe_unlock(sp);
    }
    return 0;
}

enum { ROOM_OK, ROOM_REFUSED, ROOM_ELSEWHERE };

/* Make room in stripe @a s for one more entry (when @a need_entry) and
 * @a need_chunks chunks, never touching entry @a keep. Expired sessions
 * go first; then, if the policy allows, the least recently used: this
 * stripe's when the stripe itself is out of entries or memory, or when it
 * holds the oldest session of the store; else ROOM_ELSEWHERE says the
 * oldest is in another stripe, for the caller to evict after unlocking
 * (unless @a local_only, after several such tries). Sets *full when a
 * live session had to go or the store refused. */
static int make_room(sd_shm_t *st, apr_uint32_t s, sd_stripe_t *sp,
                     int need_entry, apr_uint32_t need_chunks,
                     apr_uint32_t release, apr_uint32_t keep, apr_int64_t now,
                     int local_only, int *full, sd_evictions_t *ev)
{
    /* Between operations the reserve is never in use: what a change holds
     * once it is done (@a need_chunks, less the @a release chunks it
     * frees) must fit without it. */
    apr_uint32_t budget = st->hdr->chunks - st->hdr->reserve;
    for (;;) {
        int stripe_ok = !need_entry || sp->entry_free ||
                        sp->entry_bump < st->hdr->entries;
        int store_ok = !need_entry || live_total(st) < st->hdr->capacity;
        int chunks_ok =
            (apr_uint64_t)sp->chunks_used + need_chunks <= budget + release;
        apr_uint32_t victim;

        if (stripe_ok && store_ok && chunks_ok)
            return ROOM_OK;
        if (reclaim_expired(st, s, sp, now, keep))
            continue;
        *full = 1;
        if (st->hdr->when_full == SD_SHM_FULL_REFUSE)
            return ROOM_REFUSED;
        if (stripe_ok && chunks_ok && !local_only) {
            /* Only the store as a whole is full: the oldest session may
             * be anywhere. This stripe evicts its own only when its tail
             * is as old as any (ties stay here: no lock to give up). */
            sd_oldest_t o;
            if (sp->lru_unsorted || !sp->lru_tail || !peek_oldest(st, &o) ||
                o.unsorted ||
                o.oldest < ENTRY(st, s, sp->lru_tail)->last_access)
                return ROOM_ELSEWHERE;
        }
        victim = sp->lru_tail;
        if (victim == keep)
            victim = ENTRY(st, s, victim)->lru_prev;
        if (!victim)
            return ROOM_REFUSED;
        FAULT(30);
        note_eviction(st, s, ENTRY(st, s, victim), ev);
        entry_remove(st, s, sp, victim, NULL);
        sp->evictions++;
    }
}

/* Log "store full" at most once a minute across all processes. */
static void warn_full(sd_shm_t *st, apr_int64_t now)
{
    apr_int64_t last = __atomic_load_n(&st->hdr->last_full_warn,
                                       __ATOMIC_RELAXED);
    if (now - last < 60 || !st->log)
        return;
    if (!__atomic_compare_exchange_n(&st->hdr->last_full_warn, &last, now, 0,
                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    st->log(st->log_baton, 0,
            st->hdr->when_full == SD_SHM_FULL_REFUSE
                ? "the session store is full and refuses new sessions "
                  "(SessionDemoWhenFull refuse); raise SessionDemoCapacity "
                  "or SessionDemoMemory"
                : "the session store is full and evicts the least recently "
                  "used sessions; raise SessionDemoCapacity or "
                  "SessionDemoMemory");
}

/* ---------------------------------------------------------------------
 * Owners (caller holds the owner's stripe lock)
 * --------------------------------------------------------------------- */

/* End @a owner's sessions until at most @a keep are left, least recently
 * used first (ties: the older creation); sessions that already ended go
 * too, as expirations. Returns how many live ones were ended. The work is
 * in the owner's own sessions only. */
static apr_uint32_t owner_cap(sd_shm_t *st, apr_uint32_t s, sd_stripe_t *sp,
                              const unsigned char *owner, apr_uint32_t keep,
                              apr_int64_t now)
{
    apr_uint32_t i, next, count = 0, ended = 0;

    for (i = owner_first(st, s, owner); i; i = next) {
        next = owner_next(st, s, i);
        if (expired(ENTRY(st, s, i), now)) {
            entry_remove(st, s, sp, i, NULL);
            sp->expirations++;
        }
        else {
            count++;
        }
    }
    while (count > keep) {
        apr_uint32_t victim = 0;
        for (i = owner_first(st, s, owner); i; i = owner_next(st, s, i)) {
            const sd_entry_t *e = ENTRY(st, s, i), *v;
            if (!victim) {
                victim = i;
                continue;
            }
            v = ENTRY(st, s, victim);
            if (e->last_access < v->last_access ||
                (e->last_access == v->last_access && e->created < v->created))
                victim = i;
        }
        FAULT(26);
        entry_remove(st, s, sp, victim, NULL);
        sp->capped++;
        count--;
        ended++;
    }
    return ended;
}

/* ---------------------------------------------------------------------
 * Operations
 * --------------------------------------------------------------------- */

static apr_status_t insert(sd_shm_t *st, const sd_key_t *key,
                           const unsigned char *owner, const void *data,
                           apr_size_t len, apr_int64_t created,
                           apr_int64_t last_access, apr_uint32_t idle,
                           apr_uint32_t max_age, apr_int64_t now,
                           apr_uint32_t per_user, apr_uint32_t *ended)
{
    apr_uint32_t s = stripe_of(st, key->b), i, first, capped = 0;
    apr_uint32_t *bucket;
    sd_stripe_t *sp;
    sd_entry_t *e;
    sd_evictions_t ev;
    int full = 0, round, room;

    if (ended)
        *ended = 0;
    if (len > st->hdr->max_data)
        return APR_EINVAL;
    ev.n = 0;
    for (round = 0;; round++) {
        sp = stripe_lock(st, s);
        if (find(st, s, key->b, NULL)) {
            stripe_unlock(sp);
            report_evictions(st, &ev);
            if (ended)
                *ended = capped;
            return APR_EEXIST;
        }
        /* The cap first, under the same lock as the insert: concurrent
         * logins of one user cannot all pass it, and the sessions it
         * ends make room for this one. */
        if (owner && per_user)
            capped += owner_cap(st, s, sp, owner, per_user - 1, now);
        room = make_room(st, s, sp, 1, NCHUNKS(len), 0, 0, now,
                         round >= SD_EVICT_ROUNDS, &full, &ev);
        if (room == ROOM_OK)
            break;
        if (room == ROOM_REFUSED) {
            sp->refusals++;
            stripe_unlock(sp);
            report_evictions(st, &ev);
            warn_full(st, now);
            if (ended)
                *ended = capped;
            return APR_ENOSPC;
        }
        stripe_unlock(sp);
        evict_oldest(st, now, &ev);
    }
    if (sp->entry_free) {
        i = sp->entry_free;
        sp->entry_free = ENTRY(st, s, i)->hnext;
    }
    else {
        i = ++sp->entry_bump;
    }
    FAULT(1);
    first = chunks_write(st, s, sp, data, len);
    FAULT(2);
    e = ENTRY(st, s, i);
    memcpy(e->key, key->b, SD_ENTRY_KEY);
    memcpy(e->owner, owner ? owner : no_owner, SD_OWNER_LEN);
    e->created = (apr_uint32_t)created;
    e->last_access = (apr_uint32_t)last_access;
    e->idle = idle;
    e->max_age = max_age;
    e->version = 1;
    e->onext = e->oprev = 0;
    bucket = &BUCKETS(st, s)[bucket_of(st, key->b)];
    e->hnext = *bucket;
    __atomic_store_n(&e->where, WHERE(first, len) | W_LIVE, __ATOMIC_RELEASE);
    FAULT(3);
    *bucket = i;
    lru_to_head(st, s, sp, i, now);
    FAULT(4);
    if (owner)
        owner_link(st, s, i);
    FAULT(27);
    __atomic_fetch_add(&sp->live, 1, __ATOMIC_RELAXED);
    stripe_unlock(sp);
    report_evictions(st, &ev);
    if (full)
        warn_full(st, now);
    if (ended)
        *ended = capped;
    return APR_SUCCESS;
}

apr_status_t sd_shm_create_owned(sd_shm_t *st, const sd_key_t *key,
                                   const sd_owner_t *owner, const void *data,
                                   apr_size_t len, apr_int64_t now,
                                   const sd_store_limits_t *lim,
                                   apr_uint32_t *ended)
{
    if (ended)
        *ended = 0;
    if (now < 0 || now > SD_TIME_MAX || lim->idle > SD_TIMEOUT_MAX ||
        lim->max_age > SD_TIMEOUT_MAX || !sd_shm_key_fits(st, key, owner))
        return APR_EINVAL;
    return insert(st, key, owner_bytes(owner), data, len, now, now,
                  lim->idle, lim->max_age, now, lim->per_user, ended);
}

apr_status_t sd_shm_create(sd_shm_t *st, const sd_key_t *key,
                             const void *data, apr_size_t len,
                             apr_int64_t now, apr_uint32_t idle,
                             apr_uint32_t max_age)
{
    sd_store_limits_t lim;
    lim.idle = idle;
    lim.max_age = max_age;
    lim.per_user = 0;
    return sd_shm_create_owned(st, key, NULL, data, len, now, &lim, NULL);
}

apr_status_t sd_shm_restore_owned(sd_shm_t *st, const sd_key_t *key,
                                    const sd_owner_t *owner,
                                    const void *data, apr_size_t len,
                                    apr_int64_t created,
                                    apr_int64_t last_access,
                                    apr_uint32_t idle, apr_uint32_t max_age,
                                    apr_int64_t now)
{
    sd_entry_t probe;
    /* Times come from a file or another store: only sane ones (not before
     * 1970, last access not before creation nor in the future) go in, so
     * no later expiry arithmetic can overflow. */
    if (created < 0 || last_access < created || last_access > now + 86400 ||
        created > SD_TIME_MAX || last_access > SD_TIME_MAX + SD_TIMEOUT_MAX ||
        idle > SD_TIMEOUT_MAX || max_age > SD_TIMEOUT_MAX ||
        !sd_shm_key_fits(st, key, owner))
        return APR_EINVAL;
    probe.created = (apr_uint32_t)created;
    probe.last_access = (apr_uint32_t)last_access;
    probe.idle = idle;
    probe.max_age = max_age;
    if (expired(&probe, now))
        return APR_NOTFOUND;
    return insert(st, key, owner_bytes(owner), data, len, created,
                  last_access, idle, max_age, now, 0, NULL);
}

apr_status_t sd_shm_restore(sd_shm_t *st, const sd_key_t *key,
                              const void *data, apr_size_t len,
                              apr_int64_t created, apr_int64_t last_access,
                              apr_uint32_t idle, apr_uint32_t max_age,
                              apr_int64_t now)
{
    return sd_shm_restore_owned(st, key, NULL, data, len, created,
                                last_access, idle, max_age, now);
}

apr_status_t sd_shm_get(sd_shm_t *st, const sd_key_t *key,
                          apr_int64_t now, void *buf, apr_size_t cap,
                          apr_size_t *len, sd_shm_meta_t *meta)
{
    apr_uint32_t s = stripe_of(st, key->b), i, *slot;
    sd_stripe_t *sp = stripe_lock(st, s);
    sd_entry_t *e;

    i = find(st, s, key->b, &slot);
    if (!i) {
        sp->misses++;
        stripe_unlock(sp);
        return APR_NOTFOUND;
    }
    e = ENTRY(st, s, i);
    if (expired(e, now)) {
        /* The caller may want to log whose session ended: hand it the
         * record one last time. */
        if (len)
            *len = WHERE_LEN(e->where);
        if (buf)
            chunks_read(st, s, e->where, buf, cap);
        entry_remove(st, s, sp, i, slot);
        sp->expirations++;
        sp->misses++;
        stripe_unlock(sp);
        return APR_TIMEUP;
    }
    if (meta) {
        meta->created = e->created;
        meta->last_access = e->last_access;
        meta->version = e->version;
        meta->idle = e->idle;
        meta->max_age = e->max_age;
    }
    /* Times are whole seconds, so the LRU order can only change once a
     * second per session: a session already touched this second stays
     * where it is, and a hot session read by many processes at once does
     * not bounce the list heads between their CPUs on every request. Not
     * expired, @a now is within a timeout of the creation: 32 bits. */
    if (now > (apr_int64_t)e->last_access) {
        __atomic_store_n(&e->last_access, (apr_uint32_t)now,
                         __ATOMIC_RELAXED);
        if (sp->lru_head != i) {
            lru_unlink(st, s, sp, i);
            FAULT(10);
            lru_to_head(st, s, sp, i, now);
        }
    }
    if (meta)
        meta->expires = expiry_of(e);
    if (len)
        *len = WHERE_LEN(e->where);
    if (buf)
        chunks_read(st, s, e->where, buf, cap);
    sp->hits++;
    stripe_unlock(sp);
    return APR_SUCCESS;
}

apr_status_t sd_shm_replace(sd_shm_t *st, const sd_key_t *key,
                              apr_uint32_t version, const void *data,
                              apr_size_t len, apr_int64_t now)
{
    apr_uint32_t s = stripe_of(st, key->b), i, first, *slot;
    apr_uint64_t old;
    sd_stripe_t *sp;
    sd_entry_t *e;
    sd_evictions_t ev;
    int full = 0;

    if (len > st->hdr->max_data)
        return APR_EINVAL;
    ev.n = 0;
    sp = stripe_lock(st, s);
    i = find(st, s, key->b, &slot);
    if (!i) {
        stripe_unlock(sp);
        return APR_NOTFOUND;
    }
    e = ENTRY(st, s, i);
    if (expired(e, now)) {
        entry_remove(st, s, sp, i, slot);
        sp->expirations++;
        stripe_unlock(sp);
        return APR_NOTFOUND;
    }
    if (e->version != version) {
        stripe_unlock(sp);
        return APR_EAGAIN;
    }
    /* Copy on write: the new chunks are filled while the old ones still
     * hold the record, so a crash at any point leaves one whole version.
     * A replace needs no new entry, so the room it lacks is always this
     * stripe's memory, made here. */
    if (make_room(st, s, sp, 0, NCHUNKS(len), NCHUNKS(WHERE_LEN(e->where)), i,
                  now, 1, &full, &ev) != ROOM_OK) {
        stripe_unlock(sp);
        report_evictions(st, &ev);
        warn_full(st, now);
        return APR_ENOSPC;
    }
    first = chunks_write(st, s, sp, data, len);
    FAULT(5);
    old = e->where;
    __atomic_store_n(&e->where, WHERE(first, len) | W_LIVE, __ATOMIC_RELEASE);
    FAULT(6);
    chunks_free(st, s, sp, old);
    FAULT(7);
    e->version++;
    if (now > (apr_int64_t)e->last_access) {
        __atomic_store_n(&e->last_access, (apr_uint32_t)now,
                         __ATOMIC_RELAXED);
        if (sp->lru_head != i) {
            lru_unlink(st, s, sp, i);
            lru_to_head(st, s, sp, i, now);
        }
    }
    stripe_unlock(sp);
    report_evictions(st, &ev);
    if (full)
        warn_full(st, now);
    return APR_SUCCESS;
}

apr_status_t sd_shm_remove_owned(sd_shm_t *st, const sd_key_t *key,
                                   const sd_owner_t *owner)
{
    const unsigned char *o = owner_bytes(owner);
    apr_uint32_t s = stripe_of(st, key->b), i, *slot;
    sd_stripe_t *sp = stripe_lock(st, s);

    i = find(st, s, key->b, &slot);
    if (i && owner &&
        memcmp(ENTRY(st, s, i)->owner, o ? o : no_owner, SD_OWNER_LEN) != 0)
        i = 0;
    if (i)
        entry_remove(st, s, sp, i, slot);
    stripe_unlock(sp);
    return i ? APR_SUCCESS : APR_NOTFOUND;
}

apr_status_t sd_shm_delete(sd_shm_t *st, const sd_key_t *key)
{
    return sd_shm_remove_owned(st, key, NULL);
}

apr_status_t sd_shm_end_owner(sd_shm_t *st, const sd_owner_t *owner,
                                apr_uint64_t *ended)
{
    const unsigned char *o = owner_bytes(owner);
    apr_uint32_t s, i, next;
    apr_uint64_t n = 0;
    sd_stripe_t *sp;

    if (ended)
        *ended = 0;
    if (!o)
        return APR_EINVAL;
    s = stripe_of(st, o);
    sp = stripe_lock(st, s);
    for (i = owner_first(st, s, o); i; i = next) {
        next = owner_next(st, s, i);
        entry_remove(st, s, sp, i, NULL);
        n++;
    }
    stripe_unlock(sp);
    if (ended)
        *ended = n;
    return APR_SUCCESS;
}

static int by_recent_use(const void *a, const void *b)
{
    const sd_store_entry_t *x = a, *y = b;
    if (x->last_access != y->last_access)
        return x->last_access > y->last_access ? -1 : 1;
    if (x->created != y->created)
        return x->created > y->created ? -1 : 1;
    return memcmp(x->key.b, y->key.b, SD_ENTRY_KEY);
}

apr_status_t sd_shm_list_owner(sd_shm_t *st, const sd_owner_t *owner,
                                 apr_int64_t now, apr_pool_t *pool,
                                 apr_array_header_t **entries)
{
    const unsigned char *o = owner_bytes(owner);
    apr_array_header_t *a = apr_array_make(pool, 4, sizeof(sd_store_entry_t));
    apr_uint32_t s, i, next;
    sd_stripe_t *sp;

    *entries = a;
    if (!o)
        return APR_EINVAL;
    s = stripe_of(st, o);
    sp = stripe_lock(st, s);
    for (i = owner_first(st, s, o); i; i = next) {
        sd_entry_t *e = ENTRY(st, s, i);
        sd_store_entry_t *out;
        char *rec;
        next = owner_next(st, s, i);
        if (expired(e, now)) {
            entry_remove(st, s, sp, i, NULL);
            sp->expirations++;
            continue;
        }
        out = apr_array_push(a);
        memset(&out->key, 0, sizeof(out->key));
        memcpy(out->key.b, e->key, SD_ENTRY_KEY);
        out->created = e->created;
        out->last_access = e->last_access;
        out->expires = expiry_of(e);
        out->len = WHERE_LEN(e->where);
        rec = apr_palloc(pool, out->len + 1);
        chunks_read(st, s, e->where, rec, out->len);
        rec[out->len] = '\0';
        out->record = rec;
    }
    stripe_unlock(sp);
    qsort(a->elts, (apr_size_t)a->nelts, sizeof(sd_store_entry_t),
          by_recent_use);
    return APR_SUCCESS;
}

void sd_shm_count(sd_shm_t *st, sd_shm_counter_t c)
{
    __atomic_fetch_add(&st->hdr->logins[c], 1, __ATOMIC_RELAXED);
}

void sd_shm_stats(sd_shm_t *st, sd_shm_stats_t *o)
{
    sd_header_t *h = st->hdr;
    apr_uint32_t s;

    memset(o, 0, sizeof(*o));
    o->capacity = h->capacity;
    o->memory_total =
        (apr_uint64_t)(h->chunks - h->reserve) * h->nstripes * SD_CHUNK;
    o->segment_size = h->size;
    for (s = 0; s < h->nstripes; s++) {
        const sd_stripe_t *sp = STRIPE(st, s);
        o->sessions += __atomic_load_n(&sp->live, __ATOMIC_RELAXED);
        o->memory_used += (apr_uint64_t)__atomic_load_n(&sp->chunks_used,
                                                        __ATOMIC_RELAXED) *
                          SD_CHUNK;
        o->hits += sp->hits;
        o->misses += sp->misses;
        o->expirations += sp->expirations;
        o->evictions += sp->evictions;
        o->refusals += sp->refusals;
        o->repairs += sp->repairs;
        o->capped += sp->capped;
    }
    o->logins_ok = __atomic_load_n(&h->logins[SD_SHM_COUNT_LOGIN_OK],
                                   __ATOMIC_RELAXED);
    o->logins_failed = __atomic_load_n(&h->logins[SD_SHM_COUNT_LOGIN_FAILED],
                                       __ATOMIC_RELAXED);
    o->logins_throttled = __atomic_load_n(
        &h->logins[SD_SHM_COUNT_LOGIN_THROTTLED], __ATOMIC_RELAXED);
}

void sd_shm_foreach_owned(sd_shm_t *st, sd_shm_visit_owned_fn fn,
                            void *baton)
{
    apr_uint32_t s, i;
    char *buf = malloc(st->hdr->max_data ? st->hdr->max_data : 1);
    sd_key_t k;
    sd_owner_t o;

    if (!buf)
        return;
    memset(&k, 0, sizeof(k));
    for (s = 0; s < st->hdr->nstripes; s++) {
        sd_stripe_t *sp = stripe_lock(st, s);
        int stop = 0;
        for (i = sp->lru_tail; i && !stop; i = ENTRY(st, s, i)->lru_prev) {
            sd_entry_t *e = ENTRY(st, s, i);
            memcpy(k.b, e->key, SD_ENTRY_KEY);
            memcpy(o.b, e->owner, SD_OWNER_LEN);
            chunks_read(st, s, e->where, buf, st->hdr->max_data);
            stop = fn(baton, &k, is_owned(e) ? &o : NULL, buf,
                      WHERE_LEN(e->where), e->created, e->last_access,
                      e->idle, e->max_age);
        }
        stripe_unlock(sp);
        if (stop)
            break;
    }
    free(buf);
}

typedef struct {
    sd_shm_visit_fn fn;
    void *baton;
} sd_unowned_visit_t;

static int visit_unowned(void *baton, const sd_key_t *key,
                         const sd_owner_t *owner, const void *data,
                         apr_size_t len, apr_int64_t created,
                         apr_int64_t last_access, apr_uint32_t idle,
                         apr_uint32_t max_age)
{
    sd_unowned_visit_t *v = baton;
    (void)owner;
    return v->fn(v->baton, key, data, len, created, last_access, idle,
                 max_age);
}

void sd_shm_foreach(sd_shm_t *st, sd_shm_visit_fn fn, void *baton)
{
    sd_unowned_visit_t v;
    v.fn = fn;
    v.baton = baton;
    sd_shm_foreach_owned(st, visit_unowned, &v);
}

typedef struct {
    apr_uint64_t order;           /* last_access << 32 | position seen */
    apr_uint32_t stripe, entry;   /* where it was seen */
} sd_mig_t;

static int by_order(const void *a, const void *b)
{
    const sd_mig_t *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

apr_uint64_t sd_shm_migrate(sd_shm_t *from, sd_shm_t *to,
                              apr_int64_t now)
{
    sd_header_t *h = from->hdr;
    apr_uint64_t n = 0, cap = 0, k;
    sd_shm_stats_t st;
    sd_mig_t *m;
    char *buf;
    apr_uint32_t s, i;

    for (s = 0; s < h->nstripes; s++)
        cap += STRIPE(from, s)->live;
    cap += 16; /* sessions may be added while we look */
    m = malloc(cap * sizeof(*m));
    buf = malloc(h->max_data ? h->max_data : 1);
    if (!m || !buf) {
        free(m);
        free(buf);
        return 0;
    }
    for (s = 0; s < h->nstripes; s++) {
        sd_stripe_t *sp = stripe_lock(from, s);
        for (i = sp->lru_tail; i && n < cap; i = ENTRY(from, s, i)->lru_prev) {
            /* Ties keep each stripe's own LRU order (collected tail
             * first): the position breaks them. */
            m[n].order = ((apr_uint64_t)ENTRY(from, s, i)->last_access << 32) |
                         (apr_uint32_t)n;
            m[n].stripe = s;
            m[n].entry = i;
            n++;
        }
        stripe_unlock(sp);
    }
    qsort(m, n, sizeof(*m), by_order);
    for (k = 0; k < n; k++) {
        sd_stripe_t *sp = stripe_lock(from, m[k].stripe);
        sd_entry_t *e = ENTRY(from, m[k].stripe, m[k].entry);
        if (LIVE(e)) {
            sd_key_t key;
            sd_owner_t owner;
            apr_uint32_t len = WHERE_LEN(e->where);
            apr_int64_t created = e->created, last = e->last_access;
            apr_uint32_t idle = e->idle, max_age = e->max_age;
            int owned = is_owned(e);
            memset(&key, 0, sizeof(key));
            memcpy(key.b, e->key, SD_ENTRY_KEY);
            memcpy(owner.b, e->owner, SD_OWNER_LEN);
            chunks_read(from, m[k].stripe, e->where, buf, h->max_data);
            stripe_unlock(sp);
            sd_shm_restore_owned(to, &key, owned ? &owner : NULL, buf, len,
                                 created, last, idle, max_age, now);
        }
        else {
            stripe_unlock(sp);
        }
    }
    free(m);
    free(buf);
    sd_shm_stats(to, &st);
    return st.sessions;
}

/* ---------------------------------------------------------------------
 * Repair and validation
 * --------------------------------------------------------------------- */

/* Does the chain of a live entry stay inside the stripe, have the right
 * length, and use no chunk that another record already claimed? */
static int chain_ok(sd_shm_t *st, apr_uint32_t s, const sd_entry_t *e,
                    unsigned char *claimed, int claim)
{
    apr_uint32_t *link = LINKS(st, s);
    apr_uint32_t c = WHERE_CHUNK(e->where), len = WHERE_LEN(e->where);
    apr_uint32_t n = NCHUNKS(len), k;
    sd_stripe_t *sp = STRIPE(st, s);

    if (len > st->hdr->max_data || (n && !c) || (!n && c))
        return 0;
    for (k = 0; k < n; k++) {
        if (c < 1 || c > sp->chunk_bump || claimed[c])
            return 0;
        if (claim)
            claimed[c] = 1;
        c = link[c];
    }
    return 1;
}

/* Rebuild everything in stripe @a s that can be derived from the entry
 * table: key buckets, owner chains, LRU order, free lists and counts. A
 * live entry whose chain is damaged (the dead process was rewriting it) is
 * dropped; every other session comes through untouched. */
static void stripe_repair(sd_shm_t *st, apr_uint32_t s)
{
    sd_stripe_t *sp = STRIPE(st, s);
    apr_uint32_t *buckets = BUCKETS(st, s), *link = LINKS(st, s);
    apr_uint32_t i, c, nlive = 0;
    unsigned char *claimed;
    apr_uint64_t *order;

    if (sp->entry_bump > st->hdr->entries)
        sp->entry_bump = st->hdr->entries;
    if (sp->chunk_bump > st->hdr->chunks)
        sp->chunk_bump = st->hdr->chunks;
    memset(buckets, 0, (apr_size_t)st->hdr->buckets * sizeof(*buckets));
    memset(OBUCKETS(st, s), 0,
           (apr_size_t)st->hdr->obuckets * sizeof(apr_uint32_t));
    claimed = calloc((apr_size_t)sp->chunk_bump + 1, 1);
    order = malloc(((apr_size_t)sp->entry_bump + 1) * sizeof(*order));
    if (!claimed || !order) {
        /* No memory to repair with: empty the stripe rather than trust
         * it. Its sessions are lost; no other stripe is touched. */
        free(claimed);
        free(order);
        memset(ENTRY(st, s, 1), 0,
               (apr_size_t)st->hdr->entries * sizeof(sd_entry_t));
        sp->live = sp->entry_free = sp->entry_bump = 0;
        sp->chunk_free = sp->chunk_bump = sp->chunks_used = 0;
        sp->lru_head = sp->lru_tail = sp->lru_unsorted = 0;
        return;
    }

    sp->entry_free = 0;
    sp->chunks_used = 0;
    for (i = sp->entry_bump; i >= 1; i--) {
        sd_entry_t *e = ENTRY(st, s, i);
        /* An owned entry outside its owner's stripe could only be
         * damage: drop it rather than chain it where no one looks. */
        if (LIVE(e) && (!chain_ok(st, s, e, claimed, 0) ||
                        (is_owned(e) && stripe_of(st, e->owner) != s)))
            e->where &= ~(apr_uint64_t)W_LIVE;
        if (LIVE(e)) {
            apr_uint32_t *b = &buckets[bucket_of(st, e->key)];
            chain_ok(st, s, e, claimed, 1);
            sp->chunks_used += NCHUNKS(WHERE_LEN(e->where));
            e->hnext = *b;
            *b = i;
            e->onext = e->oprev = 0;
            if (is_owned(e))
                owner_link(st, s, i);
            order[nlive++] = ((apr_uint64_t)e->last_access << 32) | i;
        }
        else {
            e->where = 0;
            e->onext = e->oprev = 0;
            e->hnext = sp->entry_free;
            sp->entry_free = i;
        }
    }
    sp->live = nlive;

    /* LRU: oldest access at the tail, as it was before the crash. */
    lru_relink(st, s, sp, order, nlive);

    sp->chunk_free = 0;
    for (c = sp->chunk_bump; c >= 1; c--) {
        if (!claimed[c]) {
            link[c] = sp->chunk_free;
            sp->chunk_free = c;
        }
    }
    free(claimed);
    free(order);
}

#define BROKEN(...)                                                          \
    do {                                                                     \
        apr_snprintf(why, whylen, __VA_ARGS__);                              \
        rv = APR_EGENERAL;                                                   \
        goto done;                                                           \
    } while (0)

static apr_status_t stripe_validate(sd_shm_t *st, apr_uint32_t s,
                                    char *why, apr_size_t whylen)
{
    sd_stripe_t *sp = STRIPE(st, s);
    apr_uint32_t *buckets = BUCKETS(st, s), *link = LINKS(st, s);
    apr_uint32_t i, c, b, n, used = 0, nfree = 0, prev, owned = 0;
    unsigned char *claimed = calloc((apr_size_t)sp->chunk_bump + 1, 1);
    unsigned char *seen = calloc((apr_size_t)sp->entry_bump + 1, 1);
    apr_status_t rv = APR_SUCCESS;

    if (!claimed || !seen)
        BROKEN("out of memory while validating");
    if (sp->entry_bump > st->hdr->entries || sp->chunk_bump > st->hdr->chunks)
        BROKEN("stripe %u: bump marks beyond the tables", s);

    /* Every bucket chain holds live entries of this bucket, once each. */
    n = 0;
    for (b = 0; b < st->hdr->buckets; b++) {
        for (i = buckets[b]; i; i = ENTRY(st, s, i)->hnext) {
            sd_entry_t *e = ENTRY(st, s, i);
            if (i > sp->entry_bump)
                BROKEN("stripe %u bucket %u: entry %u out of range", s, b, i);
            if (seen[i])
                BROKEN("stripe %u: entry %u chained twice", s, i);
            seen[i] = 1;
            if (!LIVE(e))
                BROKEN("stripe %u: free entry %u in a bucket", s, i);
            if (bucket_of(st, e->key) != b)
                BROKEN("stripe %u: entry %u in the wrong bucket", s, i);
            if (stripe_of(st, e->key) != s)
                BROKEN("stripe %u: entry %u in the wrong stripe", s, i);
            if (!chain_ok(st, s, e, claimed, 1))
                BROKEN("stripe %u: entry %u has a broken chunk chain", s, i);
            if (is_owned(e)) {
                if (stripe_of(st, e->owner) != s)
                    BROKEN("stripe %u: entry %u is not in its owner's stripe",
                           s, i);
                owned++;
            }
            else if (e->onext || e->oprev) {
                BROKEN("stripe %u: entry %u has no owner but owner links", s,
                       i);
            }
            used += NCHUNKS(WHERE_LEN(e->where));
            n++;
        }
    }
    if (n != sp->live)
        BROKEN("stripe %u: %u chained entries, %u counted live", s, n,
               sp->live);
    if (used != sp->chunks_used)
        BROKEN("stripe %u: %u chunks in records, %u counted", s, used,
               sp->chunks_used);

    /* The LRU list is a consistent doubly linked list of the live set. */
    n = 0;
    prev = 0;
    for (i = sp->lru_head; i; i = ENTRY(st, s, i)->lru_next) {
        if (i > sp->entry_bump || seen[i] != 1)
            BROKEN("stripe %u: LRU holds entry %u that is not live", s, i);
        if (ENTRY(st, s, i)->lru_prev != prev)
            BROKEN("stripe %u: LRU back link of %u is wrong", s, i);
        seen[i] = 2;
        prev = i;
        if (++n > sp->live)
            break;
    }
    if (n != sp->live || prev != sp->lru_tail)
        BROKEN("stripe %u: LRU has %u entries for %u live", s, n, sp->live);

    /* Each owner chain holds owned live entries of its bucket, once each,
     * every owner's entries in one run. */
    n = 0;
    for (b = 0; b < st->hdr->obuckets; b++) {
        prev = 0;
        for (i = OBUCKETS(st, s)[b]; i; i = ENTRY(st, s, i)->onext) {
            sd_entry_t *e = ENTRY(st, s, i);
            if (i > sp->entry_bump || seen[i] != 2)
                BROKEN("stripe %u owner bucket %u: entry %u is not live or "
                       "chained twice",
                       s, b, i);
            seen[i] = 4;
            if (!is_owned(e) || obucket_of(st, e->owner) != b)
                BROKEN("stripe %u: entry %u in the wrong owner bucket", s, i);
            if (e->oprev != prev)
                BROKEN("stripe %u: owner back link of %u is wrong", s, i);
            if (prev &&
                memcmp(ENTRY(st, s, prev)->owner, e->owner, SD_OWNER_LEN)) {
                /* A new run: its owner must not have had one before. */
                apr_uint32_t j;
                for (j = OBUCKETS(st, s)[b]; j != i;
                     j = ENTRY(st, s, j)->onext) {
                    if (memcmp(ENTRY(st, s, j)->owner, e->owner,
                               SD_OWNER_LEN) == 0)
                        BROKEN("stripe %u: the sessions of one owner are "
                               "split on owner chain %u",
                               s, b);
                }
            }
            prev = i;
            n++;
        }
    }
    if (n != owned)
        BROKEN("stripe %u: %u entries on owner chains, %u owned", s, n, owned);

    /* Free entries are exactly the non-live ones. */
    for (i = sp->entry_free; i; i = ENTRY(st, s, i)->hnext) {
        if (i > sp->entry_bump || seen[i])
            BROKEN("stripe %u: free list holds entry %u twice or live", s, i);
        if (LIVE(ENTRY(st, s, i)))
            BROKEN("stripe %u: entry %u on the free list is live", s, i);
        seen[i] = 3;
        nfree++;
    }
    if (nfree + sp->live != sp->entry_bump)
        BROKEN("stripe %u: %u free + %u live entries, %u used", s, nfree,
               sp->live, sp->entry_bump);

    /* Free chunks and record chunks partition 1..chunk_bump. */
    n = 0;
    for (c = sp->chunk_free; c; c = link[c]) {
        if (c > sp->chunk_bump || claimed[c])
            BROKEN("stripe %u: free chunk %u is out of range or in use", s,
                   c);
        claimed[c] = 2;
        if (++n > sp->chunk_bump)
            break;
    }
    if (n + used != sp->chunk_bump)
        BROKEN("stripe %u: %u free + %u used chunks, %u ever used", s, n, used,
               sp->chunk_bump);
done:
    free(claimed);
    free(seen);
    return rv;
}

apr_status_t sd_shm_validate(sd_shm_t *st, char *why, apr_size_t whylen)
{
    apr_uint32_t s;
    apr_status_t rv = APR_SUCCESS;

    if (st->hdr->magic != SD_SHM_MAGIC || st->hdr->layout != SD_SHM_LAYOUT) {
        apr_snprintf(why, whylen, "bad magic or layout");
        return APR_EGENERAL;
    }
    for (s = 0; s < st->hdr->nstripes && rv == APR_SUCCESS; s++) {
        sd_stripe_t *sp = stripe_lock(st, s);
        rv = stripe_validate(st, s, why, whylen);
        stripe_unlock(sp);
    }
    return rv;
}
