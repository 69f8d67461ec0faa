/*
 * Session IDs: 43 characters of unpadded base64url from 256 random
 * bits, the strict well-formedness check, and the store key and log prefix
 * derived from an ID. Also the strict base64url decoder the login tokens
 * use: round trips at every length, and everything APR's own decoder would
 * let through (padding, '+' and '/', whitespace, spare bits) refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>

#include "tap.h"
#include "sd_id.h"
#include "sd_sha256.h"

static const char B64URL[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* A well-formed ID to mutate: 42 characters then a canonical last one. */
static const char GOOD[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123A";

static int is_b64url(const char *s)
{
    for (; *s; s++) {
        if (strchr(B64URL, *s) == NULL) {
            return 0;
        }
    }
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_b64url(void)
{
    char out[64];
    static const unsigned char fbff[] = {0xfb, 0xff};
    static const unsigned char z32[32] = {0};
    unsigned char ff32[32];

    sd_b64url_encode((const unsigned char *)"", 0, out);
    is_str(out, "", "b64url of nothing");
    sd_b64url_encode((const unsigned char *)"f", 1, out);
    is_str(out, "Zg", "b64url of \"f\" (no padding)");
    sd_b64url_encode((const unsigned char *)"fo", 2, out);
    is_str(out, "Zm8", "b64url of \"fo\"");
    sd_b64url_encode((const unsigned char *)"foo", 3, out);
    is_str(out, "Zm9v", "b64url of \"foo\"");
    sd_b64url_encode((const unsigned char *)"foobar", 6, out);
    is_str(out, "Zm9vYmFy", "b64url of \"foobar\"");
    sd_b64url_encode(fbff, 2, out);
    is_str(out, "-_8", "b64url uses - and _ instead of + and /");
    sd_b64url_encode(z32, 32, out);
    is_str(out, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
           "b64url of 32 zero bytes");
    memset(ff32, 0xff, sizeof ff32);
    sd_b64url_encode(ff32, 32, out);
    is_str(out, "__________________________________________8",
           "b64url of 32 0xff bytes ends in a canonical '8'");
    ok(sd_id_wellformed(out, strlen(out)), "the all-ones ID is well-formed");
}

static void test_new(void)
{
    static char ids[1000][SD_ID_LEN + 1];
    char id[SD_ID_LEN + 1];
    int i, bad = 0, dup = 0, rvbad = 0;
    int seen_last[64] = {0};

    memset(id, 'x', sizeof id);
    is_int(sd_id_new(id), APR_SUCCESS, "sd_id_new succeeds");
    is_int((long long)strlen(id), 43, "an ID is 43 characters");
    ok(is_b64url(id), "an ID is base64url: %s", id);
    ok(sd_id_wellformed(id, strlen(id)), "a new ID is well-formed");

    for (i = 0; i < 1000; i++) {
        if (sd_id_new(ids[i]) != APR_SUCCESS) {
            rvbad++;
        }
        if (strlen(ids[i]) != SD_ID_LEN || !is_b64url(ids[i]) ||
            !sd_id_wellformed(ids[i], SD_ID_LEN)) {
            bad++;
        }
        seen_last[strchr(B64URL, ids[i][42]) - B64URL]++;
    }
    is_int(rvbad + bad, 0,
           "1000 new IDs: all succeed, 43 chars, "
           "well-formed");
    qsort(ids, 1000, sizeof ids[0], cmp_str);
    for (i = 1; i < 1000; i++) {
        if (strcmp(ids[i - 1], ids[i]) == 0) {
            dup++;
        }
    }
    is_int(dup, 0, "1000 new IDs are all distinct");
    {
        /* The last character carries 4 random bits: of its 16 canonical
         * values, 1000 IDs should show nearly all (a fixed or biased source
         * would not). */
        int distinct = 0;
        for (i = 0; i < 64; i++) {
            distinct += seen_last[i] != 0;
        }
        ok(distinct >= 14 && distinct <= 16,
           "last characters of 1000 IDs take %d of the 16 canonical values",
           distinct);
    }
}

static void test_wellformed(void)
{
    char s[64];
    const char *p;
    int i, accepted = 0, refused = 0;

    is_int((long long)strlen(GOOD), 43, "(fixture is 43 characters)");
    ok(sd_id_wellformed(GOOD, 43), "43 base64url chars, canonical end");
    ok(!sd_id_wellformed(GOOD, 42), "42 characters refused");
    memcpy(s, GOOD, 43);
    s[43] = 'A';
    s[44] = '\0';
    ok(!sd_id_wellformed(s, 44), "44 characters refused");
    ok(!sd_id_wellformed("", 0), "empty refused");
    ok(!sd_id_wellformed(NULL, 0), "NULL refused");

    for (i = 0; i < 5; i++) {
        static const char bad[] = "=+/ .";
        memcpy(s, GOOD, 44);
        s[10] = bad[i];
        if (!sd_id_wellformed(s, 43)) {
            refused++;
        }
    }
    is_int(refused, 5, "'=', '+', '/', space, '.' inside refused");
    memcpy(s, GOOD, 44);
    s[42] = '=';
    ok(!sd_id_wellformed(s, 43), "'=' at the end refused");
    memcpy(s, GOOD, 44);
    s[20] = '\0';
    ok(!sd_id_wellformed(s, 43), "embedded NUL refused");
    memcpy(s, GOOD, 44);
    s[5] = (char)0xc3;
    ok(!sd_id_wellformed(s, 43), "high byte refused");

    /* Exactly the 16 characters whose low two bits are zero may end an
     * ID of 32 bytes. */
    accepted = 0;
    refused = 0;
    for (p = B64URL; *p; p++) {
        int v = (int)(p - B64URL);
        memcpy(s, GOOD, 44);
        s[42] = *p;
        if (sd_id_wellformed(s, 43)) {
            accepted++;
            if (v & 3) {
                diag("non-canonical last char '%c' accepted", *p);
                refused = -1000;
            }
        }
        else if (!(v & 3)) {
            diag("canonical last char '%c' refused", *p);
            refused = -1000;
        }
        else {
            refused++;
        }
    }
    is_int(accepted, 16,
           "16 last characters accepted "
           "(AEIMQUYcgkosw048)");
    is_int(refused, 48, "the 48 non-canonical last characters refused");
    memcpy(s, GOOD, 44);
    s[42] = 'B';
    ok(!sd_id_wellformed(s, 43), "ends in 'B' refused");
    s[42] = '_';
    ok(!sd_id_wellformed(s, 43), "ends in '_' refused");
    s[42] = '8';
    ok(sd_id_wellformed(s, 43), "ends in '8' accepted");
}

static void test_key(void)
{
    char a[SD_ID_LEN + 1], b[SD_ID_LEN + 1], pre[SD_KEY_PREFIX_LEN + 1];
    sd_key_t k1, k2, k3;
    unsigned char want[SD_SHA256_LEN];
    char wantpre[9];

    sd_id_new(a);
    sd_id_new(b);
    sd_id_key(a, SD_ID_LEN, &k1);
    sd_id_key(a, SD_ID_LEN, &k2);
    sd_id_key(b, SD_ID_LEN, &k3);
    ok(memcmp(k1.b, k2.b, SD_KEY_LEN) == 0, "sd_id_key is deterministic");
    ok(memcmp(k1.b, k3.b, SD_KEY_LEN) != 0,
       "different IDs give different keys");
    ok(memcmp(k1.b, a, SD_KEY_LEN) != 0, "the key is not the ID's text");
    sd_sha256(a, SD_ID_LEN, want);
    ok(memcmp(k1.b, want, SD_KEY_LEN) == 0, "the key is SHA-256 of the ID");
    sd_id_key(GOOD, 42, &k2);
    sd_id_key(GOOD, 43, &k3);
    ok(memcmp(k2.b, k3.b, SD_KEY_LEN) != 0, "sd_id_key uses len");

    memset(&k1, 0, sizeof k1);
    k1.b[0] = 0xde;
    k1.b[1] = 0xad;
    k1.b[2] = 0x0b;
    k1.b[3] = 0xef;
    k1.b[4] = 0x77;
    memset(pre, 'x', sizeof pre);
    sd_key_prefix(&k1, pre);
    is_str(pre, "dead0bef", "prefix is 8 lowercase hex of the first 4 bytes");

    sd_id_key(b, SD_ID_LEN, &k3);
    sd_key_prefix(&k3, pre);
    snprintf(wantpre, sizeof wantpre, "%02x%02x%02x%02x", k3.b[0], k3.b[1],
             k3.b[2], k3.b[3]);
    is_str(pre, wantpre, "prefix of a real key");
    memset(&k1, 0xff, sizeof k1);
    sd_key_prefix(&k1, pre);
    is_str(pre, "ffffffff", "prefix of an all-ones key");
}

/* A decode of @a text into a buffer of exactly @a cap bytes (so that ASan
 * sees any write past it); *got gets the bytes, *n their number. */
static apr_status_t decode(const char *text, apr_size_t cap, unsigned char *got,
                           apr_size_t *n)
{
    unsigned char *buf = malloc(cap ? cap : 1);
    apr_status_t rv;

    *n = 12345;
    rv = sd_b64url_decode(text, strlen(text), buf, cap, n);
    if (rv == APR_SUCCESS && got) {
        memcpy(got, buf, *n);
    }
    free(buf);
    return rv;
}

static void test_decode(void)
{
    unsigned char in[64], got[64];
    char text[100];
    apr_size_t len, n = 0;
    int bad = 0, i;
    apr_status_t rv;
    static const char *const refuse[] = {
        "Zg==",  "Zg=", "Zm9v=", "a+b/", "Zm9v\n", " Zm9v",   "Zm 9v",
        "Zm9v.", "Zh",  "Zm9",   "Z",    "Zm9vY",  "Zm9v%41", "\303\251AA",
    };

    /* Every length from 0 to 64 bytes, every canonical text. */
    for (len = 0; len <= sizeof in; len++) {
        for (i = 0; i < (int)len; i++) {
            in[i] = (unsigned char)(len * 37 + (apr_size_t)i * 101 + 5);
        }
        sd_b64url_encode(in, len, text);
        rv = decode(text, len, got, &n);
        if (rv != APR_SUCCESS || n != len || memcmp(got, in, len) != 0) {
            diag("length %u: rv %d, %u bytes", (unsigned)len, rv, (unsigned)n);
            bad++;
        }
    }
    is_int(bad, 0,
           "decode(encode(x)) == x for 0..64 bytes, into exactly-sized "
           "buffers");

    rv = decode("-_8", 2, got, &n);
    ok(rv == APR_SUCCESS && n == 2 && got[0] == 0xfb && got[1] == 0xff,
       "\"-_8\" decodes to fb ff (the URL-safe alphabet)");
    is_int(decode("Zm9vYmFy", 5, NULL, &n), APR_ENOSPC,
           "6 bytes into a buffer of 5: APR_ENOSPC");
    is_int((long long)n, 0, "... and the length is 0");

    for (bad = 0, i = 0; i < (int)(sizeof refuse / sizeof refuse[0]); i++) {
        rv = decode(refuse[i], 64, NULL, &n);
        if (rv == APR_SUCCESS || n != 0) {
            diag("\"%s\" accepted (%u bytes)", refuse[i], (unsigned)n);
            bad++;
        }
    }
    is_int(bad, 0,
           "padding, '+' and '/', whitespace, '.', '%%', a non-canonical "
           "last character (\"Zh\", \"Zm9\"), lengths 4n+1, non-ASCII: "
           "all refused");
    {
        static const char nul[] = "Zm\0v";
        apr_size_t m = 99;
        ok(sd_b64url_decode(nul, 4, got, sizeof got, &m) == APR_BADCH && m == 0,
           "an embedded NUL is refused");
    }

    /* The last character of a 2-character tail carries 4 data bits; of
     * 3, 2: exactly the spellings with zero spare bits pass. */
    {
        int ok2 = 0, ok3 = 0;
        const char *p;
        for (p = B64URL; *p; p++) {
            char t2[3] = {'Z', *p, '\0'}, t3[4] = {'Z', 'm', *p, '\0'};
            ok2 += decode(t2, 1, NULL, &n) == APR_SUCCESS;
            ok3 += decode(t3, 2, NULL, &n) == APR_SUCCESS;
        }
        is_int(ok2, 4, "of 64 final characters after \"Z\", 4 pass");
        is_int(ok3, 16, "of 64 final characters after \"Zm\", 16 pass");
    }
}

int main(void)
{
    apr_initialize();
    plan(47);
    test_b64url();
    test_new();
    test_wellformed();
    test_key();
    test_decode();
    apr_terminate();
    return done_testing();
}
