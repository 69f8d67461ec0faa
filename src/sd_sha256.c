/*
 * SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104).
 *
 * Session IDs are stored only as their SHA-256, and form tokens are HMACs
 * under a server secret. APR-util 1.6 has no SHA-256, and linking a TLS
 * library into the core for two functions would tie the module to one, so
 * this file is a small, portable, byte-oriented implementation. It favours
 * clarity over speed: it hashes a few dozen bytes per request.
 */
#include <string.h>

#include "sd_sha256.h"

/* --------------------------------------------------------------------- */
/* The compression function                                               */
/* --------------------------------------------------------------------- */

/* First 32 bits of the fractional parts of the cube roots of the first 64
 * primes (FIPS 180-4, 4.2.2). */
static const apr_uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

/* The rotation is written on a 32-bit type so that no shift reaches 32 and
 * no promotion to a wider int changes the result. */
#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define CH(x, y, z) (((x) & (y)) ^ (~(x) & (z)))
#define MAJ(x, y, z) (((x) & (y)) ^ ((x) & (z)) ^ ((y) & (z)))
#define BSIG0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BSIG1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SSIG0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))

static void sha256_block(apr_uint32_t h[8], const unsigned char *p)
{
    apr_uint32_t w[64];
    apr_uint32_t a, b, c, d, e, f, g, hh, t1, t2;
    int i;

    /* The message is big-endian by definition, whatever the host is. */
    for (i = 0; i < 16; i++) {
        w[i] = ((apr_uint32_t)p[4 * i] << 24) |
               ((apr_uint32_t)p[4 * i + 1] << 16) |
               ((apr_uint32_t)p[4 * i + 2] << 8) | (apr_uint32_t)p[4 * i + 3];
    }
    for (i = 16; i < 64; i++) {
        w[i] = SSIG1(w[i - 2]) + w[i - 7] + SSIG0(w[i - 15]) + w[i - 16];
    }

    a = h[0];
    b = h[1];
    c = h[2];
    d = h[3];
    e = h[4];
    f = h[5];
    g = h[6];
    hh = h[7];
    for (i = 0; i < 64; i++) {
        t1 = hh + BSIG1(e) + CH(e, f, g) + K[i] + w[i];
        t2 = BSIG0(a) + MAJ(a, b, c);
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

/* --------------------------------------------------------------------- */
/* Streaming interface                                                    */
/* --------------------------------------------------------------------- */

void sd_sha256_init(sd_sha256_ctx_t *c)
{
    /* First 32 bits of the fractional parts of the square roots of the
     * first 8 primes (FIPS 180-4, 5.3.3). */
    c->h[0] = 0x6a09e667;
    c->h[1] = 0xbb67ae85;
    c->h[2] = 0x3c6ef372;
    c->h[3] = 0xa54ff53a;
    c->h[4] = 0x510e527f;
    c->h[5] = 0x9b05688c;
    c->h[6] = 0x1f83d9ab;
    c->h[7] = 0x5be0cd19;
    c->total = 0;
    c->used = 0;
}

void sd_sha256_update(sd_sha256_ctx_t *c, const void *data, apr_size_t len)
{
    const unsigned char *p = data;

    c->total += len;

    /* Top up a partial block first, so that whole blocks can then be
     * hashed straight from the caller's buffer without copying. */
    if (c->used) {
        apr_size_t n = 64 - c->used;
        if (n > len) {
            n = len;
        }
        memcpy(c->buf + c->used, p, n);
        c->used += n;
        p += n;
        len -= n;
        if (c->used < 64) {
            return;
        }
        sha256_block(c->h, c->buf);
        c->used = 0;
    }
    while (len >= 64) {
        sha256_block(c->h, p);
        p += 64;
        len -= 64;
    }
    if (len) {
        memcpy(c->buf, p, len);
        c->used = len;
    }
}

void sd_sha256_final(sd_sha256_ctx_t *c, unsigned char out[SD_SHA256_LEN])
{
    apr_uint64_t bits = c->total * 8;
    int i;

    /* Padding: a 1 bit, zeros up to 56 mod 64, then the bit length. When
     * fewer than 8 bytes remain after the 1 bit, the length spills into an
     * extra block. */
    c->buf[c->used++] = 0x80;
    if (c->used > 56) {
        memset(c->buf + c->used, 0, 64 - c->used);
        sha256_block(c->h, c->buf);
        c->used = 0;
    }
    memset(c->buf + c->used, 0, 56 - c->used);
    for (i = 0; i < 8; i++) {
        c->buf[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    }
    sha256_block(c->h, c->buf);

    for (i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(c->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)c->h[i];
    }

    /* The context may have held secret material (an HMAC key block). */
    memset(c, 0, sizeof(*c));
}

void sd_sha256(const void *data, apr_size_t len,
               unsigned char out[SD_SHA256_LEN])
{
    sd_sha256_ctx_t c;

    sd_sha256_init(&c);
    sd_sha256_update(&c, data, len);
    sd_sha256_final(&c, out);
}

/* --------------------------------------------------------------------- */
/* HMAC and comparison                                                    */
/* --------------------------------------------------------------------- */

void sd_hmac_sha256(const void *key, apr_size_t keylen, const void *data,
                    apr_size_t len, unsigned char out[SD_SHA256_LEN])
{
    unsigned char k[64], pad[64], inner[SD_SHA256_LEN];
    sd_sha256_ctx_t c;
    int i;

    /* RFC 2104: a key longer than the block is replaced by its hash; a
     * shorter one is zero-padded to the block size. */
    memset(k, 0, sizeof(k));
    if (keylen > sizeof(k)) {
        sd_sha256(key, keylen, k);
    }
    else if (keylen) {
        memcpy(k, key, keylen);
    }

    for (i = 0; i < 64; i++) {
        pad[i] = k[i] ^ 0x36;
    }
    sd_sha256_init(&c);
    sd_sha256_update(&c, pad, sizeof(pad));
    sd_sha256_update(&c, data, len);
    sd_sha256_final(&c, inner);

    for (i = 0; i < 64; i++) {
        pad[i] = k[i] ^ 0x5c;
    }
    sd_sha256_init(&c);
    sd_sha256_update(&c, pad, sizeof(pad));
    sd_sha256_update(&c, inner, sizeof(inner));
    sd_sha256_final(&c, out);

    memset(k, 0, sizeof(k));
    memset(pad, 0, sizeof(pad));
}

int sd_ct_equal(const void *a, const void *b, apr_size_t len)
{
    /* volatile keeps the compiler from turning the loop into an early-exit
     * memcmp: a token check must not tell how many leading bytes matched. */
    const volatile unsigned char *x = a;
    const volatile unsigned char *y = b;
    unsigned char diff = 0;
    apr_size_t i;

    for (i = 0; i < len; i++) {
        diff |= x[i] ^ y[i];
    }
    return diff == 0;
}
