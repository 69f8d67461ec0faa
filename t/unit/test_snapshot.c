/*
 * Snapshots of the session store: a round trip keeps every session with
 * its data, times and timeouts; sessions that ended by the load are
 * dropped; a smaller store takes what fits; a save leaves no temporary
 * file and never damages the previous snapshot, even when it fails half
 * way; and every kind of bad file (empty, foreign, another version, a
 * valid version 1 file, truncated at every length, any byte flipped,
 * records that lie about their length, trailing bytes, a huge count, a
 * huge file, a directory) is refused with APR_EINVAL and a reason, loading
 * nothing. The files themselves: a save writes through no symbolic link
 * (at the target or at the old predictable temporary name) and makes a
 * 0600 file; a load refuses a link, a FIFO, another owner, group or other
 * permission bits, another key, and a file altered or forged without the
 * key; sd_snapshot_key() makes a 0600 key once, reads it back, and refuses
 * a key file that is a link, not ours, not 0600 or not 32 bytes. Last,
 * parsing thousands of random buffers never crashes (run it under
 * SANITIZE=1).
 *
 * Files go to a directory of their own under /tmp, removed at the end.
 */
#include <errno.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "tap.h"
#include "sd_sha256.h"
#include "sd_snapshot.h"
#include "sd_shm.h"

#define T0 1700000000 /* "now" at the start of every scenario */

static apr_pool_t *pool;

/* The key every test saves and loads under, and another one. */
static const unsigned char KEY[SD_SNAPSHOT_KEY_LEN] = {
    0x6b, 0x65, 0x79, 0x2d, 0x6f, 0x66, 0x2d, 0x74, 0x68, 0x65, 0x2d,
    0x74, 0x65, 0x73, 0x74, 0x73, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
    0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
static unsigned char OTHER_KEY[SD_SNAPSHOT_KEY_LEN];

#include "store_util.h"
static const char *dir; /* this run's directory under /tmp */

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* A fresh store on calloc'd memory, freed at the end. */
static sd_shm_t *heap_store(apr_uint64_t cap, apr_uint64_t mem,
                              apr_uint32_t maxd, sd_shm_when_full_t w)
{
    return heap_store_at(cap, mem, maxd, w, NULL, NULL);
}

/* Record data: 4 bytes of salt, then bytes derived from the key and the
 * salt, so a record can be told whole and this key's. */
static void fill(unsigned char *buf, apr_size_t len, const sd_key_t *k,
                 apr_uint32_t salt)
{
    apr_size_t i;
    for (i = 0; i < len; i++) {
        buf[i] = i < 4 ? (unsigned char)(salt >> (8 * i))
                       : (unsigned char)(k->b[i % 16] ^ (salt * 131 + i * 7));
    }
}

static apr_status_t put(sd_shm_t *st, const sd_key_t *k, apr_size_t len,
                        apr_uint32_t salt, apr_int64_t now, apr_uint32_t idle,
                        apr_uint32_t max_age)
{
    unsigned char buf[8192];
    fill(buf, len, k, salt);
    return sd_shm_create(st, k, buf, len, now, idle, max_age);
}

static apr_uint64_t nsessions(sd_shm_t *st)
{
    sd_shm_stats_t s;
    sd_shm_stats(st, &s);
    return s.sessions;
}

static int validate_ok(sd_shm_t *st, const char *what)
{
    char why[256] = "";
    apr_status_t rv = sd_shm_validate(st, why, sizeof why);
    if (!ok(rv == APR_SUCCESS, "validate after %s", what)) {
        diag("validate: %s", why);
        return 0;
    }
    return 1;
}

/* One session as sd_shm_foreach() shows it. */
typedef struct {
    unsigned char key[SD_SHM_KEY_BYTES];
    unsigned char *data;
    apr_size_t len;
    apr_int64_t created, last_access;
    apr_uint32_t idle, max_age;
} rec_t;

typedef struct {
    rec_t *r;
    int n, cap;
} recs_t;

static int collect_one(void *baton, const sd_key_t *key, const void *data,
                       apr_size_t len, apr_int64_t created,
                       apr_int64_t last_access, apr_uint32_t idle,
                       apr_uint32_t max_age)
{
    recs_t *rs = baton;
    rec_t *r;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 64;
        rs->r = realloc(rs->r, (size_t)rs->cap * sizeof *rs->r);
    }
    r = &rs->r[rs->n++];
    memcpy(r->key, key->b, SD_SHM_KEY_BYTES);
    r->data = malloc(len ? len : 1);
    memcpy(r->data, data, len);
    r->len = len;
    r->created = created;
    r->last_access = last_access;
    r->idle = idle;
    r->max_age = max_age;
    return 0;
}

static recs_t collect(sd_shm_t *st)
{
    recs_t rs = {NULL, 0, 0};
    sd_shm_foreach(st, collect_one, &rs);
    return rs;
}

static void recs_free(recs_t *rs)
{
    int i;
    for (i = 0; i < rs->n; i++) {
        free(rs->r[i].data);
    }
    free(rs->r);
    rs->r = NULL;
    rs->n = rs->cap = 0;
}

static const rec_t *find_rec(const recs_t *rs, const unsigned char *key)
{
    int i;
    for (i = 0; i < rs->n; i++) {
        if (memcmp(rs->r[i].key, key, SD_SHM_KEY_BYTES) == 0) {
            return &rs->r[i];
        }
    }
    return NULL;
}

static int same_rec(const rec_t *a, const rec_t *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0 &&
           a->created == b->created && a->last_access == b->last_access &&
           a->idle == b->idle && a->max_age == b->max_age;
}

/* How many of @a got are in @a want, identical; *extra counts those of
 * @a got that are not in @a want, or differ. */
static int matching(const recs_t *got, const recs_t *want, int *extra)
{
    int i, same = 0;
    *extra = 0;
    for (i = 0; i < got->n; i++) {
        const rec_t *w = find_rec(want, got->r[i].key);
        if (w && same_rec(&got->r[i], w)) {
            same++;
        }
        else {
            ++*extra;
        }
    }
    return same;
}

static const char *path_of(const char *name)
{
    return apr_pstrcat(pool, dir, "/", name, NULL);
}

/* Write @a buf to @a path as a file of mode 0600 (what sd_snapshot_save
 * makes, so that only what a test changes is wrong with it). */
static int write_bytes(const char *path, const void *buf, apr_size_t len)
{
    FILE *f;
    int good;
    unlink(path);
    f = fopen(path, "wb");
    if (!f) {
        return 0;
    }
    good = fwrite(buf, 1, len, f) == len && fchmod(fileno(f), 0600) == 0;
    return fclose(f) == 0 && good;
}

/* The whole file in malloc'd memory, or NULL. */
static unsigned char *read_bytes(const char *path, apr_size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (!f) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (apr_size_t)n;
    }
    fclose(f);
    return buf;
}

/* Names in this run's directory that look like a save's temporary file. */
static int tmp_files(const char *in)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    int n = 0;
    if (apr_dir_open(&d, in, pool) != APR_SUCCESS) {
        return -1;
    }
    while (apr_dir_read(&fi, APR_FINFO_NAME, d) == APR_SUCCESS) {
        if (strstr(fi.name, ".tmp.")) {
            n++;
        }
    }
    apr_dir_close(d);
    return n;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Remove this run's directory and everything in it (one level of
 * subdirectories, which is all the tests make). */
static void remove_tree(const char *path, int depth)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    if (apr_dir_open(&d, path, pool) == APR_SUCCESS) {
        while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d) ==
               APR_SUCCESS) {
            const char *p;
            if (!strcmp(fi.name, ".") || !strcmp(fi.name, "..")) {
                continue;
            }
            p = apr_pstrcat(pool, path, "/", fi.name, NULL);
            if (fi.filetype == APR_DIR && depth < 3) {
                remove_tree(p, depth + 1);
            }
            else {
                apr_file_remove(p, pool);
            }
        }
        apr_dir_close(d);
    }
    apr_dir_remove(path, pool);
}

static void put32(unsigned char *p, apr_uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put64(unsigned char *p, apr_uint64_t v)
{
    put32(p, (apr_uint32_t)(v >> 32));
    put32(p + 4, (apr_uint32_t)v);
}

/* ------------------------------------------------------------------ */
/* Snapshots made by hand                                              */
/* ------------------------------------------------------------------ */

/*
 * The format, as the comment at the top of sd_snapshot.c draws it for
 * format 2 (still loaded; format 3, which save writes, adds a 16-byte
 * owner after each key): "SDSNAP02", then per record a 16-byte key, created and last_access
 * (i64), idle, max_age and len (u32), len bytes of data; then a u64
 * count; all big-endian; then a 32-byte HMAC-SHA-256 of every byte before
 * it under the snapshot key. test_documented_tag checks that a file built
 * from this description alone loads.
 */
#define HDR 16 /* magic and count */
#define REC0 8 /* where the first record starts */
#define REC_HDR 44
#define SAVED_REC_HDR 60 /* what save writes: format 3, with the owner */
#define DIGEST 32

typedef struct {
    unsigned char *b;
    apr_size_t len, cap;
    apr_uint64_t count; /* what snap_end() writes */
} buf_t;

static void buf_add(buf_t *b, const void *p, apr_size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->b = realloc(b->b, b->cap);
    }
    memcpy(b->b + b->len, p, n);
    b->len += n;
}

/* Start a snapshot: the magic; the count goes at the end. */
static void snap_begin(buf_t *b, const char *magic, apr_uint64_t count)
{
    b->len = 0;
    b->count = count;
    buf_add(b, magic, 8);
}

/* One record; @a len is what the record says, @a have the data bytes
 * actually written (fill()ed for @a k). */
static void snap_record(buf_t *b, const sd_key_t *k, apr_int64_t created,
                        apr_int64_t last_access, apr_uint32_t idle,
                        apr_uint32_t max_age, apr_uint32_t len, apr_size_t have)
{
    unsigned char h[REC_HDR];
    unsigned char *data = malloc(have ? have : 1);
    memcpy(h, k->b, 16);
    put64(h + 16, (apr_uint64_t)created);
    put64(h + 24, (apr_uint64_t)last_access);
    put32(h + 32, idle);
    put32(h + 36, max_age);
    put32(h + 40, len);
    buf_add(b, h, REC_HDR);
    fill(data, have, k, 77);
    buf_add(b, data, have);
    free(data);
}

/* Append the count and the tag under @a key. */
static void snap_end_key(buf_t *b, const unsigned char *key)
{
    unsigned char c[8], tag[DIGEST];
    put64(c, b->count);
    buf_add(b, c, 8);
    sd_hmac_sha256(key, SD_SNAPSHOT_KEY_LEN, b->b, b->len, tag);
    buf_add(b, tag, DIGEST);
}

static void snap_end(buf_t *b)
{
    snap_end_key(b, KEY);
}

/* ------------------------------------------------------------------ */
/* Round trip                                                          */
/* ------------------------------------------------------------------ */

#define NSESS 100
#define MAXD 4096

/* The store every test saves: 100 sessions of 0 to 4096 bytes, created
 * over 1000 s before T0, a third of them used since, each with its own
 * idle and absolute timeouts, none ended at T0. */
static sd_shm_t *full_store(apr_uint64_t *bytes)
{
    sd_shm_t *st = heap_store(200, 1 << 20, MAXD, SD_SHM_FULL_REFUSE);
    sd_key_t k;
    int i;

    *bytes = 0;
    if (!st) {
        return NULL;
    }
    for (i = 0; i < NSESS; i++) {
        apr_size_t len = i == 0   ? 0
                         : i == 1 ? MAXD
                                  : (apr_size_t)(i * 397) % 3000 + 1;
        apr_int64_t created = T0 - 1000 + i;
        key_n(&k, "snap", i);
        if (put(st, &k, len, (apr_uint32_t)i, created, 2000 + 10 * i,
                5000 + 7 * i) != APR_SUCCESS) {
            diag("full_store: session %d not created", i);
        }
        if (i % 3 == 0) {
            sd_shm_get(st, &k, created + 5 + i, NULL, 0, NULL, NULL);
        }
        *bytes += len;
    }
    return st;
}

static void test_round_trip(void)
{
    apr_uint64_t bytes = 0, count = 0, loaded = 0;
    sd_shm_t *st = full_store(&bytes);
    sd_shm_t *st2 = heap_store(200, 1 << 20, MAXD, SD_SHM_FULL_REFUSE);
    const char *path = path_of("round.snap");
    const char *why = "unset";
    recs_t want, got;
    int extra = 0, i, times = 0;
    struct stat sb;

    if (!ok(st != NULL && st2 != NULL && nsessions(st) == NSESS,
            "round trip: a store with %d sessions", NSESS)) {
        return;
    }
    want = collect(st);
    for (i = 0; i < want.n; i++) {
        times += want.r[i].last_access != want.r[i].created;
    }
    is_int(times, 34, "34 of them used after they were created");

    is_int(sd_snapshot_save(st, path, KEY, pool, &count), APR_SUCCESS, "save");
    is_int(count, NSESS, "save counts %d sessions", NSESS);
    ok(stat(path, &sb) == 0 && S_ISREG(sb.st_mode), "the snapshot is there");
    is_int((long long)sb.st_size,
           (long long)(HDR + NSESS * SAVED_REC_HDR + bytes + DIGEST),
           "its size is header + 100 record headers + the data + digest");
    is_int(sb.st_mode & 077, 0,
           "it is readable by its owner only (it holds session data)");
    is_int(tmp_files(dir), 0, "no temporary file left beside it");

    is_int(sd_snapshot_load(st2, path, KEY, getuid(), pool, T0, &loaded, &why),
           APR_SUCCESS, "load into a fresh store of the same size");
    is_int(loaded, NSESS, "load counts %d sessions", NSESS);
    ok(why == NULL, "... and gives no reason for a good file");
    is_int(nsessions(st2), NSESS, "the fresh store holds %d", NSESS);
    got = collect(st2);
    is_int(matching(&got, &want, &extra), NSESS,
           "every session is back with the same data, created, last_access, "
           "idle and max_age");
    is_int(extra, 0, "... and nothing else");
    validate_ok(st2, "a load");
    recs_free(&got);

    /* Saving over the snapshot replaces it. */
    {
        sd_key_t k;
        sd_shm_t *st3 = heap_store(200, 1 << 20, MAXD, SD_SHM_FULL_REFUSE);
        ino_t before = sb.st_ino;
        for (i = 0; i < 10; i++) {
            key_n(&k, "snap", i);
            sd_shm_delete(st, &k);
        }
        is_int(sd_snapshot_save(st, path, KEY, pool, &count), APR_SUCCESS,
               "save again over the same path");
        is_int(count, NSESS - 10, "... 90 sessions");
        ok(stat(path, &sb) == 0 && sb.st_ino != before,
           "... written to a new file renamed over the old one");
        is_int(
            sd_snapshot_load(st3, path, KEY, getuid(), pool, T0, &loaded, &why),
            APR_SUCCESS, "load the new snapshot");
        is_int(loaded, NSESS - 10, "... 90 sessions");
        got = collect(st3);
        is_int(matching(&got, &want, &extra), NSESS - 10, "... each as it was");
        recs_free(&got);
        is_int(tmp_files(dir), 0, "no temporary file left");
    }

    /* An empty store makes a snapshot too. */
    {
        sd_shm_t *e = heap_store(10, 64 << 10, 1024, SD_SHM_FULL_REFUSE);
        sd_shm_t *e2 = heap_store(10, 64 << 10, 1024, SD_SHM_FULL_REFUSE);
        const char *ep = path_of("empty.snap");
        count = 99;
        is_int(sd_snapshot_save(e, ep, KEY, pool, &count), APR_SUCCESS,
               "save an empty store");
        is_int(count, 0, "... 0 sessions");
        ok(stat(ep, &sb) == 0 && sb.st_size == HDR + DIGEST,
           "... a file of header and digest only (48 bytes)");
        loaded = 99;
        is_int(sd_snapshot_load(e2, ep, KEY, getuid(), pool, T0, &loaded, &why),
               APR_SUCCESS, "load it");
        is_int(loaded, 0, "... 0 sessions");
    }
    recs_free(&want);
}

/* ------------------------------------------------------------------ */
/* Sessions that ended                                                 */
/* ------------------------------------------------------------------ */

static void test_expired(void)
{
    sd_shm_t *st = heap_store(10, 64 << 10, 1024, SD_SHM_FULL_REFUSE);
    const char *path = path_of("expired.snap");
    const char *why;
    apr_uint64_t count = 0, loaded = 0;
    sd_key_t k[4];
    int i;
    /* now, then which of a, b, c, d are back */
    static const struct {
        apr_int64_t at;
        const char *back;
    } cases[] = {
        {T0 + 100, "abcd"}, {T0 + 101, "bcd"}, {T0 + 150, "bcd"},
        {T0 + 151, "cd"},   {T0 + 300, "cd"},  {T0 + 301, "d"},
        {T0 + 99999, ""},
    };

    for (i = 0; i < 4; i++) {
        key_n(&k[i], "ended", i);
    }
    put(st, &k[0], 10, 1, T0, 100, 1000); /* a: idle 100 from T0 */
    put(st, &k[1], 10, 2, T0, 100, 1000); /* b: idle 100 from T0 + 50 */
    sd_shm_get(st, &k[1], T0 + 50, NULL, 0, NULL, NULL);
    put(st, &k[2], 10, 3, T0, 10000, 300);   /* c: max_age 300 */
    put(st, &k[3], 10, 4, T0, 10000, 50000); /* d: ends at T0 + 10000 */
    is_int(sd_snapshot_save(st, path, KEY, pool, &count), APR_SUCCESS,
           "ended: save 4 sessions");
    is_int(count, 4, "... 4 counted");

    for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        sd_shm_t *to = heap_store(10, 64 << 10, 1024, SD_SHM_FULL_REFUSE);
        char back[8] = "";
        int j, n = 0;
        apr_status_t rv = sd_snapshot_load(to, path, KEY, getuid(), pool,
                                           cases[i].at, &loaded, &why);
        for (j = 0; j < 4; j++) {
            if (sd_shm_get(to, &k[j], cases[i].at, NULL, 0, NULL, NULL) ==
                APR_SUCCESS) {
                back[n++] = (char)('a' + j);
            }
        }
        back[n] = '\0';
        ok(rv == APR_SUCCESS && loaded == strlen(cases[i].back) &&
               strcmp(back, cases[i].back) == 0,
           "load at +%lld: back are \"%s\" (got \"%s\", %llu loaded)",
           (long long)(cases[i].at - T0), cases[i].back, back,
           (unsigned long long)loaded);
    }
}

/* ------------------------------------------------------------------ */
/* A smaller store                                                     */
/* ------------------------------------------------------------------ */

static void test_smaller(void)
{
    apr_uint64_t bytes = 0, count = 0, loaded = 0;
    sd_shm_t *st = full_store(&bytes);
    const char *path = path_of("smaller.snap");
    const char *why;
    recs_t want, got;
    int extra = 0, i, small = 0;
    apr_status_t rv;

    if (!st || sd_snapshot_save(st, path, KEY, pool, &count) != APR_SUCCESS) {
        ok(0, "smaller: save the 100 sessions");
        return;
    }
    want = collect(st);

    /* Room for 40 sessions, refusing the rest. */
    {
        sd_shm_t *to = heap_store(40, 1 << 20, MAXD, SD_SHM_FULL_REFUSE);
        rv = sd_snapshot_load(to, path, KEY, getuid(), pool, T0, &loaded, &why);
        is_int(rv, APR_SUCCESS, "capacity 40 (refuse): load succeeds");
        is_int(nsessions(to), 40, "... 40 sessions in the store");
        is_int(loaded, 40, "... and 40 reported loaded");
        got = collect(to);
        is_int(matching(&got, &want, &extra), 40,
               "... each one of the snapshot's, intact");
        recs_free(&got);
        validate_ok(to, "a load into a store too small (refuse)");
    }
    /* The same with eviction: the store keeps 40, the last it took. */
    {
        sd_shm_t *to = heap_store(40, 1 << 20, MAXD, SD_SHM_FULL_EVICT);
        rv = sd_snapshot_load(to, path, KEY, getuid(), pool, T0, &loaded, &why);
        is_int(rv, APR_SUCCESS, "capacity 40 (evict): load succeeds");
        is_int(nsessions(to), 40, "... 40 sessions in the store");
        is_int(loaded, 40,
               "... and 40 reported loaded, not the %d it took "
               "and then evicted",
               NSESS);
        got = collect(to);
        is_int(matching(&got, &want, &extra), 40,
               "... each one of the snapshot's, intact");
        recs_free(&got);
        validate_ok(to, "a load into a store too small (evict)");
    }
    /* Records over max_data are skipped. */
    {
        sd_shm_t *to = heap_store(200, 1 << 20, 1024, SD_SHM_FULL_REFUSE);
        for (i = 0; i < want.n; i++) {
            small += want.r[i].len <= 1024;
        }
        rv = sd_snapshot_load(to, path, KEY, getuid(), pool, T0, &loaded, &why);
        is_int(rv, APR_SUCCESS, "max_data 1024: load succeeds");
        is_int(loaded, small, "... the %d sessions of 1024 bytes or less",
               small);
        got = collect(to);
        is_int(matching(&got, &want, &extra), small, "... intact");
        recs_free(&got);
    }
    /* Less memory than the snapshot's data: what fits. */
    {
        sd_shm_t *to = heap_store(200, 64 << 10, MAXD, SD_SHM_FULL_REFUSE);
        apr_uint64_t n;
        why = NULL;
        rv = sd_snapshot_load(to, path, KEY, getuid(), pool, T0, &loaded, &why);
        n = nsessions(to);
        if (!is_int(rv, APR_SUCCESS,
                    "64K of memory for %lluK of data: load succeeds",
                    (unsigned long long)(bytes >> 10))) {
            diag("why: %s", why ? why : "(none)");
        }
        ok(n > 0 && loaded == n, "... %llu sessions kept, %llu reported",
           (unsigned long long)n, (unsigned long long)loaded);
        got = collect(to);
        is_int(matching(&got, &want, &extra), (long long)n,
               "... each one of the snapshot's, intact");
        recs_free(&got);
        validate_ok(to, "a load into a store with little memory");
    }
    recs_free(&want);
}

/* ------------------------------------------------------------------ */
/* Saving safely                                                       */
/* ------------------------------------------------------------------ */

static void test_atomic(void)
{
    apr_uint64_t bytes = 0, count = 0;
    sd_shm_t *st = full_store(&bytes);
    sd_shm_t *other = heap_store(10, 64 << 10, 1024, SD_SHM_FULL_REFUSE);
    const char *path = path_of("atomic.snap");
    unsigned char *before, *after;
    apr_size_t blen = 0, alen = 0;
    sd_key_t k;
    apr_status_t rv;

    key_n(&k, "other", 1);
    put(other, &k, 100, 1, T0, 1800, 28800);
    if (!st || sd_snapshot_save(st, path, KEY, pool, &count) != APR_SUCCESS) {
        ok(0, "atomic: a first snapshot");
        return;
    }
    before = read_bytes(path, &blen);
    ok(before != NULL && blen > 0, "atomic: a first snapshot of %lu bytes",
       (unsigned long)blen);

    /* The temporary file cannot be made: its name (the target's, plus
     * ".tmp." and 16 random hex digits) would be longer than a file name
     * may be, while the target's own name is not. */
    {
        char name[241];
        const char *longp;
        memset(name, 'n', sizeof name - 1);
        name[sizeof name - 1] = '\0';
        longp = path_of(name);
        ok(write_bytes(longp, before, blen),
           "a snapshot under a name of 240 characters");
        rv = sd_snapshot_save(other, longp, KEY, pool, &count);
        ok(rv != APR_SUCCESS,
           "a save whose temporary file cannot be made fails (%d)", rv);
        after = read_bytes(longp, &alen);
        ok(after && alen == blen && memcmp(after, before, blen) == 0,
           "... and the previous snapshot is intact");
        free(after);
        unlink(longp);
    }

    /* The disk fills half way: a child with a file size limit. */
    {
        pid_t pid;
        int status = 0;
        tap_flush();
        pid = fork();
        if (pid == 0) {
            struct rlimit rl;
            rl.rlim_cur = rl.rlim_max = 4096;
            signal(SIGXFSZ, SIG_IGN);
            alarm(10);
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
                _exit(3);
            }
            _exit(sd_snapshot_save(st, path, KEY, pool, &count) == APR_SUCCESS);
        }
        waitpid(pid, &status, 0);
        is_int(WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status),
               0,
               "a save that runs out of space after 4096 of %lu bytes "
               "fails",
               (unsigned long)blen);
        after = read_bytes(path, &alen);
        ok(after && alen == blen && memcmp(after, before, blen) == 0,
           "... and the previous snapshot is intact");
        free(after);
        is_int(tmp_files(dir), 0, "... and its temporary file is removed");
    }

    /* The target is a directory: the rename fails. */
    {
        const char *d = path_of("adir");
        const char *inside = path_of("adir/x");
        apr_file_t *f;
        apr_dir_make(d, APR_FPROT_OS_DEFAULT, pool);
        apr_file_open(&f, inside, APR_FOPEN_WRITE | APR_FOPEN_CREATE,
                      APR_FPROT_OS_DEFAULT, pool);
        apr_file_close(f);
        rv = sd_snapshot_save(other, d, KEY, pool, &count);
        ok(rv != APR_SUCCESS, "a save onto a directory fails (%d)", rv);
        is_int(tmp_files(dir), 0, "... and leaves no temporary file");
        ok(file_exists(inside), "... and the directory is untouched");
    }

    /* A directory that does not exist. */
    {
        const char *p = path_of("no/such/dir/x.snap");
        rv = sd_snapshot_save(other, p, KEY, pool, &count);
        ok(rv != APR_SUCCESS, "a save into a missing directory fails (%d)", rv);
        ok(!file_exists(p), "... and makes nothing");
    }
    after = read_bytes(path, &alen);
    ok(after && alen == blen && memcmp(after, before, blen) == 0,
       "after all these failures the first snapshot is intact");
    free(after);
    free(before);
}

/* ------------------------------------------------------------------ */
/* Bad files                                                           */
/* ------------------------------------------------------------------ */

static sd_shm_t *victim; /* takes every bad load; holds 3 sessions */
static sd_key_t small_keys[2];

static void make_victim(void)
{
    sd_key_t k;
    int i;
    victim = heap_store(50, 256 << 10, 1024, SD_SHM_FULL_REFUSE);
    for (i = 0; i < 3; i++) {
        key_n(&k, "resident", i);
        put(victim, &k, 50, (apr_uint32_t)i, T0, 1800, 28800);
    }
}

/* Load @a buf as a file into the victim. Returns 1 when it was refused
 * with APR_EINVAL and a reason, loading nothing (the store still holds
 * only its 3 residents); *whyp gets the reason. */
static int refused(const void *buf, apr_size_t len, const char **whyp)
{
    const char *path = path_of("bad.snap");
    const char *why = NULL;
    apr_uint64_t loaded = 12345;
    apr_status_t rv;
    int i, absent = 1;

    if (!write_bytes(path, buf, len)) {
        diag("cannot write %s", path);
        return 0;
    }
    rv = sd_snapshot_load(victim, path, KEY, getuid(), pool, T0, &loaded, &why);
    for (i = 0; i < 2; i++) {
        absent &= sd_shm_get(victim, &small_keys[i], T0, NULL, 0, NULL,
                               NULL) == APR_NOTFOUND;
    }
    if (whyp) {
        *whyp = why;
    }
    if (rv != APR_EINVAL || !why || !*why || loaded != 0 ||
        nsessions(victim) != 3 || !absent) {
        diag("len %lu: rv %d, why %s, loaded %llu, sessions %llu",
             (unsigned long)len, rv, why ? why : "NULL",
             (unsigned long long)loaded, (unsigned long long)nsessions(victim));
        /* Put the victim back as it was for the next case. */
        for (i = 0; i < 2; i++) {
            sd_shm_delete(victim, &small_keys[i]);
        }
        return 0;
    }
    return 1;
}

/* A reason for printing, which may be missing. */
#define WHY(w) ((w) ? (w) : "NULL")

static int has_word(const char *why, const char *word)
{
    return why && strstr(why, word) != NULL;
}

static void test_bad_files(void)
{
    sd_shm_t *st = heap_store(10, 64 << 10, 1024, SD_SHM_FULL_REFUSE);
    const char *path = path_of("small.snap");
    const char *why;
    unsigned char *good, *b;
    apr_size_t n = 0, i;
    apr_uint64_t count = 0, loaded = 0;
    int bad, r;
    buf_t hb = {NULL, 0, 0, 0};
    apr_status_t rv;

    make_victim();
    key_n(&small_keys[0], "small", 0);
    key_n(&small_keys[1], "small", 1);
    put(st, &small_keys[0], 20, 1, T0, 1800, 28800);
    put(st, &small_keys[1], 3, 2, T0, 1800, 28800);
    sd_snapshot_save(st, path, KEY, pool, &count);
    good = read_bytes(path, &n);
    if (!ok(good && n == HDR + 2 * SAVED_REC_HDR + 23 + DIGEST,
            "bad files: a valid snapshot of 2 sessions, %lu bytes",
            (unsigned long)n)) {
        return;
    }
    b = malloc(n + 64);

    r = refused("", 0, &why);
    ok(r, "an empty file: refused (%s)", WHY(why));
    r = refused("SDSNAP02", 8, &why);
    ok(r, "only the magic: refused (%s)", WHY(why));
    memcpy(b, good, n);
    memcpy(b, "NOTASNAP", 8);
    r = refused(b, n, &why);
    ok(r && has_word(why, "not"), "wrong magic: refused as not a snapshot (%s)",
       WHY(why));
    memcpy(b, good, n);
    memcpy(b, "SDSNAP04", 8);
    r = refused(b, n, &why);
    ok(r && has_word(why, "version"),
       "SDSNAP04: refused as another version (%s)", WHY(why));
    {
        /* A version 1 file, valid by the old rules: its SHA-256 digest
         * needs no key, so anyone who could write the file could make
         * one (an admin session, say). */
        buf_t v1 = {NULL, 0, 0, 0};
        unsigned char h[16], rd[DIGEST], d[DIGEST];
        sd_sha256_ctx_t c;
        memcpy(h, "SDSNAP01", 8);
        put64(h + 8, 2);
        buf_add(&v1, h, 16);
        snap_record(&v1, &small_keys[0], T0, T0, 1800, 28800, 20, 20);
        snap_record(&v1, &small_keys[1], T0, T0, 1800, 28800, 3, 3);
        sd_sha256(v1.b + 16, v1.len - 16, rd);
        sd_sha256_init(&c);
        sd_sha256_update(&c, v1.b, 16);
        sd_sha256_update(&c, rd, DIGEST);
        sd_sha256_final(&c, d);
        buf_add(&v1, d, DIGEST);
        r = refused(v1.b, v1.len, &why);
        ok(r && has_word(why, "version 1"),
           "a valid version 1 file (unkeyed digest): refused as version 1 "
           "(%s)",
           WHY(why));
        free(v1.b);
    }

    for (bad = 0, i = 0; i < n; i++) {
        bad += !refused(good, i, NULL);
    }
    is_int(bad, 0, "every truncation (0..%lu bytes) refused, nothing loaded",
           (unsigned long)n - 1);

    for (bad = 0, i = 0; i < n; i++) {
        memcpy(b, good, n);
        b[i] ^= 0x01;
        bad += !refused(b, n, NULL);
        b[i] ^= 0x01 ^ 0xFF;
        bad += !refused(b, n, NULL);
    }
    is_int(bad, 0,
           "every byte flipped (^0x01, ^0xFF) at each of %lu "
           "offsets: refused, nothing loaded",
           (unsigned long)n);
    memcpy(b, good, n);
    b[REC0 + REC_HDR + 5] ^= 0x20;
    r = refused(b, n, &why);
    ok(r && has_word(why, "tag"),
       "a flipped data byte: refused for its tag (%s)", WHY(why));

    /* By hand: first a valid file, so the builder is known to be right. */
    snap_begin(&hb, "SDSNAP02", 2);
    snap_record(&hb, &small_keys[0], T0, T0, 1800, 28800, 20, 20);
    snap_record(&hb, &small_keys[1], T0, T0, 1800, 28800, 3, 3);
    snap_end(&hb);
    ok(hb.len + 2 * (SAVED_REC_HDR - REC_HDR) == n,
       "a snapshot built by hand (format 2) has the saved one's size, less "
       "the two owners of format 3");
    {
        sd_shm_t *to = heap_store(10, 64 << 10, 1024, SD_SHM_FULL_REFUSE);
        rv = sd_snapshot_parse(to, KEY, hb.b, hb.len, T0, &loaded, &why);
        ok(rv == APR_SUCCESS && loaded == 2, "... and loads: its 2 sessions");
    }

    snap_begin(&hb, "SDSNAP02", 3);
    snap_record(&hb, &small_keys[0], T0, T0, 1800, 28800, 20, 20);
    snap_record(&hb, &small_keys[1], T0, T0, 1800, 28800, 3, 3);
    snap_record(&hb, &small_keys[1], T0, T0, 1800, 28800, 11, 10);
    snap_end(&hb);
    r = refused(hb.b, hb.len, &why);
    ok(r && has_word(why, "past"),
       "good tag, a 3rd record one byte longer than the file: "
       "refused, the first 2 not loaded (%s)",
       WHY(why));

    snap_begin(&hb, "SDSNAP02", 2);
    snap_record(&hb, &small_keys[0], T0, T0, 1800, 28800, 20, 20);
    snap_record(&hb, &small_keys[1], T0, T0, 1800, 28800, 0xFFFFFFFFu, 3);
    snap_end(&hb);
    r = refused(hb.b, hb.len, &why);
    ok(r && has_word(why, "past"),
       "good tag, a record of length 2^32-1: refused (%s)", WHY(why));

    snap_begin(&hb, "SDSNAP02", 3);
    snap_record(&hb, &small_keys[0], T0, T0, 1800, 28800, 20, 20);
    snap_record(&hb, &small_keys[1], T0, T0, 1800, 28800, 3, 3);
    buf_add(&hb, "\0\0\0\0\0\0\0\0\0\0", 10);
    snap_end(&hb);
    r = refused(hb.b, hb.len, &why);
    ok(r && has_word(why, "past"),
       "good tag, count 3 but 10 bytes where the 3rd record should be: "
       "refused (%s)",
       WHY(why));

    snap_begin(&hb, "SDSNAP02", 2);
    snap_record(&hb, &small_keys[0], T0, T0, 1800, 28800, 20, 20);
    snap_record(&hb, &small_keys[1], T0, T0, 1800, 28800, 3, 3);
    buf_add(&hb, "extra", 5);
    snap_end(&hb);
    r = refused(hb.b, hb.len, &why);
    ok(r && has_word(why, "after"),
       "good tag, 5 bytes after the last record: refused (%s)", WHY(why));

    snap_begin(&hb, "SDSNAP02", 1);
    snap_record(&hb, &small_keys[0], T0, T0, 1800, 28800, 20, 20);
    snap_record(&hb, &small_keys[1], T0, T0, 1800, 28800, 3, 3);
    snap_end(&hb);
    r = refused(hb.b, hb.len, &why);
    ok(r && has_word(why, "after"),
       "good tag, count 1 for 2 records: refused (%s)", WHY(why));

    snap_begin(&hb, "SDSNAP02", ~(apr_uint64_t)0);
    snap_record(&hb, &small_keys[0], T0, T0, 1800, 28800, 20, 20);
    snap_record(&hb, &small_keys[1], T0, T0, 1800, 28800, 3, 3);
    snap_end(&hb);
    r = refused(hb.b, hb.len, &why);
    ok(r, "good tag, count 2^64-1: refused (%s)", WHY(why));
    snap_begin(&hb, "SDSNAP02", (apr_uint64_t)1 << 40);
    snap_end(&hb);
    r = refused(hb.b, hb.len, &why);
    ok(r, "good tag, count 2^40 and no records: refused (%s)", WHY(why));

    /* A file far larger than any snapshot of the store (sparse: cheap). */
    {
        const char *big = path_of("big.snap");
        apr_file_t *f;
        apr_file_open(&f, big, APR_FOPEN_WRITE | APR_FOPEN_CREATE,
                      APR_FPROT_UREAD | APR_FPROT_UWRITE, pool);
        apr_file_write_full(f, good, n, NULL);
        apr_file_trunc(f, (apr_off_t)1 << 32);
        apr_file_close(f);
        why = NULL;
        rv = sd_snapshot_load(victim, big, KEY, getuid(), pool, T0, &loaded,
                              &why);
        ok(rv == APR_EINVAL && has_word(why, "tag") && loaded == 0 &&
               nsessions(victim) == 3,
           "a 4 GB file (sparse) with a valid snapshot at its start: refused "
           "by its tag (%s)",
           WHY(why));
        apr_file_remove(big, pool);
    }

    why = "unset";
    loaded = 7;
    rv = sd_snapshot_load(victim, path_of("missing.snap"), KEY, getuid(), pool,
                          T0, &loaded, &why);
    is_int(rv, APR_ENOENT, "a missing file: APR_ENOENT");
    ok(loaded == 0 && nsessions(victim) == 3, "... loading nothing");

    why = NULL;
    rv = sd_snapshot_load(victim, dir, KEY, getuid(), pool, T0, &loaded, &why);
    ok(rv != APR_SUCCESS && why != NULL && loaded == 0 &&
           nsessions(victim) == 3,
       "a directory: refused (%d, %s)", rv, why ? why : "NULL");
    validate_ok(victim, "every bad load");
    free(hb.b);
    free(b);
    free(good);
}

/* A snapshot built by hand exactly as the format comment in sd_snapshot.c
 * says (magic, records, count, then HMAC-SHA-256 of all of that under the
 * key, computed here in one call) loads: the comment is the format. */
static void test_documented_tag(void)
{
    sd_shm_t *to = heap_store(10, 64 << 10, 1024, SD_SHM_FULL_REFUSE);
    buf_t hb = {NULL, 0, 0, 0};
    apr_uint64_t loaded = 0;
    const char *why = NULL;
    apr_status_t rv;

    snap_begin(&hb, "SDSNAP02", 2);
    snap_record(&hb, &small_keys[0], T0, T0, 1800, 28800, 20, 20);
    snap_record(&hb, &small_keys[1], T0, T0, 1800, 28800, 3, 3);
    snap_end(&hb);
    rv = sd_snapshot_parse(to, KEY, hb.b, hb.len, T0, &loaded, &why);
    if (!ok(rv == APR_SUCCESS && loaded == 2,
            "a snapshot built by hand to the documented format loads")) {
        diag("rv %d, loaded %llu, why: %s", rv, (unsigned long long)loaded,
             why ? why : "NULL");
    }
    free(hb.b);
}

/* ------------------------------------------------------------------ */
/* Whose file, which file                                              */
/* ------------------------------------------------------------------ */

/* A setup call a test relies on: say so when it fails. */
static void sys(int rc, const char *what)
{
    if (rc != 0) {
        diag("%s failed: %s", what, strerror(errno));
    }
}

/* Load @a path into a fresh store: the status, *why, and the sessions
 * loaded (*n). */
static apr_status_t try_load(const char *path, const unsigned char *key,
                             apr_uid_t owner, const char **why, apr_uint64_t *n)
{
    sd_shm_t *to = heap_store(10, 64 << 10, 1024, SD_SHM_FULL_REFUSE);
    apr_uint64_t loaded = 99;
    apr_status_t rv;

    *why = NULL;
    rv = sd_snapshot_load(to, path, key, owner, pool, T0, &loaded, why);
    *n = nsessions(to);
    if (rv != APR_SUCCESS && loaded != 0) {
        *n += 1000; /* a refusal that reports sessions is wrong too */
    }
    return rv;
}

static int same_file(const char *path, const void *want, apr_size_t len)
{
    apr_size_t n = 0;
    unsigned char *got = read_bytes(path, &n);
    int same = got && n == len && memcmp(got, want, len) == 0;
    free(got);
    return same;
}

/*
 * A save never writes through a link: not one at the target (rename
 * replaces the link itself), nor one planted at the temporary name the
 * old code used (path.tmp.PID), which it opened with O_CREAT | O_TRUNC and
 * so wrote the snapshot into whatever the link pointed to. A load opens
 * with O_NOFOLLOW and checks the descriptor: a link, a FIFO, another
 * owner, group or other permission bits are refused before a byte is
 * parsed; so is a file under another key, or altered by someone without
 * the key.
 */
static void test_files(void)
{
    sd_shm_t *st = heap_store(10, 64 << 10, 1024, SD_SHM_FULL_REFUSE);
    const char *path = path_of("files.snap");
    const char *precious = path_of("precious");
    const char *why = NULL;
    static const char text[] = "somebody else's file\n";
    apr_uint64_t count = 0, n = 0;
    apr_status_t rv;
    struct stat sb;
    sd_key_t k;

    key_n(&k, "files", 0);
    put(st, &k, 30, 1, T0, 1800, 28800);

    /* A link at the target. */
    write_bytes(precious, text, sizeof text - 1);
    sys(symlink(precious, path), "symlink");
    rv = sd_snapshot_save(st, path, KEY, pool, &count);
    ok(rv == APR_SUCCESS && lstat(path, &sb) == 0 && S_ISREG(sb.st_mode),
       "save over a symbolic link: the link is replaced by the snapshot");
    ok(same_file(precious, text, sizeof text - 1),
       "... and the file it pointed to is untouched");

    /* A link at the old, predictable temporary name. */
    {
        const char *old_tmp =
            apr_psprintf(pool, "%s.tmp.%ld", path, (long)getpid());
        sys(symlink(precious, old_tmp), "symlink");
        rv = sd_snapshot_save(st, path, KEY, pool, &count);
        ok(rv == APR_SUCCESS && same_file(precious, text, sizeof text - 1),
           "a link planted at path.tmp.PID: the save does not write "
           "through it");
        ok(lstat(old_tmp, &sb) == 0 && S_ISLNK(sb.st_mode),
           "... and leaves it alone");
        unlink(old_tmp);
    }
    memset(&sb, 0, sizeof sb);
    rv = stat(path, &sb) == 0 ? APR_SUCCESS : APR_EGENERAL;
    ok(rv == APR_SUCCESS && (sb.st_mode & 07777) == 0600 &&
           sb.st_uid == geteuid(),
       "the snapshot is mode 0600 (%04o), owned by the saver",
       (unsigned)(sb.st_mode & 07777));

    rv = try_load(path, KEY, getuid(), &why, &n);
    ok(rv == APR_SUCCESS && n == 1, "it loads (1 session)");

    /* Wrong key; tampered without the key. */
    rv = try_load(path, OTHER_KEY, getuid(), &why, &n);
    ok(rv == APR_EINVAL && n == 0 && has_word(why, "another key"),
       "under another key: refused, nothing loaded (%s)", WHY(why));
    {
        apr_size_t len = 0;
        unsigned char *b = read_bytes(path, &len);
        buf_t forged = {NULL, 0, 0, 0};
        sd_key_t admin;
        /* One byte of the session's data changed in place. */
        b[REC0 + REC_HDR + 7] ^= 0x04;
        write_bytes(path, b, len);
        rv = try_load(path, KEY, getuid(), &why, &n);
        ok(rv == APR_EINVAL && n == 0 && has_word(why, "tag"),
           "one data byte changed: refused (%s)", WHY(why));
        /* A whole forged snapshot, well-formed, tagged under a guessed
         * key (what someone who can write the file but not read the key
         * can do at best). */
        key_n(&admin, "forged-admin", 0);
        snap_begin(&forged, "SDSNAP02", 1);
        snap_record(&forged, &admin, T0, T0, 1800, 28800, 40, 40);
        snap_end_key(&forged, OTHER_KEY);
        write_bytes(path, forged.b, forged.len);
        rv = try_load(path, KEY, getuid(), &why, &n);
        ok(rv == APR_EINVAL && n == 0,
           "a forged snapshot tagged under a guessed key: refused (%s)",
           WHY(why));
        free(forged.b);
        free(b);
    }

    /* Owner and mode, checked on the descriptor. */
    sd_snapshot_save(st, path, KEY, pool, &count);
    rv = try_load(path, KEY, getuid() + 1, &why, &n);
    ok(rv == APR_EINVAL && n == 0 && has_word(why, "belongs to uid"),
       "expected another owner: refused (%s)", WHY(why));
    if (getuid() == 0) {
        sys(chown(path, 65534, (gid_t)-1), "chown");
        rv = try_load(path, KEY, 0, &why, &n);
        ok(rv == APR_EINVAL && n == 0 && has_word(why, "65534"),
           "a file of uid 65534 when root's is expected: refused (%s)",
           WHY(why));
        sys(chown(path, 0, (gid_t)-1), "chown");
    }
    else {
        skip(1, "chown needs root");
    }
    sys(chmod(path, 0640), "chmod");
    rv = try_load(path, KEY, getuid(), &why, &n);
    ok(rv == APR_EINVAL && n == 0 && has_word(why, "0640"),
       "mode 0640: refused (%s)", WHY(why));
    sys(chmod(path, 0602), "chmod");
    rv = try_load(path, KEY, getuid(), &why, &n);
    ok(rv == APR_EINVAL && n == 0 && has_word(why, "0602"),
       "mode 0602: refused (%s)", WHY(why));
    sys(chmod(path, 0400), "chmod");
    rv = try_load(path, KEY, getuid(), &why, &n);
    ok(rv == APR_SUCCESS && n == 1, "mode 0400: loads");

    /* A link to a good snapshot, and a FIFO, are not followed or read. */
    {
        const char *link = path_of("link.snap");
        const char *fifo = path_of("fifo.snap");
        sys(symlink(path, link), "symlink");
        rv = try_load(link, KEY, getuid(), &why, &n);
        ok(rv == APR_EINVAL && n == 0 && has_word(why, "symbolic link"),
           "a symbolic link to a good snapshot: refused (%s)", WHY(why));
        sys(mkfifo(fifo, 0600), "mkfifo");
        alarm(10);
        rv = try_load(fifo, KEY, getuid(), &why, &n);
        alarm(0);
        ok(rv == APR_EINVAL && n == 0 && has_word(why, "regular"),
           "a FIFO: refused at once, without waiting for a writer (%s)",
           WHY(why));
        unlink(link);
        unlink(fifo);
    }
    unlink(path);
    unlink(precious);
}

/* sd_snapshot_key(): made once, then read back; refused when it is not a
 * plain 0600 file of 32 bytes of ours; never created through a link. */
static void test_key_file(void)
{
    const char *kp = path_of("snap.key"), *kp2 = path_of("other.key");
    const char *target = path_of("key-target");
    unsigned char k1[SD_SNAPSHOT_KEY_LEN], k2[SD_SNAPSHOT_KEY_LEN];
    static const unsigned char zero[SD_SNAPSHOT_KEY_LEN];
    const char *why = NULL;
    apr_status_t rv;
    struct stat sb;

    rv = sd_snapshot_key(kp, pool, k1, &why);
    ok(rv == APR_SUCCESS && memcmp(k1, zero, sizeof k1) != 0,
       "key: made when absent (%s)", WHY(why));
    ok(lstat(kp, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 32 &&
           (sb.st_mode & 07777) == 0600 && sb.st_uid == geteuid(),
       "... a regular file of 32 bytes, mode 0600, ours");
    rv = sd_snapshot_key(kp, pool, k2, &why);
    ok(rv == APR_SUCCESS && memcmp(k1, k2, sizeof k1) == 0,
       "... read back the same the next time");
    rv = sd_snapshot_key(kp2, pool, k2, &why);
    ok(rv == APR_SUCCESS && memcmp(k1, k2, sizeof k1) != 0,
       "another key file gets another key");

    sys(chmod(kp, 0644), "chmod");
    rv = sd_snapshot_key(kp, pool, k2, &why);
    ok(rv == APR_EINVAL && has_word(why, "0644"), "mode 0644: refused (%s)",
       WHY(why));
    sys(chmod(kp, 0600), "chmod");
    if (getuid() == 0) {
        sys(chown(kp, 65534, (gid_t)-1), "chown");
        rv = sd_snapshot_key(kp, pool, k2, &why);
        ok(rv == APR_EINVAL && has_word(why, "65534"),
           "owned by uid 65534: refused (%s)", WHY(why));
        sys(chown(kp, 0, (gid_t)-1), "chown");
    }
    else {
        skip(1, "chown needs root");
    }
    sys(truncate(kp, 31), "truncate");
    rv = sd_snapshot_key(kp, pool, k2, &why);
    ok(rv == APR_EINVAL && has_word(why, "31 bytes"), "31 bytes: refused (%s)",
       WHY(why));
    unlink(kp);

    /* A link at the key's name, to a good key file or to nowhere. */
    write_bytes(target, k1, sizeof k1);
    sys(symlink(target, kp), "symlink");
    rv = sd_snapshot_key(kp, pool, k2, &why);
    ok(rv == APR_EINVAL && has_word(why, "symbolic link"),
       "a symbolic link to a key file: refused (%s)", WHY(why));
    unlink(kp);
    unlink(target);
    sys(symlink(target, kp), "symlink");
    rv = sd_snapshot_key(kp, pool, k2, &why);
    ok(rv != APR_SUCCESS && !file_exists(target),
       "a dangling link: refused, and nothing made where it points (%s)",
       WHY(why));
    unlink(kp);
    unlink(kp2);
}

/* ------------------------------------------------------------------ */
/* Random input                                                        */
/* ------------------------------------------------------------------ */

static apr_uint64_t rng = 0x9E3779B97F4A7C15ULL;

static apr_uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (apr_uint32_t)(rng >> 16);
}

#define FUZZ_ROUNDS 4000

static void test_parse_random(void)
{
    sd_shm_t *to = NULL;
    buf_t hb = {NULL, 0, 0, 0};
    int r, odd_rv = 0, partial = 0, invalid = 0, accepted[4] = {0, 0, 0, 0};
    int valid_refused = 0;

    for (r = 0; r < FUZZ_ROUNDS; r++) {
        int kind = r % 4;
        apr_uint64_t loaded = 999, before;
        const char *why = NULL;
        apr_status_t rv;
        apr_size_t i, len;
        unsigned char *b;

        if (r % 200 == 0) {
            to = heap_store(100, 64 << 10, 1024, SD_SHM_FULL_REFUSE);
        }
        if (kind == 0) {
            /* Anything. */
            len = rnd() % 400;
            hb.len = 0;
            for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)rnd();
                buf_add(&hb, &c, 1);
            }
        }
        else {
            /* The right header and a good digest over random records,
             * whole (kind 3) or with a random count or tail. */
            int nrec = (int)(rnd() % 5), j;
            snap_begin(&hb, "SDSNAP02",
                       kind == 1 ? (apr_uint64_t)rnd() % 8
                                 : (apr_uint64_t)nrec);
            for (j = 0; j < nrec; j++) {
                sd_key_t k;
                apr_uint32_t dl = rnd() % (kind == 2 ? 1500 : 1100);
                apr_uint32_t said = kind == 2 && rnd() % 2 ? rnd() : dl;
                apr_int64_t created = T0 - (apr_int64_t)(rnd() % 4000);
                key_n(&k, "fuzz", r * 8 + j);
                snap_record(&hb, &k, created,
                            created + (apr_int64_t)(rnd() % 3000), rnd() % 4000,
                            rnd() % 8000, said, dl);
            }
            if (kind == 2 && rnd() % 2) {
                unsigned char c = (unsigned char)rnd();
                buf_add(&hb, &c, 1);
            }
            snap_end(&hb);
            if (kind == 1 && rnd() % 2 && hb.len) {
                hb.b[rnd() % hb.len] ^= (unsigned char)(1 + rnd() % 255);
            }
        }
        /* An exact-size copy, so ASan sees a read past the end. */
        len = hb.len;
        b = malloc(len ? len : 1);
        memcpy(b, hb.b, len);
        before = nsessions(to);
        rv = sd_snapshot_parse(to, KEY, b, len, T0, &loaded, &why);
        free(b);
        if (rv == APR_SUCCESS) {
            accepted[kind]++;
            if (nsessions(to) != before + loaded) {
                partial++;
            }
        }
        else if (rv == APR_EINVAL) {
            if (loaded != 0 || nsessions(to) != before || !why) {
                partial++;
            }
            if (kind == 3) {
                valid_refused++;
            }
        }
        else {
            odd_rv++;
        }
        if (r % 200 == 199) {
            char w[256];
            invalid += sd_shm_validate(to, w, sizeof w) != APR_SUCCESS;
        }
    }
    diag("random: accepted %d pure random, %d with a random count or a "
         "flipped byte, %d with lying lengths, %d whole of %d each",
         accepted[0], accepted[1], accepted[2], accepted[3], FUZZ_ROUNDS / 4);
    is_int(odd_rv, 0,
           "%d random buffers: every one APR_SUCCESS or "
           "APR_EINVAL, none crashed",
           FUZZ_ROUNDS);
    is_int(partial, 0,
           "... a refused one loads nothing and gives a reason; "
           "an accepted one loads what it reports");
    is_int(valid_refused, 0, "... every well-formed one is accepted");
    is_int(accepted[0], 0, "... no pure random bytes are accepted");
    is_int(invalid, 0, "... and the store validates throughout");
    free(hb.b);
}

/* Found by fuzz/fuzz_snapshot.c (fuzz/crashes/): records whose times are
 * extreme (created INT64_MIN, last access near INT64_MAX) once overflowed
 * the expiry arithmetic. They are now refused one by one; the rest of the
 * file loads. */
static void test_extreme_times(void)
{
    sd_shm_t *to = heap_store(10, 64 << 10, 1024, SD_SHM_FULL_REFUSE);
    buf_t hb = {NULL, 0, 0, 0};
    apr_uint64_t loaded = 0;
    const char *why = NULL;
    apr_status_t rv;
    sd_key_t k[6];
    int i;

    for (i = 0; i < 6; i++) {
        key_n(&k[i], "extreme", i);
    }
    snap_begin(&hb, "SDSNAP02", 6);
    snap_record(&hb, &k[0], INT64_MIN, T0, 1800, 28800, 20, 20);
    snap_record(&hb, &k[1], T0, INT64_MAX - 5, 1800, 28800, 3, 3);
    snap_record(&hb, &k[2], T0, T0 - 10, 1800, 28800, 5, 5);
    snap_record(&hb, &k[3], T0, T0, 1800, 28800, 7, 7);
    /* Timeouts beyond any directive's limit (a year): refused too. */
    snap_record(&hb, &k[4], T0, T0, 0xffffffffu, 28800, 7, 7);
    snap_record(&hb, &k[5], T0, T0, 1800, 31536001, 7, 7);
    snap_end(&hb);
    rv = sd_snapshot_parse(to, KEY, hb.b, hb.len, T0, &loaded, &why);
    ok(rv == APR_SUCCESS && loaded == 1,
       "extreme or impossible times or timeouts: those records are skipped, "
       "the sane one "
       "loads (rv %d, loaded %llu)", rv, (unsigned long long)loaded);
    validate_ok(to, "extreme times");
    free(hb.b);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    memset(OTHER_KEY, 0x4f, sizeof OTHER_KEY);
    dir = apr_psprintf(pool, "/tmp/sd-snapshot-test.%ld", (long)getpid());
    if (apr_dir_make(dir, APR_FPROT_OS_DEFAULT, pool) != APR_SUCCESS) {
        plan(1);
        ok(0, "make %s", dir);
        return done_testing();
    }
    test_round_trip();
    test_expired();
    test_smaller();
    test_atomic();
    test_bad_files();
    test_documented_tag();
    test_files();
    test_key_file();
    test_extreme_times();
    test_parse_random();
    remove_tree(dir, 0);
    heap_free_all();
    apr_pool_destroy(pool);
    apr_terminate();
    return done_testing();
}
