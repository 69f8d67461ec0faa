/*
 * SHA-256, HMAC-SHA-256, constant-time comparison and wiping, from OpenSSL.
 *
 * The store keys sessions by a hash of their ID, login tokens and snapshot
 * files are authenticated with HMACs, and secrets must not linger in memory.
 * These are thin wrappers over OpenSSL's EVP digests, HMAC, CRYPTO_memcmp and
 * OPENSSL_cleanse, so that the rest of the core keeps one small interface
 * (and its callers did not change when the hand-written SHA-256 went).
 *
 * OpenSSL fails only when it cannot allocate. The one-shot functions, which
 * return nothing, then abort the process: a digest that silently came out
 * wrong would key every session alike or accept a forged token, and there is
 * no safe value to return instead. The incremental ones return a status.
 */
#ifndef SD_SHA256_H
#define SD_SHA256_H

#include <apr.h>
#include <apr_errno.h>

#define SD_SHA256_LEN 32

/* OpenSSL's context types (EVP_MD_CTX, EVP_MAC_CTX), declared here so that
 * including this header does not pull OpenSSL into every glue file. */
struct evp_md_ctx_st;
struct evp_mac_ctx_st;

/** An incremental SHA-256: sd_sha256_init(), any number of
 *  sd_sha256_update(), then sd_sha256_final(), which frees what init took. */
typedef struct {
    struct evp_md_ctx_st *md; /* OpenSSL's state; NULL when not started */
} sd_sha256_ctx_t;

/** An incremental HMAC-SHA-256, used like sd_sha256_ctx_t. */
typedef struct {
    struct evp_mac_ctx_st *mac; /* OpenSSL's state; NULL when not started */
} sd_hmac_sha256_ctx_t;

/** Start a new hash. APR_ENOMEM when OpenSSL cannot allocate its state. */
apr_status_t sd_sha256_init(sd_sha256_ctx_t *c);
/** Hash @a len more bytes. */
apr_status_t sd_sha256_update(sd_sha256_ctx_t *c, const void *data,
                              apr_size_t len);
/** Finish, write the 32-byte digest and free the state (also on error,
 *  when @a out is zeroed). */
apr_status_t sd_sha256_final(sd_sha256_ctx_t *c,
                             unsigned char out[SD_SHA256_LEN]);
/** One-shot SHA-256 of a buffer. */
void sd_sha256(const void *data, apr_size_t len,
               unsigned char out[SD_SHA256_LEN]);

/** Start an HMAC-SHA-256 under @a key (OpenSSL keeps its own copy). */
apr_status_t sd_hmac_sha256_init(sd_hmac_sha256_ctx_t *c, const void *key,
                                 apr_size_t keylen);
/** MAC @a len more bytes. */
apr_status_t sd_hmac_sha256_update(sd_hmac_sha256_ctx_t *c, const void *data,
                                   apr_size_t len);
/** Finish, write the 32-byte MAC and free the state (also on error, when
 *  @a out is zeroed). Pass @a out NULL to abandon a MAC half way. */
apr_status_t sd_hmac_sha256_final(sd_hmac_sha256_ctx_t *c,
                                  unsigned char out[SD_SHA256_LEN]);
/** One-shot HMAC-SHA-256 of @a data under @a key. */
void sd_hmac_sha256(const void *key, apr_size_t keylen, const void *data,
                    apr_size_t len, unsigned char out[SD_SHA256_LEN]);

/** Non-zero when the @a len bytes at @a a and @a b are equal, in time that
 *  depends only on @a len (CRYPTO_memcmp). */
int sd_ct_equal(const void *a, const void *b, apr_size_t len);

/** Overwrite @a n bytes at @a p with zeros in a way the compiler cannot
 *  drop as a dead store (OPENSSL_cleanse): for keys and secrets on the
 *  stack or in pools before they are given back. */
void sd_wipe(void *p, apr_size_t n);

#endif
