/*
 * Login throttling table: open addressing over a fixed array of slots in
 * shared memory, one robust lock for the whole table.
 *
 * One lock is enough: the table is touched once or twice per login
 * attempt, and each login already spends tens of milliseconds in bcrypt.
 * sd_throttle_hit() decides and counts under that lock, so N processes
 * racing on one key let exactly `limit` attempts through.
 *
 * A key ("u:NAME" or "a:ADDRESS") is stored as its 64-bit SipHash-2-4
 * under a 16-byte secret drawn when the table is formatted and kept in the
 * header, so the table never holds a name or an address in clear, and
 * nobody who lacks the secret can compute where a key lives. (Before, the
 * position was a plain SHA-256 of the key: anyone could compute eight
 * names that landed on a victim's slots and push the victim's counter
 * out.) A key probes SD_PROBE consecutive slots from its hash. It takes
 * its own slot if it has one, else a free one, else one whose counter has
 * ended (window over, or every attempt taken back). A slot whose window is
 * still running is never taken from its key: a key that finds none of the
 * above is throttled (as if over its limit) until a slot of its sequence
 * frees up, at most one window later. So flooding the table can refuse new
 * keys, but never wipes the count of a key that is being guessed at.
 *
 * Sizing. The module uses SD_THROTTLE_SLOTS_DEFAULT = 65536 slots of 24
 * bytes (1.5 MB). A counter only runs for one window (900 s by default)
 * after its key's first attempt, so honest traffic keeps few running: even
 * 10,000 distinct names and addresses attempted every 15 minutes fill 15%
 * of the table, where about 1 in 100,000 new keys finds its 8 slots
 * all taken. To refuse new keys an attacker must keep most of the table
 * running. Positions are random to anyone without the secret, so all the
 * attacker controls is how full the table is; test_fill in
 * t/unit/test_throttle.c measures the share of new keys refused: about 3%
 * at half full, 25% at three quarters, 59% at nine tenths (consecutive
 * probing clusters, so this is worse than the 0.4%, 10% and 43% of eight
 * independent slots, but keeps a key's slots in three cache lines). That
 * takes 33,000, 49,000 or 59,000 distinct names or addresses, each
 * attempted within the last window: 36 to 66 login attempts a second for
 * as long as the effect is wanted. Each address is itself a key with its
 * own limit (50 a window in the glue), so one address can only create
 * that many name counters per window: filling the table takes over a
 * thousand addresses (or one IPv6 prefix, if the glue keys on whole IPv6
 * addresses). Even then the flood
 * only throttles keys that have no counter yet and whose whole probe
 * sequence is full; keys that have one keep counting exactly; memory
 * never grows; and one window after the flood stops every slot is usable
 * again.
 *
 * Layout: a header (magic, slot count, the lock, the secret) followed by
 * the slots. A process killed while holding the lock leaves at most one
 * slot half written, which only makes one counter wrong for one window;
 * the next locker just marks the mutex consistent.
 */

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <apr_general.h>
#include <apr_siphash.h>

#include "sd_throttle.h"

#define SD_THROTTLE_MAGIC 0x5344544852543032ULL /* "SDTHRT02" */
#define SD_PROBE 8

typedef struct {
    apr_uint64_t key;      /* keyed hash of the name or address, 0 = free */
    apr_int64_t start;     /* first attempt of the current window */
    apr_uint32_t attempts; /* attempts counted since start */
    apr_uint32_t window;   /* longest window counted in, seconds */
} sd_tslot_t;

typedef struct {
    apr_uint64_t magic; /* SD_THROTTLE_MAGIC */
    apr_uint32_t slots; /* number of sd_tslot_t that follow */
    apr_uint32_t pad;
    pthread_mutex_t lock;                    /* robust, process-shared */
    unsigned char secret[APR_SIPHASH_KSIZE]; /* SipHash key of positions */
} sd_thdr_t;

struct sd_throttle_t {
    sd_thdr_t *hdr;
    sd_tslot_t *slot;
};

#define SLOTS_OFF ((sizeof(sd_thdr_t) + 63) & ~(apr_size_t)63)

apr_size_t sd_throttle_size(apr_uint32_t slots)
{
    return SLOTS_OFF + (apr_size_t)slots * sizeof(sd_tslot_t);
}

apr_status_t sd_throttle_format(apr_pool_t *pool, void *base, apr_size_t size,
                                apr_uint32_t slots, sd_throttle_t **out)
{
    sd_throttle_t *t;
    pthread_mutexattr_t a;
    apr_status_t rv;

    if (slots < SD_PROBE || size < sd_throttle_size(slots))
        return APR_EINVAL;
    t = apr_pcalloc(pool, sizeof(*t));
    t->hdr = base;
    t->slot = (sd_tslot_t *)((char *)base + SLOTS_OFF);
    memset(base, 0, sd_throttle_size(slots));
    t->hdr->slots = slots;
    rv = apr_generate_random_bytes(t->hdr->secret, sizeof(t->hdr->secret));
    if (rv != APR_SUCCESS)
        return rv;
    if ((rv = pthread_mutexattr_init(&a)) != 0)
        return rv;
    if ((rv = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) == 0 &&
        (rv = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) == 0)
        rv = pthread_mutex_init(&t->hdr->lock, &a);
    pthread_mutexattr_destroy(&a);
    if (rv != 0)
        return rv;
    t->hdr->magic = SD_THROTTLE_MAGIC;
    *out = t;
    return APR_SUCCESS;
}

apr_status_t sd_throttle_attach(apr_pool_t *pool, void *base, apr_size_t size,
                                sd_throttle_t **out)
{
    sd_thdr_t *h = base;
    sd_throttle_t *t;

    /* The magic names the layout ("SDTHRT02"): a table of another build
     * is never read, only replaced. */
    if (size < sizeof(*h) || h->magic != SD_THROTTLE_MAGIC ||
        h->slots < SD_PROBE || size < sd_throttle_size(h->slots))
        return APR_EINVAL;
    t = apr_pcalloc(pool, sizeof(*t));
    t->hdr = h;
    t->slot = (sd_tslot_t *)((char *)base + SLOTS_OFF);
    *out = t;
    return APR_SUCCESS;
}

static apr_uint64_t key_of(sd_throttle_t *t, const char *key, apr_size_t len)
{
    apr_uint64_t k = apr_siphash24(key, len, t->hdr->secret);
    return k ? k : 1;
}

static apr_status_t lock(sd_throttle_t *t)
{
    int rv = pthread_mutex_lock(&t->hdr->lock);
    if (rv == EOWNERDEAD)
        rv = pthread_mutex_consistent(&t->hdr->lock);
    return rv;
}

static void unlock(sd_throttle_t *t)
{
    pthread_mutex_unlock(&t->hdr->lock);
}

/* ------------------------------------------------------------------ */
/* Window arithmetic                                                   */
/* ------------------------------------------------------------------ */

/*
 * Seconds left at @a now in a window of @a window seconds that began at
 * @a start: 0 when it is over. Computed unsigned, so no start or now can
 * overflow it. A start in the future (the clock was set back) leaves the
 * whole window, never more; one more than a window ahead cannot be a
 * recent attempt and counts as over, so a clock step cannot pin slots.
 */
static apr_int64_t left(apr_int64_t start, apr_uint32_t window, apr_int64_t now)
{
    apr_uint64_t elapsed;

    if (now < start) {
        elapsed = (apr_uint64_t)start - (apr_uint64_t)now;
        return elapsed > window ? 0 : (apr_int64_t)window;
    }
    elapsed = (apr_uint64_t)now - (apr_uint64_t)start;
    return elapsed >= window ? 0 : (apr_int64_t)(window - elapsed);
}

/* A counter another key must not take: attempts in a running window. */
static int running(const sd_tslot_t *s, apr_int64_t now)
{
    return s->key != 0 && s->attempts > 0 && left(s->start, s->window, now);
}

/* The slot of @a k, or NULL; *room gets the first slot of its probe
 * sequence that another key could take (free first, else ended), or NULL
 * when every one holds a running counter. */
static sd_tslot_t *find(sd_throttle_t *t, apr_uint64_t k, apr_int64_t now,
                        sd_tslot_t **room)
{
    apr_uint32_t n = t->hdr->slots, i, h = (apr_uint32_t)(k % n);
    sd_tslot_t *ended = NULL, *free_slot = NULL;

    for (i = 0; i < SD_PROBE; i++) {
        sd_tslot_t *s = &t->slot[(h + i) % n];
        if (s->key == k)
            return s;
        if (s->key == 0) {
            if (!free_slot)
                free_slot = s;
        }
        else if (!ended && !running(s, now)) {
            ended = s;
        }
    }
    if (room)
        *room = free_slot ? free_slot : ended;
    return NULL;
}

/* sd_throttle_hit() under the lock (and sd_throttle_fail(), with no
 * limit). */
static void hit_locked(sd_throttle_t *t, apr_uint64_t k, apr_uint32_t limit,
                       apr_uint32_t window, apr_int64_t now, apr_int64_t *wait)
{
    apr_int64_t full = window ? (apr_int64_t)window : 1;
    sd_tslot_t *room = NULL, *s = find(t, k, now, &room);

    if (s) {
        if (s->attempts == 0 || !left(s->start, window, now)) {
            /* Its window is over: the next attempt opens a new one. */
            s->start = now;
            s->attempts = 0;
            s->window = window;
        }
        if (s->attempts >= limit) {
            apr_int64_t l = left(s->start, window, now);
            *wait = l > 0 ? l : 1;
            return;
        }
        s->attempts++;
        /* Other keys judge this slot by its longest window, so a counter
         * kept by a long-window location is not reused early. */
        if (window > s->window)
            s->window = window;
        *wait = 0;
        return;
    }
    if (limit == 0 || room == NULL) {
        /* Nothing may be counted, or no slot can take the count without
         * forgetting another key's running counter: refuse. */
        *wait = full;
        return;
    }
    room->key = k;
    room->start = now;
    room->attempts = 1;
    room->window = window;
    *wait = 0;
}

/* ------------------------------------------------------------------ */
/* Interface                                                           */
/* ------------------------------------------------------------------ */

apr_status_t sd_throttle_hit(sd_throttle_t *t, const char *key, apr_size_t len,
                             apr_uint32_t limit, apr_uint32_t window,
                             apr_int64_t now, apr_int64_t *wait)
{
    apr_uint64_t k = key_of(t, key, len);
    apr_status_t rv;

    if ((rv = lock(t)) != APR_SUCCESS) {
        *wait = window ? (apr_int64_t)window : 1;
        return rv;
    }
    hit_locked(t, k, limit, window, now, wait);
    unlock(t);
    return APR_SUCCESS;
}

void sd_throttle_undo(sd_throttle_t *t, const char *key, apr_size_t len,
                      int forget)
{
    apr_uint64_t k = key_of(t, key, len);
    sd_tslot_t *s;

    if (lock(t) != APR_SUCCESS)
        return;
    /* The time only matters for choosing room, which undo never does. */
    s = find(t, k, 0, NULL);
    if (s) {
        if (forget)
            memset(s, 0, sizeof(*s));
        else if (s->attempts > 0)
            s->attempts--;
    }
    unlock(t);
}

apr_int64_t sd_throttle_check(sd_throttle_t *t, const char *key,
                              apr_size_t len, apr_uint32_t limit,
                              apr_uint32_t window, apr_int64_t now)
{
    apr_uint64_t k = key_of(t, key, len);
    apr_int64_t wait = 0;
    sd_tslot_t *room = NULL, *s;

    if (lock(t) != APR_SUCCESS)
        return window ? (apr_int64_t)window : 1;
    s = find(t, k, now, &room);
    if (s) {
        if (s->attempts >= limit && s->attempts > 0)
            wait = left(s->start, window, now);
    }
    else if (room == NULL) {
        wait = window ? (apr_int64_t)window : 1;
    }
    unlock(t);
    return wait;
}

void sd_throttle_fail(sd_throttle_t *t, const char *key, apr_size_t len,
                      apr_uint32_t window, apr_int64_t now)
{
    apr_int64_t wait;

    sd_throttle_hit(t, key, len, 0xFFFFFFFFu, window, now, &wait);
}

