/*
 * Session IDs and store keys, and strict base64url.
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
 *
 * The encoding itself is APR's (apr_encode_base64_binary and
 * apr_decode_base64_binary with APR_ENCODE_BASE64URL, in APR 1.7's
 * apr_encode.h). APR's decoder is lenient where we must not be: it takes
 * '+' and '/' as well as '-' and '_', accepts '=' padding, and ignores the
 * unused low bits of the last character. sd_b64url_decode() therefore
 * checks the text first and only then lets APR decode it.
 */
#include <string.h>

#include <apr_encode.h>
#include <apr_general.h>

#include "sd_id.h"
#include "sd_sha256.h"

/* Value of a base64url character, or -1. Written as ranges rather than a
 * 256-entry table; the texts are short and this runs once per request.
 * Its time depends on the text, which the client sent and knows. */
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
    apr_size_t n = 0;

    /* APR writes the (len * 4 + 2) / 3 characters and a NUL, nothing
     * more; a short tail's unused low bits are zero, which is what makes
     * the encoding canonical. It refuses only lengths beyond apr_ssize_t,
     * which no caller has: an empty string is the safe answer then. */
    if (len > (APR_SIZE_MAX >> 1) ||
        apr_encode_base64_binary(out, in ? in : (const unsigned char *)"",
                                 (apr_ssize_t)len, APR_ENCODE_BASE64URL,
                                 &n) != APR_SUCCESS) {
        out[0] = '\0';
    }
}

apr_status_t sd_b64url_decode(const char *in, apr_size_t len,
                              unsigned char *out, apr_size_t cap,
                              apr_size_t *outlen)
{
    apr_size_t i, need, n = 0;
    apr_status_t rv;
    int v = 0;

    *outlen = 0;
    if (len % 4 == 1 || len > (APR_SIZE_MAX >> 1)) {
        return APR_EINCOMPLETE; /* no byte string encodes to this length */
    }
    for (i = 0; i < len; i++) {
        v = b64url_value((unsigned char)in[i]);
        if (v < 0) {
            return APR_BADCH;
        }
    }
    /* A tail of 2 characters carries 8 bits in 12, of 3 carries 16 in 18:
     * the rest must be zero, or two texts would decode to the same bytes. */
    if ((len % 4 == 2 && (v & 0x0f) != 0) ||
        (len % 4 == 3 && (v & 0x03) != 0)) {
        return APR_BADCH;
    }
    need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > cap) {
        return APR_ENOSPC;
    }
    if (len == 0) {
        return APR_SUCCESS;
    }
    rv = apr_decode_base64_binary(out, in, (apr_ssize_t)len,
                                  APR_ENCODE_BASE64URL, &n);
    if (rv != APR_SUCCESS || n != need) {
        /* Cannot happen for text that passed the checks above; refuse
         * rather than trust a decoder that disagrees with them. */
        return rv != APR_SUCCESS ? rv : APR_EGENERAL;
    }
    *outlen = n;
    return APR_SUCCESS;
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
    sd_wipe(raw, sizeof(raw));
    return APR_SUCCESS;
}

int sd_id_wellformed(const char *s, apr_size_t len)
{
    unsigned char raw[SD_ID_BYTES];
    apr_size_t n = 0;
    int good;

    if (s == NULL || len != SD_ID_LEN) {
        return 0;
    }
    /* 43 characters carry 258 bits for 256 bits of ID: the strict decoder
     * refuses the spellings whose 2 spare bits are not zero. */
    good = sd_b64url_decode(s, len, raw, sizeof(raw), &n) == APR_SUCCESS &&
           n == SD_ID_BYTES;
    sd_wipe(raw, sizeof(raw));
    return good;
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
