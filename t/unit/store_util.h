/*
 * Helpers shared by the store's unit tests: keys, parameters and stores on
 * heap memory that is freed at the end (LeakSanitizer watches). Each test
 * file defines `static apr_pool_t *pool` before including this.
 */
#ifndef STORE_UTIL_H
#define STORE_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sd_sha256.h"
#include "sd_shm.h"

#define HEAP_SEGS 256
static void *heap_segs[HEAP_SEGS];
static int nheap;

/* A key from a tag and a number, the way the glue derives them: SHA-256. */
static void key_n(sd_key_t *k, const char *tag, int n)
{
    char s[64];
    int l = snprintf(s, sizeof s, "%s-%d", tag, n);
    sd_sha256(s, (apr_size_t)l, k->b);
}

/* An owner digest from a tag and a number (the glue's sd_owner() is a
 * digest too; the store only compares them). */
static inline void owner_n(sd_owner_t *o, const char *tag, int n)
{
    unsigned char d[32];
    char s[64];
    int l = snprintf(s, sizeof s, "owner-%s-%d", tag, n);
    sd_sha256(s, (apr_size_t)l, d);
    memcpy(o->b, d, sizeof(o->b));
}

/* The next key_n(tag, *n), *n + 1, ... that fits @a owner, the way the
 * glue draws IDs until one fits; *n moves past it. */
static inline void fitting_key(sd_shm_t *st, sd_key_t *k, const char *tag, int *n,
                        const sd_owner_t *owner)
{
    do {
        key_n(k, tag, (*n)++);
    } while (!sd_shm_key_fits(st, k, owner));
}

static sd_shm_params_t params(apr_uint64_t cap, apr_uint64_t mem,
                                apr_uint32_t maxd, sd_shm_when_full_t w)
{
    sd_shm_params_t p;
    p.capacity = cap;
    p.memory = mem;
    p.max_data = maxd;
    p.when_full = w;
    return p;
}

/* A fresh store on calloc'd memory; *basep and *sizep (when not NULL) get
 * the segment. */
static sd_shm_t *heap_store_at(apr_uint64_t cap, apr_uint64_t mem,
                                 apr_uint32_t maxd, sd_shm_when_full_t w,
                                 void **basep, apr_size_t *sizep)
{
    sd_shm_params_t p = params(cap, mem, maxd, w);
    apr_size_t size = sd_shm_size(&p);
    void *base = calloc(1, size);
    sd_shm_t *st = NULL;
    apr_status_t rv;

    if (nheap < HEAP_SEGS) {
        heap_segs[nheap++] = base;
    }
    rv = sd_shm_format(pool, base, size, &p, &st);
    if (rv != APR_SUCCESS) {
        diag("sd_shm_format failed: %d", rv);
        return NULL;
    }
    if (basep) {
        *basep = base;
    }
    if (sizep) {
        *sizep = size;
    }
    return st;
}

static void heap_free_all(void)
{
    int i;
    for (i = 0; i < nheap; i++) {
        free(heap_segs[i]);
    }
    nheap = 0;
}

#endif
