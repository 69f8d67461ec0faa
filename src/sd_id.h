/*
 * Session IDs and the store keys derived from them (SPEC B1).
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
