/*
 * Login throttling table: open addressing over a fixed array of slots in
 * shared memory, one robust lock for the whole table.
 *
 * One lock is enough: the table is touched once or twice per login
 * attempt, and each login already spends tens of milliseconds in bcrypt.
 * A key is the first 8 bytes of SHA-256 of "u:NAME" or "a:ADDRESS", so the
 * table never holds a username or an address in clear. A key probes
 * SD_PROBE consecutive slots; when none is free or its own, the slot whose
 * window started longest ago is reused, which bounds memory whatever an
 * attacker sends.
 *
 * Layout: a header (magic, slot count, the lock) followed by the slots.
 * A process killed while holding the lock leaves at most one slot half
 * written, which only makes one counter wrong for one window; the next
 * locker just marks the mutex consistent.
 */

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "sd_sha256.h"
#include "sd_throttle.h"

#define SD_THROTTLE_MAGIC 0x5344544852543031ULL /* "SDTHRT01" */
#define SD_PROBE 8

typedef struct {
    apr_uint64_t key;             /* hash of the name or address, 0 = free */
    apr_int64_t start;            /* first failure of the current window */
    apr_uint32_t failures;        /* failures since start */
    apr_uint32_t window;          /* window length, seconds */
} sd_tslot_t;

typedef struct {
    apr_uint64_t magic;           /* SD_THROTTLE_MAGIC */
    apr_uint32_t slots;           /* number of sd_tslot_t that follow */
    apr_uint32_t pad;
    pthread_mutex_t lock;         /* robust, process-shared */
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
    int rv;

    if (slots < SD_PROBE || size < sd_throttle_size(slots))
        return APR_EINVAL;
    t = apr_pcalloc(pool, sizeof(*t));
    t->hdr = base;
    t->slot = (sd_tslot_t *)((char *)base + SLOTS_OFF);
    memset(t->hdr, 0, sizeof(*t->hdr));
    t->hdr->slots = slots;
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

static apr_uint64_t key_of(const char *key, apr_size_t len)
{
    unsigned char d[SD_SHA256_LEN];
    apr_uint64_t k = 0;
    int i;
    sd_sha256(key, len, d);
    for (i = 0; i < 8; i++)
        k = (k << 8) | d[i];
    return k ? k : 1;
}

static void lock(sd_throttle_t *t)
{
    if (pthread_mutex_lock(&t->hdr->lock) == EOWNERDEAD)
        pthread_mutex_consistent(&t->hdr->lock);
}

static void unlock(sd_throttle_t *t)
{
    pthread_mutex_unlock(&t->hdr->lock);
}

/* The slot of @a k, or NULL; with @a claim, a slot is taken for it: a
 * free one first, else one whose window has ended, else the one whose
 * window started longest ago. */
static sd_tslot_t *slot_for(sd_throttle_t *t, apr_uint64_t k, int claim,
                            apr_int64_t now)
{
    apr_uint32_t n = t->hdr->slots, i, h = (apr_uint32_t)(k % n);
    sd_tslot_t *victim = NULL;
    int victim_rank = 3;

    for (i = 0; i < SD_PROBE; i++) {
        sd_tslot_t *s = &t->slot[(h + i) % n];
        int rank;
        if (s->key == k)
            return s;
        if (!claim)
            continue;
        rank = s->key == 0 ? 0
               : now - s->start >= (apr_int64_t)s->window ? 1
                                                          : 2;
        if (rank < victim_rank ||
            (rank == 2 && victim_rank == 2 && s->start < victim->start)) {
            victim = s;
            victim_rank = rank;
        }
    }
    if (victim) {
        victim->key = k;
        victim->start = now;
        victim->failures = 0;
        victim->window = 0;
    }
    return victim;
}

apr_int64_t sd_throttle_check(sd_throttle_t *t, const char *key,
                              apr_size_t len, apr_uint32_t limit,
                              apr_uint32_t window, apr_int64_t now)
{
    apr_uint64_t k = key_of(key, len);
    apr_int64_t wait = 0;
    sd_tslot_t *s;

    lock(t);
    s = slot_for(t, k, 0, now);
    if (s && s->failures >= limit) {
        apr_int64_t end = s->start + (apr_int64_t)window;
        if (end > now)
            wait = end - now;
    }
    unlock(t);
    return wait;
}

void sd_throttle_fail(sd_throttle_t *t, const char *key, apr_size_t len,
                      apr_uint32_t window, apr_int64_t now)
{
    apr_uint64_t k = key_of(key, len);
    sd_tslot_t *s;

    lock(t);
    s = slot_for(t, k, 1, now);
    if (s) {
        if (now - s->start >= (apr_int64_t)window || s->failures == 0) {
            s->start = now;
            s->failures = 0;
        }
        s->window = window;
        s->failures++;
    }
    unlock(t);
}

void sd_throttle_reset(sd_throttle_t *t, const char *key, apr_size_t len)
{
    apr_uint64_t k = key_of(key, len);
    sd_tslot_t *s;

    lock(t);
    s = slot_for(t, k, 0, 0);
    if (s)
        memset(s, 0, sizeof(*s));
    unlock(t);
}
