/*
 * The session record codec: a full round trip, and hostile input of every
 * shape (each truncation, each single-byte corruption, trailing bytes,
 * random bytes). Buffers handed to the decoder are malloc'd to their exact
 * size so that, under SANITIZE=1, any overread is an ASan error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "tap.h"
#include "sd_record.h"
#include "sd_id.h"

static apr_pool_t *pool;

static const char *NOTES[] = {
    "first note",
    "",
    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
    "<script>alert(1)</script> & \"quotes\"",
    "",
};
#define NNOTES ((int)(sizeof NOTES / sizeof NOTES[0]))

static sd_session_t *fixture(apr_pool_t *p)
{
    sd_session_t *s = sd_session_make(p, "j\xc3\xbcrgen", "admins");
    int i;

    if (s == NULL) {
        return NULL;
    }
    s->cred_stamp = 0x0123456789abcdefULL;
    s->ua_hash = 0xfedcba9876543210ULL;
    s->visits = 4294967297ULL; /* over 32 bits */
    for (i = 0; i < NNOTES; i++) {
        APR_ARRAY_PUSH(s->notes, const char *) = NOTES[i];
    }
    return s;
}

/* Decode a private, exact-size copy of @a len bytes. */
static apr_status_t decode_copy(apr_pool_t *p, const char *buf, apr_size_t len,
                                sd_session_t **s)
{
    char *copy = malloc(len ? len : 1);
    apr_status_t rv;

    memcpy(copy, buf, len);
    rv = sd_record_decode(p, copy, len, s);
    free(copy);
    return rv;
}

static int same_session(const sd_session_t *a, const sd_session_t *b)
{
    int i;

    if (strcmp(a->user, b->user) || strcmp(a->role, b->role) ||
        strcmp(a->csrf, b->csrf) || a->cred_stamp != b->cred_stamp ||
        a->ua_hash != b->ua_hash || a->visits != b->visits ||
        a->notes->nelts != b->notes->nelts) {
        return 0;
    }
    for (i = 0; i < a->notes->nelts; i++) {
        if (strcmp(APR_ARRAY_IDX(a->notes, i, const char *),
                   APR_ARRAY_IDX(b->notes, i, const char *))) {
            return 0;
        }
    }
    return 1;
}

/* Touch every byte of a decoded session, so ASan sees any bad pointer. */
static apr_size_t walk(const sd_session_t *s)
{
    apr_size_t n = strlen(s->user) + strlen(s->role) + strlen(s->csrf);
    int i;

    for (i = 0; i < s->notes->nelts; i++) {
        n += strlen(APR_ARRAY_IDX(s->notes, i, const char *));
    }
    return n;
}

static void test_make(void)
{
    sd_session_t *a = sd_session_make(pool, "alice", "user");
    sd_session_t *b = sd_session_make(pool, "alice", "user");

    ok(a != NULL && b != NULL, "sd_session_make");
    if (a == NULL || b == NULL) {
        skip(7, "no session");
        return;
    }
    is_str(a->user, "alice", "make: user");
    is_str(a->role, "user", "make: role");
    ok(sd_id_wellformed(a->csrf, strlen(a->csrf)),
       "make: csrf token is a well-formed 43-char token");
    ok(strcmp(a->csrf, b->csrf) != 0, "make: each session has its own csrf");
    is_int((long long)a->visits, 0, "make: visits 0");
    ok(a->notes != NULL && a->notes->nelts == 0, "make: no notes");
    ok(a->notes != NULL && a->notes->elt_size == sizeof(const char *),
       "make: notes is an array of const char *");
}

static void test_roundtrip(void)
{
    sd_session_t *s = fixture(pool), *d = NULL, *e = NULL;
    char *buf = NULL, *buf2 = NULL;
    apr_size_t len, len2;
    int i, notes_ok = 1;

    len = sd_record_encode(pool, s, &buf);
    ok(len > 0 && buf != NULL, "encode gives %u bytes", (unsigned)len);
    is_int(decode_copy(pool, buf, len, &d), APR_SUCCESS, "decode succeeds");
    if (d == NULL) {
        skip(10, "decode failed");
        return;
    }
    is_str(d->user, "j\xc3\xbcrgen", "user survives (UTF-8)");
    is_str(d->role, "admins", "role survives");
    is_str(d->csrf, s->csrf, "csrf survives");
    is_int((long long)d->cred_stamp, 0x0123456789abcdefLL, "cred_stamp");
    is_int((long long)(d->ua_hash ^ 0xfedcba9876543210ULL), 0, "ua_hash");
    is_int((long long)d->visits, 4294967297LL, "visits over 32 bits");
    is_int(d->notes ? d->notes->nelts : -1, NNOTES, "note count");
    for (i = 0; d->notes && i < d->notes->nelts && i < NNOTES; i++) {
        if (strcmp(APR_ARRAY_IDX(d->notes, i, const char *), NOTES[i])) {
            notes_ok = 0;
        }
    }
    ok(notes_ok, "notes in order, incl. empty and UTF-8 ones");
    len2 = sd_record_encode(pool, d, &buf2);
    ok(len2 == len && memcmp(buf, buf2, len) == 0,
       "decode then encode gives the same bytes");
    ok(same_session(s, d), "decoded session equals the original");

    /* A session with no notes and empty user/role, and one with the
     * longest fields. */
    {
        sd_session_t *z = sd_session_make(pool, "", "");
        char *zb;
        apr_size_t zl = sd_record_encode(pool, z, &zb);
        is_int(decode_copy(pool, zb, zl, &e), APR_SUCCESS,
               "empty user, role, no notes: decodes");
        ok(e && same_session(z, e), "... and equals the original");
    }
    {
        sd_session_t *m = sd_session_make(pool, NULL, NULL);
        char *mb, *u = apr_palloc(pool, SD_USER_MAX + 1);
        char *r = apr_palloc(pool, SD_ROLE_MAX + 1);
        char *n = apr_palloc(pool, SD_NOTE_MAX + 1);
        apr_size_t ml;
        memset(u, 'u', SD_USER_MAX);
        u[SD_USER_MAX] = '\0';
        memset(r, 'r', SD_ROLE_MAX);
        r[SD_ROLE_MAX] = '\0';
        memset(n, 'n', SD_NOTE_MAX);
        n[SD_NOTE_MAX] = '\0';
        m->user = u;
        m->role = r;
        m->visits = ~(apr_uint64_t)0;
        for (i = 0; i < 20; i++) {
            APR_ARRAY_PUSH(m->notes, const char *) = n;
        }
        ml = sd_record_encode(pool, m, &mb);
        is_int(decode_copy(pool, mb, ml, &e), APR_SUCCESS,
               "longest user, role, 20 longest notes: decodes");
        ok(e && same_session(m, e), "... and equals the original");
    }
}

static void test_hostile(void)
{
    sd_session_t *s = fixture(pool), *d;
    char *buf, *copy;
    apr_size_t len, i;
    int bad_trunc = 0, first_trunc = -1, crashes_avoided = 0, weird = 0;
    int accepted = 0, refused = 0;
    apr_pool_t *sub;

    len = sd_record_encode(pool, s, &buf);

    for (i = 0; i < len; i++) {
        apr_pool_create(&sub, pool);
        d = (sd_session_t *)1;
        if (decode_copy(sub, buf, i, &d) != APR_EINVAL) {
            if (bad_trunc++ == 0) {
                first_trunc = (int)i;
            }
        }
        apr_pool_destroy(sub);
    }
    ok(bad_trunc == 0,
       "every truncation (0..%u bytes) is APR_EINVAL"
       " (%d not, first at %d)",
       (unsigned)len - 1, bad_trunc, first_trunc);

    copy = malloc(len + 1);
    memcpy(copy, buf, len);
    copy[len] = 'x';
    is_int(sd_record_decode(pool, copy, len + 1, &d), APR_EINVAL,
           "one trailing byte is APR_EINVAL");
    copy[len] = '\0';
    is_int(sd_record_decode(pool, copy, len + 1, &d), APR_EINVAL,
           "a trailing NUL is APR_EINVAL");
    free(copy);
    is_int(sd_record_decode(pool, NULL, 0, &d), APR_EINVAL, "NULL, 0");
    is_int(sd_record_decode(pool, "", 0, &d), APR_EINVAL, "empty buffer");

    /* Every position, several corruptions each: the decoder may accept a
     * still-valid record, but must never read or write out of bounds. */
    copy = malloc(len);
    for (i = 0; i < len; i++) {
        static const int xors[] = {0x01, 0x02, 0x10, 0x40, 0x80, 0xff};
        static const int sets[] = {0x00, 0x7f, 0x80, 0xff};
        int k;
        for (k = 0; k < 10; k++) {
            apr_status_t rv;
            memcpy(copy, buf, len);
            if (k < 6) {
                copy[i] = (char)(copy[i] ^ xors[k]);
            }
            else {
                copy[i] = (char)sets[k - 6];
            }
            apr_pool_create(&sub, pool);
            d = NULL;
            rv = sd_record_decode(sub, copy, len, &d);
            if (rv == APR_SUCCESS) {
                char *re;
                accepted++;
                if (d == NULL || d->user == NULL || d->role == NULL ||
                    d->notes == NULL) {
                    weird++;
                }
                else {
                    walk(d);
                    if (strlen(d->user) > SD_USER_MAX ||
                        strlen(d->role) > SD_ROLE_MAX ||
                        strlen(d->csrf) != SD_CSRF_LEN ||
                        sd_record_encode(sub, d, &re) != len ||
                        memcmp(re, copy, len) != 0) {
                        weird++;
                    }
                }
            }
            else if (rv == APR_EINVAL) {
                refused++;
            }
            else {
                weird++;
            }
            crashes_avoided++;
            apr_pool_destroy(sub);
        }
    }
    free(copy);
    ok(weird == 0,
       "%d single-byte corruptions: %d refused, %d still valid,"
       " %d odd results",
       crashes_avoided, refused, accepted, weird);
    ok(refused > 0 && accepted > 0,
       "corruptions of lengths are refused, of text/counters accepted");

    /* Lengths set huge must not size an allocation or an overread. */
    {
        unsigned char h[64];
        memset(h, 0xff, sizeof h);
        h[0] = buf[0];
        h[1] = buf[1];
        is_int(decode_copy(pool, (char *)h, sizeof h, &d), APR_EINVAL,
               "magic, version, then 0xff lengths: APR_EINVAL");
    }
    /* Random buffers behind a valid header. */
    {
        unsigned int seed = 12345;
        int n, odd = 0;
        for (n = 0; n < 2000; n++) {
            apr_size_t l = (seed = seed * 1103515245u + 12345u) % 300;
            unsigned char r[300];
            apr_size_t j;
            for (j = 0; j < l; j++) {
                r[j] =
                    (unsigned char)((seed = seed * 1103515245u + 12345u) >> 16);
            }
            if (l >= 2) {
                r[0] = (unsigned char)buf[0];
                r[1] = (unsigned char)buf[1];
            }
            apr_pool_create(&sub, pool);
            if (decode_copy(sub, (char *)r, l, &d) == APR_SUCCESS) {
                if (d == NULL) {
                    odd++;
                }
                else {
                    walk(d);
                }
            }
            apr_pool_destroy(sub);
        }
        is_int(odd, 0, "2000 random buffers decode without harm");
    }
}

static void test_strings_copied(void)
{
    sd_session_t *s = fixture(pool), *d = NULL;
    char *buf, *copy;
    apr_size_t len = sd_record_encode(pool, s, &buf);

    copy = malloc(len);
    memcpy(copy, buf, len);
    sd_record_decode(pool, copy, len, &d);
    memset(copy, 'Z', len);
    free(copy);
    ok(d && same_session(s, d),
       "decoded strings are copies, not pointers into the buffer");
}

static void test_hash64(void)
{
    apr_uint64_t a = sd_hash64("Mozilla/5.0", 11);
    ok(a == sd_hash64("Mozilla/5.0", 11), "hash64 is deterministic");
    ok(a != sd_hash64("Mozilla/5.1", 11), "hash64 differs on one char");
    ok(a != sd_hash64("Mozilla/5.0", 10), "hash64 uses len");
    ok(sd_hash64("", 0) != sd_hash64("a", 1), "hash64 of empty and 'a'");
    ok(sd_hash64("$2y$10$abc", 10) != sd_hash64("$2y$10$abd", 10),
       "hash64 of two password entries differs");
    ok(a != 0, "hash64 is not zero");
}

/* sd_record_is_user looks at the user field only, exactly. */
static void test_is_user(void)
{
    sd_session_t *s = sd_session_make(pool, "alice", "staff");
    char *buf;
    apr_size_t len = sd_record_encode(pool, s, &buf), i;
    int short_ok = 1;

    ok(sd_record_is_user(buf, len, "alice"), "is_user: alice");
    ok(!sd_record_is_user(buf, len, "alic"), "is_user: not a prefix");
    ok(!sd_record_is_user(buf, len, "alice2"), "is_user: not a longer name");
    ok(!sd_record_is_user(buf, len, "staff"), "is_user: not the role");
    for (i = 0; i < 11; i++) {
        short_ok &= !sd_record_is_user(buf, i, "alice");
    }
    ok(short_ok, "is_user: a record cut before the end of the name is no match");
    ok(!sd_record_is_user(NULL, 0, "alice"), "is_user: NULL is no match");
    is_str(sd_record_user(pool, buf, 11), "alice",
           "record_user: read from the first 11 bytes");
    ok(sd_record_user(pool, buf, 10) == NULL,
       "record_user: NULL when the name is cut");
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_make();
    test_roundtrip();
    test_hostile();
    test_strings_copied();
    test_hash64();
    test_is_user();
    apr_pool_destroy(pool);
    apr_terminate();
    return done_testing();
}
