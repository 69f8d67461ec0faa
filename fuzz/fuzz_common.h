/*
 * Shared helpers for the libFuzzer harnesses of the plain-C core (src/).
 *
 * Every harness checks properties of what the code under test returns, not
 * only that it does not crash; a broken property calls FUZZ_CHECK's abort()
 * with a message, which libFuzzer records as a crash with the input that
 * caused it.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#define FUZZ_CHECK(cond, ...)                                                \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "\nFUZZ PROPERTY FAILED at %s:%d: %s\n  ",       \
                    __FILE__, __LINE__, #cond);                              \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* APR once per process; libFuzzer calls this before the first input. */
static inline int fuzz_apr_init(void)
{
    if (apr_initialize() != APR_SUCCESS) {
        fprintf(stderr, "apr_initialize failed\n");
        abort();
    }
    atexit(apr_terminate);
    return 0;
}

static inline apr_pool_t *fuzz_pool(void)
{
    apr_pool_t *p = NULL;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS || p == NULL) {
        fprintf(stderr, "apr_pool_create failed\n");
        abort();
    }
    return p;
}

/* A private, exact-size copy of the input, so that ASan sees any overread
 * of the buffer the code under test was given (libFuzzer's own buffer is
 * exact-size too, but copies are also needed to add a terminator). */
static inline char *fuzz_dup(const uint8_t *data, size_t size, int nul)
{
    char *c = malloc(size + (nul ? 1 : 0) + (size == 0 && !nul));

    if (c == NULL) {
        abort();
    }
    if (size) {
        memcpy(c, data, size);
    }
    if (nul) {
        c[size] = '\0';
    }
    return c;
}

/* Strict UTF-8 (RFC 3629), written independently of src/ so that the
 * harnesses are an oracle and not a copy: decode each sequence to its code
 * point and check the shortest form, the range and surrogates. */
static inline int fuzz_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned c = s[i], need, k;
        unsigned long cp;

        if (c <= 0x7f) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            need = 1;
            cp = c & 0x1f;
        }
        else if ((c & 0xf0) == 0xe0) {
            need = 2;
            cp = c & 0x0f;
        }
        else if ((c & 0xf8) == 0xf0) {
            need = 3;
            cp = c & 0x07;
        }
        else {
            return 0;
        }
        if (i + need >= len) { /* the sequence runs past the end */
            return 0;
        }
        for (k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) ||
            (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        i += need + 1;
    }
    return 1;
}

static inline void fuzz_hex(const void *p, size_t n, char *out, size_t cap)
{
    static const char hx[] = "0123456789abcdef";
    const unsigned char *b = p;
    size_t i, o = 0;

    for (i = 0; i < n && o + 2 < cap; i++) {
        out[o++] = hx[b[i] >> 4];
        out[o++] = hx[b[i] & 15];
    }
    out[o] = '\0';
}

#endif
