/*
 * SHA-256 and HMAC-SHA-256 (FIPS 180-4, RFC 2104).
 *
 * The store keys sessions by a hash of their ID, and the login form's token
 * is an HMAC; APR-util 1.6 offers neither, so the core carries this small,
 * test-vector-checked implementation instead of pulling in a TLS library.
 */
#ifndef SD_SHA256_H
#define SD_SHA256_H

#include <apr.h>

#define SD_SHA256_LEN 32

typedef struct {
    apr_uint32_t h[8];          /* chaining state */
    apr_uint64_t total;         /* bytes hashed so far */
    unsigned char buf[64];      /* partial block */
    apr_size_t used;            /* bytes in buf */
} sd_sha256_ctx_t;

/** Start a new hash. */
void sd_sha256_init(sd_sha256_ctx_t *c);
/** Hash @a len more bytes. */
void sd_sha256_update(sd_sha256_ctx_t *c, const void *data, apr_size_t len);
/** Finish and write the 32-byte digest. */
void sd_sha256_final(sd_sha256_ctx_t *c, unsigned char out[SD_SHA256_LEN]);
/** One-shot SHA-256 of a buffer. */
void sd_sha256(const void *data, apr_size_t len,
               unsigned char out[SD_SHA256_LEN]);
/** HMAC-SHA-256 of @a data under @a key. */
void sd_hmac_sha256(const void *key, apr_size_t keylen, const void *data,
                    apr_size_t len, unsigned char out[SD_SHA256_LEN]);
/** Compare two buffers in time that depends only on @a len. */
int sd_ct_equal(const void *a, const void *b, apr_size_t len);

#endif
