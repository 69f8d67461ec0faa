/*
 * Session IDs and store keys (SPEC B1).
 *
 * An ID is 32 random bytes from APR's cryptographic source, written as 43
 * characters of unpadded base64url so that it is safe as a cookie value
 * without quoting. Only SHA-256 of the ID's text reaches the store, and
 * only the first 4 bytes of that, in hex, reach the logs.
 *
 * sd_id_wellformed() rejects anything sd_id_new() could not have produced,
 * including the non-canonical spellings of the last character, so that one
 * issued ID has exactly one accepted text and two different cookies never
 * map to the same session.
 */
#include <string.h>

#include <apr_general.h>

#include "sd_id.h"
#include "sd_sha256.h"

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value of a base64url character, or -1. Written as ranges rather than a
 * 256-entry table; IDs are short and this runs once per request. */
static int b64url_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z') {
        return ch - 'A';
    }
    if (ch >= 'a' && ch <= 'z') {
        return ch - 'a' + 26;
    }
    if (ch >= '0' && ch <= '9') {
        return ch - '0' + 52;
    }
    if (ch == '-') {
        return 62;
    }
    if (ch == '_') {
        return 63;
    }
    return -1;
}

void sd_b64url_encode(const unsigned char *in, apr_size_t len, char *out)
{
    apr_size_t i = 0;

    for (; i + 3 <= len; i += 3) {
        *out++ = b64url[in[i] >> 2];
        *out++ = b64url[((in[i] & 0x03) << 4) | (in[i + 1] >> 4)];
        *out++ = b64url[((in[i + 1] & 0x0f) << 2) | (in[i + 2] >> 6)];
        *out++ = b64url[in[i + 2] & 0x3f];
    }
    /* A short tail yields 2 or 3 characters; the unused low bits of the
     * last one are zero, which is what makes the encoding canonical. */
    if (len - i == 1) {
        *out++ = b64url[in[i] >> 2];
        *out++ = b64url[(in[i] & 0x03) << 4];
    }
    else if (len - i == 2) {
        *out++ = b64url[in[i] >> 2];
        *out++ = b64url[((in[i] & 0x03) << 4) | (in[i + 1] >> 4)];
        *out++ = b64url[(in[i + 1] & 0x0f) << 2];
    }
    *out = '\0';
}

apr_status_t sd_id_new(char out[SD_ID_LEN + 1])
{
    unsigned char raw[SD_ID_BYTES];
    apr_status_t rv;

    rv = apr_generate_random_bytes(raw, sizeof(raw));
    if (rv != APR_SUCCESS) {
        /* Never hand out a predictable ID: the caller must fail the
         * request rather than fall back to anything weaker. */
        out[0] = '\0';
        return rv;
    }
    sd_b64url_encode(raw, sizeof(raw), out);
    memset(raw, 0, sizeof(raw));
    return APR_SUCCESS;
}

int sd_id_wellformed(const char *s, apr_size_t len)
{
    apr_size_t i;
    int v = 0;

    if (s == NULL || len != SD_ID_LEN) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        v = b64url_value((unsigned char)s[i]);
        if (v < 0) {
            return 0;
        }
    }
    /* 43 characters carry 258 bits for 256 bits of ID: the last character
     * holds 4 data bits and 2 padding bits, which must be zero. */
    return (v & 0x03) == 0;
}

void sd_id_key(const char *id, apr_size_t len, sd_key_t *key)
{
    sd_sha256(id, len, key->b);
}

void sd_key_prefix(const sd_key_t *key, char out[SD_KEY_PREFIX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    int i;

    for (i = 0; i < SD_KEY_PREFIX_LEN / 2; i++) {
        out[2 * i] = hex[key->b[i] >> 4];
        out[2 * i + 1] = hex[key->b[i] & 0x0f];
    }
    out[SD_KEY_PREFIX_LEN] = '\0';
}
