/*
 * The fault-injecting store (see sd_store_fault.h). One stat() per
 * operation is what switching an outage on and off from outside the
 * server costs; this store is for tests, never for production.
 */

#include <string.h>
#include <sys/stat.h>

#include <apr_strings.h>

#include "sd_store_fault.h"

typedef struct {
    sd_store_t base;            /* must come first */
    sd_store_t *inner;
    const char *path;
} fault_store;

static const sd_store_ops_t fault_ops;

static sd_store_t *up(sd_store_t *st)
{
    fault_store *f = (fault_store *)st;
    struct stat sb;
    return stat(f->path, &sb) == 0 ? NULL : f->inner;
}

static apr_status_t f_create(sd_store_t *st, const sd_key_t *key,
                             const sd_owner_t *owner, const void *data,
                             apr_size_t len, apr_int64_t now,
                             const sd_store_limits_t *lim, apr_uint32_t *ended)
{
    sd_store_t *in = up(st);
    *ended = 0;
    return in ? sd_store_create(in, key, owner, data, len, now, lim, ended)
              : SD_EUNAVAIL;
}

static apr_status_t f_get(sd_store_t *st, const sd_key_t *key, apr_int64_t now,
                          apr_pool_t *pool, char **data, apr_size_t *len,
                          sd_store_meta_t *meta)
{
    sd_store_t *in = up(st);
    return in ? sd_store_get(in, key, now, pool, data, len, meta)
              : SD_EUNAVAIL;
}

static apr_status_t f_replace(sd_store_t *st, const sd_key_t *key,
                              apr_uint64_t version, const void *data,
                              apr_size_t len, apr_int64_t now)
{
    sd_store_t *in = up(st);
    return in ? sd_store_replace(in, key, version, data, len, now)
              : SD_EUNAVAIL;
}

static apr_status_t f_remove(sd_store_t *st, const sd_key_t *key,
                             const sd_owner_t *owner)
{
    sd_store_t *in = up(st);
    return in ? sd_store_remove(in, key, owner) : SD_EUNAVAIL;
}

static apr_status_t f_end_owner(sd_store_t *st, const sd_owner_t *owner,
                                apr_uint64_t *ended)
{
    sd_store_t *in = up(st);
    *ended = 0;
    return in ? sd_store_end_owner(in, owner, ended) : SD_EUNAVAIL;
}

static apr_status_t f_list_owner(sd_store_t *st, const sd_owner_t *owner,
                                 apr_int64_t now, apr_pool_t *pool,
                                 apr_array_header_t **entries)
{
    sd_store_t *in = up(st);
    return in ? sd_store_list_owner(in, owner, now, pool, entries)
              : SD_EUNAVAIL;
}

static apr_status_t f_throttle_hit(sd_store_t *st, const char *key,
                                   apr_size_t len, apr_uint32_t limit,
                                   apr_uint32_t window, apr_int64_t now,
                                   apr_int64_t *wait)
{
    sd_store_t *in = up(st);
    return in ? sd_store_throttle_hit(in, key, len, limit, window, now, wait)
              : SD_EUNAVAIL;
}

static apr_status_t f_throttle_undo(sd_store_t *st, const char *key,
                                    apr_size_t len, int forget)
{
    sd_store_t *in = up(st);
    return in ? sd_store_throttle_undo(in, key, len, forget) : SD_EUNAVAIL;
}

static apr_status_t f_count(sd_store_t *st, sd_counter_t c)
{
    sd_store_t *in = up(st);
    return in ? sd_store_count(in, c) : SD_EUNAVAIL;
}

/* The figures stay readable during an outage (they describe the inner
 * store), but say that the store is not reachable. */
static apr_status_t f_stats(sd_store_t *st, apr_pool_t *pool,
                            sd_store_stats_t *out)
{
    fault_store *f = (fault_store *)st;
    apr_status_t rv = sd_store_stats(f->inner, pool, out);
    out->kind = "fault";
    if (!up(st)) {
        out->connected = 0;
        out->last_error = "fault injected (test store)";
    }
    return rv;
}

static int f_key_fits(const sd_store_t *st, const sd_key_t *key,
                      const sd_owner_t *owner)
{
    return sd_store_key_fits(((const fault_store *)st)->inner, key, owner);
}

static const sd_store_ops_t fault_ops = {
    "fault",      f_create,    f_get,        f_replace,
    f_remove,     f_end_owner, f_list_owner, f_throttle_hit,
    f_throttle_undo, f_count,  f_stats,      f_key_fits,
};

apr_status_t sd_store_fault_open(apr_pool_t *pool, sd_store_t *inner,
                                 const char *path, sd_store_t **out)
{
    fault_store *f = apr_pcalloc(pool, sizeof(*f));
    f->base.ops = &fault_ops;
    f->base.max_data = inner->max_data;
    f->base.retry_after = 2;
    f->inner = inner;
    f->path = apr_pstrdup(pool, path);
    *out = &f->base;
    return APR_SUCCESS;
}
