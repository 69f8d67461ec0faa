/*
 * SHA-256 and HMAC-SHA-256 through OpenSSL, plus constant-time comparison
 * and wiping.
 *
 * Session IDs are stored only as their SHA-256; login tokens and snapshot
 * files carry HMACs under server secrets. The module already runs beside
 * mod_ssl's libcrypto, so the core uses its audited, accelerated code (EVP
 * digests, HMAC, EVP_MAC) rather than carrying a compression function of
 * its own. See sd_sha256.h for why the one-shot functions abort on failure.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "sd_sha256.h"

/* OpenSSL could not allocate: see the file comment in sd_sha256.h. */
static void crypto_failed(void)
{
    abort();
}

/* OpenSSL's update functions take a non-NULL pointer even for 0 bytes on
 * some versions; callers may pass NULL with 0. */
static const void *nonnull(const void *p)
{
    return p ? p : "";
}

/* --------------------------------------------------------------------- */
/* SHA-256                                                                */
/* --------------------------------------------------------------------- */

apr_status_t sd_sha256_init(sd_sha256_ctx_t *c)
{
    c->md = EVP_MD_CTX_new();
    if (c->md == NULL) {
        return APR_ENOMEM;
    }
    if (!EVP_DigestInit_ex(c->md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(c->md);
        c->md = NULL;
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

apr_status_t sd_sha256_update(sd_sha256_ctx_t *c, const void *data,
                              apr_size_t len)
{
    if (c->md == NULL) {
        return APR_EINVAL;
    }
    return EVP_DigestUpdate(c->md, nonnull(data), len) ? APR_SUCCESS
                                                       : APR_EGENERAL;
}

apr_status_t sd_sha256_final(sd_sha256_ctx_t *c,
                             unsigned char out[SD_SHA256_LEN])
{
    unsigned int n = 0;
    int good;

    if (c->md == NULL) {
        memset(out, 0, SD_SHA256_LEN);
        return APR_EINVAL;
    }
    good = EVP_DigestFinal_ex(c->md, out, &n) && n == SD_SHA256_LEN;
    EVP_MD_CTX_free(c->md);
    c->md = NULL;
    if (!good) {
        memset(out, 0, SD_SHA256_LEN);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

void sd_sha256(const void *data, apr_size_t len,
               unsigned char out[SD_SHA256_LEN])
{
    unsigned int n = 0;

    if (!EVP_Digest(nonnull(data), len, out, &n, EVP_sha256(), NULL) ||
        n != SD_SHA256_LEN) {
        crypto_failed();
    }
}

/* --------------------------------------------------------------------- */
/* HMAC-SHA-256                                                           */
/* --------------------------------------------------------------------- */

apr_status_t sd_hmac_sha256_init(sd_hmac_sha256_ctx_t *c, const void *key,
                                 apr_size_t keylen)
{
    OSSL_PARAM params[2];
    EVP_MAC *mac;

    c->mac = NULL;
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) {
        return APR_ENOTIMPL;
    }
    c->mac = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context holds its own reference */
    if (c->mac == NULL) {
        return APR_ENOMEM;
    }
    params[0] =
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    /* A NULL key means "keep the previous one" to EVP_MAC_init: an empty
     * key must be passed as a real pointer. */
    if (!EVP_MAC_init(c->mac, nonnull(key), keylen, params)) {
        EVP_MAC_CTX_free(c->mac);
        c->mac = NULL;
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

apr_status_t sd_hmac_sha256_update(sd_hmac_sha256_ctx_t *c, const void *data,
                                   apr_size_t len)
{
    if (c->mac == NULL) {
        return APR_EINVAL;
    }
    return EVP_MAC_update(c->mac, nonnull(data), len) ? APR_SUCCESS
                                                      : APR_EGENERAL;
}

apr_status_t sd_hmac_sha256_final(sd_hmac_sha256_ctx_t *c,
                                  unsigned char out[SD_SHA256_LEN])
{
    unsigned char tmp[SD_SHA256_LEN];
    size_t n = 0;
    int good;

    if (c->mac == NULL) {
        if (out) {
            memset(out, 0, SD_SHA256_LEN);
        }
        return APR_EINVAL;
    }
    good = EVP_MAC_final(c->mac, tmp, &n, sizeof(tmp)) && n == sizeof(tmp);
    EVP_MAC_CTX_free(c->mac); /* also cleanses the key copy */
    c->mac = NULL;
    if (out) {
        if (good) {
            memcpy(out, tmp, SD_SHA256_LEN);
        }
        else {
            memset(out, 0, SD_SHA256_LEN);
        }
    }
    sd_wipe(tmp, sizeof(tmp));
    return good ? APR_SUCCESS : APR_EGENERAL;
}

void sd_hmac_sha256(const void *key, apr_size_t keylen, const void *data,
                    apr_size_t len, unsigned char out[SD_SHA256_LEN])
{
    unsigned int n = 0;

    if (keylen > INT_MAX ||
        HMAC(EVP_sha256(), nonnull(key), (int)keylen, nonnull(data), len, out,
             &n) == NULL ||
        n != SD_SHA256_LEN) {
        crypto_failed();
    }
}

/* --------------------------------------------------------------------- */
/* Comparison and wiping                                                  */
/* --------------------------------------------------------------------- */

int sd_ct_equal(const void *a, const void *b, apr_size_t len)
{
    /* CRYPTO_memcmp never exits early: a token check must not tell how
     * many leading bytes matched. */
    return len == 0 || CRYPTO_memcmp(a, b, len) == 0;
}

void sd_wipe(void *p, apr_size_t n)
{
    if (p != NULL && n > 0) {
        OPENSSL_cleanse(p, n);
    }
}
