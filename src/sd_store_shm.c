/*
 * The shared-memory store behind the store interface (sd_store.h).
 *
 * This file owns the store's lifecycle across httpd's configuration
 * generations (create, keep, resize by moving sessions, snapshot at a
 * stop and start) and maps the interface onto the session table
 * (sd_shm.c) and the throttle table (sd_throttle.c). Shared memory never
 * becomes unavailable, so no operation here answers SD_EUNAVAIL.
 *
 * Owners: the table keeps all sessions of one owner in one stripe, on a
 * list of their own (sd_shm_key_fits() says which IDs fit an owner), so
 * listing, capping and ending one user's sessions take one stripe lock and
 * time proportional to that user's sessions, never a scan of the store.
 */

#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include <apr_file_io.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_time.h>
#include <stdarg.h>

#include "sd_record.h"
#include "sd_sha256.h"
#include "sd_snapshot.h"
#include "sd_store_shm.h"
#include "sd_throttle.h"
#include "sd_utf8.h"

#define FIRST_READ 4096         /* usual record size; bigger ones re-read */

typedef struct {
    sd_store_t base;            /* must come first */
    apr_shm_t *shm;             /* the session segment */
    sd_shm_t *table;
    sd_shm_params_t params;     /* what it was formatted with */
    apr_shm_t *tshm;            /* the throttle segment */
    sd_throttle_t *throttle;
    sd_store_log_fn log;
    void *baton;
} shm_store;

static const sd_store_ops_t shm_ops;

#define SELF(st) ((shm_store *)(st))

/* ---------------------------------------------------------------------
 * Logging: the table reports a full store (level 0) and a repaired
 * stripe (level 1); each gets its own tag.
 * --------------------------------------------------------------------- */

static void table_log(void *baton, int level, const char *msg)
{
    shm_store *s = baton;
    char line[512];
    if (!s->log)
        return;
    apr_snprintf(line, sizeof(line), "%s: %s",
                 level == 0 ? "SDEMO00201" : "SDEMO00202", msg);
    s->log(s->baton, level == 0 ? SD_LOG_WARN : SD_LOG_ERR, line);
}

/* One line per evicted session: whose it was, for admins and log
 * watchers. The client that owned it is not the one whose login caused
 * the eviction, so no address is given. */
static void table_evicted(void *baton, const sd_key_t *key, const void *head,
                          apr_size_t len)
{
    shm_store *s = baton;
    char prefix[SD_KEY_PREFIX_LEN + 1], line[512];
    const char *user = NULL;
    apr_pool_t *p;

    if (!s->log)
        return;
    apr_pool_create(&p, NULL);
    if (len)
        user = sd_record_user(p, head, len);
    sd_key_prefix(key, prefix);
    apr_snprintf(line, sizeof(line),
                 "SDEMO00206: session %s of user \"%s\" evicted: the store "
                 "is full (SessionDemoWhenFull evict)",
                 prefix, user ? sd_log_name(p, user) : "?");
    s->log(s->baton, SD_LOG_NOTICE, line);
    apr_pool_destroy(p);
}

/* ---------------------------------------------------------------------
 * The interface
 * --------------------------------------------------------------------- */

static int shm_key_fits(const sd_store_t *st, const sd_key_t *key,
                        const sd_owner_t *owner)
{
    return sd_shm_key_fits(((const shm_store *)st)->table, key, owner);
}

static apr_status_t shm_create(sd_store_t *st, const sd_key_t *key,
                               const sd_owner_t *owner, const void *data,
                               apr_size_t len, apr_int64_t now,
                               const sd_store_limits_t *lim,
                               apr_uint32_t *ended)
{
    return sd_shm_create_owned(SELF(st)->table, key, owner, data, len, now,
                               lim, ended);
}

static apr_status_t shm_get(sd_store_t *st, const sd_key_t *key,
                            apr_int64_t now, apr_pool_t *pool, char **data,
                            apr_size_t *len, sd_store_meta_t *meta)
{
    shm_store *s = SELF(st);
    apr_size_t cap = FIRST_READ, got = 0;
    char *buf = apr_palloc(pool, cap);
    sd_shm_meta_t m;
    apr_status_t rv;

    /* The buffer is allocated before the stripe lock is taken. */
    rv = sd_shm_get(s->table, key, now, buf, cap, &got, &m);
    if ((rv == APR_SUCCESS || rv == APR_TIMEUP) && got > cap) {
        /* Bigger than usual: look again with room for the largest record
         * the table allows (a record never exceeds it). */
        cap = s->params.max_data;
        buf = apr_palloc(pool, cap);
        rv = sd_shm_get(s->table, key, now, buf, cap, &got, &m);
    }
    if (rv != APR_SUCCESS && rv != APR_TIMEUP)
        return rv;
    if (got > cap)
        return rv == APR_TIMEUP ? APR_NOTFOUND : APR_EGENERAL;
    *data = buf;
    *len = got;
    meta->created = m.created;
    meta->last_access = m.last_access;
    meta->expires = m.expires;
    meta->idle = m.idle;
    meta->max_age = m.max_age;
    meta->version = m.version;
    return rv;
}

static apr_status_t shm_replace(sd_store_t *st, const sd_key_t *key,
                                apr_uint64_t version, const void *data,
                                apr_size_t len, apr_int64_t now)
{
    /* The table's versions are 32 bits; a version it never gave out
     * cannot match. */
    if (version > 0xffffffffu)
        return APR_EAGAIN;
    return sd_shm_replace(SELF(st)->table, key, (apr_uint32_t)version, data,
                          len, now);
}

static apr_status_t shm_remove(sd_store_t *st, const sd_key_t *key,
                               const sd_owner_t *owner)
{
    if (owner)
        return sd_shm_remove_owned(SELF(st)->table, key, owner);
    return sd_shm_delete(SELF(st)->table, key);
}

static apr_status_t shm_end_owner(sd_store_t *st, const sd_owner_t *owner,
                                  apr_uint64_t *ended)
{
    return sd_shm_end_owner(SELF(st)->table, owner, ended);
}

static apr_status_t shm_list_owner(sd_store_t *st, const sd_owner_t *owner,
                                   apr_int64_t now, apr_pool_t *pool,
                                   apr_array_header_t **entries)
{
    return sd_shm_list_owner(SELF(st)->table, owner, now, pool, entries);
}

static apr_status_t shm_throttle_hit(sd_store_t *st, const char *key,
                                     apr_size_t len, apr_uint32_t limit,
                                     apr_uint32_t window, apr_int64_t now,
                                     apr_int64_t *wait)
{
    return sd_throttle_hit(SELF(st)->throttle, key, len, limit, window, now,
                           wait);
}

static apr_status_t shm_throttle_undo(sd_store_t *st, const char *key,
                                      apr_size_t len, int forget)
{
    sd_throttle_undo(SELF(st)->throttle, key, len, forget);
    return APR_SUCCESS;
}

static apr_status_t shm_count(sd_store_t *st, sd_counter_t c)
{
    static const sd_shm_counter_t map[] = {SD_SHM_COUNT_LOGIN_OK,
                                           SD_SHM_COUNT_LOGIN_FAILED,
                                           SD_SHM_COUNT_LOGIN_THROTTLED};
    sd_shm_count(SELF(st)->table, map[c]);
    return APR_SUCCESS;
}

static apr_status_t shm_stats(sd_store_t *st, apr_pool_t *pool,
                              sd_store_stats_t *o)
{
    sd_shm_stats_t t;
    sd_shm_stats(SELF(st)->table, &t);
    memset(o, 0, sizeof(*o));
    o->kind = "shm";
    o->connected = 1;
    o->have = SD_STATS_CAPACITY;
    o->capacity = t.capacity;
    o->sessions = t.sessions;
    o->memory_used = t.memory_used;
    o->memory_total = t.memory_total;
    o->hits = t.hits;
    o->misses = t.misses;
    o->expirations = t.expirations;
    o->evictions = t.evictions;
    o->refusals = t.refusals;
    o->repairs = t.repairs;
    o->logins_ok = t.logins_ok;
    o->logins_failed = t.logins_failed;
    o->logins_throttled = t.logins_throttled;
    return APR_SUCCESS;
}

static const sd_store_ops_t shm_ops = {
    "shm",          shm_create,       shm_get,           shm_replace,
    shm_remove,     shm_end_owner,    shm_list_owner,    shm_throttle_hit,
    shm_throttle_undo, shm_count,     shm_stats,         shm_key_fits,
};

/* ---------------------------------------------------------------------
 * Lifecycle
 * --------------------------------------------------------------------- */

static int same_geometry(const sd_shm_params_t *a, const sd_shm_params_t *b)
{
    return a->capacity == b->capacity && a->memory == b->memory &&
           a->max_data == b->max_data;
}

static void say(shm_store *s, sd_log_level_t level, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    if (!s->log)
        return;
    va_start(ap, fmt);
    apr_vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    s->log(s->baton, level, line);
}

/* What outlives a configuration generation, in the persistent pool under
 * a key that names this record's own version: only APR handles to the
 * segments, never a struct of ours that a newer build of the module (a
 * graceful restart after an upgrade loads the new .so) might read with
 * another layout. Every generation attaches to the segments afresh, and
 * the segments' own magic and layout version decide whether they can be
 * read. */
#define KEPT_KEY "sd_store_shm/kept-v1"
typedef struct {
    apr_shm_t *shm;             /* the session segment, or NULL */
    apr_shm_t *tshm;            /* the throttle segment, or NULL */
} kept_segments;

static apr_status_t new_segment(apr_pool_t *persist, shm_store *s,
                                sd_shm_params_t *p, apr_shm_t **shm,
                                sd_shm_t **table, const char **why)
{
    apr_size_t size = sd_shm_size(p);
    apr_status_t rv = apr_shm_create(shm, size, NULL, persist);
    if (rv != APR_SUCCESS) {
        *why = apr_psprintf(persist,
                            "cannot create %" APR_SIZE_T_FMT " bytes of "
                            "shared memory for the session store; lower "
                            "SessionDemoCapacity or SessionDemoMemory",
                            size);
        return rv;
    }
    rv = sd_shm_format(persist, apr_shm_baseaddr_get(*shm),
                       apr_shm_size_get(*shm), p, table);
    if (rv != APR_SUCCESS) {
        *why = "cannot lay out the session store";
        apr_shm_destroy(*shm);
        *shm = NULL;
    }
    return rv;
}

/* The snapshot's key lives beside it, in PATH.key, readable by root
 * only: whoever can write the snapshot but not read the key cannot make a
 * file that loads. */
static const char *key_path(apr_pool_t *p, const char *snapshot)
{
    return apr_pstrcat(p, snapshot, ".key", NULL);
}

static void load_snapshot(shm_store *s, apr_pool_t *pool, const char *path,
                          apr_int64_t now)
{
    /* A fresh start: bring back what the last stop saved. The file is
     * removed once loaded, so a crash later cannot resurrect sessions
     * that were logged out after it was written. */
    unsigned char key[SD_SNAPSHOT_KEY_LEN];
    apr_uint64_t n = 0;
    const char *bad = NULL;
    apr_pool_t *tp;
    apr_status_t rv;

    apr_pool_create(&tp, pool);
    rv = sd_snapshot_key(key_path(tp, path), tp, key, &bad);
    if (rv == APR_SUCCESS)
        rv = sd_snapshot_load(s->table, path, key, (apr_uid_t)getuid(), tp,
                              now, &n, &bad);
    sd_wipe(key, sizeof(key));
    if (rv == APR_SUCCESS) {
        say(s, SD_LOG_NOTICE,
            "SDEMO00204: %" APR_UINT64_T_FMT " sessions loaded from the "
            "snapshot %s",
            n, path);
        apr_file_remove(path, tp);
    }
    else if (!APR_STATUS_IS_ENOENT(rv)) {
        say(s, SD_LOG_WARN,
            "SDEMO00205: the snapshot %s is ignored: %s; starting with an "
            "empty store",
            path, bad ? bad : "it cannot be read");
    }
    apr_pool_destroy(tp);
}

apr_status_t sd_store_shm_open(apr_pool_t *persist, apr_pool_t *pool,
                               const sd_store_shm_config_t *cfg,
                               sd_store_log_fn log, void *baton,
                               apr_int64_t now, sd_store_t **out,
                               const char **why)
{
    kept_segments *kept = NULL;
    shm_store *s;
    sd_shm_params_t p = cfg->params;
    sd_shm_t *old = NULL;
    apr_status_t rv;

    if (sd_shm_check_params(&p, why) != APR_SUCCESS)
        return APR_EINVAL;

    apr_pool_userdata_get((void **)&kept, KEPT_KEY, persist);
    if (!kept) {
        kept = apr_pcalloc(persist, sizeof(*kept));
        apr_pool_userdata_set(kept, KEPT_KEY, apr_pool_cleanup_null, persist);
    }
    s = apr_pcalloc(pool, sizeof(*s));
    s->base.ops = &shm_ops;
    s->base.max_data = p.max_data;
    s->base.retry_after = 5;
    s->params = p;
    s->log = log;
    s->baton = baton;

    if (kept->shm) {
        void *base = apr_shm_baseaddr_get(kept->shm);
        apr_size_t size = apr_shm_size_get(kept->shm);
        rv = sd_shm_attach(pool, base, size, &old);
        if (rv != APR_SUCCESS) {
            say(s, SD_LOG_WARN,
                "SDEMO00207: the session store kept from before the restart "
                "has layout %u and this build reads layout %u (the module "
                "was upgraded); its sessions cannot be read: starting with "
                "an empty store",
                (unsigned)sd_shm_layout_of(base, size),
                (unsigned)SD_SHM_LAYOUT);
            apr_shm_destroy(kept->shm);
            kept->shm = NULL;
            old = NULL;
        }
    }
    if (old) {
        sd_shm_params_t was;
        sd_shm_params(old, &was);
        if (same_geometry(&was, &p)) {
            /* A restart with the same sizes: keep the segment and every
             * session in it; only the policy and the log target change. */
            s->shm = kept->shm;
            s->table = old;
            sd_shm_set_when_full(old, p.when_full);
        }
    }
    if (!s->table) {
        if ((rv = new_segment(persist, s, &p, &s->shm, &s->table, why)) !=
            APR_SUCCESS)
            return rv;
        if (old) {
            /* A restart with new sizes: the old segment is still mapped
             * here, so its sessions move over before it goes. */
            sd_shm_stats_t was, is;
            sd_shm_stats(old, &was);
            sd_shm_migrate(old, s->table, now);
            sd_shm_stats(s->table, &is);
            say(s, is.sessions < was.sessions ? SD_LOG_WARN : SD_LOG_NOTICE,
                "SDEMO00203: the session store changed size; %"
                APR_UINT64_T_FMT " of %" APR_UINT64_T_FMT " sessions moved "
                "into the new store (the rest had ended or did not fit)",
                is.sessions, was.sessions);
            apr_shm_destroy(kept->shm);
        }
        else if (cfg->snapshot) {
            load_snapshot(s, pool, cfg->snapshot, now);
        }
        kept->shm = s->shm;
    }
    sd_shm_set_log(s->table, table_log, s);
    sd_shm_set_evict_hook(s->table, table_evicted, s);

    /* The throttle table: kept when it is of this build, else new. */
    if (kept->tshm &&
        sd_throttle_attach(pool, apr_shm_baseaddr_get(kept->tshm),
                           apr_shm_size_get(kept->tshm),
                           &s->throttle) != APR_SUCCESS) {
        apr_shm_destroy(kept->tshm);
        kept->tshm = NULL;
    }
    if (!kept->tshm) {
        rv = apr_shm_create(&kept->tshm, sd_throttle_size(cfg->throttle_slots),
                            NULL, persist);
        if (rv == APR_SUCCESS)
            rv = sd_throttle_format(pool, apr_shm_baseaddr_get(kept->tshm),
                                    apr_shm_size_get(kept->tshm),
                                    cfg->throttle_slots, &s->throttle);
        if (rv != APR_SUCCESS) {
            *why = "cannot create the login throttle table in shared memory";
            return rv;
        }
    }
    *out = &s->base;
    return APR_SUCCESS;
}

apr_status_t sd_store_shm_save(sd_store_t *st, const char *path,
                               apr_pool_t *pool, apr_uint64_t *count,
                               const char **why)
{
    unsigned char key[SD_SNAPSHOT_KEY_LEN];
    apr_status_t rv;

    *why = NULL;
    rv = sd_snapshot_key(key_path(pool, path), pool, key, why);
    if (rv == APR_SUCCESS)
        rv = sd_snapshot_save(SELF(st)->table, path, key, pool, count);
    sd_wipe(key, sizeof(key));
    return rv;
}
