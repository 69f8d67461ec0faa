/*
 * sd_snapshot_parse (and sd_snapshot_save / sd_snapshot_load for the round
 * trip), against a small store in a static buffer: capacity 8, 1K of data,
 * records of at most 256 bytes, one stripe. The store is re-formatted for
 * every input so that inputs are independent.
 *
 * Input, by its first byte:
 *   'S'    the whole input is the snapshot file, as is (reaches the magic,
 *          version, length and tag checks; a random input never has a
 *          valid HMAC under the harness's key);
 *   other  the rest is the snapshot's body: a u64 count, then records. The
 *          harness moves the count behind the records where format 2 keeps
 *          it (so the seeds read like the format's old header), adds the
 *          magic in front and the correct HMAC-SHA-256 tag under FUZZ_KEY
 *          behind, so that the fuzzer reaches the record parser. Bit 0 of
 *          the first byte picks the full-store policy (1: refuse, 0: evict).
 *
 * Properties:
 *  - the result is the one an independent reference parser of the format
 *    gives (valid exactly when the records tile the body);
 *  - a refused file loads nothing (no session in the store) and says why;
 *  - after a load the store passes sd_shm_validate; loaded sessions are
 *    never more than the records that are in size, have times that
 *    sd_shm_restore accepts (created >= 0, created <= last_access <=
 *    now + 1 day, timeouts of at most a year) and have not expired at now;
 * *loaded is the sessions in the store afterwards; under "refuse", when all
 * such records have distinct keys and fit, every one of them is loaded;
 *  - every live session is byte for byte one of the file's records (key,
 *    times, timeouts, data);
 *  - sd_snapshot_save of the loaded store, then sd_snapshot_load into a
 *    fresh store, gives the same sessions in the same LRU order;
 *  - sd_shm_get of every live session at now finds it, with its data,
 *    its times, and expires = min(max(now, last_access) + idle,
 *    created + max_age).
 *
 * fuzz/crashes/snapshot-*.snap are past findings (signed overflow of the
 * store's time arithmetic on extreme times), rewritten as format 2 files
 * tagged under FUZZ_KEY; they must now run clean.
 */
#include <unistd.h>

#include <apr_strings.h>

#include "fuzz_common.h"
#include "sd_sha256.h"
#include "sd_snapshot.h"
#include "sd_shm.h"

#define NOW ((apr_int64_t)1700000000)
#define KEY16 16
#define HDR (KEY16 + 8 + 8 + 4 + 4 + 4)
#define MAXREC 64 /* records the oracle remembers in detail */
#define MAXLIVE 16

/* The snapshot key of every input (the seeds and crashes/ are tagged
 * under it). */
static const unsigned char FUZZ_KEY[SD_SNAPSHOT_KEY_LEN] =
    "fuzz-snapshot-key-0123456789abc";

static unsigned char *seg1, *seg2;
static apr_size_t seg_size;
static char snap_path[256];

typedef struct {
    unsigned char key[KEY16];
    apr_int64_t created, last_access;
    apr_uint32_t idle, max_age, len;
    const unsigned char *data;
} rec_t;

typedef struct {
    int n;
    rec_t r[MAXLIVE];
    unsigned char data[MAXLIVE][256];
    int overflow;
} live_t;

static apr_uint64_t be64(const unsigned char *p)
{
    apr_uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static apr_uint32_t be32(const unsigned char *p)
{
    return ((apr_uint32_t)p[0] << 24) | ((apr_uint32_t)p[1] << 16) |
           ((apr_uint32_t)p[2] << 8) | p[3];
}

static sd_shm_params_t params(int refuse)
{
    sd_shm_params_t p;
    p.capacity = 8;
    p.memory = 1024;
    p.max_data = 256;
    p.when_full = refuse ? SD_SHM_FULL_REFUSE : SD_SHM_FULL_EVICT;
    return p;
}

static sd_shm_t *fresh(apr_pool_t *pool, unsigned char *seg, int refuse)
{
    sd_shm_params_t p = params(refuse);
    sd_shm_t *st = NULL;

    memset(seg, 0, seg_size);
    FUZZ_CHECK(sd_shm_format(pool, seg, seg_size, &p, &st) ==
                   APR_SUCCESS,
               "sd_shm_format failed");
    return st;
}

static int collect(void *baton, const sd_key_t *key, const void *data,
                   apr_size_t len, apr_int64_t created,
                   apr_int64_t last_access, apr_uint32_t idle,
                   apr_uint32_t max_age)
{
    live_t *l = baton;
    rec_t *r;
    int i;

    for (i = KEY16; i < SD_KEY_LEN; i++) {
        FUZZ_CHECK(key->b[i] == 0, "foreach key byte %d is not zero", i);
    }
    if (l->n == MAXLIVE) {
        l->overflow = 1;
        return 1;
    }
    FUZZ_CHECK(len <= 256, "a live record of %zu bytes", (size_t)len);
    r = &l->r[l->n];
    memcpy(r->key, key->b, KEY16);
    r->created = created;
    r->last_access = last_access;
    r->idle = idle;
    r->max_age = max_age;
    r->len = (apr_uint32_t)len;
    memcpy(l->data[l->n], data, len);
    r->data = l->data[l->n];
    l->n++;
    return 0;
}

/* Expired at now, computed without overflow. */
static int ref_expired(const rec_t *r)
{
    __int128 n = NOW;
    return n - r->last_access > (__int128)r->idle ||
           n - r->created > (__int128)r->max_age;
}

/* Times sd_shm_restore accepts (sd_shm.h): not before 1970, last
 * access not before creation nor more than a day past now, timeouts of at
 * most a year. */
static int ref_sane(const rec_t *r)
{
    return r->created >= 0 && r->last_access >= r->created &&
           r->last_access <= NOW + 86400 && r->idle <= 31536000 &&
           r->max_age <= 31536000;
}

static int same_rec(const rec_t *a, const rec_t *b)
{
    return memcmp(a->key, b->key, KEY16) == 0 && a->created == b->created &&
           a->last_access == b->last_access && a->idle == b->idle &&
           a->max_age == b->max_age && a->len == b->len &&
           memcmp(a->data, b->data, a->len) == 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    sd_shm_params_t p = params(0);
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

    fuzz_apr_init();
    seg_size = sd_shm_size(&p);
    FUZZ_CHECK(seg_size > 0 && seg_size < (1 << 20), "store of %zu bytes",
               (size_t)seg_size);
    seg1 = aligned_alloc(64, (seg_size + 63) & ~(apr_size_t)63);
    seg2 = aligned_alloc(64, (seg_size + 63) & ~(apr_size_t)63);
    FUZZ_CHECK(seg1 && seg2, "out of memory");
    snprintf(snap_path, sizeof(snap_path), "%s/sd-fuzz-snapshot.%ld", dir,
             (long)getpid());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *pool;
    unsigned char *file;
    size_t flen;
    int raw, refuse, ref_valid = 0, i, j;
    apr_uint64_t count = 0, loaded = 12345, k;
    rec_t recs[MAXREC];
    int nrec = 0, eligible = 0, distinct = 1, chunks = 0;
    const char *why = NULL;
    apr_status_t rv;
    sd_shm_t *st;
    sd_shm_stats_t ss;
    char whybuf[256];
    live_t live;

    if (size == 0) {
        return 0;
    }
    pool = fuzz_pool();
    raw = data[0] == 'S';
    refuse = raw ? 0 : (data[0] & 1);
    if (raw) {
        flen = size;
        file = (unsigned char *)fuzz_dup(data, size, 0);
    }
    else {
        size_t body = size - 1;

        flen = 8 + body + SD_SHA256_LEN;
        file = malloc(flen);
        memcpy(file, "SDSNAP02", 8);
        if (body >= 8) {
            memcpy(file + 8, data + 1 + 8, body - 8);
            memcpy(file + 8 + body - 8, data + 1, 8);
        }
        else {
            memcpy(file + 8, data + 1, body);
        }
        sd_hmac_sha256(FUZZ_KEY, sizeof(FUZZ_KEY), file, flen - SD_SHA256_LEN,
                       file + flen - SD_SHA256_LEN);
    }

    /* Reference parse: magic, records, count, then the tag of all that. */
    if (flen >= 48 && memcmp(file, "SDSNAP02", 8) == 0) {
        unsigned char d[SD_SHA256_LEN];
        const unsigned char *p = file + 8, *end = file + flen - 32 - 8;

        sd_hmac_sha256(FUZZ_KEY, sizeof(FUZZ_KEY), file, flen - 32, d);
        if (memcmp(d, file + flen - 32, SD_SHA256_LEN) == 0) {
            count = be64(end);
            ref_valid = 1;
            for (k = 0; k < count; k++) {
                apr_uint32_t len;
                if ((size_t)(end - p) < HDR) {
                    ref_valid = 0;
                    break;
                }
                len = be32(p + 40);
                if ((size_t)(end - p) - HDR < len) {
                    ref_valid = 0;
                    break;
                }
                if (nrec < MAXREC) {
                    rec_t *r = &recs[nrec++];
                    memcpy(r->key, p, KEY16);
                    r->created = (apr_int64_t)be64(p + 16);
                    r->last_access = (apr_int64_t)be64(p + 24);
                    r->idle = be32(p + 32);
                    r->max_age = be32(p + 36);
                    r->len = len;
                    r->data = p + HDR;
                    if (len <= 256 && ref_sane(r) && !ref_expired(r)) {
                        eligible++;
                        chunks += (len + 63) / 64;
                        for (j = 0; j < nrec - 1; j++) {
                            if (memcmp(recs[j].key, r->key, KEY16) == 0) {
                                distinct = 0;
                            }
                        }
                    }
                }
                else {
                    distinct = 0; /* the oracle lost track */
                    eligible = 1 << 30;
                }
                p += HDR + len;
            }
            if (p != end) {
                ref_valid = 0;
            }
        }
    }

    st = fresh(pool, seg1, refuse);
    rv = sd_snapshot_parse(st, FUZZ_KEY, file, flen, NOW, &loaded, &why);
    sd_shm_stats(st, &ss);
    FUZZ_CHECK((rv == APR_SUCCESS) == ref_valid,
               "sd_snapshot_parse %s (%s), the reference says %s",
               rv == APR_SUCCESS ? "accepted" : "refused", why ? why : "-",
               ref_valid ? "valid" : "invalid");
    if (rv != APR_SUCCESS) {
        FUZZ_CHECK(rv == APR_EINVAL, "status %d", (int)rv);
        FUZZ_CHECK(why != NULL && *why, "refused without a reason");
        FUZZ_CHECK(loaded == 0 && ss.sessions == 0,
                   "a refused snapshot loaded %llu sessions",
                   (unsigned long long)ss.sessions);
        goto done;
    }
    FUZZ_CHECK(sd_shm_validate(st, whybuf, sizeof(whybuf)) == APR_SUCCESS,
               "store invalid after a load: %s", whybuf);
    FUZZ_CHECK(loaded <= count && loaded <= (apr_uint64_t)eligible,
               "loaded %llu of %llu records, %d eligible",
               (unsigned long long)loaded, (unsigned long long)count,
               eligible);
    /* *loaded is what the load added to the store (sd_snapshot.c): the
     * store was empty, so it is all of it. */
    FUZZ_CHECK(ss.sessions == loaded, "loaded %llu, %llu in the store",
               (unsigned long long)loaded, (unsigned long long)ss.sessions);
    FUZZ_CHECK(ss.expirations == 0,
               "%llu expirations while loading unexpired records",
               (unsigned long long)ss.expirations);
    FUZZ_CHECK(ss.sessions <= 8, "%llu sessions in a store of 8",
               (unsigned long long)ss.sessions);
    if (refuse) {
        FUZZ_CHECK(ss.evictions == 0, "evictions under refuse");
        if (distinct && eligible <= 8 && chunks <= 16) {
            FUZZ_CHECK(loaded == (apr_uint64_t)eligible,
                       "loaded %llu, but all %d eligible records fit",
                       (unsigned long long)loaded, eligible);
        }
    }

    live.n = 0;
    live.overflow = 0;
    sd_shm_foreach(st, collect, &live);
    FUZZ_CHECK(!live.overflow && (apr_uint64_t)live.n == ss.sessions,
               "foreach saw %d sessions, stats say %llu", live.n,
               (unsigned long long)ss.sessions);
    for (i = 0; i < live.n && nrec < MAXREC; i++) {
        int match = 0;
        for (j = 0; j < nrec && !match; j++) {
            match = same_rec(&live.r[i], &recs[j]);
        }
        FUZZ_CHECK(match, "live session %d is none of the file's records",
                   i);
        FUZZ_CHECK(ref_sane(&live.r[i]) && !ref_expired(&live.r[i]),
                   "live session %d has impossible times or expired", i);
    }

    /* Save, load into a fresh store, compare. */
    if (live.n > 0) {
        apr_uint64_t saved = 0, loaded2 = 0;
        const char *why2 = NULL;
        sd_shm_t *st2;
        live_t live2;

        rv = sd_snapshot_save(st, snap_path, FUZZ_KEY, pool, &saved);
        FUZZ_CHECK(rv == APR_SUCCESS && saved == (apr_uint64_t)live.n,
                   "sd_snapshot_save: %d, %llu saved of %d", (int)rv,
                   (unsigned long long)saved, live.n);
        st2 = fresh(pool, seg2, refuse);
        rv = sd_snapshot_load(st2, snap_path, FUZZ_KEY, getuid(), pool, NOW,
                              &loaded2, &why2);
        FUZZ_CHECK(rv == APR_SUCCESS && loaded2 == saved,
                   "reload of a saved snapshot: %d (%s), %llu of %llu",
                   (int)rv, why2 ? why2 : "-", (unsigned long long)loaded2,
                   (unsigned long long)saved);
        live2.n = 0;
        live2.overflow = 0;
        sd_shm_foreach(st2, collect, &live2);
        FUZZ_CHECK(live2.n == live.n, "%d sessions after reload, %d before",
                   live2.n, live.n);
        for (i = 0; i < live.n; i++) {
            FUZZ_CHECK(same_rec(&live.r[i], &live2.r[i]),
                       "session %d (LRU order) differs after save and load",
                       i);
        }
        unlink(snap_path);
    }

    /* Every live session can be read back at now. */
    for (i = 0; i < live.n; i++) {
        const rec_t *r = &live.r[i];
        unsigned char got[256];
        apr_size_t glen = 0;
        sd_shm_meta_t meta;
        sd_key_t key;
        __int128 ie, ae;

        memset(&key, 0, sizeof(key));
        memcpy(key.b, r->key, KEY16);
        memset(&meta, 0, sizeof(meta));
        rv = sd_shm_get(st, &key, NOW, got, sizeof(got), &glen, &meta);
        FUZZ_CHECK(rv == APR_SUCCESS, "live session %d: sd_shm_get %d", i,
                   (int)rv);
        FUZZ_CHECK(glen == r->len && memcmp(got, r->data, glen) == 0,
                   "live session %d: data differs", i);
        FUZZ_CHECK(meta.created == r->created &&
                       meta.last_access == r->last_access,
                   "live session %d: times differ", i);
        ie = (__int128)(r->last_access > NOW ? r->last_access : NOW) +
             r->idle;
        ae = (__int128)r->created + r->max_age;
        FUZZ_CHECK(meta.expires == (apr_int64_t)(ie < ae ? ie : ae),
                   "live session %d: expires %lld", i,
                   (long long)meta.expires);
    }

done:
    free(file);
    apr_pool_destroy(pool);
    return 0;
}
