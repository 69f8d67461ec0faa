/*
 * Form tokens: base64url(issue time || truncated HMAC), see sd_token.h.
 *
 * This replaces a decoder in the glue that rebuilt the issue time with a
 * signed shift (t = (t << 8) | byte), which a crafted token with the high
 * bit set pushed past the range of apr_int64_t (undefined behaviour, an
 * UBSan abort), and whose time checks (t > now + 60, now - t > ttl) could
 * overflow too. Here the time is assembled and compared as apr_uint64_t,
 * the text is decoded by the strict sd_b64url_decode(), and the MAC is
 * checked last, in constant time, after the cheap checks that need no
 * secret.
 */
#include <string.h>

#include "sd_id.h"
#include "sd_sha256.h"
#include "sd_token.h"

/* The MAC of a token: HMAC-SHA-256(secret, purpose || 0 || bind || tb).
 * The 0 ends the purpose (a C string cannot contain one), so no purpose
 * and bind can run together into another pair's message. */
static apr_status_t token_mac(const unsigned char *secret, apr_size_t slen,
                              const char *purpose, const unsigned char *bind,
                              apr_size_t bindlen,
                              const unsigned char tb[SD_TOKEN_TIME_BYTES],
                              unsigned char mac[SD_SHA256_LEN])
{
    static const unsigned char zero = 0;
    sd_hmac_sha256_ctx_t c;
    apr_status_t rv;

    if (purpose == NULL) {
        purpose = "";
    }
    rv = sd_hmac_sha256_init(&c, secret, slen);
    if (rv == APR_SUCCESS) {
        rv = sd_hmac_sha256_update(&c, purpose, strlen(purpose));
    }
    if (rv == APR_SUCCESS) {
        rv = sd_hmac_sha256_update(&c, &zero, 1);
    }
    if (rv == APR_SUCCESS) {
        rv = sd_hmac_sha256_update(&c, bind, bindlen);
    }
    if (rv == APR_SUCCESS) {
        rv = sd_hmac_sha256_update(&c, tb, SD_TOKEN_TIME_BYTES);
    }
    if (rv == APR_SUCCESS) {
        return sd_hmac_sha256_final(&c, mac);
    }
    sd_hmac_sha256_final(&c, NULL);
    return rv;
}

void sd_token_make(const unsigned char *secret, apr_size_t slen,
                   const char *purpose, const unsigned char *bind,
                   apr_size_t bindlen, apr_int64_t t, char *out)
{
    unsigned char raw[SD_TOKEN_BYTES], mac[SD_SHA256_LEN];
    apr_uint64_t u = (apr_uint64_t)t;
    int i;

    for (i = 0; i < SD_TOKEN_TIME_BYTES; i++) {
        raw[i] = (unsigned char)(u >> (56 - 8 * i));
    }
    if (token_mac(secret, slen, purpose, bind, bindlen, raw, mac) !=
        APR_SUCCESS) {
        out[0] = '\0';
    }
    else {
        memcpy(raw + SD_TOKEN_TIME_BYTES, mac, SD_TOKEN_MAC_BYTES);
        sd_b64url_encode(raw, sizeof(raw), out);
    }
    sd_wipe(mac, sizeof(mac));
    sd_wipe(raw, sizeof(raw));
}

int sd_token_check(const unsigned char *secret, apr_size_t slen,
                   const char *purpose, const unsigned char *bind,
                   apr_size_t bindlen, const char *token, apr_int64_t now,
                   apr_int64_t ttl)
{
    unsigned char raw[SD_TOKEN_BYTES], mac[SD_SHA256_LEN];
    apr_uint64_t t = 0, u;
    apr_size_t n = 0;
    int i, good;

    if (token == NULL || now < 0 || ttl < 0 ||
        strnlen(token, SD_TOKEN_LEN + 1) != SD_TOKEN_LEN ||
        sd_b64url_decode(token, SD_TOKEN_LEN, raw, sizeof(raw), &n) !=
            APR_SUCCESS ||
        n != SD_TOKEN_BYTES) {
        return 0;
    }
    for (i = 0; i < SD_TOKEN_TIME_BYTES; i++) {
        t = (t << 8) | raw[i];
    }
    /* Unsigned, and each subtraction only in the direction that cannot
     * wrap: now >= 0 here, so u is now itself. */
    u = (apr_uint64_t)now;
    if (t > u ? t - u > SD_TOKEN_FUTURE : u - t > (apr_uint64_t)ttl) {
        return 0;
    }
    if (token_mac(secret, slen, purpose, bind, bindlen, raw, mac) !=
        APR_SUCCESS) {
        sd_wipe(mac, sizeof(mac));
        return 0;
    }
    good = sd_ct_equal(mac, raw + SD_TOKEN_TIME_BYTES, SD_TOKEN_MAC_BYTES);
    sd_wipe(mac, sizeof(mac));
    return good;
}
