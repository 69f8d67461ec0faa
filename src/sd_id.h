/*
 * Session IDs and the store keys derived from them.
 *
 * An ID is 256 bits from the system's cryptographic source, written as 43
 * characters of unpadded base64url. The store never sees it: it is keyed by
 * SHA-256 of the ID, and logs show only a short hex prefix of that key, so
 * neither a store dump nor a log line lets anyone resume a session.
 */
#ifndef SD_ID_H
#define SD_ID_H

#include <apr.h>
#include <apr_errno.h>

#define SD_ID_BYTES 32
#define SD_ID_LEN 43            /* base64url of 32 bytes, no padding */
#define SD_KEY_LEN 32
#define SD_KEY_PREFIX_LEN 8     /* hex characters of the key shown in logs */

typedef struct {
    unsigned char b[SD_KEY_LEN]; /* SHA-256 of the ID's text */
} sd_key_t;

/** Encode @a len bytes as unpadded base64url into @a out (NUL-terminated);
 *  @a out needs (len * 4 + 2) / 3 + 1 bytes. */
void sd_b64url_encode(const unsigned char *in, apr_size_t len, char *out);

/**
 * Decode exactly the @a len characters at @a in as unpadded base64url
 * (RFC 7515), strictly: only the 64 characters of the URL-safe alphabet,
 * no '=' padding, no '+' or '/', no whitespace, a length that is not 1 more
 * than a multiple of 4, and a canonical last character (its unused low bits
 * zero), so that each byte string has exactly one accepted text.
 *
 * @param in     the text, not necessarily NUL-terminated
 * @param len    its length
 * @param out    where the bytes go
 * @param cap    bytes available at @a out; nothing is written past it
 * @param outlen the number of bytes decoded (0 on any error)
 * @return APR_SUCCESS; APR_BADCH for a character outside the alphabet or
 *         a non-canonical last character; APR_EINCOMPLETE for an
 *         impossible length; APR_ENOSPC when @a cap is too small.
 */
apr_status_t sd_b64url_decode(const char *in, apr_size_t len,
                              unsigned char *out, apr_size_t cap,
                              apr_size_t *outlen);

/** Fill @a out with a new random ID (SD_ID_LEN characters plus NUL). */
apr_status_t sd_id_new(char out[SD_ID_LEN + 1]);

/** Non-zero when @a s is exactly SD_ID_LEN base64url characters whose last
 *  one is canonical, i.e. could have been issued by sd_id_new(). */
int sd_id_wellformed(const char *s, apr_size_t len);

/** Derive the store key of an ID. */
void sd_id_key(const char *id, apr_size_t len, sd_key_t *key);

/** Write the log prefix of a key: SD_KEY_PREFIX_LEN hex digits plus NUL. */
void sd_key_prefix(const sd_key_t *key, char out[SD_KEY_PREFIX_LEN + 1]);

#endif
