/*
 * The shared-memory session store: the single-process contract first
 * (parameter checks, create, get, replace, delete, expiry with injected
 * time, full-store policies, memory reuse, statistics, attach and layout
 * versions, foreach, restore, migrate, eviction across stripes, owners and
 * the per-owner cap), then real processes on one anonymous apr_shm segment:
 * lost-update freedom under optimistic concurrency, random churn, eviction
 * and the per-owner cap under concurrent creates, and recovery from a
 * process killed inside a critical section at every fault point, in a
 * store of one stripe and one of several.
 *
 * The exact LRU order is checked both in stores of a few hundred sessions
 * (one stripe) and in stores of several stripes: a store full by its
 * capacity evicts the least recently used session of the whole store.
 * Memory, though, is each stripe's own, so the memory-full tests use
 * one-stripe stores.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_shm.h>
#include <apr_strings.h>

#include "tap.h"
#include "sd_sha256.h"
#include "sd_shm.h"

#define T0 1700000000 /* "now" at the start of every scenario */

static apr_pool_t *pool;

#include "store_util.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

#define heap_store heap_store_at

/* Record data: 4 bytes of salt, then bytes derived from the key and the
 * salt, so any reader can tell a record is whole and is this key's. */
static void fill(unsigned char *buf, apr_size_t len, const sd_key_t *k,
                 apr_uint32_t salt)
{
    apr_size_t i;
    unsigned char sb[4];

    sb[0] = (unsigned char)salt;
    sb[1] = (unsigned char)(salt >> 8);
    sb[2] = (unsigned char)(salt >> 16);
    sb[3] = (unsigned char)(salt >> 24);
    for (i = 0; i < len; i++) {
        buf[i] = i < 4 ? sb[i]
                       : (unsigned char)(k->b[i % 32] ^ (salt * 131 + i * 7));
    }
}

/* Non-zero when @a buf holds a record fill() could have made for @a k with
 * some salt; sets *salt. */
static int check_fill(const unsigned char *buf, apr_size_t len,
                      const sd_key_t *k, apr_uint32_t *salt)
{
    apr_size_t i;
    apr_uint32_t s;

    if (len < 4) {
        return 0;
    }
    s = buf[0] | (buf[1] << 8) | (buf[2] << 16) | ((apr_uint32_t)buf[3] << 24);
    for (i = 4; i < len; i++) {
        if (buf[i] != (unsigned char)(k->b[i % 32] ^ (s * 131 + i * 7))) {
            return 0;
        }
    }
    if (salt) {
        *salt = s;
    }
    return 1;
}

static apr_status_t put(sd_shm_t *st, const sd_key_t *k, apr_size_t len,
                        apr_uint32_t salt, apr_int64_t now, apr_uint32_t idle,
                        apr_uint32_t max_age)
{
    unsigned char buf[70000];
    fill(buf, len, k, salt);
    return sd_shm_create(st, k, buf, len, now, idle, max_age);
}

static apr_status_t repl(sd_shm_t *st, const sd_key_t *k,
                         apr_uint32_t version, apr_size_t len,
                         apr_uint32_t salt, apr_int64_t now)
{
    unsigned char buf[70000];
    fill(buf, len, k, salt);
    return sd_shm_replace(st, k, version, buf, len, now);
}

/* Get and check: returns the status; on success *len and *salt are the
 * record's, and *intact says whether its bytes are whole. */
static apr_status_t fetch(sd_shm_t *st, const sd_key_t *k, apr_int64_t now,
                          apr_size_t *len, apr_uint32_t *salt, int *intact,
                          sd_shm_meta_t *meta)
{
    unsigned char buf[70000];
    apr_size_t l = 0;
    sd_shm_meta_t m;
    apr_status_t rv = sd_shm_get(st, k, now, buf, sizeof buf, &l, &m);

    if (rv == APR_SUCCESS) {
        if (len) {
            *len = l;
        }
        if (intact) {
            *intact = l <= sizeof buf && check_fill(buf, l, k, salt);
        }
        if (meta) {
            *meta = m;
        }
    }
    return rv;
}

/* Alive, whole, and with the expected salt. */
static int has(sd_shm_t *st, const sd_key_t *k, apr_int64_t now,
               apr_uint32_t want_salt)
{
    apr_uint32_t salt = 0;
    int intact = 0;
    return fetch(st, k, now, NULL, &salt, &intact, NULL) == APR_SUCCESS &&
           intact && salt == want_salt;
}

static sd_shm_stats_t stats(sd_shm_t *st)
{
    sd_shm_stats_t s;
    sd_shm_stats(st, &s);
    return s;
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

/* Create a session of owner @a o with a cap of @a per_user. */
static apr_status_t put_owned(sd_shm_t *st, const sd_key_t *k,
                              const sd_owner_t *o, apr_size_t len,
                              apr_uint32_t salt, apr_int64_t now,
                              apr_uint32_t per_user, apr_uint32_t *ended)
{
    unsigned char buf[4096];
    sd_store_limits_t lim;
    lim.idle = 1800;
    lim.max_age = 28800;
    lim.per_user = per_user;
    fill(buf, len, k, salt);
    return sd_shm_create_owned(st, k, o, buf, len, now, &lim, ended);
}

static int nlisted(sd_shm_t *st, const sd_owner_t *o, apr_int64_t now)
{
    apr_array_header_t *a = NULL;
    apr_pool_t *p;
    int n;
    apr_pool_create(&p, pool);
    n = sd_shm_list_owner(st, o, now, p, &a) == APR_SUCCESS ? a->nelts : -1;
    apr_pool_destroy(p);
    return n;
}

/* ------------------------------------------------------------------ */
/* Parameters                                                          */
/* ------------------------------------------------------------------ */

static void test_params(void)
{
    sd_shm_params_t p;
    const char *why;

    p = params(10000, 64 << 20, 16 << 10, SD_SHM_FULL_EVICT);
    why = NULL;
    is_int(sd_shm_check_params(&p, &why), APR_SUCCESS,
           "defaults (10000, 64M, 16K) accepted");
    p = params(1, 16 << 10, 16 << 10, SD_SHM_FULL_EVICT);
    is_int(sd_shm_check_params(&p, &why), APR_SUCCESS,
           "capacity 1, memory == max_data accepted");
    p = params(10000000, 64 << 20, 16 << 10, SD_SHM_FULL_REFUSE);
    is_int(sd_shm_check_params(&p, &why), APR_SUCCESS,
           "capacity 10000000 accepted");

    p = params(0, 64 << 20, 16 << 10, SD_SHM_FULL_EVICT);
    why = NULL;
    is_int(sd_shm_check_params(&p, &why), APR_EINVAL, "capacity 0 refused");
    ok(why != NULL && *why, "... with a reason: %s", why ? why : "(none)");
    p = params(10000001, 64 << 20, 16 << 10, SD_SHM_FULL_EVICT);
    is_int(sd_shm_check_params(&p, &why), APR_EINVAL,
           "capacity 10000001 refused");
    p = params(10000, 16 << 10, 16 << 10, SD_SHM_FULL_EVICT);
    p.memory = p.max_data - 1;
    why = NULL;
    is_int(sd_shm_check_params(&p, &why), APR_EINVAL,
           "memory < max_data refused");
    ok(why != NULL && *why, "... with a reason: %s", why ? why : "(none)");
    p = params(10000, 64 << 20, 0, SD_SHM_FULL_EVICT);
    is_int(sd_shm_check_params(&p, &why), APR_EINVAL, "max_data 0 refused");
    p = params(10000, 0, 16 << 10, SD_SHM_FULL_EVICT);
    is_int(sd_shm_check_params(&p, &why), APR_EINVAL, "memory 0 refused");

    /* Geometry in 64 bits: a huge memory with a small capacity (one
     * stripe) once wrapped the stripe's 32-bit chunk count, and the
     * segment came out smaller than the data written into it. */
    p = params(1000, 268435440ULL << 10, 16 << 10, SD_SHM_FULL_EVICT);
    why = NULL;
    is_int(sd_shm_check_params(&p, &why), APR_EINVAL,
           "capacity 1000, memory 268435440K (one stripe, 2^32 chunks): "
           "refused");
    ok(why && strstr(why, "SessionDemoMemory") &&
           strstr(why, "SessionDemoCapacity") && strstr(why, "at most") &&
           strstr(why, "at least 4096"),
       "... naming both directives and what would work: %s",
       why ? why : "(none)");
    is_int((long long)sd_shm_size(&p), 0,
           "... and sd_shm_size() is 0, not a wrapped small size");
    p = params(4096, 268435440ULL << 10, 16 << 10, SD_SHM_FULL_EVICT);
    is_int(sd_shm_check_params(&p, &why), APR_SUCCESS,
           "the suggested capacity 4096 (four stripes) takes that memory");
    ok(sd_shm_size(&p) > p.memory,
       "... and its size %llu covers the memory",
       (unsigned long long)sd_shm_size(&p));
    /* One stripe indexes at most 2^31 chunks, its reserve included (256
     * chunks for 16K records): the boundary exactly. */
    p = params(1, (2147483648ULL - 256) * 64, 16 << 10, SD_SHM_FULL_EVICT);
    is_int(sd_shm_check_params(&p, &why), APR_SUCCESS,
           "one stripe with exactly 2^31 chunks (128G - 16K): accepted");
    ok(sd_shm_size(&p) > p.memory, "... its size covers the memory");
    p.memory += 64;
    why = NULL;
    is_int(sd_shm_check_params(&p, &why), APR_EINVAL,
           "one chunk more: refused");
    ok(why && strstr(why, "at most 134217712K"),
       "... saying the most that fits: %s", why ? why : "(none)");
    p = params(10000000, 9ULL << 40, 16 << 10, SD_SHM_FULL_EVICT);
    why = NULL;
    is_int(sd_shm_check_params(&p, &why), APR_EINVAL,
           "9T of memory (more than 64 stripes index): refused");
    ok(why && strstr(why, "SessionDemoMemory"), "... with a reason: %s",
       why ? why : "(none)");
    /* A stripe's own memory must hold one largest record, in whole
     * chunks. */
    p = params(10000, 1000, 1000, SD_SHM_FULL_EVICT);
    why = NULL;
    is_int(sd_shm_check_params(&p, &why), APR_EINVAL,
           "memory 1000 == max_data 1000 (16 chunks needed, 15 there): "
           "refused");
    ok(why && strstr(why, "SessionDemoMemory") &&
           strstr(why, "SessionDemoMaxDataSize") && strstr(why, "at least 1K"),
       "... naming both directives and what would work: %s",
       why ? why : "(none)");
    p = params(10000, 64 << 10, 1 << 20, SD_SHM_FULL_EVICT);
    why = NULL;
    is_int(sd_shm_check_params(&p, &why), APR_EINVAL,
           "SessionDemoMaxDataSize 1M with SessionDemoMemory 64K: refused");
    ok(why && strstr(why, "SessionDemoMaxDataSize 1M") &&
           strstr(why, "SessionDemoMemory 64K"),
       "... naming both: %s", why ? why : "(none)");
    p = params(10000, 64 << 10, 16 << 10, (sd_shm_when_full_t)7);
    is_int(sd_shm_check_params(&p, &why), APR_EINVAL,
           "an unknown full-store policy: refused");
    /* Every accepted boundary really holds a record of max_data. */
    {
        static const apr_uint64_t mem[] = {1024, 1000 + 63, 4096};
        int i, held = 0;
        for (i = 0; i < 3; i++) {
            sd_shm_t *st =
                heap_store_at(10000, mem[i], 1000, SD_SHM_FULL_REFUSE, NULL,
                              NULL);
            unsigned char rec[1000];
            sd_key_t k;
            memset(rec, 'r', sizeof rec);
            key_n(&k, "maxrec", i);
            held += st && sd_shm_create(st, &k, rec, sizeof rec, T0, 1800,
                                        28800) == APR_SUCCESS;
        }
        is_int(held, 3, "memory 1024, 1063, 4096 with max_data 1000: each "
                        "holds a 1000-byte record");
    }

    /* Formatting refuses what check_params refuses, and too little room. */
    {
        char small[64];
        sd_shm_t *st = NULL;
        p = params(0, 4096, 1024, SD_SHM_FULL_EVICT);
        ok(sd_shm_format(pool, small, sizeof small, &p, &st) != APR_SUCCESS,
           "format refuses bad parameters");
        p = params(16, 4096, 1024, SD_SHM_FULL_EVICT);
        ok(sd_shm_format(pool, small, sizeof small, &p, &st) != APR_SUCCESS,
           "format refuses memory smaller than "
           "sd_shm_size()");
    }
    /* The size grows with what is asked for and covers the data. */
    {
        sd_shm_params_t a = params(100, 1 << 20, 1024, SD_SHM_FULL_EVICT);
        sd_shm_params_t b = params(100000, 1 << 20, 1024, SD_SHM_FULL_EVICT);
        sd_shm_params_t c = params(100, 8 << 20, 1024, SD_SHM_FULL_EVICT);
        sd_shm_params_t d =
            params(10000000, 64ULL << 20, 16 << 10, SD_SHM_FULL_EVICT);
        ok(sd_shm_size(&a) >= (1 << 20), "size covers the data memory");
        ok(sd_shm_size(&b) > sd_shm_size(&a), "size grows with capacity");
        ok(sd_shm_size(&c) > sd_shm_size(&a), "size grows with memory");
        ok(sd_shm_size(&d) > (apr_size_t)(64 << 20) + 10000000ULL * 32,
           "10M sessions: size %llu has room for every key",
           (unsigned long long)sd_shm_size(&d));
    }
}

/* ------------------------------------------------------------------ */
/* Basic operations                                                    */
/* ------------------------------------------------------------------ */

static void test_basic(void)
{
    sd_shm_t *st = heap_store(100, 64 << 10, 2048, SD_SHM_FULL_EVICT, NULL, NULL);
    sd_shm_params_t p;
    sd_key_t a, b, c;
    sd_shm_meta_t m, m2;
    unsigned char buf[4096];
    apr_size_t len = 0;
    apr_uint32_t salt = 0;
    int intact = 0;
    sd_shm_stats_t s;

    if (!ok(st != NULL, "format a small store")) {
        return;
    }
    sd_shm_params(st, &p);
    ok(p.capacity == 100 && p.memory == (64 << 10) && p.max_data == 2048 &&
           p.when_full == SD_SHM_FULL_EVICT,
       "sd_shm_params gives them back");
    s = stats(st);
    ok(s.capacity == 100 && s.sessions == 0 && s.memory_used == 0 &&
           s.hits == 0 && s.misses == 0,
       "a new store is empty");
    ok(s.memory_total > 0 && s.memory_total <= (64 << 10) &&
           s.memory_total >= (64 << 10) / 2,
       "memory_total %llu is about the memory asked for",
       (unsigned long long)s.memory_total);
    ok(s.segment_size >= s.memory_total, "segment_size covers memory_total");

    key_n(&a, "basic", 1);
    key_n(&b, "basic", 2);
    key_n(&c, "basic", 3);
    is_int(sd_shm_get(st, &a, T0, buf, sizeof buf, &len, &m), APR_NOTFOUND,
           "get of an absent key: APR_NOTFOUND");
    is_int(put(st, &a, 100, 11, T0, 1800, 28800), APR_SUCCESS, "create a");
    is_int(put(st, &b, 1500, 22, T0 + 1, 1800, 28800), APR_SUCCESS,
           "create b (1500 bytes)");
    is_int(put(st, &a, 10, 99, T0 + 2, 1800, 28800), APR_EEXIST,
           "create a again: APR_EEXIST");
    is_int(stats(st).sessions, 2, "two sessions");
    ok(stats(st).memory_used >= 1600, "memory_used %llu >= 1600 bytes of data",
       (unsigned long long)stats(st).memory_used);

    memset(&m, 0, sizeof m);
    is_int(fetch(st, &a, T0 + 10, &len, &salt, &intact, &m), APR_SUCCESS,
           "get a");
    ok(len == 100 && intact && salt == 11,
       "get a: its 100 bytes, intact,"
       " not overwritten by the refused second create");
    is_int(m.created, T0, "meta.created");
    is_int(m.last_access, T0, "meta.last_access is the previous access");
    is_int(m.expires, T0 + 10 + 1800, "meta.expires: now + idle");

    memset(&m2, 0, sizeof m2);
    fetch(st, &a, T0 + 20, &len, &salt, &intact, &m2);
    is_int(m2.last_access, T0 + 10,
           "second get: last_access is the first"
           " get's time");
    is_int(m2.version, m.version, "get does not change the version");
    is_int(m2.expires, T0 + 20 + 1800, "second get: expires moved on");

    /* A short buffer gets a prefix; *len is the whole length. */
    memset(buf, 0xEE, sizeof buf);
    len = 0;
    is_int(sd_shm_get(st, &b, T0 + 21, buf, 10, &len, NULL), APR_SUCCESS,
           "get b into a 10-byte buffer (meta NULL)");
    is_int(len, 1500, "... *len is the full 1500");
    {
        unsigned char want[16];
        fill(want, 16, &b, 22);
        ok(memcmp(buf, want, 10) == 0 && buf[10] == 0xEE,
           "... exactly 10 bytes copied, nothing beyond");
    }
    len = 0;
    is_int(sd_shm_get(st, &b, T0 + 22, NULL, 0, &len, NULL), APR_SUCCESS,
           "get with no buffer: just the length");
    is_int(len, 1500, "... 1500");

    is_int(sd_shm_delete(st, &a), APR_SUCCESS, "delete a");
    is_int(sd_shm_delete(st, &a), APR_NOTFOUND, "delete a again: NOTFOUND");
    is_int(sd_shm_delete(st, &c), APR_NOTFOUND, "delete absent c: NOTFOUND");
    is_int(sd_shm_get(st, &a, T0 + 23, buf, sizeof buf, &len, NULL),
           APR_NOTFOUND, "get a after delete: NOTFOUND");
    ok(has(st, &b, T0 + 24, 22), "b untouched by a's delete");
    is_int(stats(st).sessions, 1, "one session left");
    is_int(put(st, &a, 50, 33, T0 + 25, 1800, 28800), APR_SUCCESS,
           "a deleted key can be created again");
    ok(has(st, &a, T0 + 26, 33), "... with its new data");

    /* Empty record, and exactly max_data. */
    is_int(put(st, &c, 0, 0, T0 + 30, 1800, 28800), APR_SUCCESS,
           "create with 0 bytes");
    len = 99;
    is_int(sd_shm_get(st, &c, T0 + 31, buf, sizeof buf, &len, NULL),
           APR_SUCCESS, "get the empty record");
    is_int(len, 0, "... 0 bytes");
    sd_shm_delete(st, &c);
    is_int(put(st, &c, 2048, 44, T0 + 32, 1800, 28800), APR_SUCCESS,
           "create with exactly max_data");
    ok(has(st, &c, T0 + 33, 44), "... reads back whole");
    sd_shm_delete(st, &c);
    is_int(put(st, &c, 2049, 44, T0 + 34, 1800, 28800), APR_EINVAL,
           "create with max_data + 1: APR_EINVAL");
    is_int(sd_shm_get(st, &c, T0 + 35, NULL, 0, NULL, NULL), APR_NOTFOUND,
           "... and nothing stored");

    s = stats(st);
    ok(s.hits >= 8 && s.misses >= 3, "hits %llu, misses %llu counted",
       (unsigned long long)s.hits, (unsigned long long)s.misses);
    {
        /* Exact counting from here. */
        apr_uint64_t h = s.hits, mi = s.misses;
        sd_shm_get(st, &a, T0 + 40, NULL, 0, NULL, NULL);
        sd_shm_get(st, &a, T0 + 40, NULL, 0, NULL, NULL);
        sd_shm_get(st, &c, T0 + 40, NULL, 0, NULL, NULL);
        s = stats(st);
        ok(s.hits == h + 2 && s.misses == mi + 1,
           "two hits and one miss add exactly 2 and 1");
    }
    sd_shm_count(st, SD_SHM_COUNT_LOGIN_OK);
    sd_shm_count(st, SD_SHM_COUNT_LOGIN_OK);
    sd_shm_count(st, SD_SHM_COUNT_LOGIN_FAILED);
    sd_shm_count(st, SD_SHM_COUNT_LOGIN_THROTTLED);
    sd_shm_count(st, SD_SHM_COUNT_LOGIN_THROTTLED);
    sd_shm_count(st, SD_SHM_COUNT_LOGIN_THROTTLED);
    s = stats(st);
    ok(s.logins_ok == 2 && s.logins_failed == 1 && s.logins_throttled == 3,
       "login counters 2/1/3");

    sd_shm_delete(st, &a);
    sd_shm_delete(st, &b);
    s = stats(st);
    is_int(s.sessions, 0, "all deleted: 0 sessions");
    is_int(s.memory_used, 0, "all deleted: memory_used back to 0");
    validate_ok(st, "basic operations");
}

static void test_replace(void)
{
    sd_shm_t *st = heap_store(100, 64 << 10, 4096, SD_SHM_FULL_EVICT, NULL, NULL);
    sd_key_t a, b;
    sd_shm_meta_t m;
    apr_uint32_t v1, v2;
    apr_size_t len = 0;
    apr_uint32_t salt = 0;
    int intact = 0, i, bad = 0;
    apr_uint64_t used;

    key_n(&a, "repl", 1);
    key_n(&b, "repl", 2);
    put(st, &a, 200, 1, T0, 1800, 28800);
    put(st, &b, 300, 2, T0, 1800, 28800);
    fetch(st, &a, T0 + 1, NULL, NULL, NULL, &m);
    v1 = m.version;

    is_int(repl(st, &a, v1, 200, 5, T0 + 2), APR_SUCCESS,
           "replace with the current version");
    fetch(st, &a, T0 + 3, &len, &salt, &intact, &m);
    v2 = m.version;
    ok(len == 200 && intact && salt == 5, "replace took effect");
    ok(v2 != v1, "the version changed (%u -> %u)", v1, v2);
    is_int(m.last_access, T0 + 2, "replace counts as an access");

    is_int(repl(st, &a, v1, 999, 6, T0 + 4), APR_EAGAIN,
           "replace with a stale version: APR_EAGAIN");
    fetch(st, &a, T0 + 5, &len, &salt, &intact, &m);
    ok(len == 200 && intact && salt == 5 && m.version == v2,
       "... and nothing changed (data, length, version)");
    is_int(repl(st, &a, v2 + 1000, 10, 7, T0 + 6), APR_EAGAIN,
           "replace with a future version: APR_EAGAIN");

    /* Grow, shrink, up to max_data, over it. */
    used = stats(st).memory_used;
    is_int(repl(st, &a, v2, 3000, 8, T0 + 7), APR_SUCCESS, "grow to 3000");
    fetch(st, &a, T0 + 8, &len, &salt, &intact, &m);
    ok(len == 3000 && intact && salt == 8, "... reads back whole");
    ok(stats(st).memory_used > used, "... memory_used grew");
    is_int(repl(st, &a, m.version, 17, 9, T0 + 9), APR_SUCCESS, "shrink to 17");
    fetch(st, &a, T0 + 10, &len, &salt, &intact, &m);
    ok(len == 17 && intact && salt == 9, "... reads back whole");
    ok(stats(st).memory_used < used, "... memory_used shrank below before");
    is_int(repl(st, &a, m.version, 4096, 10, T0 + 11), APR_SUCCESS,
           "grow to exactly max_data");
    fetch(st, &a, T0 + 12, &len, &salt, &intact, &m);
    ok(len == 4096 && intact && salt == 10, "... reads back whole");
    is_int(repl(st, &a, m.version, 4097, 11, T0 + 13), APR_EINVAL,
           "max_data + 1: APR_EINVAL");
    {
        sd_shm_meta_t m3;
        fetch(st, &a, T0 + 14, &len, &salt, &intact, &m3);
        ok(len == 4096 && intact && salt == 10 && m3.version == m.version,
           "... and the record is as it was");
    }
    ok(has(st, &b, T0 + 15, 2), "the other session was never touched");

    key_n(&b, "repl", 3);
    is_int(repl(st, &b, 1, 10, 1, T0 + 16), APR_NOTFOUND,
           "replace of an absent key: APR_NOTFOUND");

    /* Many size changes in a row: no chunk leaks. */
    key_n(&b, "repl", 2);
    for (i = 0; i < 2000; i++) {
        apr_size_t l = (apr_size_t)((i * 977) % 4000) + 4;
        fetch(st, &a, T0 + 20, NULL, NULL, NULL, &m);
        if (repl(st, &a, m.version, l, (apr_uint32_t)i, T0 + 20) !=
                APR_SUCCESS ||
            !has(st, &a, T0 + 20, (apr_uint32_t)i)) {
            bad++;
        }
    }
    is_int(bad, 0, "2000 replaces of varying size all succeed and read back");
    sd_shm_delete(st, &a);
    sd_shm_delete(st, &b);
    is_int(stats(st).memory_used, 0, "memory_used 0 after deleting");
    validate_ok(st, "replaces");
}

/* A store whose memory is exactly one record of max_data: the record can
 * be stored, and updated. */
static void test_replace_tight(void)
{
    sd_shm_t *st = heap_store(4, 1024, 1024, SD_SHM_FULL_EVICT, NULL, NULL);
    sd_key_t a;
    sd_shm_meta_t m;

    key_n(&a, "tight", 1);
    is_int(put(st, &a, 1024, 1, T0, 1800, 28800), APR_SUCCESS,
           "memory == max_data: a max_data record fits");
    fetch(st, &a, T0 + 1, NULL, NULL, NULL, &m);
    is_int(repl(st, &a, m.version, 1024, 2, T0 + 2), APR_SUCCESS,
           "memory == max_data: the record can be replaced by one as big");
    ok(has(st, &a, T0 + 3, 2) || has(st, &a, T0 + 3, 1),
       "... and is still there");
    validate_ok(st, "tight replace");
}

/* ------------------------------------------------------------------ */
/* Expiry                                                              */
/* ------------------------------------------------------------------ */

static void test_expiry(void)
{
    sd_shm_t *st = heap_store(100, 64 << 10, 1024, SD_SHM_FULL_EVICT, NULL, NULL);
    sd_key_t a, b, c, d;
    sd_shm_meta_t m;
    sd_shm_stats_t s0, s;

    key_n(&a, "exp", 1);
    key_n(&b, "exp", 2);
    key_n(&c, "exp", 3);
    key_n(&d, "exp", 4);
    put(st, &a, 64, 1, T0, 100, 1000);
    put(st, &b, 64, 2, T0, 100, 1000);
    put(st, &c, 64, 3, T0, 100, 250);
    put(st, &d, 64, 4, T0, 100, 1000);
    s0 = stats(st);

    ok(has(st, &a, T0 + 100, 1), "idle 100: alive at exactly +100");
    is_int(sd_shm_get(st, &b, T0 + 101, NULL, 0, NULL, NULL), APR_TIMEUP,
           "idle 100: ended at +101 (APR_TIMEUP)");
    is_int(sd_shm_get(st, &b, T0 + 102, NULL, 0, NULL, NULL), APR_NOTFOUND,
           "idle 100: ... and gone after");
    s = stats(st);
    is_int(s.sessions, s0.sessions - 1, "... removed: sessions dropped by 1");
    is_int(s.expirations, s0.expirations + 1, "... expirations rose by 1");
    is_int(sd_shm_get(st, &b, T0 + 50, NULL, 0, NULL, NULL), APR_NOTFOUND,
           "... gone for good, even asked with an earlier time");

    /* max_age ends an active session. */
    ok(has(st, &c, T0 + 90, 3) && has(st, &c, T0 + 180, 3),
       "max_age 250: alive at +90, +180");
    fetch(st, &c, T0 + 250, NULL, NULL, NULL, &m);
    is_int(m.expires, T0 + 250,
           "... expires is created + max_age when that"
           " comes first");
    is_int(sd_shm_get(st, &c, T0 + 251, NULL, 0, NULL, NULL), APR_TIMEUP,
           "max_age 250: ended at +251 though used at +250");
    is_int(stats(st).expirations, s0.expirations + 2, "expirations +2");

    /* Replace of an ended session. */
    fetch(st, &d, T0 + 50, NULL, NULL, NULL, &m);
    is_int(repl(st, &d, m.version, 64, 9, T0 + 151), APR_NOTFOUND,
           "replace after the idle timeout: APR_NOTFOUND");
    is_int(sd_shm_get(st, &d, T0 + 151, NULL, 0, NULL, NULL), APR_NOTFOUND,
           "... and the session is gone");
    s = stats(st);
    is_int(s.sessions, 1, "only a is left");
    is_int(s.expirations, s0.expirations + 3, "expirations +3");
    sd_shm_delete(st, &a);
    is_int(stats(st).memory_used, 0, "memory_used 0");
    validate_ok(st, "expiry");
}

/* ------------------------------------------------------------------ */
/* Full store                                                          */
/* ------------------------------------------------------------------ */

static int nlogs;
static void count_log(void *baton, int level, const char *msg)
{
    ++nlogs;
    (void)baton;
    (void)level;
    (void)msg;
}

static void test_full_refuse(void)
{
    sd_shm_t *st = heap_store(4, 16 << 10, 1024, SD_SHM_FULL_REFUSE, NULL, NULL);
    sd_key_t k[6];
    int i, all = 1;
    sd_shm_stats_t s;

    for (i = 0; i < 6; i++) {
        key_n(&k[i], "refuse", i);
    }
    sd_shm_set_log(st, count_log, NULL);
    nlogs = 0;
    for (i = 0; i < 4; i++) {
        all &= put(st, &k[i], 100, (apr_uint32_t)i, T0, 1800, 28800) ==
               APR_SUCCESS;
    }
    ok(all, "refuse: 4 sessions fill capacity 4");
    is_int(put(st, &k[4], 100, 4, T0 + 1, 1800, 28800), APR_ENOSPC,
           "refuse: the 5th create is APR_ENOSPC");
    for (i = 0, all = 1; i < 4; i++) {
        all &= has(st, &k[i], T0 + 2, (apr_uint32_t)i);
    }
    ok(all, "refuse: the 4 existing sessions are intact");
    is_int(sd_shm_get(st, &k[4], T0 + 2, NULL, 0, NULL, NULL), APR_NOTFOUND,
           "refuse: the refused one is not there");
    s = stats(st);
    ok(s.refusals == 1 && s.evictions == 0 && s.sessions == 4,
       "refuse: refusals 1, evictions 0, sessions 4");
    is_int(nlogs, 1, "refuse: one warning logged");
    put(st, &k[5], 100, 5, T0 + 30, 1800, 28800);
    is_int(nlogs, 1, "refuse: no second warning within a minute");
    put(st, &k[5], 100, 5, T0 + 62, 1800, 28800);
    is_int(nlogs, 2, "refuse: another warning after a minute");
    is_int(stats(st).refusals, 3, "refuse: 3 refusals counted");

    /* An ended session makes room even under refuse. */
    is_int(put(st, &k[4], 100, 4, T0 + 2000, 1800, 28800), APR_SUCCESS,
           "refuse: room again once the others ended");
    validate_ok(st, "refuse");

    /* The policy can be changed on a live store. */
    sd_shm_set_when_full(st, SD_SHM_FULL_EVICT);
    for (i = 0, all = 1; i < 3; i++) {
        all &= put(st, &k[i], 100, 10, T0 + 2001, 1800, 28800) == APR_SUCCESS;
    }
    ok(all, "(refill)");
    is_int(put(st, &k[5], 100, 5, T0 + 2002, 1800, 28800), APR_SUCCESS,
           "after set_when_full(EVICT), a create on a full store succeeds");
    {
        sd_shm_params_t p;
        sd_shm_params(st, &p);
        is_int(p.when_full, SD_SHM_FULL_EVICT, "... and params say evict");
    }
    validate_ok(st, "policy change");
}

static void test_full_evict(void)
{
    sd_shm_t *st = heap_store(4, 16 << 10, 1024, SD_SHM_FULL_EVICT, NULL, NULL);
    sd_key_t A, B, C, D, E, F;
    sd_shm_meta_t m;
    sd_shm_stats_t s;

    key_n(&A, "evict", 1);
    key_n(&B, "evict", 2);
    key_n(&C, "evict", 3);
    key_n(&D, "evict", 4);
    key_n(&E, "evict", 5);
    key_n(&F, "evict", 6);
    put(st, &A, 100, 1, T0, 1800, 28800);
    put(st, &B, 100, 2, T0, 1800, 28800);
    put(st, &C, 100, 3, T0, 1800, 28800);
    put(st, &D, 100, 4, T0, 1800, 28800);
    /* Use order now, oldest first: C D A B. */
    sd_shm_get(st, &A, T0 + 1, NULL, 0, NULL, &m);
    fetch(st, &B, T0 + 2, NULL, NULL, NULL, &m);
    repl(st, &B, m.version, 100, 2, T0 + 2);
    is_int(put(st, &E, 100, 5, T0 + 3, 1800, 28800), APR_SUCCESS,
           "evict: create on a full store succeeds");
    s = stats(st);
    ok(s.sessions == 4 && s.evictions == 1 && s.refusals == 0,
       "evict: 4 sessions, 1 eviction");
    is_int(sd_shm_get(st, &C, T0 + 4, NULL, 0, NULL, NULL), APR_NOTFOUND,
           "evict: C, the least recently used, was evicted");
    /* Order now: D A B E; touch D: A B E D. */
    ok(has(st, &D, T0 + 5, 4), "evict: D kept");
    put(st, &F, 100, 6, T0 + 6, 1800, 28800);
    is_int(sd_shm_get(st, &A, T0 + 7, NULL, 0, NULL, NULL), APR_NOTFOUND,
           "evict: then A (get made it newer than C, not than D)");
    ok(has(st, &B, T0 + 8, 2) && has(st, &E, T0 + 8, 5) &&
           has(st, &D, T0 + 8, 4) && has(st, &F, T0 + 8, 6),
       "evict: B, D, E, F kept");
    is_int(stats(st).evictions, 2, "evict: 2 evictions");
    validate_ok(st, "evict LRU");
}

/* An ended session is reclaimed before any live one is evicted. */
static void test_reclaim_first(int cap)
{
    sd_shm_t *st = heap_store((apr_uint64_t)cap, 16 << 10, 1024,
                                SD_SHM_FULL_EVICT, NULL, NULL);
    sd_key_t k[16], x;
    int i, all = 1;
    sd_shm_stats_t s;

    for (i = 0; i < cap; i++) {
        key_n(&k[i], "reclaim", i);
    }
    key_n(&x, "reclaim-new", cap);
    /* k[0] has a short max_age; the others are long-lived. */
    put(st, &k[0], 100, 0, T0, 1800, 50);
    for (i = 1; i < cap; i++) {
        put(st, &k[i], 100, (apr_uint32_t)i, T0, 1800, 28800);
    }
    /* k[0] is the most recently used when it ends. */
    ok(has(st, &k[0], T0 + 49, 0), "cap %d: short-lived session used at +49",
       cap);
    is_int(put(st, &x, 100, 99, T0 + 51, 1800, 28800), APR_SUCCESS,
           "cap %d: create on a full store at +51", cap);
    s = stats(st);
    is_int(s.evictions, 0, "cap %d: no live session evicted", cap);
    is_int(s.expirations, 1, "cap %d: the ended one was reclaimed", cap);
    for (i = 1; i < cap; i++) {
        all &= has(st, &k[i], T0 + 52, (apr_uint32_t)i);
    }
    ok(all && has(st, &x, T0 + 52, 99), "cap %d: all live sessions kept", cap);
    validate_ok(st, "reclaim");
}

/* The same policies when memory, not the entry count, runs out. */
static void test_memory_full(sd_shm_when_full_t w)
{
    const char *pn = w == SD_SHM_FULL_EVICT ? "evict" : "refuse";
    sd_shm_t *st = heap_store(100, 4096, 1024, w, NULL, NULL);
    sd_key_t k[10];
    int i, n = 0, all = 1;
    apr_status_t rv = APR_SUCCESS;
    sd_shm_stats_t s;

    for (i = 0; i < 10; i++) {
        key_n(&k[i], pn, 100 + i);
    }
    /* Fill until the first sign of fullness. */
    for (i = 0; i < 10; i++) {
        rv = put(st, &k[i], 1000, (apr_uint32_t)i, T0 + i, 1800, 28800);
        s = stats(st);
        if (rv != APR_SUCCESS || s.evictions) {
            break;
        }
        n++;
    }
    ok(n >= 3 && n <= 4, "%s: %d records of 1000 bytes fit in 4096", pn, n);
    if (w == SD_SHM_FULL_REFUSE) {
        is_int(rv, APR_ENOSPC, "refuse: the next one is APR_ENOSPC");
        s = stats(st);
        ok(s.refusals == 1 && s.evictions == 0 && s.sessions == (unsigned)n,
           "refuse: 1 refusal, nothing evicted");
        for (i = 0; i < n; i++) {
            all &= has(st, &k[i], T0 + 20, (apr_uint32_t)i);
        }
        ok(all, "refuse: all %d intact", n);
        /* A replace that would need more memory is refused, record kept.
         * Shrink k[1] to 2 chunks, fill the room with another session, then
         * try to grow k[1] back to 16 chunks. */
        {
            sd_shm_meta_t m;
            sd_key_t f;
            key_n(&f, pn, 200);
            fetch(st, &k[1], T0 + 21, NULL, NULL, NULL, &m);
            is_int(repl(st, &k[1], m.version, 100, 50, T0 + 21), APR_SUCCESS,
                   "refuse: shrinking on a full memory succeeds");
            is_int(put(st, &f, 14 * 64, 60, T0 + 21, 1800, 28800), APR_SUCCESS,
                   "refuse: the freed room takes a new session");
            fetch(st, &k[1], T0 + 22, NULL, NULL, NULL, &m);
            is_int(repl(st, &k[1], m.version, 1024, 51, T0 + 22), APR_ENOSPC,
                   "refuse: a grow with no room is APR_ENOSPC");
            ok(has(st, &k[1], T0 + 23, 50), "refuse: ... old record kept");
            sd_shm_delete(st, &f);
        }
    }
    else {
        is_int(rv, APR_SUCCESS, "evict: the next one succeeds");
        s = stats(st);
        is_int(s.evictions, 1, "evict: by evicting one");
        is_int(sd_shm_get(st, &k[0], T0 + 20, NULL, 0, NULL, NULL),
               APR_NOTFOUND, "evict: the oldest one");
        for (i = 1; i <= n; i++) {
            all &= has(st, &k[i], T0 + 20, (apr_uint32_t)i);
        }
        ok(all, "evict: the others intact");
        /* k[1] is now the least recently used; growing k[n] evicts it,
         * never the record being replaced. k[n] first shrinks to 2 chunks
         * and a new session takes the room, so growing it back needs 14
         * chunks that only an eviction can give. */
        {
            sd_shm_meta_t m;
            sd_key_t f;
            key_n(&f, pn, 200);
            fetch(st, &k[n], T0 + 25, NULL, NULL, NULL, &m);
            repl(st, &k[n], m.version, 100, 76, T0 + 25);
            put(st, &f, 14 * 64, 60, T0 + 26, 1800, 28800);
            sd_shm_get(st, &k[1], T0 + 30, NULL, 0, NULL, NULL);
            for (i = 2; i <= n; i++) {
                sd_shm_get(st, &k[i], T0 + 30 + i, NULL, 0, NULL, NULL);
            }
            sd_shm_get(st, &f, T0 + 39, NULL, 0, NULL, NULL);
            /* LRU order now: k1 (oldest) ... kn, f; grow kn. */
            fetch(st, &k[n], T0 + 40, NULL, NULL, NULL, &m);
            is_int(repl(st, &k[n], m.version, 1024, 77, T0 + 40), APR_SUCCESS,
                   "evict: a grow on a full memory succeeds");
            ok(has(st, &k[n], T0 + 41, 77), "evict: ... replaced");
            is_int(sd_shm_get(st, &k[1], T0 + 42, NULL, 0, NULL, NULL),
                   APR_NOTFOUND, "evict: ... by evicting the LRU one");
            ok(has(st, &f, T0 + 43, 60), "evict: ... and no other");
            sd_shm_delete(st, &f);
        }
    }
    for (i = 0; i < 10; i++) {
        sd_shm_delete(st, &k[i]);
    }
    s = stats(st);
    ok(s.sessions == 0 && s.memory_used == 0, "%s: empty after deleting", pn);
    validate_ok(st, w == SD_SHM_FULL_EVICT ? "memory full, evict"
                                       : "memory full, refuse");
}

/* When memory is full, an existing session can still be updated in place
 * of its own size: "full" is about new sessions (the README: refuse answers new
 * logins with 503; evict drops a session to make room for a new one). */
static void test_replace_on_full_memory(sd_shm_when_full_t w)
{
    const char *pn = w == SD_SHM_FULL_EVICT ? "evict" : "refuse";
    sd_shm_t *st = heap_store(100, 4096, 1024, w, NULL, NULL);
    sd_key_t k[8];
    sd_shm_meta_t m;
    int i, n = 0;
    sd_shm_stats_t s0;

    for (i = 0; i < 8; i++) {
        key_n(&k[i], "fullrepl", i);
    }
    for (i = 0; i < 8; i++) {
        if (put(st, &k[i], 1000, (apr_uint32_t)i, T0, 1800, 28800) !=
                APR_SUCCESS ||
            stats(st).evictions) {
            break;
        }
        n++;
    }
    s0 = stats(st);
    fetch(st, &k[n - 1], T0 + 1, NULL, NULL, NULL, &m);
    is_int(repl(st, &k[n - 1], m.version, 1000, 100, T0 + 1), APR_SUCCESS,
           "%s, memory full: a same-size replace succeeds", pn);
    fetch(st, &k[n - 1], T0 + 2, NULL, NULL, NULL, &m);
    is_int(repl(st, &k[n - 1], m.version, 10, 101, T0 + 2), APR_SUCCESS,
           "%s, memory full: a shrinking replace succeeds", pn);
    is_int(stats(st).evictions, s0.evictions,
           "%s, memory full: updates evicted no other session", pn);
    validate_ok(st, "replace on full memory");
}

/* Many big records in a small memory, cycling: eviction keeps working. */
static void test_memory_cycle(void)
{
    sd_shm_t *st = heap_store(1000, 8192, 2048, SD_SHM_FULL_EVICT, NULL, NULL);
    sd_key_t k;
    int i, bad = 0;
    sd_shm_stats_t s;

    for (i = 0; i < 3000; i++) {
        key_n(&k, "cycle", i);
        if (put(st, &k, (apr_size_t)(500 + (i * 37) % 1500), (apr_uint32_t)i,
                T0 + i, 1800, 28800) != APR_SUCCESS ||
            !has(st, &k, T0 + i, (apr_uint32_t)i)) {
            bad++;
        }
    }
    s = stats(st);
    is_int(bad, 0, "3000 records of 500..2000 bytes through 8 KB memory");
    ok(s.evictions >= 2990 && s.sessions + s.evictions == 3000,
       "... evictions %llu + sessions %llu == 3000",
       (unsigned long long)s.evictions, (unsigned long long)s.sessions);
    ok(s.memory_used <= s.memory_total, "... memory_used within total");
    validate_ok(st, "memory cycling");
}

static void test_reuse(void)
{
    sd_shm_t *st = heap_store(4, 1024, 256, SD_SHM_FULL_REFUSE, NULL, NULL);
    sd_key_t k;
    int i, bad = 0;
    sd_shm_stats_t s;

    for (i = 0; i < 100000; i++) {
        key_n(&k, "reuse", i);
        if (put(st, &k, 200, (apr_uint32_t)i, T0, 1800, 28800) != APR_SUCCESS ||
            sd_shm_delete(st, &k) != APR_SUCCESS) {
            if (bad++ == 0) {
                diag("first failure at iteration %d", i);
            }
        }
    }
    s = stats(st);
    is_int(bad, 0, "100000 create/delete in a 4-entry, 1 KB store");
    ok(s.sessions == 0 && s.memory_used == 0 && s.refusals == 0,
       "... ends empty, never refused");
    validate_ok(st, "100000 create/delete");
}

/* ------------------------------------------------------------------ */
/* Attach, foreach, restore                                            */
/* ------------------------------------------------------------------ */

static void test_attach(void)
{
    void *base;
    apr_size_t size;
    sd_shm_t *st =
        heap_store(50, 16 << 10, 1024, SD_SHM_FULL_REFUSE, &base, &size);
    sd_shm_t *st2 = NULL, *st3 = NULL;
    sd_shm_params_t p;
    sd_key_t a, b;
    void *copy;

    key_n(&a, "attach", 1);
    key_n(&b, "attach", 2);
    put(st, &a, 300, 1, T0, 1800, 28800);
    is_int(sd_shm_attach(pool, base, size, &st2), APR_SUCCESS,
           "attach to a formatted segment");
    if (st2 == NULL) {
        return;
    }
    sd_shm_params(st2, &p);
    ok(p.capacity == 50 && p.memory == (16 << 10) && p.max_data == 1024 &&
           p.when_full == SD_SHM_FULL_REFUSE,
       "attach: same parameters");
    ok(has(st2, &a, T0 + 1, 1), "attach: sees the existing session");
    put(st2, &b, 400, 2, T0 + 2, 1800, 28800);
    ok(has(st, &b, T0 + 3, 2), "the first handle sees what the second made");
    is_int(stats(st2).sessions, 2, "attach: 2 sessions");

    /* Offsets, not pointers: a copy elsewhere is the same store. */
    copy = malloc(size);
    memcpy(copy, base, size);
    is_int(sd_shm_attach(pool, copy, size, &st3), APR_SUCCESS,
           "attach to a copy at another address");
    ok(st3 && has(st3, &a, T0 + 4, 1) && has(st3, &b, T0 + 4, 2),
       "... holds both sessions");
    if (st3) {
        validate_ok(st3, "attach to a copy");
    }
    free(copy);

    is_int(sd_shm_attach(pool, base, size - 64, &st3), SD_SHM_EMISMATCH,
           "attach with a size smaller than the segment: SD_SHM_EMISMATCH");
    is_int(sd_shm_layout_of(base, size), SD_SHM_LAYOUT,
           "sd_shm_layout_of: this build's layout %d", SD_SHM_LAYOUT);
    {
        unsigned char *g = malloc(size);
        unsigned int seed = 7;
        apr_size_t i;
        for (i = 0; i < size; i++) {
            g[i] = (unsigned char)((seed = seed * 1103515245u + 12345u) >> 16);
        }
        is_int(sd_shm_attach(pool, g, size, &st3), SD_SHM_ENOTSTORE,
               "attach to random bytes: SD_SHM_ENOTSTORE");
        memset(g, 0, size);
        is_int(sd_shm_attach(pool, g, size, &st3), SD_SHM_ENOTSTORE,
               "attach to zeros: SD_SHM_ENOTSTORE");
        is_int(sd_shm_layout_of(g, size), 0, "... layout_of: 0");
        memcpy(g, base, size);
        g[0] ^= 0x01;
        is_int(sd_shm_attach(pool, g, size, &st3), SD_SHM_ENOTSTORE,
               "attach with a wrong magic: SD_SHM_ENOTSTORE");
        memcpy(g, base, size);
        is_int(sd_shm_attach(pool, g, 16, &st3), SD_SHM_ENOTSTORE,
               "attach to 16 bytes: SD_SHM_ENOTSTORE");
        /* The layout version sits at offset 8 in every layout. */
        {
            apr_uint32_t other[] = {SD_SHM_LAYOUT - 1, SD_SHM_LAYOUT + 1, 0};
            int i, refused = 0, told = 0;
            for (i = 0; i < 3; i++) {
                memcpy(g, base, size);
                memcpy(g + 8, &other[i], 4);
                st3 = NULL;
                refused += sd_shm_attach(pool, g, size, &st3) ==
                               SD_SHM_ELAYOUT &&
                           st3 == NULL;
                told += sd_shm_layout_of(g, size) == other[i];
            }
            is_int(refused, 3, "a segment of an older, a newer or layout 0: "
                               "SD_SHM_ELAYOUT, no store handed out");
            is_int(told, 3, "... and layout_of says which layout it holds");
            ok(has(st, &a, T0 + 5, 1), "... the live store is untouched");
        }
        /* Our layout, but a header that does not describe the segment:
         * its capacity (the only 64-bit word of value 50 near the start)
         * changed to 51. */
        {
            apr_uint64_t v, cap = 51;
            apr_size_t off;
            memcpy(g, base, size);
            for (off = 16; off + 8 <= 128; off += 8) {
                memcpy(&v, g + off, 8);
                if (v == 50) {
                    memcpy(g + off, &cap, 8);
                    break;
                }
            }
            is_int(sd_shm_attach(pool, g, size, &st3), SD_SHM_EMISMATCH,
                   "a header whose capacity does not give this geometry: "
                   "SD_SHM_EMISMATCH");
        }
        free(g);
    }
    validate_ok(st, "attach");
}

/* Corrupt each header byte of a segment: attach must refuse it or give a
 * store that still validates; never a crash. Run in a child so a crash
 * is a failed test, not a dead test program. */
static void test_attach_header_damage(void)
{
    void *base;
    apr_size_t size;
    sd_shm_t *st =
        heap_store(2000, 256 << 10, 1024, SD_SHM_FULL_EVICT, &base, &size);
    sd_key_t a;
    unsigned char *g = malloc(size);
    int off, crashes = 0, accepted = 0, bad_valid = 0;
    char where[400] = "";

    key_n(&a, "hdr", 1);
    put(st, &a, 300, 1, T0, 1800, 28800);
    for (off = 0; off < 192; off++) {
        pid_t pid;
        int status;
        memcpy(g, base, size);
        g[off] ^= 0x5a;
        tap_flush();
        pid = fork();
        if (pid == 0) {
            sd_shm_t *s3 = NULL;
            char why[200];
            if (!freopen("/dev/null", "w", stderr)) {
                _exit(99);
            }
            alarm(5);
            if (sd_shm_attach(pool, g, size, &s3) != APR_SUCCESS) {
                _exit(10);
            }
            if (sd_shm_validate(s3, why, sizeof why) != APR_SUCCESS) {
                _exit(12);
            }
            sd_shm_get(s3, &a, T0 + 1, NULL, 0, NULL, NULL);
            _exit(11);
        }
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 11) {
            accepted++;
        }
        else if (WIFEXITED(status) && WEXITSTATUS(status) == 12) {
            bad_valid++;
        }
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 10) {
            if (crashes++ < 40) {
                apr_snprintf(where + strlen(where),
                             sizeof where - strlen(where), " %d", off);
            }
        }
    }
    free(g);
    diag("header damage: %d accepted and valid, %d accepted but invalid",
         accepted, bad_valid);
    if (!ok(crashes == 0,
            "a damaged header byte (0..191) never crashes"
            " attach, validate or get (%d crashes)",
            crashes)) {
        diag("crashing header byte offsets:%s", where);
    }
}

typedef struct {
    sd_key_t keys[64];
    int nkeys;
    int seen[64];
    int unknown;
    int full_key_mismatch;
    int bad_data;
    int visits;
    int stop_after;
    apr_int64_t created[64], last[64];
    apr_uint32_t idle[64], max_age[64];
} visit_t;

static int visitor(void *baton, const sd_key_t *key, const void *data,
                   apr_size_t len, apr_int64_t created, apr_int64_t last_access,
                   apr_uint32_t idle, apr_uint32_t max_age)
{
    visit_t *v = baton;
    int i;

    v->visits++;
    for (i = 0; i < v->nkeys; i++) {
        /* The store keeps SD_SHM_KEY_BYTES of a key; the rest of the
         * visited key must be zero, as sd_shm.h says. */
        if (memcmp(v->keys[i].b, key->b, SD_SHM_KEY_BYTES) == 0) {
            static const unsigned char zero[SD_KEY_LEN];
            v->seen[i]++;
            if (memcmp(key->b + SD_SHM_KEY_BYTES, zero,
                       SD_KEY_LEN - SD_SHM_KEY_BYTES) != 0) {
                v->full_key_mismatch++;
            }
            if (!check_fill(data, len, &v->keys[i], NULL)) {
                v->bad_data++;
            }
            v->created[i] = created;
            v->last[i] = last_access;
            v->idle[i] = idle;
            v->max_age[i] = max_age;
            break;
        }
    }
    if (i == v->nkeys) {
        v->unknown++;
    }
    return v->stop_after && v->visits >= v->stop_after;
}

typedef struct {
    sd_shm_t *to;
    apr_int64_t now;
    int moved;
    int fails;
} mover_t;

static int mover(void *baton, const sd_key_t *key, const void *data,
                 apr_size_t len, apr_int64_t created, apr_int64_t last_access,
                 apr_uint32_t idle, apr_uint32_t max_age)
{
    mover_t *mv = baton;
    if (sd_shm_restore(mv->to, key, data, len, created, last_access, idle,
                         max_age, mv->now) == APR_SUCCESS) {
        mv->moved++;
    }
    else {
        mv->fails++;
    }
    return 0;
}

static void test_foreach_restore(void)
{
    /* Big enough to be split into stripes. */
    sd_shm_t *st =
        heap_store(20000, 4 << 20, 1024, SD_SHM_FULL_EVICT, NULL, NULL);
    sd_shm_t *st2 =
        heap_store(100, 64 << 10, 1024, SD_SHM_FULL_EVICT, NULL, NULL);
    static visit_t v;
    int i, once = 1;
    sd_shm_meta_t m;

    memset(&v, 0, sizeof v);
    v.nkeys = 50;
    for (i = 0; i < 50; i++) {
        key_n(&v.keys[i], "each", i);
        put(st, &v.keys[i], (apr_size_t)(10 + i * 20), (apr_uint32_t)i, T0 + i,
            600 + i, 7200 + i);
    }
    /* Three that are gone must not be visited. */
    sd_shm_delete(st, &v.keys[7]);
    sd_shm_delete(st, &v.keys[8]);
    sd_shm_delete(st, &v.keys[9]);
    sd_shm_foreach(st, visitor, &v);
    for (i = 0; i < 50; i++) {
        int want = (i >= 7 && i <= 9) ? 0 : 1;
        if (v.seen[i] != want) {
            once = 0;
            diag("key %d visited %d times", i, v.seen[i]);
        }
    }
    is_int(v.visits, 47, "foreach: 47 visits for 47 live sessions");
    ok(once && v.unknown == 0, "foreach: each live session exactly once,"
                               " no deleted or unknown one");
    is_int(v.bad_data, 0, "foreach: every record's data is whole");
    ok(v.created[20] == T0 + 20 && v.last[20] == T0 + 20 && v.idle[20] == 620 &&
           v.max_age[20] == 7220,
       "foreach: times and timeouts as created");
    is_int(v.full_key_mismatch, 0,
           "foreach: the visited key is the stored prefix, zero-padded");

    memset(v.seen, 0, sizeof v.seen);
    v.visits = 0;
    v.stop_after = 5;
    sd_shm_foreach(st, visitor, &v);
    is_int(v.visits, 5, "foreach stops when the callback returns non-zero");

    /* Restore keeps the times. */
    is_int(sd_shm_restore(st2, &v.keys[0], "\0\0\0\0", 4, T0 - 500, T0 - 100,
                            200, 1000, T0),
           APR_SUCCESS, "restore a session");
    memset(&m, 0, sizeof m);
    is_int(sd_shm_get(st2, &v.keys[0], T0, NULL, 0, NULL, &m), APR_SUCCESS,
           "... found");
    is_int(m.created, T0 - 500, "restore: created kept");
    is_int(m.last_access, T0 - 100, "restore: last_access kept");
    is_int(m.expires, T0 + 200, "restore: expires from the idle timeout");
    sd_shm_restore(st2, &v.keys[1], "\0\0\0\0", 4, T0 - 950, T0 - 10, 200,
                     1000, T0);
    sd_shm_get(st2, &v.keys[1], T0, NULL, 0, NULL, &m);
    is_int(m.expires, T0 + 50, "restore: expires from max_age when sooner");
    sd_shm_restore(st2, &v.keys[2], "\0\0\0\0", 4, T0 - 500, T0 - 300, 200,
                     1000, T0);
    is_int(sd_shm_get(st2, &v.keys[2], T0, NULL, 0, NULL, NULL), APR_NOTFOUND,
           "restore of an already ended session: not there");
    sd_shm_restore(st2, &v.keys[3], "\0\0\0\0", 4, T0 - 1001, T0, 200, 1000,
                     T0);
    is_int(sd_shm_get(st2, &v.keys[3], T0, NULL, 0, NULL, NULL), APR_NOTFOUND,
           "restore past max_age: not there");
    is_int(stats(st2).sessions, 2, "two restored sessions live");
    is_int(
        sd_shm_restore(st2, &v.keys[0], "\0\0\0\0", 4, T0, T0, 200, 1000, T0),
        APR_EEXIST, "restore of a present key: APR_EEXIST");

    /* Move everything from the big store into a smaller one through
     * foreach and restore, as a resize does: the old keys work there. */
    {
        sd_shm_t *st3 =
            heap_store(200, 256 << 10, 1024, SD_SHM_FULL_EVICT, NULL, NULL);
        mover_t mv;
        int found = 0;

        mv.to = st3;
        mv.now = T0 + 60;
        mv.fails = 0;
        mv.moved = 0;
        sd_shm_foreach(st, mover, &mv);
        ok(mv.moved == 47 && mv.fails == 0, "moved %d sessions, %d failed",
           mv.moved, mv.fails);
        for (i = 0; i < 50; i++) {
            found += has(st3, &v.keys[i], T0 + 61, (apr_uint32_t)i);
        }
        is_int(found, 47, "all 47 found in the new store by their keys");
        validate_ok(st3, "move by foreach + restore");
    }
    validate_ok(st, "foreach");
    validate_ok(st2, "restore");
}

/* ------------------------------------------------------------------ */
/* Several processes on one shared segment                             */
/* ------------------------------------------------------------------ */

static sd_shm_t *shm_store(apr_shm_t **shmp, apr_uint64_t cap,
                             apr_uint64_t mem, apr_uint32_t maxd,
                             sd_shm_when_full_t w)
{
    sd_shm_params_t p = params(cap, mem, maxd, w);
    apr_size_t size = sd_shm_size(&p);
    apr_shm_t *shm = NULL;
    sd_shm_t *st = NULL;
    apr_status_t rv;

    rv = apr_shm_create(&shm, size, NULL, pool);
    if (rv != APR_SUCCESS) {
        diag("apr_shm_create(%lu) failed: %d", (unsigned long)size, rv);
        return NULL;
    }
    memset(apr_shm_baseaddr_get(shm), 0, size);
    rv = sd_shm_format(pool, apr_shm_baseaddr_get(shm), size, &p, &st);
    if (rv != APR_SUCCESS) {
        diag("sd_shm_format on shm failed: %d", rv);
        return NULL;
    }
    *shmp = shm;
    return st;
}

/* Wait for every child; returns how many did not exit with 0. */
static int wait_all(pid_t *pids, int n, int *codes)
{
    int i, bad = 0;
    for (i = 0; i < n; i++) {
        int status = 0;
        if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            bad++;
            if (codes) {
                codes[i] = WIFEXITED(status) ? WEXITSTATUS(status)
                                             : 1000 + WTERMSIG(status);
            }
        }
        else if (codes) {
            codes[i] = 0;
        }
    }
    return bad;
}

#define NCHILD 4
#define INCREMENTS 5000

static void test_counter(void)
{
    apr_shm_t *shm = NULL;
    sd_shm_t *st = shm_store(&shm, 1000, 1 << 20, 1024, SD_SHM_FULL_REFUSE);
    sd_key_t k;
    pid_t pids[NCHILD];
    int codes[NCHILD];
    char buf[64];
    apr_size_t len = 0;
    int i, bad;
    long total = -1;
    sd_shm_stats_t s;

    if (!ok(st != NULL, "a store in anonymous shared memory")) {
        return;
    }
    key_n(&k, "counter", 0);
    sd_shm_create(st, &k, "count=0", 7, T0, 100000, 100000);
    tap_flush();
    for (i = 0; i < NCHILD; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            int n, retries = 0;
            alarm(60);
            for (n = 0; n < INCREMENTS; n++) {
                for (;;) {
                    char b[64];
                    apr_size_t l = 0;
                    sd_shm_meta_t m;
                    apr_status_t rv;
                    long c;
                    int w;
                    rv = sd_shm_get(st, &k, T0 + 1, b, sizeof b - 1, &l, &m);
                    if (rv != APR_SUCCESS || l >= sizeof b ||
                        strncmp(b, "count=", 6) != 0) {
                        _exit(2);
                    }
                    b[l] = '\0';
                    c = strtol(b + 6, NULL, 10);
                    w = snprintf(b, sizeof b, "count=%ld", c + 1);
                    rv = sd_shm_replace(st, &k, m.version, b, (apr_size_t)w,
                                          T0 + 1);
                    if (rv == APR_SUCCESS) {
                        break;
                    }
                    if (rv != APR_EAGAIN) {
                        _exit(3);
                    }
                    retries++;
                }
            }
            _exit(0);
        }
    }
    bad = wait_all(pids, NCHILD, codes);
    if (!is_int(bad, 0, "%d children did %d read-modify-writes each", NCHILD,
                INCREMENTS)) {
        for (i = 0; i < NCHILD; i++) {
            diag("child %d: exit %d", i, codes[i]);
        }
    }
    memset(buf, 0, sizeof buf);
    if (sd_shm_get(st, &k, T0 + 2, buf, sizeof buf - 1, &len, NULL) ==
            APR_SUCCESS &&
        strncmp(buf, "count=", 6) == 0) {
        total = strtol(buf + 6, NULL, 10);
    }
    is_int(total, NCHILD * INCREMENTS,
           "the counter is exactly %d: no lost"
           " update",
           NCHILD * INCREMENTS);
    s = stats(st);
    is_int(s.sessions, 1, "one session");
    validate_ok(st, "concurrent increments");
    apr_shm_destroy(shm);
}

/* Random create/get/replace/delete on a shared key set from every child.
 * Each child checks every record it reads is whole and is the key's. */
static int churn_child(sd_shm_t *st, int id, int nkeys, double secs)
{
    unsigned int seed = 1234567u * (unsigned)(id + 1);
    struct timespec t0, t;
    long ops = 0;
    int corrupt = 0, odd = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        sd_key_t k;
        int r, which;
        apr_status_t rv;
        sd_shm_meta_t m;
        unsigned char buf[2100];
        apr_size_t len = 0;

        if ((ops & 255) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >
                secs) {
                break;
            }
        }
        ops++;
        seed = seed * 1103515245u + 12345u;
        which = (int)((seed >> 8) % (unsigned)nkeys);
        r = (int)((seed >> 20) % 100);
        key_n(&k, "churn", which);
        if (r < 25) {
            rv = put(st, &k, 4 + (seed >> 3) % 2000, seed, T0, 100000, 100000);
            if (rv != APR_SUCCESS && rv != APR_EEXIST && rv != APR_ENOSPC) {
                odd++;
            }
        }
        else if (r < 60) {
            rv = sd_shm_get(st, &k, T0, buf, sizeof buf, &len, &m);
            if (rv == APR_SUCCESS && !check_fill(buf, len, &k, NULL)) {
                corrupt++;
            }
            else if (rv != APR_SUCCESS && rv != APR_NOTFOUND) {
                odd++;
            }
        }
        else if (r < 85) {
            rv = sd_shm_get(st, &k, T0, buf, sizeof buf, &len, &m);
            if (rv == APR_SUCCESS) {
                if (!check_fill(buf, len, &k, NULL)) {
                    corrupt++;
                }
                rv = repl(st, &k, m.version, 4 + (seed >> 5) % 2000, seed, T0);
                if (rv != APR_SUCCESS && rv != APR_EAGAIN &&
                    rv != APR_NOTFOUND && rv != APR_ENOSPC) {
                    odd++;
                }
            }
        }
        else {
            rv = sd_shm_delete(st, &k);
            if (rv != APR_SUCCESS && rv != APR_NOTFOUND) {
                odd++;
            }
        }
    }
    if (corrupt) {
        return 2;
    }
    if (odd) {
        return 3;
    }
    return ops > 1000 ? 0 : 4;
}

static void test_churn(const char *what, apr_uint64_t cap, apr_uint64_t mem,
                       int nkeys, double secs)
{
    apr_shm_t *shm = NULL;
    sd_shm_t *st = shm_store(&shm, cap, mem, 2048, SD_SHM_FULL_EVICT);
    pid_t pids[NCHILD];
    int codes[NCHILD];
    int i, live = 0, whole = 1, bad;
    sd_shm_stats_t s;

    if (st == NULL) {
        ok(0, "%s: shared store", what);
        return;
    }
    tap_flush();
    for (i = 0; i < NCHILD; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            alarm(60);
            _exit(churn_child(st, i, nkeys, secs));
        }
    }
    bad = wait_all(pids, NCHILD, codes);
    if (!is_int(bad, 0, "%s: %d children churned %.1f s, every read whole",
                what, NCHILD, secs)) {
        for (i = 0; i < NCHILD; i++) {
            diag("child %d: exit %d (2 corrupt read, 3 odd status)", i,
                 codes[i]);
        }
    }
    validate_ok(st, what);
    for (i = 0; i < nkeys; i++) {
        sd_key_t k;
        int intact = 0;
        key_n(&k, "churn", i);
        if (fetch(st, &k, T0, NULL, NULL, &intact, NULL) == APR_SUCCESS) {
            live++;
            whole &= intact;
        }
    }
    s = stats(st);
    diag("%s: %d live, %llu hits, %llu misses, %llu evictions", what, live,
         (unsigned long long)s.hits, (unsigned long long)s.misses,
         (unsigned long long)s.evictions);
    is_int(s.sessions, live, "%s: sessions equals the keys found", what);
    ok(whole, "%s: every surviving record is whole", what);
    for (i = 0; i < nkeys; i++) {
        sd_key_t k;
        key_n(&k, "churn", i);
        sd_shm_delete(st, &k);
    }
    s = stats(st);
    ok(s.sessions == 0 && s.memory_used == 0,
       "%s: empty after deleting every key", what);
    validate_ok(st, what);
    apr_shm_destroy(shm);
}

/* ------------------------------------------------------------------ */
/* A process killed inside the store                                   */
/* ------------------------------------------------------------------ */

static int kill_at;
static int points_seen[64];

static void kill_hook(int point)
{
    if (point == kill_at) {
        raise(SIGKILL);
    }
}

/* What the doomed child does: every kind of change, including evictions
 * of the parent's "victim" sessions (from another stripe, when there are
 * several), a restore that leaves an LRU list to be sorted, and the owner
 * operations: creates at a cap, a list, removes and "log out
 * everywhere". */
static void crash_child_ops(sd_shm_t *st)
{
    sd_key_t k;
    sd_shm_meta_t m;
    sd_owner_t o, other;
    apr_array_header_t *list;
    apr_uint64_t ended;
    int i, n = 0;

    for (i = 0; i < 5; i++) {
        key_n(&k, "child", i);
        put(st, &k, 300, 1, T0 + 10, 1800, 28800);
    }
    for (i = 4; i >= 0; i--) {
        key_n(&k, "child", i);
        sd_shm_get(st, &k, T0 + 11, NULL, 0, NULL, NULL);
    }
    for (i = 0; i < 5; i++) {
        key_n(&k, "child", i);
        if (sd_shm_get(st, &k, T0 + 12, NULL, 0, NULL, &m) == APR_SUCCESS) {
            repl(st, &k, m.version, 900, 2, T0 + 12);
        }
        if (sd_shm_get(st, &k, T0 + 13, NULL, 0, NULL, &m) == APR_SUCCESS) {
            repl(st, &k, m.version, 40, 3, T0 + 13);
        }
    }
    for (i = 0; i < 2; i++) {
        key_n(&k, "child", i);
        sd_shm_delete(st, &k);
    }
    /* An old session restored at the head: its stripe needs a sort before
     * the next eviction trusts its tail. */
    key_n(&k, "child-restored", 0);
    sd_shm_restore(st, &k, "old", 3, T0 - 5000, T0 - 5000, 28800, 28800,
                   T0 + 13);
    /* Fill up: the store evicts its least recently used (the victims). */
    for (i = 5; i < 45; i++) {
        key_n(&k, "child", i);
        put(st, &k, 100, 4, T0 + 14, 1800, 28800);
    }
    /* One user: 5 logins with a cap of 2, a list, removes, the end. */
    owner_n(&o, "crash", 1);
    owner_n(&other, "crash", 2);
    for (i = 0; i < 5; i++) {
        fitting_key(st, &k, "child-owned", &n, &o);
        put_owned(st, &k, &o, 200, 5, T0 + 15 + i, 2, NULL);
    }
    list = NULL;
    sd_shm_list_owner(st, &o, T0 + 20, pool, &list);
    sd_shm_remove_owned(st, &k, &other);
    sd_shm_remove_owned(st, &k, &o);
    fitting_key(st, &k, "child-owned", &n, &o);
    put_owned(st, &k, &o, 200, 5, T0 + 21, 0, NULL);
    sd_shm_end_owner(st, &o, &ended);
}

#define NSTABLE 10

/* A store of @a cap sessions (one stripe for 64, several for more),
 * filled with @a nvictims sessions older than the child's and NSTABLE
 * that nobody but the parent touches; the child is killed at each fault
 * point in turn. */
static void test_crash(apr_uint64_t cap, apr_uint64_t mem, int nvictims)
{
    apr_shm_t *shm = NULL;
    sd_shm_params_t p = params(cap, mem, 1024, SD_SHM_FULL_EVICT);
    apr_size_t size = sd_shm_size(&p);
    sd_shm_t *st = NULL;
    sd_key_t k;
    int point, kills = 0, hangs_or_bad = 0, lost = 0, invalid = 0;
    int fresh_bad = 0, repairs_bad = 0;

    memset(points_seen, 0, sizeof points_seen);
    if (apr_shm_create(&shm, size, NULL, pool) != APR_SUCCESS) {
        ok(0, "crash: shared memory");
        return;
    }
    tap_watchdog("the store could not be locked after a crash");

    for (point = 1; point <= 40; point++) {
        pid_t pid;
        int status = 0, i;
        char why[256];
        sd_shm_stats_t s;

        memset(apr_shm_baseaddr_get(shm), 0, size);
        if (sd_shm_format(pool, apr_shm_baseaddr_get(shm), size, &p, &st) !=
            APR_SUCCESS) {
            ok(0, "crash: format");
            return;
        }
        /* Oldest first: victims the child may evict (each a second apart,
         * so that the oldest moves from stripe to stripe), then the
         * sessions nobody but the parent touches. */
        for (i = 0; i < nvictims; i++) {
            key_n(&k, "victim", i);
            put(st, &k, 200, 7, T0 - nvictims + i, 28800, 28800);
        }
        for (i = 0; i < NSTABLE; i++) {
            key_n(&k, "stable", i);
            put(st, &k, 100 + i * 90, 1000 + (apr_uint32_t)i, T0 + 1, 1800,
                28800);
        }

        tap_flush();
        pid = fork();
        if (pid == 0) {
            alarm(10);
            kill_at = point;
            sd_shm_set_fault_hook(kill_hook);
            crash_child_ops(st);
            _exit(0);
        }
        alarm(10);
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
            kills++;
            points_seen[point] = 1;
        }
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            hangs_or_bad++;
            diag("point %d: child ended with status 0x%x", point, status);
        }

        /* The parent locks every stripe and checks the segment. */
        if (sd_shm_validate(st, why, sizeof why) != APR_SUCCESS) {
            invalid++;
            diag("point %d: validate: %s", point, why);
        }
        for (i = 0; i < NSTABLE; i++) {
            apr_size_t len = 0;
            apr_uint32_t salt = 0;
            int intact = 0;
            sd_shm_meta_t m;
            key_n(&k, "stable", i);
            if (fetch(st, &k, T0 + 20, &len, &salt, &intact, &m) !=
                    APR_SUCCESS ||
                !intact || len != (apr_size_t)(100 + i * 90) ||
                salt != 1000 + (apr_uint32_t)i || m.created != T0 + 1) {
                lost++;
                diag("point %d: stable session %d lost or damaged", point, i);
            }
        }
        s = stats(st);
        if (s.repairs != (WIFSIGNALED(status) ? 1u : 0u)) {
            repairs_bad++;
            diag("point %d: repairs %llu", point,
                 (unsigned long long)s.repairs);
        }

        /* A fresh process can use the store too, owners included. */
        tap_flush();
        pid = fork();
        if (pid == 0) {
            sd_key_t f;
            sd_shm_meta_t m;
            sd_owner_t o;
            int n = 0;
            alarm(10);
            key_n(&f, "fresh", point);
            owner_n(&o, "crash", 1);
            if (put(st, &f, 500, 5, T0 + 30, 1800, 28800) != APR_SUCCESS ||
                !has(st, &f, T0 + 31, 5) ||
                sd_shm_get(st, &f, T0 + 32, NULL, 0, NULL, &m) !=
                    APR_SUCCESS ||
                repl(st, &f, m.version, 50, 6, T0 + 33) != APR_SUCCESS ||
                !has(st, &f, T0 + 34, 6) ||
                sd_shm_delete(st, &f) != APR_SUCCESS) {
                _exit(1);
            }
            fitting_key(st, &f, "fresh-owned", &n, &o);
            if (put_owned(st, &f, &o, 100, 7, T0 + 35, 1, NULL) !=
                    APR_SUCCESS ||
                nlisted(st, &o, T0 + 36) != 1) {
                _exit(2);
            }
            _exit(0);
        }
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fresh_bad++;
            diag("point %d: the fresh child failed (status 0x%x)", point,
                 status);
        }
        if (sd_shm_validate(st, why, sizeof why) != APR_SUCCESS) {
            invalid++;
            diag("point %d: validate after the fresh child: %s", point, why);
        }
        alarm(0);
    }
    {
        char seen[200] = "";
        int i;
        for (i = 1; i <= 40; i++) {
            if (points_seen[i]) {
                apr_snprintf(seen + strlen(seen), sizeof seen - strlen(seen),
                             " %d", i);
            }
        }
        diag("capacity %d: fault points that killed the child:%s", (int)cap,
             seen);
    }
    ok(kills >= 5,
       "crash, capacity %d: the child was killed inside the store at %d"
       " fault points",
       (int)cap, kills);
    if (cap > 1024) {
        /* Several stripes: the owner chains (link, unlink, cap), the
         * cross-stripe eviction and the LRU sort were all interrupted. */
        ok(points_seen[24] && points_seen[25] && points_seen[26] &&
               points_seen[27] && points_seen[31] && points_seen[32],
           "crash, capacity %d: killed inside owner chain changes, the cap, "
           "a cross-stripe eviction and an LRU sort",
           (int)cap);
    }
    is_int(hangs_or_bad, 0, "crash, capacity %d: every other child finished "
                            "normally",
           (int)cap);
    is_int(invalid, 0, "crash, capacity %d: validate passes after every kill",
           (int)cap);
    is_int(lost, 0, "crash, capacity %d: sessions the child never touched "
                    "are intact",
           (int)cap);
    is_int(repairs_bad, 0, "crash, capacity %d: one repair counted per kill, "
                           "none else",
           (int)cap);
    is_int(fresh_bad, 0,
           "crash, capacity %d: a fresh process can use the store after"
           " every kill",
           (int)cap);
    apr_shm_destroy(shm);
}

/* sd_shm_migrate: from a many-striped store into a small one, the most
 * recently used sessions are the ones kept, whatever stripe they were in;
 * into a big one, all move with their data and times. */
static void test_migrate(void)
{
    sd_shm_t *from = heap_store(20000, 4 << 20, 1024, SD_SHM_FULL_EVICT, NULL, NULL);
    sd_shm_t *small = heap_store(10, 64 << 10, 1024, SD_SHM_FULL_EVICT, NULL, NULL);
    sd_shm_t *big = heap_store(1000, 1 << 20, 1024, SD_SHM_FULL_REFUSE, NULL, NULL);
    sd_key_t k;
    int i, kept = 1, all = 1;
    apr_uint64_t n;

    for (i = 0; i < 100; i++) {
        key_n(&k, "mig", i);
        put(from, &k, 50 + i, (apr_uint32_t)i, T0 + i, 100000, 100000);
    }
    n = sd_shm_migrate(from, small, T0 + 200);
    is_int((int)n, 10, "migrate into 10: 10 sessions");
    for (i = 0; i < 100; i++) {
        key_n(&k, "mig", i);
        kept &= has(small, &k, T0 + 201, (apr_uint32_t)i) == (i >= 90);
    }
    ok(kept, "migrate into 10: exactly the 10 most recently used, whole");
    n = sd_shm_migrate(from, big, T0 + 200);
    is_int((int)n, 100, "migrate into 1000: all 100");
    for (i = 0; i < 100; i++) {
        sd_shm_meta_t m;
        apr_size_t len = 0;
        apr_uint32_t salt = 0;
        int intact = 0;
        key_n(&k, "mig", i);
        all &= fetch(big, &k, T0 + 201, &len, &salt, &intact, &m) == APR_SUCCESS &&
               intact && salt == (apr_uint32_t)i && len == (apr_size_t)(50 + i) &&
               m.created == T0 + i && m.last_access == T0 + i;
    }
    ok(all, "migrate into 1000: data, created and last access kept");
    validate_ok(small, "migrate (small)");
    validate_ok(big, "migrate (big)");
}

/* A store of capacity N holds N sessions with random keys, whatever their
 * spread over the stripes, and refuses the N+1st. */
static void test_capacity_exact(apr_uint64_t cap, apr_uint64_t per)
{
    sd_shm_t *st = heap_store(cap, cap * per, 1024, SD_SHM_FULL_REFUSE, NULL, NULL);
    sd_key_t k;
    apr_uint64_t i, made = 0;
    unsigned char data[60];

    memset(data, 'x', sizeof data);
    for (i = 0; i < cap; i++) {
        key_n(&k, "cap", (int)i);
        made += sd_shm_create(st, &k, data, sizeof data, T0, 1800, 28800) ==
                APR_SUCCESS;
    }
    is_int((int)made, (int)cap, "capacity %d: all %d random keys fit",
           (int)cap, (int)cap);
    key_n(&k, "cap", -1);
    is_int(sd_shm_create(st, &k, data, sizeof data, T0, 1800, 28800),
           APR_ENOSPC, "capacity %d: the next one is refused", (int)cap);
    is_int((int)stats(st).sessions, (int)cap, "capacity %d: %d live", (int)cap,
           (int)cap);
}

/* The eviction hook hears of every evicted session, after the lock, with
 * the start of its record. */
static int evict_calls;
static char evict_first[64];
static void on_evict(void *baton, const sd_key_t *key, const void *head,
                     apr_size_t len)
{
    evict_calls++;
    if (evict_calls == 1) {
        apr_size_t n = len < sizeof evict_first - 1 ? len : sizeof evict_first - 1;
        memcpy(evict_first, head, n);
        evict_first[n] = '\0';
    }
    /* The stripe lock is free again: the hook may use the store. */
    sd_shm_get(baton, key, T0, NULL, 0, NULL, NULL);
}

static void test_evict_hook(void)
{
    sd_shm_t *st = heap_store(4, 64 << 10, 1024, SD_SHM_FULL_EVICT, NULL, NULL);
    sd_key_t k;
    int i;
    char data[32];

    sd_shm_set_evict_hook(st, on_evict, st);
    for (i = 0; i < 6; i++) {
        key_n(&k, "hook", i);
        snprintf(data, sizeof data, "record-%d", i);
        sd_shm_create(st, &k, data, strlen(data), T0 + i, 1800, 28800);
    }
    is_int(evict_calls, 2, "evict hook: called once per eviction");
    is_str(evict_first, "record-0", "evict hook: given the evicted record's start");
    validate_ok(st, "evict hook");
}

/* ------------------------------------------------------------------ */
/* Eviction across stripes                                             */
/* ------------------------------------------------------------------ */

/* The bug report: 10,000 sessions in 8 stripes, 200 of them idle for five
 * minutes, then 10,000 new logins. A full store must drop the idle ones
 * first, and then the oldest of the new ones, whatever stripe they are in:
 * no new session may go while an older one remains. */
static void test_evict_global_report(void)
{
    sd_shm_t *st = heap_store(10000, 10000 * 256, 1024, SD_SHM_FULL_EVICT,
                              NULL, NULL);
    sd_key_t k;
    int i, old_left = 0, new_kept = 0;
    unsigned char data[100];
    sd_shm_stats_t s;

    memset(data, 'n', sizeof data);
    for (i = 0; i < 200; i++) {
        key_n(&k, "idle", i);
        sd_shm_create(st, &k, data, sizeof data, T0, 3600, 28800);
    }
    for (i = 0; i < 10000; i++) {
        key_n(&k, "login", i);
        sd_shm_create(st, &k, data, sizeof data, T0 + 300 + i / 100, 3600,
                      28800);
    }
    for (i = 0; i < 200; i++) {
        key_n(&k, "idle", i);
        old_left += sd_shm_get(st, &k, T0 + 400, NULL, 0, NULL, NULL) ==
                    APR_SUCCESS;
    }
    for (i = 0; i < 10000; i++) {
        key_n(&k, "login", i);
        new_kept += sd_shm_get(st, &k, T0 + 400, NULL, 0, NULL, NULL) ==
                    APR_SUCCESS;
    }
    s = stats(st);
    is_int(old_left, 0, "8 stripes, 200 idle + 10000 new logins: every "
                        "idle session was evicted");
    is_int(new_kept, 10000, "... and no new one (all 10000 kept)");
    is_int((long long)s.evictions, 200, "... 200 evictions in all");
    validate_ok(st, "global eviction, bug report");
}

/* Exactly the oldest go: 8192 sessions over 128 seconds fill 8 stripes,
 * 4096 newer ones evict exactly the first 64 seconds' worth. */
static void test_evict_global_exact(void)
{
    sd_shm_t *st = heap_store(8192, 8192 * 256, 1024, SD_SHM_FULL_EVICT,
                              NULL, NULL);
    sd_key_t k;
    int i, wrong = 0;
    unsigned char data[100];

    memset(data, 'o', sizeof data);
    for (i = 0; i < 8192; i++) {
        key_n(&k, "exact-old", i);
        sd_shm_create(st, &k, data, sizeof data, T0 + i / 64, 3600, 28800);
    }
    for (i = 0; i < 4096; i++) {
        key_n(&k, "exact-new", i);
        wrong += sd_shm_create(st, &k, data, sizeof data, T0 + 1000 + i / 64,
                               3600, 28800) != APR_SUCCESS;
    }
    for (i = 0; i < 8192; i++) {
        apr_status_t rv;
        key_n(&k, "exact-old", i);
        rv = sd_shm_get(st, &k, T0 + 2000, NULL, 0, NULL, NULL);
        wrong += i < 4096 ? rv != APR_NOTFOUND : rv != APR_SUCCESS;
    }
    is_int(wrong, 0, "8 stripes full: 4096 new sessions evicted exactly the "
                     "4096 least recently used, across stripes");
    validate_ok(st, "exact global eviction");
}

/* Restored sessions arrive in any order (a snapshot of a store with more
 * stripes): a stripe whose LRU list they left out of order is sorted
 * before its tail is trusted. Restored newest first, every list is
 * upside down. */
static void test_evict_after_restore(void)
{
    sd_shm_t *st = heap_store(8192, 8192 * 256, 1024, SD_SHM_FULL_EVICT,
                              NULL, NULL);
    sd_key_t k;
    int i, wrong = 0;
    unsigned char data[100];

    memset(data, 'r', sizeof data);
    for (i = 8191; i >= 0; i--) {
        key_n(&k, "restored", i);
        sd_shm_restore(st, &k, data, sizeof data, T0 + i / 64, T0 + i / 64,
                       3600, 28800, T0 + 200);
    }
    for (i = 0; i < 4096; i++) {
        key_n(&k, "after-restore", i);
        sd_shm_create(st, &k, data, sizeof data, T0 + 1000, 3600, 28800);
    }
    for (i = 0; i < 8192; i++) {
        apr_status_t rv;
        key_n(&k, "restored", i);
        rv = sd_shm_get(st, &k, T0 + 1001, NULL, 0, NULL, NULL);
        wrong += i < 4096 ? rv != APR_NOTFOUND : rv != APR_SUCCESS;
    }
    is_int(wrong, 0, "after restoring newest first, eviction still takes "
                     "exactly the least recently used");
    validate_ok(st, "eviction after an out-of-order restore");

    /* A session saved by a clock an hour ahead: still loaded (it has not
     * ended), kept as the newest, and the order of the others holds. */
    st = heap_store(8192, 8192 * 256, 1024, SD_SHM_FULL_EVICT, NULL, NULL);
    for (i = 0; i < 8192; i++) {
        key_n(&k, "ahead-old", i);
        sd_shm_create(st, &k, data, sizeof data, T0 + i / 64, 3600, 28800);
    }
    for (i = 0, wrong = 0; i < 64; i++) {
        key_n(&k, "ahead", i);
        wrong += sd_shm_restore(st, &k, data, sizeof data, T0 + 100,
                                T0 + 100 + 3600, 1800, 200,
                                T0 + 150) != APR_SUCCESS;
    }
    is_int(wrong, 0, "restore of sessions last used an hour ahead of now, "
                     "past created + max_age but not ended: accepted");
    for (i = 0; i < 4032; i++) {
        key_n(&k, "ahead-new", i);
        sd_shm_create(st, &k, data, sizeof data, T0 + 160 + i / 64, 3600,
                      28800);
    }
    for (i = 0, wrong = 0; i < 8192; i++) {
        apr_status_t rv;
        key_n(&k, "ahead-old", i);
        rv = sd_shm_get(st, &k, T0 + 230, NULL, 0, NULL, NULL);
        wrong += i < 4096 ? rv != APR_NOTFOUND : rv != APR_SUCCESS;
    }
    for (i = 0; i < 64; i++) {
        key_n(&k, "ahead", i);
        wrong += sd_shm_get(st, &k, T0 + 230, NULL, 0, NULL, NULL) !=
                 APR_SUCCESS;
    }
    is_int(wrong, 0, "... they are kept, and exactly the 4096 least "
                     "recently used of the others go");
    validate_ok(st, "eviction after a restore from a clock ahead");
}

/* The same across processes: 4 children create 1024 new sessions each at
 * once on a full 8-stripe store; exactly the 4096 oldest go, no new one,
 * and the store is whole. */
static void test_evict_global_processes(void)
{
    apr_shm_t *shm = NULL;
    sd_shm_t *st = shm_store(&shm, 8192, 8192 * 256, 1024, SD_SHM_FULL_EVICT);
    pid_t pids[NCHILD];
    sd_key_t k;
    int i, c, bad, wrong = 0, new_kept = 0;
    unsigned char data[100];

    if (!ok(st != NULL, "global eviction: a shared 8-stripe store")) {
        return;
    }
    memset(data, 'p', sizeof data);
    for (i = 0; i < 8192; i++) {
        key_n(&k, "proc-old", i);
        sd_shm_create(st, &k, data, sizeof data, T0 + i / 64, 3600, 28800);
    }
    tap_flush();
    for (c = 0; c < NCHILD; c++) {
        pids[c] = fork();
        if (pids[c] == 0) {
            int j, fails = 0;
            alarm(60);
            for (j = 0; j < 1024; j++) {
                key_n(&k, "proc-new", c * 1024 + j);
                fails += sd_shm_create(st, &k, data, sizeof data,
                                       T0 + 1000 + j, 3600, 28800) !=
                         APR_SUCCESS;
            }
            _exit(fails ? 1 : 0);
        }
    }
    bad = wait_all(pids, NCHILD, NULL);
    is_int(bad, 0, "%d children created 1024 sessions each on a full store",
           NCHILD);
    for (i = 0; i < 8192; i++) {
        apr_status_t rv;
        key_n(&k, "proc-old", i);
        rv = sd_shm_get(st, &k, T0 + 2000, NULL, 0, NULL, NULL);
        wrong += i < 4096 ? rv != APR_NOTFOUND : rv != APR_SUCCESS;
    }
    for (i = 0; i < NCHILD * 1024; i++) {
        key_n(&k, "proc-new", i);
        new_kept += sd_shm_get(st, &k, T0 + 2000, NULL, 0, NULL, NULL) ==
                    APR_SUCCESS;
    }
    is_int(wrong, 0, "... exactly the 4096 oldest sessions were evicted");
    is_int(new_kept, NCHILD * 1024, "... and every new one kept");
    validate_ok(st, "global eviction across processes");
    apr_shm_destroy(shm);
}

/* ------------------------------------------------------------------ */
/* Owners                                                              */
/* ------------------------------------------------------------------ */

static void test_key_fits(void)
{
    sd_shm_t *one = heap_store(100, 64 << 10, 1024, SD_SHM_FULL_EVICT, NULL,
                               NULL);
    sd_shm_t *many = heap_store(200000, 64 << 20, 1024, SD_SHM_FULL_EVICT,
                                NULL, NULL);
    sd_owner_t o, zero;
    sd_key_t k;
    int i, fit = 0, n = 0;
    unsigned char rec[10] = "0123456789";
    sd_store_limits_t lim = {1800, 28800, 0};
    apr_uint32_t ended = 99;

    owner_n(&o, "fits", 1);
    memset(&zero, 0, sizeof zero);
    key_n(&k, "fits", 0);
    ok(sd_shm_key_fits(one, &k, NULL) && sd_shm_key_fits(one, &k, &zero),
       "any key fits no owner");
    for (i = 0; i < 6400; i++) {
        key_n(&k, "fits", i);
        fit += sd_shm_key_fits(many, &k, &o);
    }
    ok(fit > 50 && fit < 160, "about 1 key in 64 fits an owner (%d of 6400): "
                              "6 bits of the ID's entropy",
       fit);
    do {
        key_n(&k, "unfit", n++);
    } while (sd_shm_key_fits(many, &k, &o));
    is_int(sd_shm_create_owned(many, &k, &o, rec, sizeof rec, T0, &lim,
                               &ended),
           APR_EINVAL, "create with a key that does not fit its owner: "
                       "APR_EINVAL");
    is_int(ended, 0, "... *ended is 0");
    is_int(sd_shm_get(many, &k, T0, NULL, 0, NULL, NULL), APR_NOTFOUND,
           "... and nothing stored");
    /* The fit is the same in a store of 1 and of 64 stripes: an owned
     * session moves between them with its owner. */
    n = 0;
    fitting_key(one, &k, "fits-move", &n, &o);
    is_int(sd_shm_create_owned(one, &k, &o, rec, sizeof rec, T0, &lim, NULL),
           APR_SUCCESS, "a fitting key in a 1-stripe store");
    is_int((long long)sd_shm_migrate(one, many, T0 + 1), 1,
           "migrate it into a 64-stripe store");
    is_int(nlisted(many, &o, T0 + 2), 1, "... where it is still its owner's");
    validate_ok(many, "key fits");
}

static void test_owner_ops(void)
{
    sd_shm_t *st = heap_store(20000, 8 << 20, 2048, SD_SHM_FULL_EVICT, NULL,
                              NULL);
    sd_owner_t A, B, C, zero;
    sd_key_t ka[6], kb[3], ku[10];
    int i, n = 0, okrec = 1;
    apr_array_header_t *list = NULL;
    apr_pool_t *p;
    apr_uint64_t ended = 0;
    sd_shm_meta_t m;
    sd_shm_stats_t s0;

    owner_n(&A, "ops", 1);
    owner_n(&B, "ops", 2);
    owner_n(&C, "ops", 3);
    memset(&zero, 0, sizeof zero);
    for (i = 0; i < 6; i++) {
        fitting_key(st, &ka[i], "ops-a", &n, &A);
        put_owned(st, &ka[i], &A, (apr_size_t)(100 + i * 300), (apr_uint32_t)i,
                  T0 + i, 0, NULL);
    }
    for (i = 0; i < 3; i++) {
        fitting_key(st, &kb[i], "ops-b", &n, &B);
        put_owned(st, &kb[i], &B, 50, 100 + (apr_uint32_t)i, T0, 0, NULL);
    }
    for (i = 0; i < 10; i++) {
        key_n(&ku[i], "ops-u", i);
        put(st, &ku[i], 60, 200 + (apr_uint32_t)i, T0, 1800, 28800);
    }
    /* Use order of A now, most recent first: a2, a5, a4, a3, a1, a0. */
    sd_shm_get(st, &ka[2], T0 + 10, NULL, 0, NULL, &m);
    ok(m.idle == 1800 && m.max_age == 28800, "get tells the timeouts");

    apr_pool_create(&p, pool);
    is_int(sd_shm_list_owner(st, &A, T0 + 11, p, &list), APR_SUCCESS,
           "list A's sessions");
    is_int(list->nelts, 6, "... all 6 of them, no one else's");
    if (list->nelts == 6) {
        static const int order[6] = {2, 5, 4, 3, 1, 0};
        sd_store_entry_t *e = (sd_store_entry_t *)list->elts;
        int in_order = 1, times = 1;
        for (i = 0; i < 6; i++) {
            const sd_key_t *want = &ka[order[i]];
            in_order &= memcmp(e[i].key.b, want->b, SD_SHM_KEY_BYTES) == 0;
            okrec &= e[i].len == (apr_size_t)(100 + order[i] * 300) &&
                     check_fill((const unsigned char *)e[i].record, e[i].len,
                                want, NULL);
            times &= e[i].created == T0 + order[i] &&
                     e[i].last_access == (order[i] == 2 ? T0 + 10
                                                        : T0 + order[i]) &&
                     e[i].expires == e[i].last_access + 1800;
        }
        ok(in_order, "... most recently used first");
        ok(okrec, "... each with a whole copy of its record");
        ok(times, "... and its created, last access and expiry times");
    }
    else {
        skip(3, "list has the wrong size");
    }
    is_int(nlisted(st, &C, T0 + 11), 0, "an owner with no sessions: none");
    is_int(sd_shm_list_owner(st, NULL, T0 + 11, p, &list), APR_EINVAL,
           "list of no owner: APR_EINVAL");
    ok(list != NULL && list->nelts == 0, "... with an empty list");
    apr_pool_destroy(p);

    /* A session past its idle timeout is not listed, and is removed. */
    for (i = 0; i < 3; i++) {
        sd_shm_get(st, &kb[i], T0 + 1000, NULL, 0, NULL, NULL);
    }
    for (i = 0; i < 10; i++) {
        sd_shm_get(st, &ku[i], T0 + 1000, NULL, 0, NULL, NULL);
    }
    s0 = stats(st);
    sd_shm_get(st, &ka[5], T0 + 1000, NULL, 0, NULL, NULL);
    sd_shm_get(st, &ka[4], T0 + 1000, NULL, 0, NULL, NULL);
    sd_shm_get(st, &ka[3], T0 + 1000, NULL, 0, NULL, NULL);
    sd_shm_get(st, &ka[2], T0 + 1000, NULL, 0, NULL, NULL);
    is_int(nlisted(st, &A, T0 + 1802), 4,
           "a0 and a1 idle past their timeout: 4 listed");
    is_int((long long)(stats(st).expirations - s0.expirations), 2,
           "... and the 2 ended ones removed");

    is_int(sd_shm_remove_owned(st, &ka[2], &B), APR_NOTFOUND,
           "remove A's session as B: APR_NOTFOUND");
    ok(has(st, &ka[2], T0 + 1803, 2), "... and it is still there");
    is_int(sd_shm_remove_owned(st, &ku[1], &A), APR_NOTFOUND,
           "remove a session without owner as A: APR_NOTFOUND");
    is_int(sd_shm_remove_owned(st, &ka[2], &A), APR_SUCCESS,
           "remove A's session as A");
    is_int(sd_shm_get(st, &ka[2], T0 + 1803, NULL, 0, NULL, NULL),
           APR_NOTFOUND, "... gone");
    is_int(sd_shm_remove_owned(st, &ku[1], &zero), APR_SUCCESS,
           "remove a session without owner as 'no owner'");
    is_int(sd_shm_remove_owned(st, &ku[2], NULL), APR_SUCCESS,
           "remove with no owner given: anyone's");
    validate_ok(st, "owner removes");

    is_int(sd_shm_end_owner(st, &A, &ended), APR_SUCCESS, "end A everywhere");
    is_int((long long)ended, 3, "... 3 sessions ended");
    is_int(nlisted(st, &A, T0 + 1804), 0, "... none left");
    is_int(nlisted(st, &B, T0 + 1804), 3, "B's 3 untouched");
    for (i = 3, n = 0; i < 10; i++) {
        n += sd_shm_get(st, &ku[i], T0 + 1804, NULL, 0, NULL, NULL) ==
             APR_SUCCESS;
    }
    is_int(n, 7, "the 7 sessions without owner untouched");
    is_int(sd_shm_end_owner(st, &A, &ended), APR_SUCCESS,
           "end A again: success");
    is_int((long long)ended, 0, "... 0 ended");
    is_int(sd_shm_end_owner(st, &zero, &ended), APR_EINVAL,
           "end of no owner: APR_EINVAL");
    validate_ok(st, "owner operations");
}

/* SessionDemoMaxSessionsPerUser: a new session of an owner at its cap ends
 * that owner's least recently used sessions first, never another's. */
static void test_owner_cap(void)
{
    sd_shm_t *st = heap_store(100, 1 << 20, 1024, SD_SHM_FULL_EVICT, NULL,
                              NULL);
    sd_owner_t A, B, D;
    sd_key_t a[8], b, d;
    int i, n = 0, all = 1;
    apr_uint32_t ended = 99;

    owner_n(&A, "cap", 1);
    /* B in A's stripe (every owner is, in a one-stripe store). */
    owner_n(&B, "cap", 2);
    owner_n(&D, "cap", 4);
    fitting_key(st, &b, "cap-b", &n, &B);
    put_owned(st, &b, &B, 64, 50, T0, 3, NULL);
    for (i = 0; i < 3; i++) {
        fitting_key(st, &a[i], "cap-a", &n, &A);
        is_int(put_owned(st, &a[i], &A, 64, (apr_uint32_t)i, T0 + 1 + i, 3,
                         &ended),
               APR_SUCCESS, "cap 3: A's session %d", i + 1);
        is_int(ended, 0, "... ended none");
    }
    sd_shm_get(st, &a[0], T0 + 4, NULL, 0, NULL, NULL);
    fitting_key(st, &a[3], "cap-a", &n, &A);
    is_int(put_owned(st, &a[3], &A, 64, 3, T0 + 5, 3, &ended), APR_SUCCESS,
           "cap 3: A's 4th session");
    is_int(ended, 1, "... ended 1");
    is_int(sd_shm_get(st, &a[1], T0 + 6, NULL, 0, NULL, NULL), APR_NOTFOUND,
           "... A's least recently used (its 2nd; the 1st was used since)");
    ok(has(st, &a[0], T0 + 6, 0) && has(st, &a[2], T0 + 6, 2) &&
           has(st, &a[3], T0 + 6, 3),
       "... A's other three kept");
    ok(has(st, &b, T0 + 6, 50), "... and B's session, older than all of "
                                "them, kept");
    is_int((long long)stats(st).capped, 1, "capped counts 1");

    fitting_key(st, &a[4], "cap-a", &n, &A);
    is_int(put_owned(st, &a[4], &A, 64, 4, T0 + 7, 1, &ended), APR_SUCCESS,
           "cap lowered to 1: A's next session");
    is_int(ended, 3, "... ended A's 3 others");
    is_int(nlisted(st, &A, T0 + 8), 1, "... A has 1 session");
    ok(has(st, &a[4], T0 + 8, 4), "... the new one");

    /* Ended sessions neither count towards the cap nor as ended by it. */
    fitting_key(st, &a[5], "cap-a", &n, &A);
    is_int(put_owned(st, &a[5], &A, 64, 5, T0 + 8 + 1801, 1, &ended),
           APR_SUCCESS, "cap 1, A's only session idle past its timeout: "
                        "a new one");
    is_int(ended, 0, "... ended none (the old one had ended by itself)");
    is_int(nlisted(st, &A, T0 + 1810), 1, "... A has 1 session");

    /* No cap: any number. */
    for (i = 0, n = 0; i < 10; i++) {
        fitting_key(st, &d, "cap-d", &n, &D);
        all &= put_owned(st, &d, &D, 64, 0, T0 + 1810, 0, &ended) ==
                   APR_SUCCESS &&
               ended == 0;
    }
    ok(all, "cap 0: no cap");
    is_int(nlisted(st, &D, T0 + 1811), 10, "... D has 10 sessions");
    validate_ok(st, "per-owner cap");

    /* Under "refuse", a user at the cap on a full store still logs in:
     * their own oldest session makes the room. */
    {
        sd_shm_t *full = heap_store(4, 64 << 10, 1024, SD_SHM_FULL_REFUSE,
                                    NULL, NULL);
        sd_key_t k;
        n = 0;
        for (i = 0; i < 2; i++) {
            fitting_key(full, &k, "capfull-a", &n, &A);
            put_owned(full, &k, &A, 64, 0, T0 + i, 2, NULL);
            fitting_key(full, &k, "capfull-b", &n, &B);
            put_owned(full, &k, &B, 64, 0, T0 + i, 2, NULL);
        }
        fitting_key(full, &k, "capfull-b", &n, &B);
        is_int(put_owned(full, &k, &B, 64, 0, T0 + 5, 0, &ended), APR_ENOSPC,
               "refuse, store full: B without a cap is refused");
        fitting_key(full, &k, "capfull-a", &n, &A);
        is_int(put_owned(full, &k, &A, 64, 0, T0 + 5, 2, &ended), APR_SUCCESS,
               "refuse, store full: A at its cap of 2 gets in");
        is_int(ended, 1, "... ending its own oldest");
        is_int(nlisted(full, &B, T0 + 6), 2, "... B's 2 untouched");
        validate_ok(full, "cap on a full store");
    }
}

/* Concurrent logins of one user across processes never get past the cap:
 * 4 children create 200 sessions each for one owner with a cap of 5. */
static void test_owner_cap_processes(void)
{
    apr_shm_t *shm = NULL;
    sd_shm_t *st = shm_store(&shm, 20000, 16 << 20, 1024, SD_SHM_FULL_EVICT);
    sd_owner_t X, Y;
    sd_key_t k;
    pid_t pids[NCHILD];
    apr_uint32_t *ended;
    int c, i, n = 0, bad, y_kept = 0;
    long total = 0;

    if (!ok(st != NULL, "cap across processes: a shared store")) {
        return;
    }
    ended = mmap(NULL, sizeof(*ended) * NCHILD, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    owner_n(&X, "race", 1);
    /* Y: another owner in X's stripe, with older sessions. */
    for (i = 2;; i++) {
        owner_n(&Y, "race", i);
        if (((X.b[3] ^ Y.b[3]) & 63) == 0) {
            break;
        }
    }
    for (i = 0; i < 20; i++) {
        fitting_key(st, &k, "race-y", &n, &Y);
        put_owned(st, &k, &Y, 64, 0, T0, 0, NULL);
    }
    tap_flush();
    for (c = 0; c < NCHILD; c++) {
        pids[c] = fork();
        if (pids[c] == 0) {
            int j, m = 0, fails = 0;
            alarm(60);
            ended[c] = 0;
            for (j = 0; j < 200; j++) {
                apr_uint32_t e = 0;
                char tag[32];
                snprintf(tag, sizeof tag, "race-x%d", c);
                fitting_key(st, &k, tag, &m, &X);
                fails += put_owned(st, &k, &X, 64, 0, T0 + 1 + j, 5, &e) !=
                         APR_SUCCESS;
                ended[c] += e;
            }
            _exit(fails ? 1 : 0);
        }
    }
    bad = wait_all(pids, NCHILD, NULL);
    is_int(bad, 0, "%d children created 200 sessions each for one owner, "
                   "cap 5",
           NCHILD);
    for (c = 0; c < NCHILD; c++) {
        total += ended[c];
    }
    is_int(nlisted(st, &X, T0 + 300), 5, "... the owner has exactly 5");
    is_int(total, NCHILD * 200 - 5, "... the creates reported %d ended",
           NCHILD * 200 - 5);
    is_int((long long)stats(st).capped, NCHILD * 200 - 5,
           "... and capped counts as many");
    n = 0;
    for (i = 0; i < 20; i++) {
        fitting_key(st, &k, "race-y", &n, &Y);
        y_kept += sd_shm_get(st, &k, T0 + 300, NULL, 0, NULL, NULL) ==
                  APR_SUCCESS;
    }
    is_int(y_kept, 20, "... another owner's 20 older sessions in the same "
                       "stripe all kept");
    validate_ok(st, "cap across processes");
    munmap(ended, sizeof(*ended) * NCHILD);
    apr_shm_destroy(shm);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_params();
    test_basic();
    test_replace();
    test_replace_tight();
    test_expiry();
    test_full_refuse();
    test_full_evict();
    test_reclaim_first(4);
    test_reclaim_first(8);
    test_memory_full(SD_SHM_FULL_REFUSE);
    test_memory_full(SD_SHM_FULL_EVICT);
    test_replace_on_full_memory(SD_SHM_FULL_REFUSE);
    test_replace_on_full_memory(SD_SHM_FULL_EVICT);
    test_memory_cycle();
    test_reuse();
    test_attach();
    test_attach_header_damage();
    test_foreach_restore();
    test_migrate();
    test_capacity_exact(10000, 128);
    test_capacity_exact(200000, 128);
    /* Memory for exactly N one-chunk records. */
    test_capacity_exact(10000, 64);
    test_capacity_exact(200000, 64);
    test_evict_hook();
    test_evict_global_report();
    test_evict_global_exact();
    test_evict_after_restore();
    test_key_fits();
    test_owner_ops();
    test_owner_cap();
    test_counter();
    test_evict_global_processes();
    test_owner_cap_processes();
    test_churn("churn", 4096, 1 << 20, 512, 1.0);
    test_churn("churn with eviction", 200, 64 << 10, 512, 1.0);
    test_crash(64, 64 << 10, 20);
    test_crash(2048, 2 << 20, 2048 - NSTABLE - 8);
    heap_free_all();
    apr_pool_destroy(pool);
    apr_terminate();
    return done_testing();
}
