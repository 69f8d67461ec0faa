/*
 * Form tokens (sd_token.c): the format is what sd_token.h documents
 * (rebuilt here from sd_hmac_sha256 and sd_b64url_encode); a token checks
 * at its issue time, until ttl seconds later and from 60 seconds before;
 * another purpose, bind or secret refuses it; every single-character change
 * to a token is refused (so no second spelling of one is accepted); wrong
 * lengths and NULL are refused; and tokens with crafted times (high bit
 * set, all ones, just outside the window) carrying a valid MAC are refused
 * without undefined behaviour (the glue's old decoder shifted such a time
 * past the range of a signed integer: run this under SANITIZE=1).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <apr_general.h>

#include "tap.h"
#include "sd_id.h"
#include "sd_sha256.h"
#include "sd_token.h"

#define T0 1700000000
#define TTL 3600

/* 32 bytes, none of them 0: HMAC pads a key with zeros, so a secret that
 * ended in one would equal its own prefix and hide a length bug. */
static unsigned char SECRET[32];
static const unsigned char BIND[] = "pre-login-cookie-value";
#define BINDLEN (sizeof(BIND) - 1)

static int check_at(const char *token, apr_int64_t now)
{
    return sd_token_check(SECRET, sizeof SECRET, "login", BIND, BINDLEN, token,
                          now, TTL);
}

static void make_at(apr_int64_t t, char *out)
{
    sd_token_make(SECRET, sizeof SECRET, "login", BIND, BINDLEN, t, out);
}

/* The token for time bytes @a tb, built from the documented format. */
static void documented(const unsigned char tb[8], const char *purpose,
                       const unsigned char *bind, apr_size_t bindlen,
                       char out[SD_TOKEN_LEN + 1])
{
    unsigned char msg[256], mac[SD_SHA256_LEN], raw[SD_TOKEN_BYTES];
    apr_size_t pl = strlen(purpose), n = 0;

    memcpy(msg, purpose, pl);
    msg[pl] = 0;
    memcpy(msg + pl + 1, bind, bindlen);
    memcpy(msg + pl + 1 + bindlen, tb, 8);
    n = pl + 1 + bindlen + 8;
    sd_hmac_sha256(SECRET, sizeof SECRET, msg, n, mac);
    memcpy(raw, tb, 8);
    memcpy(raw + 8, mac, SD_TOKEN_MAC_BYTES);
    sd_b64url_encode(raw, sizeof raw, out);
}

static void be64(apr_uint64_t v, unsigned char tb[8])
{
    int i;
    for (i = 0; i < 8; i++) {
        tb[i] = (unsigned char)(v >> (56 - 8 * i));
    }
}

static void test_round_trip(void)
{
    char tok[SD_TOKEN_LEN + 1], again[SD_TOKEN_LEN + 1];
    char doc[SD_TOKEN_LEN + 1];
    unsigned char tb[8], raw[SD_TOKEN_BYTES];
    apr_size_t n = 0;

    memset(tok, 'x', sizeof tok);
    make_at(T0, tok);
    is_int((long long)strlen(tok), SD_TOKEN_LEN, "a token is 35 characters");
    ok(sd_b64url_decode(tok, SD_TOKEN_LEN, raw, sizeof raw, &n) ==
               APR_SUCCESS &&
           n == SD_TOKEN_BYTES,
       "... of canonical base64url for 26 bytes: %s", tok);
    be64(T0, tb);
    documented(tb, "login", BIND, BINDLEN, doc);
    is_str(tok, doc,
           "... base64url(T || first 18 bytes of HMAC(secret, purpose || 0 "
           "|| bind || T)), as sd_token.h says");
    make_at(T0, again);
    is_str(again, tok, "making it again gives the same token");
    ok(check_at(tok, T0), "it checks at its issue time");
    ok(check_at(tok, T0 + TTL), "... and %d s later (the ttl)", TTL);
    ok(!check_at(tok, T0 + TTL + 1), "... but not a second more");
    ok(check_at(tok, T0 - SD_TOKEN_FUTURE),
       "... nor is it refused 60 s before it was issued (clock skew)");
    ok(!check_at(tok, T0 - SD_TOKEN_FUTURE - 1), "... but 61 s before it is");
    ok(sd_token_check(SECRET, sizeof SECRET, "login", BIND, BINDLEN, tok, T0,
                      0),
       "with ttl 0 it checks only at its issue time");
    ok(!sd_token_check(SECRET, sizeof SECRET, "login", BIND, BINDLEN, tok,
                       T0 + 1, 0),
       "... and not a second later");

    make_at(T0 - TTL - 1, again);
    ok(!check_at(again, T0), "a token issued ttl + 1 s ago: refused");
    make_at(T0 + 61, again);
    ok(!check_at(again, T0), "a token issued 61 s in the future: refused");
    make_at(T0 + 60, again);
    ok(check_at(again, T0), "one issued 60 s in the future: accepted");
}

static void test_binding(void)
{
    char tok[SD_TOKEN_LEN + 1], other[SD_TOKEN_LEN + 1];
    static const unsigned char bind2[] = "pre-login-cookie-valuf";
    unsigned char secret2[32];

    make_at(T0, tok);
    ok(!sd_token_check(SECRET, sizeof SECRET, "logout", BIND, BINDLEN, tok, T0,
                       TTL),
       "another purpose: refused");
    ok(!sd_token_check(SECRET, sizeof SECRET, "logi", BIND, BINDLEN, tok, T0,
                       TTL),
       "a purpose that is a prefix: refused");
    ok(!sd_token_check(SECRET, sizeof SECRET, "login", bind2, BINDLEN, tok, T0,
                       TTL),
       "a bind that differs in its last byte: refused");
    ok(!sd_token_check(SECRET, sizeof SECRET, "login", BIND, BINDLEN - 1, tok,
                       T0, TTL),
       "a bind one byte shorter: refused");
    ok(!sd_token_check(SECRET, sizeof SECRET, "login", NULL, 0, tok, T0, TTL),
       "no bind for a bound token: refused");
    sd_token_make(SECRET, sizeof SECRET, "login", NULL, 0, T0, other);
    ok(sd_token_check(SECRET, sizeof SECRET, "login", NULL, 0, other, T0,
                      TTL) &&
           !check_at(other, T0),
       "an unbound token checks unbound, and not with a bind");
    /* purpose "logi" and bind "n..." must not meet "login" and "...": the
     * 0 after the purpose keeps them apart. */
    {
        unsigned char nb[BINDLEN + 1];
        nb[0] = 'n';
        memcpy(nb + 1, BIND, BINDLEN);
        ok(!sd_token_check(SECRET, sizeof SECRET, "logi", nb, sizeof nb, tok,
                           T0, TTL),
           "purpose \"logi\" with the bind \"n\" + bind: refused");
    }
    memcpy(secret2, SECRET, sizeof secret2);
    secret2[31] ^= 1;
    ok(!sd_token_check(secret2, sizeof secret2, "login", BIND, BINDLEN, tok, T0,
                       TTL),
       "another secret (last byte): refused");
    ok(!sd_token_check(SECRET, 31, "login", BIND, BINDLEN, tok, T0, TTL),
       "the secret's first 31 bytes: refused");
}

static void test_mutations(void)
{
    char tok[SD_TOKEN_LEN + 1], m[SD_TOKEN_LEN + 2];
    int i, c, accepted = 0, tried = 0;

    make_at(T0, tok);
    for (i = 0; i < SD_TOKEN_LEN; i++) {
        for (c = 1; c < 256; c++) {
            if (c == (unsigned char)tok[i]) {
                continue;
            }
            memcpy(m, tok, sizeof tok);
            m[i] = (char)c;
            tried++;
            if (check_at(m, T0)) {
                diag("accepted with '%c' (0x%02x) at %d", c, c, i);
                accepted++;
            }
        }
    }
    is_int(accepted, 0,
           "each of the %d single-character changes (any byte 1..255 at "
           "each position) is refused",
           tried);

    /* The last character holds 4 bits of MAC and 2 spare bits: the 3
     * other spellings with the same 4 bits decode to the same bytes, and
     * must be refused (one token, one text). */
    {
        static const char a[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        int v = (int)(strchr(a, tok[SD_TOKEN_LEN - 1]) - a), spare = 0;
        for (c = 1; c < 4; c++) {
            memcpy(m, tok, sizeof tok);
            m[SD_TOKEN_LEN - 1] = a[(v & ~3) | c];
            spare += check_at(m, T0);
        }
        is_int(spare, 0, "... among them the 3 non-canonical last characters");
    }

    ok(!check_at(NULL, T0), "NULL: refused");
    ok(!check_at("", T0), "empty: refused");
    memcpy(m, tok, sizeof tok);
    m[SD_TOKEN_LEN - 1] = '\0';
    ok(!check_at(m, T0), "34 characters: refused");
    memcpy(m, tok, sizeof tok);
    m[SD_TOKEN_LEN] = 'A';
    m[SD_TOKEN_LEN + 1] = '\0';
    ok(!check_at(m, T0), "36 characters: refused");
    memcpy(m, tok, sizeof tok);
    m[SD_TOKEN_LEN] = '=';
    m[SD_TOKEN_LEN + 1] = '\0';
    ok(!check_at(m, T0), "the token with '=' padding: refused");
}

/* Tokens whose time is outside what a signed 64-bit number or the window
 * holds, each with a valid MAC (the secret is known here): refused, with
 * no signed overflow on the way (UBSan aborts on one). */
static void test_crafted_times(void)
{
    static const apr_uint64_t times[] = {
        0x8000000000000000ULL,      0xFFFFFFFFFFFFFFFFULL,
        0xFFFFFFFFFFFFFF00ULL,      0x7FFFFFFFFFFFFFFFULL,
        (apr_uint64_t)T0 + 61,      0,
        (apr_uint64_t)T0 - TTL - 1,
    };
    char tok[SD_TOKEN_LEN + 1];
    unsigned char tb[8];
    int i, accepted = 0;

    for (i = 0; i < (int)(sizeof times / sizeof times[0]); i++) {
        be64(times[i], tb);
        documented(tb, "login", BIND, BINDLEN, tok);
        if (check_at(tok, T0)) {
            diag("time 0x%016llx accepted", (unsigned long long)times[i]);
            accepted++;
        }
    }
    is_int(accepted, 0,
           "valid MACs on times 2^63, 2^64-1, 2^64-256, 2^63-1, now+61, 0, "
           "now-ttl-1: all refused");

    be64(0xFFFFFFFFFFFFFFFFULL, tb);
    documented(tb, "login", BIND, BINDLEN, tok);
    ok(!sd_token_check(SECRET, sizeof SECRET, "login", BIND, BINDLEN, tok,
                       INT64_MAX, INT64_MAX),
       "2^64-1 at now = ttl = INT64_MAX: refused (2^63 s ahead)");
    be64(0x8000000000000000ULL + SD_TOKEN_FUTURE, tb);
    documented(tb, "login", BIND, BINDLEN, tok);
    ok(!sd_token_check(SECRET, sizeof SECRET, "login", BIND, BINDLEN, tok,
                       INT64_MAX, INT64_MAX),
       "2^63+60 at now = INT64_MAX: refused (61 s ahead, no wrap-around)");
    be64(0x7FFFFFFFFFFFFFFFULL, tb);
    documented(tb, "login", BIND, BINDLEN, tok);
    ok(sd_token_check(SECRET, sizeof SECRET, "login", BIND, BINDLEN, tok,
                      INT64_MAX, 0),
       "2^63-1 at now = INT64_MAX: accepted (the edges hold)");
    be64(0, tb);
    documented(tb, "login", BIND, BINDLEN, tok);
    ok(sd_token_check(SECRET, sizeof SECRET, "login", BIND, BINDLEN, tok,
                      INT64_MAX, INT64_MAX),
       "0 at now = ttl = INT64_MAX: accepted (age exactly the ttl)");
    ok(!sd_token_check(SECRET, sizeof SECRET, "login", BIND, BINDLEN, tok,
                       INT64_MAX, INT64_MAX - 1),
       "... and with a ttl 1 s shorter: refused");

    make_at(INT64_MIN, tok);
    ok(strlen(tok) == SD_TOKEN_LEN && !check_at(tok, T0) &&
           !sd_token_check(SECRET, sizeof SECRET, "login", BIND, BINDLEN, tok,
                           INT64_MAX - 61, INT64_MAX),
       "a token made at INT64_MIN (time 2^63) is refused at T0 and at "
       "INT64_MAX - 61");
    make_at(T0, tok);
    ok(!check_at(tok, -1) && !sd_token_check(SECRET, sizeof SECRET, "login",
                                             BIND, BINDLEN, tok, T0, -1),
       "a negative now or ttl accepts nothing");
}

int main(void)
{
    int i;

    for (i = 0; i < (int)sizeof SECRET; i++) {
        SECRET[i] = (unsigned char)(i * 7 + 1);
    }
    apr_initialize();
    test_round_trip();
    test_binding();
    test_mutations();
    test_crafted_times();
    apr_terminate();
    return done_testing();
}
