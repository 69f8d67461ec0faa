/*
 * sd_token_check, sd_token_make.
 *
 * Input: the first byte picks the context (bit 0: bound to a pre-login
 * cookie value or not; bit 1: purpose "login" or "logout"; bit 2: ttl 3600
 * or 0); the rest, NUL-terminated (an embedded NUL ends it, as in a C
 * string from a form), is the candidate token, checked at NOW.
 *
 * Properties:
 *  - sd_token_check accepts exactly when a reference says so: the text is
 *    35 base64url characters that decode (by a decoder written here) to
 *    26 bytes that re-encode to the same text, the big-endian time in its
 *    first 8 bytes is at most 60 s after NOW and at most ttl before it
 *    (computed in 128 bits), and the text is what sd_token_make gives for
 *    that time;
 *  - sd_token_make for the time in the input's first 8 bytes, and for a
 *    time near NOW derived from them, gives 35 base64url characters that
 *    sd_token_check accepts exactly when that time is in the window, and
 *    never under the other purpose, the other bind or another secret.
 */
#include "fuzz_common.h"
#include "sd_id.h"
#include "sd_token.h"

#define NOW ((apr_int64_t)1700000000)

static const unsigned char SECRET[32] = "fuzz-token-secret-0123456789abc";
static const unsigned char OTHER_SECRET[32] = "fuzz-token-secret-0123456789abd";
static const unsigned char BIND[] = "pre-login-cookie-value";

static int val(unsigned char c)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *p = c ? memchr(a, c, 64) : NULL;
    return p ? (int)(p - a) : -1;
}

/* Decode 35 characters to 26 bytes; 0 when a character is not base64url. */
static int ref_decode(const char *s, unsigned char out[SD_TOKEN_BYTES])
{
    unsigned long acc = 0;
    int i, bits = 0, o = 0;

    for (i = 0; i < SD_TOKEN_LEN; i++) {
        int v = val((unsigned char)s[i]);
        if (v < 0) {
            return 0;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1UL << bits) - 1;
        }
    }
    return o == SD_TOKEN_BYTES;
}

static int ref_in_window(apr_uint64_t t, apr_int64_t ttl)
{
    __int128 d = (__int128)t - NOW;
    return d <= SD_TOKEN_FUTURE && -d <= ttl;
}

static int is_token_text(const char *s)
{
    int i;
    if (strlen(s) != SD_TOKEN_LEN) {
        return 0;
    }
    for (i = 0; i < SD_TOKEN_LEN; i++) {
        if (val((unsigned char)s[i]) < 0) {
            return 0;
        }
    }
    return 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_apr_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *bind, *other_bind;
    apr_size_t bindlen, other_len;
    const char *purpose, *other_purpose;
    apr_int64_t ttl;
    char *text, made[SD_TOKEN_LEN + 1];
    unsigned char raw[SD_TOKEN_BYTES];
    int got, want = 0;

    if (size == 0) {
        return 0;
    }
    bind = data[0] & 1 ? BIND : NULL;
    bindlen = data[0] & 1 ? sizeof(BIND) - 1 : 0;
    other_bind = data[0] & 1 ? NULL : BIND;
    other_len = data[0] & 1 ? 0 : sizeof(BIND) - 1;
    purpose = data[0] & 2 ? "logout" : "login";
    other_purpose = data[0] & 2 ? "login" : "logout";
    ttl = data[0] & 4 ? 0 : 3600;
    text = fuzz_dup(data + 1, size - 1, 1);

    /* The candidate, against the reference. */
    got = sd_token_check(SECRET, sizeof(SECRET), purpose, bind, bindlen, text,
                         NOW, ttl);
    if (strlen(text) == SD_TOKEN_LEN && ref_decode(text, raw)) {
        apr_uint64_t t = 0;
        char again[SD_TOKEN_LEN + 1];
        int i;
        sd_b64url_encode(raw, sizeof(raw), again);
        for (i = 0; i < 8; i++) {
            t = (t << 8) | raw[i];
        }
        if (strcmp(again, text) == 0 && ref_in_window(t, ttl)) {
            sd_token_make(SECRET, sizeof(SECRET), purpose, bind, bindlen,
                          (apr_int64_t)t, made);
            want = strcmp(made, text) == 0;
        }
    }
    FUZZ_CHECK(got == want, "sd_token_check says %d, the reference %d: %s", got,
               want, text);

    /* Tokens made from the input's first 8 bytes, as a time and as an
     * offset from NOW (-3900 .. +100 s: both edges of both windows). */
    if (size >= 9) {
        apr_uint64_t t = 0, near;
        apr_uint64_t times[2];
        int i, k;
        for (i = 1; i <= 8; i++) {
            t = (t << 8) | data[i];
        }
        near = (apr_uint64_t)NOW + 100 - t % 4000;
        times[0] = t;
        times[1] = near;
        for (k = 0; k < 2; k++) {
            int in = ref_in_window(times[k], ttl);
            sd_token_make(SECRET, sizeof(SECRET), purpose, bind, bindlen,
                          (apr_int64_t)times[k], made);
            FUZZ_CHECK(is_token_text(made), "made \"%s\"", made);
            FUZZ_CHECK(sd_token_check(SECRET, sizeof(SECRET), purpose, bind,
                                      bindlen, made, NOW, ttl) == in,
                       "a made token at %llu: accepted %d, in window %d",
                       (unsigned long long)times[k], !in, in);
            FUZZ_CHECK(!sd_token_check(SECRET, sizeof(SECRET), other_purpose,
                                       bind, bindlen, made, NOW, ttl),
                       "accepted under the other purpose");
            FUZZ_CHECK(!sd_token_check(SECRET, sizeof(SECRET), purpose,
                                       other_bind, other_len, made, NOW, ttl),
                       "accepted with the other bind");
            FUZZ_CHECK(!sd_token_check(OTHER_SECRET, sizeof(OTHER_SECRET),
                                       purpose, bind, bindlen, made, NOW, ttl),
                       "accepted under another secret");
        }
    }
    free(text);
    return 0;
}
