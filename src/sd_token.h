/*
 * Stateless form tokens (the login form's csrf field), made and checked by
 * the core so that the glue never decodes attacker text by hand.
 *
 * A token is the issue time and a truncated HMAC, in base64url:
 *
 *   token = base64url( T || first 18 bytes of
 *                      HMAC-SHA-256(secret, purpose || 0x00 || bind || T) )
 *
 * where T is the issue time as 8 bytes, big-endian, unsigned. That is 26
 * bytes, SD_TOKEN_LEN = 35 characters, no padding. The purpose (e.g.
 * "login") keeps a token of one form from being replayed on another; bind
 * ties a token to something the client holds, e.g. the value of a
 * pre-login cookie, so that a token lifted from one browser is useless in
 * another (double submit). Anonymous visitors take no server state.
 */
#ifndef SD_TOKEN_H
#define SD_TOKEN_H

#include <apr.h>

#define SD_TOKEN_TIME_BYTES 8 /* issue time, big-endian */
#define SD_TOKEN_MAC_BYTES 18 /* of the 32 of HMAC-SHA-256: 144 bits */
#define SD_TOKEN_BYTES (SD_TOKEN_TIME_BYTES + SD_TOKEN_MAC_BYTES)
#define SD_TOKEN_LEN 35    /* base64url of 26 bytes, no padding */
#define SD_TOKEN_FUTURE 60 /* seconds a token may be ahead of now */

/**
 * Make the token of @a purpose and @a bind issued at @a t.
 *
 * @param secret  the server's secret (32 random bytes or more, of a fixed
 *                length: HMAC pads keys with zeros)
 * @param slen    its length
 * @param purpose what the token is for, a NUL-terminated name
 * @param bind    bytes the token is bound to (NULL when @a bindlen is 0)
 * @param bindlen their number
 * @param t       the issue time, seconds (a negative one is taken as
 *                2^64 + t, which no real clock reaches: never valid)
 * @param out     SD_TOKEN_LEN + 1 bytes: the token and a NUL; an empty
 *                string if OpenSSL fails (such a token is never accepted)
 */
void sd_token_make(const unsigned char *secret, apr_size_t slen,
                   const char *purpose, const unsigned char *bind,
                   apr_size_t bindlen, apr_int64_t t, char *out);

/**
 * Check @a token against @a purpose and @a bind at @a now.
 *
 * Accepted only when it is exactly SD_TOKEN_LEN base64url characters in
 * the one canonical spelling (sd_b64url_decode), was issued no more than
 * SD_TOKEN_FUTURE seconds after @a now and no more than @a ttl seconds
 * before it, and its MAC matches (compared in constant time). Times are
 * compared as unsigned 64-bit numbers, so no token can overflow them.
 *
 * @param token a NUL-terminated string from the client, or NULL
 * @param now   the current time, seconds (negative: nothing is accepted)
 * @param ttl   how old a token may be, seconds (negative: nothing is)
 * @return 1 when the token is valid, else 0
 */
int sd_token_check(const unsigned char *secret, apr_size_t slen,
                   const char *purpose, const unsigned char *bind,
                   apr_size_t bindlen, const char *token, apr_int64_t now,
                   apr_int64_t ttl);

#endif
