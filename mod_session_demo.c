/*
 * mod_session_demo: server-side sessions for Apache httpd 2.4.
 *
 * The browser holds only a random 256-bit ID in a cookie; the session's
 * data lives in a shared-memory store inside httpd (src/sd_shm.c) that
 * every process and thread of the server sees, and that survives graceful
 * and plain restarts because it is created once in the parent and kept
 * across configuration generations.
 *
 * This file is the glue: configuration, the command table, hooks, the
 * store's lifecycle, and the session operations the page handlers in
 * sdemo_pages.c build on. Parsing, hashing, the record format and the store
 * itself are plain C in src/, unit-tested without httpd.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_provider.h"
#include "mod_auth.h"
#include "mod_status.h"
#include "util_mutex.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_shm.h"
#include "apr_thread_rwlock.h"
#include "apr_md5.h"

#include <unistd.h>

#include "sdemo_private.h"
#include "sd_cookie.h"
#include "sd_id.h"
#include "sd_sha256.h"
#include "sd_snapshot.h"

module AP_MODULE_DECLARE_DATA session_demo_module;

#define SDEMO_MUTEX_TYPE "session-demo"
#define SDEMO_STORE_KEY "sdemo-store"   /* process pool userdata */
#define SDEMO_FILE_RECHECK 1            /* seconds between stat()s */

/* ---------------------------------------------------------------------
 * Per-process state
 *
 * The segment and the login-token secret hang off the process pool, not
 * pconf: the parent keeps them from one configuration generation to the
 * next, so restarts keep every session and every login form still valid.
 * --------------------------------------------------------------------- */

typedef struct {
    apr_shm_t *shm;                   /* the segment */
    sd_shm_t *store;                /* our handle on it */
    sd_shm_params_t params;         /* what it was formatted with */
    apr_shm_t *throttle_shm;          /* login failure counters */
    sd_throttle_t *throttle;
    unsigned char secret[32];         /* HMAC key for login tokens */
    apr_global_mutex_t *mutex;        /* Mutex session-demo */
    const char *mutex_file;           /* its lock file, if any */
} sdemo_global;

static sdemo_global *g;

/* User and group files, cached per process and re-read when they change.
 * Lookups copy what they need into the request pool under the cache lock,
 * so a reload may free the old contents at once. */
typedef struct {
    apr_pool_t *pool;                 /* holds the parsed contents */
    apr_hash_t *map;                  /* users: sd_user_t *; groups: role */
    const char *dummy;                /* bcrypt hash for unknown users */
    apr_time_t mtime;                 /* of the file when read */
    apr_off_t size;
    apr_ino_t inode;
    apr_time_t checked;               /* last stat() */
    int exists;                       /* the last read found a file */
} sdemo_file;

static apr_hash_t *files;             /* path -> sdemo_file */
static apr_pool_t *files_pool;
static apr_thread_rwlock_t *files_lock;
static apr_array_header_t *user_files;  /* paths named in the config */

/* ---------------------------------------------------------------------
 * Configuration
 * --------------------------------------------------------------------- */

static void *create_srv_cfg(apr_pool_t *p, server_rec *s)
{
    sdemo_srv_cfg *c = apr_pcalloc(p, sizeof(*c));
    c->store_spec = "shm";
    c->capacity = 10000;
    c->memory = 64 * 1024 * 1024;
    c->max_data = 16 * 1024;
    c->when_full = SD_SHM_FULL_EVICT;
    return c;
}

static void *create_dir_cfg(apr_pool_t *p, char *dir)
{
    sdemo_dir_cfg *c = apr_pcalloc(p, sizeof(*c));
    c->secure = SDEMO_UNSET;
    c->idle = SDEMO_UNSET;
    c->max_age = SDEMO_UNSET;
    c->throttle_n = SDEMO_UNSET;
    c->throttle_window = SDEMO_UNSET;
    c->bind_ua = SDEMO_UNSET;
    c->env = SDEMO_UNSET;
    return c;
}

#define MERGE_PTR(f) c->f = add->f ? add->f : base->f
#define MERGE_INT(f) c->f = add->f != SDEMO_UNSET ? add->f : base->f

static void *merge_dir_cfg(apr_pool_t *p, void *basev, void *addv)
{
    sdemo_dir_cfg *base = basev, *add = addv;
    sdemo_dir_cfg *c = apr_pcalloc(p, sizeof(*c));
    MERGE_PTR(cookie_name);
    MERGE_PTR(samesite);
    MERGE_INT(secure);
    MERGE_INT(idle);
    MERGE_INT(max_age);
    MERGE_PTR(user_file);
    MERGE_PTR(group_file);
    MERGE_PTR(guest_password);
    c->guest_stamp = add->guest_password ? add->guest_stamp : base->guest_stamp;
    MERGE_INT(throttle_n);
    MERGE_INT(throttle_window);
    MERGE_INT(bind_ua);
    MERGE_PTR(login_url);
    MERGE_PTR(dashboard_url);
    MERGE_PTR(logout_url);
    MERGE_INT(env);
    return c;
}

/* The effective per-directory settings, defaults filled in. */
sdemo_dir_cfg *sdemo_dconf(request_rec *r)
{
    sdemo_dir_cfg *d =
        ap_get_module_config(r->per_dir_config, &session_demo_module);
    sdemo_dir_cfg *e = ap_get_module_config(r->request_config,
                                            &session_demo_module);
    if (e)
        return e;
    e = apr_pmemdup(r->pool, d, sizeof(*d));
    if (!e->cookie_name)
        e->cookie_name = "sid";
    if (!e->samesite)
        e->samesite = "Lax";
    if (e->secure == SDEMO_UNSET)
        e->secure = SDEMO_SECURE_AUTO;
    if (e->idle == SDEMO_UNSET)
        e->idle = 1800;
    if (e->max_age == SDEMO_UNSET)
        e->max_age = 28800;
    if (e->throttle_n == SDEMO_UNSET) {
        e->throttle_n = 5;
        e->throttle_window = 900;
    }
    if (e->bind_ua == SDEMO_UNSET)
        e->bind_ua = 0;
    if (!e->login_url)
        e->login_url = "/login";
    if (!e->dashboard_url)
        e->dashboard_url = "/dashboard";
    if (!e->logout_url)
        e->logout_url = "/logout";
    if (e->env == SDEMO_UNSET)
        e->env = 0;
    ap_set_module_config(r->request_config, &session_demo_module, e);
    return e;
}

/* "64M", "16K", "1G" or plain bytes. */
static const char *parse_size(cmd_parms *cmd, const char *arg,
                              apr_uint64_t min, apr_uint64_t max,
                              apr_uint64_t *out)
{
    char *end;
    apr_uint64_t v, mult = 1;

    if (!apr_isdigit(*arg))
        goto bad;
    v = apr_strtoi64(arg, &end, 10);
    if (*end) {
        switch (apr_toupper(*end)) {
        case 'K': mult = 1024; break;
        case 'M': mult = 1024 * 1024; break;
        case 'G': mult = 1024 * 1024 * 1024; break;
        default: goto bad;
        }
        if (end[1] && !(apr_toupper(end[1]) == 'B' && !end[2]))
            goto bad;
    }
    if (v > max / mult || v * mult < min || v * mult > max)
        goto bad;
    *out = v * mult;
    return NULL;
bad:
    return apr_psprintf(cmd->pool,
                        "%s: '%s' is not a size between %" APR_UINT64_T_FMT
                        " and %" APR_UINT64_T_FMT " bytes (use a number "
                        "with an optional K, M or G)",
                        cmd->directive->directive, arg, min, max);
}

static const char *parse_seconds(cmd_parms *cmd, const char *arg,
                                 apr_int64_t *out)
{
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);
    if (!apr_isdigit(*arg) || *end || v < 1 || v > 31536000)
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a number of seconds between 1 "
                            "and 31536000",
                            cmd->directive->directive, arg);
    *out = v;
    return NULL;
}

static const char *global_only(cmd_parms *cmd)
{
    return ap_check_cmd_context(cmd, GLOBAL_ONLY);
}

static sdemo_srv_cfg *sconf(cmd_parms *cmd)
{
    return ap_get_module_config(cmd->server->module_config,
                                &session_demo_module);
}

static const char *set_store(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd);
    if (err)
        return err;
    if (strcmp(arg, "shm") == 0) {
        sconf(cmd)->store_spec = arg;
        return NULL;
    }
    if (strncmp(arg, "socache:", 8) == 0 && arg[8])
        return apr_psprintf(cmd->pool,
                            "SessionDemoStore: '%s': socache stores "
                            "(memcached, Redis) are not available in this "
                            "version yet; use 'shm'",
                            arg);
    return apr_psprintf(cmd->pool,
                        "SessionDemoStore: '%s' is not a store; use 'shm' "
                        "or 'socache:PROVIDER[:ARGS]'",
                        arg);
}

static const char *set_capacity(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd);
    char *end;
    apr_int64_t v;
    if (err)
        return err;
    v = apr_strtoi64(arg, &end, 10);
    if (!apr_isdigit(*arg) || *end || v < 1 || v > 10000000)
        return apr_psprintf(cmd->pool,
                            "SessionDemoCapacity: '%s' is not a number of "
                            "sessions between 1 and 10000000",
                            arg);
    sconf(cmd)->capacity = (apr_uint64_t)v;
    return NULL;
}

static const char *set_memory(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd);
    return err ? err
               : parse_size(cmd, arg, 64 * 1024, APR_UINT64_C(256) << 30,
                            &sconf(cmd)->memory);
}

static const char *set_max_data(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd);
    return err ? err
               : parse_size(cmd, arg, 1024, 1024 * 1024,
                            &sconf(cmd)->max_data);
}

static const char *set_when_full(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd);
    if (err)
        return err;
    if (strcasecmp(arg, "evict") == 0)
        sconf(cmd)->when_full = SD_SHM_FULL_EVICT;
    else if (strcasecmp(arg, "refuse") == 0)
        sconf(cmd)->when_full = SD_SHM_FULL_REFUSE;
    else
        return apr_psprintf(cmd->pool,
                            "SessionDemoWhenFull: '%s' is not 'evict' or "
                            "'refuse'",
                            arg);
    return NULL;
}

static const char *set_snapshot(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd);
    if (err)
        return err;
    sconf(cmd)->snapshot = ap_server_root_relative(cmd->pool, arg);
    return NULL;
}

static const char *set_cookie_name(cmd_parms *cmd, void *dc, const char *arg)
{
    if (!sd_cookie_name_valid(arg) || strncasecmp(arg, "__Host-", 7) == 0 ||
        strncasecmp(arg, "__Secure-", 9) == 0)
        return apr_psprintf(cmd->pool,
                            "SessionDemoCookieName: '%s' is not a cookie "
                            "name (letters, digits and !#$%%&'*+-.^_`|~, at "
                            "most 64; the __Host- prefix is added by itself "
                            "over HTTPS)",
                            arg);
    ((sdemo_dir_cfg *)dc)->cookie_name = arg;
    return NULL;
}

static const char *set_samesite(cmd_parms *cmd, void *dc, const char *arg)
{
    static const char *const vals[] = {"Strict", "Lax", "None"};
    int i;
    for (i = 0; i < 3; i++) {
        if (strcasecmp(arg, vals[i]) == 0) {
            ((sdemo_dir_cfg *)dc)->samesite = vals[i];
            return NULL;
        }
    }
    return apr_psprintf(cmd->pool,
                        "SessionDemoCookieSameSite: '%s' is not Strict, Lax "
                        "or None",
                        arg);
}

static const char *set_secure(cmd_parms *cmd, void *dc, const char *arg)
{
    sdemo_dir_cfg *d = dc;
    if (strcasecmp(arg, "auto") == 0)
        d->secure = SDEMO_SECURE_AUTO;
    else if (strcasecmp(arg, "on") == 0)
        d->secure = SDEMO_SECURE_ON;
    else if (strcasecmp(arg, "off") == 0)
        d->secure = SDEMO_SECURE_OFF;
    else
        return apr_psprintf(cmd->pool,
                            "SessionDemoCookieSecure: '%s' is not Auto, On "
                            "or Off",
                            arg);
    return NULL;
}

static const char *set_idle(cmd_parms *cmd, void *dc, const char *arg)
{
    return parse_seconds(cmd, arg, &((sdemo_dir_cfg *)dc)->idle);
}

static const char *set_max_age(cmd_parms *cmd, void *dc, const char *arg)
{
    return parse_seconds(cmd, arg, &((sdemo_dir_cfg *)dc)->max_age);
}

static const char *set_user_file(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);
    if (!path)
        return apr_psprintf(cmd->pool, "SessionDemoUserFile: bad path '%s'",
                            arg);
    ((sdemo_dir_cfg *)dc)->user_file = path;
    if (!user_files)
        user_files = apr_array_make(cmd->pool, 4, sizeof(const char *));
    APR_ARRAY_PUSH(user_files, const char *) = path;
    return NULL;
}

static const char *set_group_file(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);
    if (!path)
        return apr_psprintf(cmd->pool, "SessionDemoGroupFile: bad path '%s'",
                            arg);
    ((sdemo_dir_cfg *)dc)->group_file = path;
    return NULL;
}

static const char *set_guest(cmd_parms *cmd, void *dc, const char *arg)
{
    if (!*arg || strlen(arg) > SD_PASSWORD_MAX)
        return "SessionDemoGuestPassword: the password must be 1 to 72 bytes";
    ((sdemo_dir_cfg *)dc)->guest_password = arg;
    /* What guest sessions are stamped with, computed once here rather
     * than on every request that checks a session. */
    {
        const char *h = apr_pstrcat(cmd->pool, "guest:", arg, NULL);
        ((sdemo_dir_cfg *)dc)->guest_stamp = sd_hash64(h, strlen(h));
    }
    return NULL;
}

static const char *set_throttle(cmd_parms *cmd, void *dc, const char *n,
                                const char *secs)
{
    sdemo_dir_cfg *d = dc;
    char *end;
    apr_int64_t v = apr_strtoi64(n, &end, 10), w;
    if (!apr_isdigit(*n) || *end || v < 1 || v > 100000)
        return apr_psprintf(cmd->pool,
                            "SessionDemoLoginThrottle: '%s' is not a number "
                            "of failures between 1 and 100000",
                            n);
    w = apr_strtoi64(secs, &end, 10);
    if (!apr_isdigit(*secs) || *end || w < 1 || w > 86400)
        return apr_psprintf(cmd->pool,
                            "SessionDemoLoginThrottle: '%s' is not a window "
                            "between 1 and 86400 seconds",
                            secs);
    d->throttle_n = (int)v;
    d->throttle_window = (int)w;
    return NULL;
}

static const char *set_url(cmd_parms *cmd, void *dc, const char *arg)
{
    sdemo_dir_cfg *d = dc;
    const char *p;
    if (arg[0] != '/' || arg[1] == '/')
        goto bad;
    for (p = arg; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '<' || *p == '>' ||
            *p == '\\' || *p == '?' || *p == '#')
            goto bad;
    switch (((const char *)cmd->info)[0]) {
    case 'l': d->login_url = arg; break;
    case 'd': d->dashboard_url = arg; break;
    default: d->logout_url = arg; break;
    }
    return NULL;
bad:
    return apr_psprintf(cmd->pool,
                        "%s: '%s' is not a local path (it must start with a "
                        "single '/' and hold no spaces, quotes, '?' or '#')",
                        cmd->directive->directive, arg);
}

static const char *set_onoff(cmd_parms *cmd, void *dc, int on)
{
    sdemo_dir_cfg *d = dc;
    if (strcmp(cmd->info, "ua") == 0)
        d->bind_ua = on;
    else
        d->env = on;
    return NULL;
}

#define DIRCTX (RSRC_CONF | ACCESS_CONF)

static const command_rec sdemo_cmds[] = {
    AP_INIT_TAKE1("SessionDemoStore", set_store, NULL, RSRC_CONF,
                  "Where sessions live: shm (default)"),
    AP_INIT_TAKE1("SessionDemoCapacity", set_capacity, NULL, RSRC_CONF,
                  "Most live sessions, 1-10000000 (default 10000)"),
    AP_INIT_TAKE1("SessionDemoMemory", set_memory, NULL, RSRC_CONF,
                  "Shared memory for session data, with K/M/G (default 64M)"),
    AP_INIT_TAKE1("SessionDemoMaxDataSize", set_max_data, NULL, RSRC_CONF,
                  "Most data one session may hold, with K/M (default 16K)"),
    AP_INIT_TAKE1("SessionDemoWhenFull", set_when_full, NULL, RSRC_CONF,
                  "evict (default) or refuse when the store is full"),
    AP_INIT_TAKE1("SessionDemoSnapshot", set_snapshot, NULL, RSRC_CONF,
                  "File the store is saved to at stop and loaded from at "
                  "start (default none)"),
    AP_INIT_TAKE1("SessionDemoCookieName", set_cookie_name, NULL, DIRCTX,
                  "Session cookie name (default sid)"),
    AP_INIT_TAKE1("SessionDemoCookieSameSite", set_samesite, NULL, DIRCTX,
                  "Strict, Lax (default) or None"),
    AP_INIT_TAKE1("SessionDemoCookieSecure", set_secure, NULL, DIRCTX,
                  "Auto (default: when over TLS), On or Off"),
    AP_INIT_TAKE1("SessionDemoIdleTimeout", set_idle, NULL, DIRCTX,
                  "Seconds a session may stay unused (default 1800)"),
    AP_INIT_TAKE1("SessionDemoMaxAge", set_max_age, NULL, DIRCTX,
                  "Seconds a session may last in all (default 28800)"),
    AP_INIT_TAKE1("SessionDemoUserFile", set_user_file, NULL, DIRCTX,
                  "htpasswd file of users (bcrypt only; default none)"),
    AP_INIT_TAKE1("SessionDemoGroupFile", set_group_file, NULL, DIRCTX,
                  "htgroup file giving each user a role (default none)"),
    AP_INIT_TAKE1("SessionDemoGuestPassword", set_guest, NULL, DIRCTX,
                  "Demo mode: any username logs in with this password "
                  "(default off)"),
    AP_INIT_TAKE2("SessionDemoLoginThrottle", set_throttle, NULL, DIRCTX,
                  "Failed logins allowed per username and window in seconds "
                  "(default 5 900)"),
    AP_INIT_FLAG("SessionDemoBindUserAgent", set_onoff, "ua", DIRCTX,
                 "End a session presented with another User-Agent "
                 "(default Off)"),
    AP_INIT_TAKE1("SessionDemoLoginURL", set_url, "l", DIRCTX,
                  "Path of the login page (default /login)"),
    AP_INIT_TAKE1("SessionDemoDashboardURL", set_url, "d", DIRCTX,
                  "Path of the dashboard (default /dashboard)"),
    AP_INIT_TAKE1("SessionDemoLogoutURL", set_url, "o", DIRCTX,
                  "Path of the logout page (default /logout)"),
    AP_INIT_FLAG("SessionDemoEnv", set_onoff, "env", DIRCTX,
                 "Pass the user and role to backends in guarded areas "
                 "(default Off)"),
    {NULL}};

/* ---------------------------------------------------------------------
 * User and group files
 * --------------------------------------------------------------------- */

/* Generate a bcrypt hash of a random password with the given cost: what
 * an unknown user's login is checked against, so it costs the same. */
static const char *make_dummy(apr_pool_t *p, int cost)
{
    unsigned char pw[16], salt[16];
    char out[64];
    char pwtext[40];

    apr_generate_random_bytes(pw, sizeof(pw));
    apr_generate_random_bytes(salt, sizeof(salt));
    sd_b64url_encode(pw, sizeof(pw), pwtext);
    if (apr_bcrypt_encode(pwtext, cost, salt, sizeof(salt), out,
                          sizeof(out)) != APR_SUCCESS)
        return NULL;
    return apr_pstrdup(p, out);
}

static int hash_cost(const char *h)
{
    if (h && strlen(h) > 7 && h[0] == '$' && h[1] == '2' && h[3] == '$' &&
        apr_isdigit(h[4]) && apr_isdigit(h[5]))
        return (h[4] - '0') * 10 + (h[5] - '0');
    return 0;
}

/* Read @a path into @a f if it changed. Caller holds files_lock. Returns
 * non-zero when the contents were (re)loaded. */
static int file_refresh(server_rec *s, sdemo_file *f, const char *path,
                        int is_users, apr_time_t now)
{
    apr_finfo_t fi;
    apr_file_t *fp;
    apr_pool_t *np;
    apr_size_t len;
    char *text;
    apr_status_t rv;
    int bad = 0;

    if (f->checked && now - f->checked < apr_time_from_sec(SDEMO_FILE_RECHECK))
        return 0;
    f->checked = now;
    rv = apr_stat(&fi, path, APR_FINFO_MTIME | APR_FINFO_SIZE | APR_FINFO_INODE,
                  files_pool);
    if (rv == APR_SUCCESS && f->exists && fi.mtime == f->mtime &&
        fi.size == f->size && fi.inode == f->inode)
        return 0;
    apr_pool_create(&np, files_pool);
    if (rv != APR_SUCCESS || fi.size > 64 * 1024 * 1024 ||
        apr_file_open(&fp, path, APR_FOPEN_READ, 0, np) != APR_SUCCESS) {
        /* A missing file means no users, not the old users: deleting the
         * file must lock everyone out. */
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     "SDEMO00010: cannot read %s file %s; nobody can log in "
                     "with it until it is readable",
                     is_users ? "user" : "group", path);
        if (f->pool)
            apr_pool_destroy(f->pool);
        f->pool = np;
        f->map = apr_hash_make(np);
        f->exists = 0;
        return 1;
    }
    len = (apr_size_t)fi.size;
    text = apr_palloc(np, len + 1);
    rv = apr_file_read_full(fp, text, len, &len);
    apr_file_close(fp);
    text[len] = '\0';
    if (is_users) {
        sd_users_parse(np, text, len, &f->map, &bad);
        if (bad)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "SDEMO00011: %s line %d is not 'user:hash'; it is "
                         "ignored",
                         path, bad);
    }
    else {
        sd_groups_parse(np, text, len, &f->map);
    }
    if (f->pool)
        apr_pool_destroy(f->pool);
    f->pool = np;
    f->mtime = fi.mtime;
    f->size = fi.size;
    f->inode = fi.inode;
    f->exists = 1;
    return 1;
}

static sdemo_file *file_get(server_rec *s, const char *path, int is_users,
                            apr_time_t now)
{
    sdemo_file *f = apr_hash_get(files, path, APR_HASH_KEY_STRING);
    if (!f) {
        f = apr_pcalloc(files_pool, sizeof(*f));
        apr_hash_set(files, apr_pstrdup(files_pool, path), APR_HASH_KEY_STRING,
                     f);
    }
    if (file_refresh(s, f, path, is_users, now) && is_users) {
        /* The dummy hash matches the cost the file's users have, so an
         * unknown user takes as long as a known one. */
        apr_hash_index_t *hi;
        int cost = 0;
        for (hi = apr_hash_first(NULL, f->map); hi; hi = apr_hash_next(hi)) {
            const sd_user_t *u = apr_hash_this_val(hi);
            if (!u->weak && hash_cost(u->hash) > cost)
                cost = hash_cost(u->hash);
        }
        f->dummy = make_dummy(f->pool, cost ? cost : 12);
    }
    return f;
}

/* The cached file @a path, locked: for reading when it was checked less
 * than a second ago (every thread at once), else for writing while it is
 * checked and perhaps re-read. The caller unlocks files_lock. */
static sdemo_file *file_lock(server_rec *s, const char *path, int is_users,
                             apr_time_t now)
{
    sdemo_file *f;

    apr_thread_rwlock_rdlock(files_lock);
    f = apr_hash_get(files, path, APR_HASH_KEY_STRING);
    if (f && f->checked &&
        now - f->checked < apr_time_from_sec(SDEMO_FILE_RECHECK))
        return f;
    apr_thread_rwlock_unlock(files_lock);
    apr_thread_rwlock_wrlock(files_lock);
    return file_get(s, path, is_users, now);
}

/* Copy of user @a name from @a path, or NULL; *dummy gets the file's
 * dummy hash. */
static sd_user_t *user_lookup(request_rec *r, const char *path,
                              const char *name, const char **dummy)
{
    sd_user_t *u = NULL;
    sdemo_file *f;

    f = file_lock(r->server, path, 1, r->request_time);
    if (f->map) {
        const sd_user_t *found = apr_hash_get(f->map, name,
                                              APR_HASH_KEY_STRING);
        if (found) {
            u = apr_palloc(r->pool, sizeof(*u));
            u->user = apr_pstrdup(r->pool, found->user);
            u->hash = apr_pstrdup(r->pool, found->hash);
            u->weak = found->weak ? apr_pstrdup(r->pool, found->weak) : NULL;
        }
    }
    if (dummy)
        *dummy = f->dummy ? apr_pstrdup(r->pool, f->dummy) : NULL;
    apr_thread_rwlock_unlock(files_lock);
    return u;
}

static const char *role_lookup(request_rec *r, const sdemo_dir_cfg *d,
                               const char *user)
{
    const char *role = NULL;
    sdemo_file *f;

    if (!d->group_file)
        return "user";
    f = file_lock(r->server, d->group_file, 0, r->request_time);
    if (f->map) {
        role = apr_hash_get(f->map, user, APR_HASH_KEY_STRING);
        role = role ? apr_pstrdup(r->pool, role) : NULL;
    }
    apr_thread_rwlock_unlock(files_lock);
    return role ? role : "user";
}

/* A fixed-cost dummy for demo mode without a user file. */
static const char *guest_dummy;

/* What ties a session to the credential it was created with: the user's
 * hash, or the guest password. If either changes, the session ends. */
static apr_uint64_t cred_stamp(const char *hash)
{
    return sd_hash64(hash, strlen(hash));
}

int sdemo_check_credentials(request_rec *r, const char *user,
                            const char *password, const char **role,
                            const char **hash)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    const char *dummy = guest_dummy;
    sd_user_t *u = NULL;
    int ok = 0;

    if (!sd_username_valid(user, strlen(user))) {
        /* A name nobody can have: the same bcrypt time all the same. */
        sd_password_check(NULL, password, guest_dummy);
        return 0;
    }
    if (d->user_file)
        u = user_lookup(r, d->user_file, user, &dummy);
    if (!dummy)
        dummy = guest_dummy;
    if (u || !d->guest_password) {
        ok = sd_password_check(u, password, dummy) == APR_SUCCESS;
        if (ok)
            *hash = u->hash;
    }
    else {
        /* Demo mode for names not in the user file. The bcrypt run keeps
         * the time equal to a real check. */
        size_t plen = strlen(password), glen = strlen(d->guest_password);
        sd_password_check(NULL, password, dummy);
        ok = plen == glen &&
             sd_ct_equal(password, d->guest_password, glen) &&
             plen <= SD_PASSWORD_MAX;
        if (ok)
            *hash = apr_pstrcat(r->pool, "guest:", d->guest_password, NULL);
    }
    if (ok)
        *role = role_lookup(r, d, user);
    return ok;
}

/* Is the credential behind session @a s still what it was at login? */
static const char *cred_still_valid(request_rec *r, const sd_session_t *s)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    sd_user_t *u = NULL;

    if (d->user_file)
        u = user_lookup(r, d->user_file, s->user, NULL);
    if (u) {
        if (u->weak)
            return "the user's password entry is no longer accepted";
        if (cred_stamp(u->hash) != s->cred_stamp)
            return "the user's password changed";
    }
    else if (d->guest_password) {
        if (d->guest_stamp != s->cred_stamp)
            return "the user is no longer a guest with this password";
    }
    else {
        return "the user no longer exists";
    }
    if (strcmp(role_lookup(r, d, s->user), s->role) != 0)
        return "the user's role changed";
    return NULL;
}

/* ---------------------------------------------------------------------
 * Request helpers
 * --------------------------------------------------------------------- */

sd_shm_t *sdemo_store(void)
{
    return g ? g->store : NULL;
}

/* Whole-store work (a scan of every session) runs one at a time across
 * the server, under Mutex session-demo, so that two scans never compete
 * for the stripe locks that requests need. */
apr_uint64_t sdemo_delete_if(request_rec *r, sd_shm_match_fn match,
                             void *baton)
{
    apr_uint64_t n;
    int locked = g && g->mutex &&
                 apr_global_mutex_lock(g->mutex) == APR_SUCCESS;
    n = sd_shm_delete_if(g->store, match, baton);
    if (locked)
        apr_global_mutex_unlock(g->mutex);
    return n;
}

sd_throttle_t *sdemo_throttle(void)
{
    return g ? g->throttle : NULL;
}

const char *sdemo_store_kind(void)
{
    return "shm";
}

/* A username as log lines show it: letters, digits and . _ @ + - as they
 * are, every other byte as %XX. No quote or backslash can appear, so a
 * crafted name cannot fake the rest of a line for a log watcher (httpd
 * doubles backslashes, which would undo a \" escape). */
const char *sdemo_log_name(apr_pool_t *p, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, strlen(name) * 3 + 1), *o = out;
    for (; *name; name++) {
        unsigned char c = (unsigned char)*name;
        if (apr_isalnum(c) || c == '.' || c == '_' || c == '@' || c == '+' ||
            c == '-')
            *o++ = (char)c;
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

apr_int64_t sdemo_now(request_rec *r)
{
    return (apr_int64_t)apr_time_sec(r->request_time);
}

int sdemo_is_tls(request_rec *r)
{
    return strcmp(ap_http_scheme(r), "https") == 0;
}

static int cookie_secure(request_rec *r, const sdemo_dir_cfg *d)
{
    if (strcmp(d->samesite, "None") == 0)
        return 1;
    if (d->secure == SDEMO_SECURE_AUTO)
        return sdemo_is_tls(r);
    return d->secure == SDEMO_SECURE_ON;
}

/* Over TLS the cookie is Secure, host-only and Path=/, which is exactly
 * what the __Host- prefix promises, so browsers will refuse a look-alike
 * cookie planted by a sibling domain or over plain HTTP. */
const char *sdemo_cookie_name(request_rec *r, const sdemo_dir_cfg *d)
{
    if (cookie_secure(r, d) && sdemo_is_tls(r))
        return apr_pstrcat(r->pool, "__Host-", d->cookie_name, NULL);
    return d->cookie_name;
}

static void cookie_out(request_rec *r, const char *id, int clear)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    sd_cookie_attrs_t a;
    a.samesite = d->samesite;
    a.secure = cookie_secure(r, d);
    a.clear = clear;
    /* err_headers_out: the cookie must survive error and redirect
     * responses too. */
    apr_table_addn(r->err_headers_out, "Set-Cookie",
                   sd_cookie_format(r->pool, sdemo_cookie_name(r, d),
                                    clear ? "" : id, &a));
}

void sdemo_cookie_set(request_rec *r, const char *id)
{
    cookie_out(r, id, 0);
}

void sdemo_cookie_clear(request_rec *r)
{
    cookie_out(r, NULL, 1);
}

typedef struct {
    apr_array_header_t *vals;
} cookie_collect;

static int collect_cookie(void *baton, const char *key, const char *val)
{
    cookie_collect *c = baton;
    APR_ARRAY_PUSH(c->vals, const char *) = val;
    return 1;
}

/* The session ID the request presents, or NULL when it presents none we
 * could have issued. */
static const char *request_id(request_rec *r, const sdemo_dir_cfg *d)
{
    cookie_collect c;
    const char *value = NULL;
    sd_cookie_result_t res;

    c.vals = apr_array_make(r->pool, 2, sizeof(const char *));
    apr_table_do(collect_cookie, &c, r->headers_in, "Cookie", NULL);
    if (c.vals->nelts == 0)
        return NULL;
    res = sd_cookie_find(r->pool, (const char *const *)c.vals->elts,
                         c.vals->nelts, sdemo_cookie_name(r, d), &value);
    if (res == SD_COOKIE_DUPLICATE || res == SD_COOKIE_MALFORMED)
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "SDEMO00020: %s session cookie from %s; treated as "
                      "anonymous",
                      res == SD_COOKIE_DUPLICATE ? "duplicate" : "malformed",
                      r->useragent_ip);
    if (res != SD_COOKIE_FOUND || !sd_id_wellformed(value, strlen(value)))
        return NULL;
    return value;
}

/* Load the request's session (cached for the request and its
 * subrequests). NULL when anonymous; *status is OK, or an HTTP error when
 * the store itself failed. */
sdemo_session *sdemo_session_load(request_rec *r, int *status)
{
    request_rec *main = r->main ? r->main : r;
    sdemo_session **cached, *ss;
    sdemo_dir_cfg *d;
    sd_shm_t *st = sdemo_store();
    const char *id, *why;
    apr_size_t len = 0, cap;
    char *buf;
    apr_status_t rv;

    *status = OK;
    if (apr_pool_userdata_get((void **)&cached, "sdemo-session",
                              main->pool) == APR_SUCCESS && cached)
        return *cached;
    cached = apr_pcalloc(main->pool, sizeof(*cached));
    apr_pool_userdata_setn(cached, "sdemo-session", NULL, main->pool);

    d = sdemo_dconf(r);
    if (!st || !(id = request_id(main, d)))
        return NULL;
    ss = apr_pcalloc(main->pool, sizeof(*ss));
    sd_id_key(id, strlen(id), &ss->key);
    sd_key_prefix(&ss->key, ss->prefix);

    /* The buffer is allocated before the lock is taken. */
    cap = 4096;
    buf = apr_palloc(main->pool, cap);
    rv = sd_shm_get(st, &ss->key, sdemo_now(r), buf, cap, &len, &ss->meta);
    if (rv == APR_SUCCESS && len > cap) {
        /* Bigger than the usual buffer: look again with room for the
         * largest record the store allows (a record never exceeds it). */
        sd_shm_params_t p;
        sd_shm_params(st, &p);
        cap = p.max_data;
        buf = apr_palloc(main->pool, cap);
        rv = sd_shm_get(st, &ss->key, sdemo_now(r), buf, cap, &len,
                          &ss->meta);
    }
    if (rv == APR_TIMEUP) {
        sd_session_t *gone;
        if (len <= cap &&
            sd_record_decode(main->pool, buf, len, &gone) == APR_SUCCESS)
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "SDEMO00024: session %s of user \"%s\" from %s "
                          "expired (idle or absolute timeout)",
                          ss->prefix, sdemo_log_name(r->pool, gone->user),
                          main->useragent_ip);
        return NULL;
    }
    if (rv != APR_SUCCESS)
        return NULL;
    /* The store has just marked the session used at this request: that is
     * its last access now, and what its expiry counts from. */
    if (ss->meta.last_access < sdemo_now(r))
        ss->meta.last_access = sdemo_now(r);
    if (sd_record_decode(main->pool, buf, len, &ss->s) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SDEMO00021: session %s holds a damaged record; it is "
                      "ended",
                      ss->prefix);
        sd_shm_delete(st, &ss->key);
        return NULL;
    }
    if ((why = cred_still_valid(main, ss->s)) != NULL) {
        sdemo_session_end(main, ss, why);
        return NULL;
    }
    if (d->bind_ua) {
        const char *ua = apr_table_get(main->headers_in, "User-Agent");
        if (!ua)
            ua = "";
        if (sd_hash64(ua, strlen(ua)) != ss->s->ua_hash) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "SDEMO00022: possible session hijack: session %s "
                          "of user \"%s\" presented from %s with another "
                          "User-Agent than at login; the session is ended",
                          ss->prefix, sdemo_log_name(r->pool, ss->s->user),
                          main->useragent_ip);
            sd_shm_delete(st, &ss->key);
            return NULL;
        }
    }
    *cached = ss;
    return ss;
}

/* Read-modify-write of a session without holding a lock across the
 * change: change a private copy of what the request loaded, replace it if
 * its version is still the one loaded, else read it again and retry. The
 * common case costs one encode and one replace. Returns OK, or the HTTP
 * status to answer: 413 when the change would exceed
 * SessionDemoMaxDataSize (the session is left as it was), HTTP_NOT_FOUND
 * when the session ended meanwhile, or whatever @a change returned. */
int sdemo_session_update(request_rec *r, sdemo_session *ss,
                         int (*change)(request_rec *r, sd_session_t *s,
                                       void *baton),
                         void *baton)
{
    sd_shm_t *st = sdemo_store();
    sd_session_t *cur = ss->s;
    apr_uint32_t version = ss->meta.version;
    sd_shm_params_t p;
    char *buf = NULL;
    int tries;

    sd_shm_params(st, &p);
    for (tries = 0; tries < 1000; tries++) {
        sd_session_t *next = apr_pmemdup(r->pool, cur, sizeof(*cur));
        apr_size_t elen, len;
        sd_shm_meta_t meta;
        apr_status_t rv;
        char *enc;
        int rc;

        /* A copy, so that a refused change (413) leaves the page showing
         * what is stored. */
        next->notes = apr_array_copy(r->pool, cur->notes);
        if ((rc = change(r, next, baton)) != OK)
            return rc;
        elen = sd_record_encode(r->pool, next, &enc);
        if (elen > p.max_data)
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        rv = sd_shm_replace(st, &ss->key, version, enc, elen, sdemo_now(r));
        if (rv == APR_SUCCESS) {
            ss->s = next;
            ss->meta.version = version + 1;
            return OK;
        }
        if (rv == APR_ENOSPC)
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        if (rv != APR_EAGAIN)
            return HTTP_NOT_FOUND;

        /* Another request changed it first: start again from its copy. */
        if (!buf)
            buf = apr_palloc(r->pool, p.max_data);
        rv = sd_shm_get(st, &ss->key, sdemo_now(r), buf, p.max_data, &len,
                          &meta);
        if (rv != APR_SUCCESS)
            return HTTP_NOT_FOUND;
        if (len > p.max_data ||
            sd_record_decode(r->pool, buf, len, &cur) != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "SDEMO00025: session %s holds a damaged record; "
                          "it is ended",
                          ss->prefix);
            sd_shm_delete(st, &ss->key);
            return HTTP_NOT_FOUND;
        }
        version = meta.version;
        ss->meta.expires = meta.expires;
    }
    return HTTP_SERVICE_UNAVAILABLE;
}

void sdemo_session_end(request_rec *r, sdemo_session *ss, const char *why)
{
    if (sdemo_store())
        sd_shm_delete(sdemo_store(), &ss->key);
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                  "SDEMO00023: session %s of user \"%s\" from %s ended: %s",
                  ss->prefix, sdemo_log_name(r->pool, ss->s->user),
                  r->useragent_ip, why);
    /* Forget it for the rest of this request. */
    ss->s = NULL;
    {
        request_rec *main = r->main ? r->main : r;
        sdemo_session **cached;
        if (apr_pool_userdata_get((void **)&cached, "sdemo-session",
                                  main->pool) == APR_SUCCESS && cached)
            *cached = NULL;
    }
}

/* Create a session for a login that just succeeded. Returns OK, or 503
 * when the store is full and refuses. */
int sdemo_session_start(request_rec *r, const char *user, const char *role,
                        const char *hash, sdemo_session **out)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    sd_shm_t *st = sdemo_store();
    sdemo_session *ss = apr_pcalloc(r->pool, sizeof(*ss));
    const char *ua = apr_table_get(r->headers_in, "User-Agent");
    char id[SD_ID_LEN + 1];
    char *enc;
    apr_size_t len;
    apr_status_t rv;

    if (!st)
        return HTTP_SERVICE_UNAVAILABLE;
    if (sd_id_new(id) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SDEMO00030: the system's random source failed; no "
                      "session can be created");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    ss->s = sd_session_make(r->pool, user, role);
    if (!ss->s) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SDEMO00033: the system's random source failed; no "
                      "session can be created");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    ss->s->cred_stamp = cred_stamp(hash);
    ss->s->ua_hash = sd_hash64(ua ? ua : "", ua ? strlen(ua) : 0);
    sd_id_key(id, SD_ID_LEN, &ss->key);
    sd_key_prefix(&ss->key, ss->prefix);
    len = sd_record_encode(r->pool, ss->s, &enc);
    rv = sd_shm_create(st, &ss->key, enc, len, sdemo_now(r),
                         (apr_uint32_t)d->idle, (apr_uint32_t)d->max_age);
    if (rv == APR_ENOSPC) {
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "SDEMO00031: login of user \"%s\" from %s refused: "
                      "the session store is full (SessionDemoWhenFull "
                      "refuse)",
                      sdemo_log_name(r->pool, user), r->useragent_ip);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      "SDEMO00032: could not store the new session of user "
                      "\"%s\"",
                      sdemo_log_name(r->pool, user));
        return HTTP_SERVICE_UNAVAILABLE;
    }
    ss->meta.created = ss->meta.last_access = sdemo_now(r);
    ss->meta.version = 1;
    sdemo_cookie_set(r, id);
    *out = ss;
    return OK;
}

/* Login form tokens are stateless, so anonymous visitors take no store
 * space: base64url(issue time || HMAC(secret, "login" || time)). */
#define TOKEN_MAC 18

static void token_mac(apr_int64_t t, unsigned char *tb, unsigned char *mac)
{
    unsigned char full[SD_SHA256_LEN], msg[5 + 8];
    int i;
    for (i = 0; i < 8; i++)
        tb[i] = (unsigned char)((apr_uint64_t)t >> (56 - 8 * i));
    memcpy(msg, "login", 5);
    memcpy(msg + 5, tb, 8);
    sd_hmac_sha256(g->secret, sizeof(g->secret), msg, sizeof(msg), full);
    memcpy(mac, full, TOKEN_MAC);
}

const char *sdemo_login_token(request_rec *r)
{
    unsigned char raw[8 + TOKEN_MAC];
    char *out = apr_palloc(r->pool, (sizeof(raw) * 4 + 2) / 3 + 1);
    token_mac(sdemo_now(r), raw, raw + 8);
    sd_b64url_encode(raw, sizeof(raw), out);
    return out;
}

int sdemo_login_token_ok(request_rec *r, const char *token)
{
    unsigned char raw[8 + TOKEN_MAC], mac[TOKEN_MAC], tb[8];
    char expect[(sizeof(raw) * 4 + 2) / 3 + 1];
    apr_int64_t t = 0, now = sdemo_now(r);
    const char *p;
    int i, v;
    apr_uint32_t acc = 0;
    int bits = 0, n = 0;

    if (!token || strlen(token) != sizeof(expect) - 1)
        return 0;
    /* Decode base64url by hand: apr_base64 knows only the + / alphabet. */
    for (p = token; *p; p++) {
        const char *a =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *q = strchr(a, *p);
        if (!q)
            return 0;
        v = (int)(q - a);
        acc = (acc << 6) | (apr_uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n < (int)sizeof(raw))
                raw[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (n != (int)sizeof(raw))
        return 0;
    for (i = 0; i < 8; i++)
        t = (t << 8) | raw[i];
    if (t > now + 60 || now - t > SDEMO_LOGIN_TOKEN_TTL)
        return 0;
    token_mac(t, tb, mac);
    return sd_ct_equal(mac, raw + 8, TOKEN_MAC);
}

/* Percent-encode a local path for a return= parameter. */
static const char *url_encode(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, strlen(s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (apr_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            *o++ = (char)c;
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* Where to send an anonymous visitor: the login page, returning here. */
const char *sdemo_login_redirect(request_rec *r)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    request_rec *main = r->main ? r->main : r;
    const char *here = main->unparsed_uri;
    if (!here || here[0] != '/' || strlen(here) > 2000)
        return d->login_url;
    return apr_pstrcat(r->pool, d->login_url,
                       "?return=", url_encode(r->pool, here), NULL);
}

/* ---------------------------------------------------------------------
 * Guarded areas: AuthType session-demo
 * --------------------------------------------------------------------- */

static const char *const backend_headers[] = {"X-Session-Demo-User",
                                              "X-Session-Demo-Role"};

/* Clients must never be able to pose as the module towards a backend. */
static int strip_headers(request_rec *r)
{
    apr_table_unset(r->headers_in, backend_headers[0]);
    apr_table_unset(r->headers_in, backend_headers[1]);
    return DECLINED;
}

static int check_authn(request_rec *r)
{
    const char *type = ap_auth_type(r);
    sdemo_session *ss;
    sdemo_dir_cfg *d;
    int status;

    if (!type || strcasecmp(type, SDEMO_AUTH_TYPE) != 0)
        return DECLINED;
    ss = sdemo_session_load(r, &status);
    if (status != OK)
        return status;
    sdemo_security_headers(r);
    if (!ss) {
        apr_table_setn(r->headers_out, "Location", sdemo_login_redirect(r));
        return HTTP_SEE_OTHER;
    }
    r->user = apr_pstrdup(r->pool, ss->s->user);
    r->ap_auth_type = SDEMO_AUTH_TYPE;
    d = sdemo_dconf(r);
    if (d->env) {
        apr_table_setn(r->subprocess_env, "SESSION_DEMO_USER", r->user);
        apr_table_setn(r->subprocess_env, "SESSION_DEMO_ROLE", ss->s->role);
        apr_table_setn(r->headers_in, backend_headers[0], r->user);
        apr_table_setn(r->headers_in, backend_headers[1], ss->s->role);
    }
    return OK;
}

/* ---------------------------------------------------------------------
 * Lifecycle
 * --------------------------------------------------------------------- */

static void store_log(void *baton, int level, const char *msg)
{
    server_rec *s = baton;
    ap_log_error(APLOG_MARK, level == 0 ? APLOG_WARNING : APLOG_ERR, 0, s,
                 "SDEMO00040: %s", msg);
}

/* One line per evicted session: whose it was, for admins and log
 * watchers. The client that owned it is not the one whose login caused
 * the eviction, so no address is given. */
static void store_evicted(void *baton, const sd_key_t *key, const void *head,
                          apr_size_t len)
{
    server_rec *s = baton;
    char prefix[SD_KEY_PREFIX_LEN + 1];
    apr_pool_t *p;
    const char *user;

    apr_pool_create(&p, NULL);
    user = sd_record_user(p, head, len);
    sd_key_prefix(key, prefix);
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                 "SDEMO00026: session %s of user \"%s\" evicted: the store "
                 "is full (SessionDemoWhenFull evict)",
                 prefix, user ? sdemo_log_name(p, user) : "?");
    apr_pool_destroy(p);
}

static int pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    user_files = NULL;
    return ap_mutex_register(pconf, SDEMO_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT,
                             0) == APR_SUCCESS
               ? OK
               : HTTP_INTERNAL_SERVER_ERROR;
}

/* Create the store on the first generation; on later ones keep it, or
 * move its sessions into a store of the new size. */
static apr_status_t store_setup(server_rec *s, const sdemo_srv_cfg *sc)
{
    apr_pool_t *pp = s->process->pool;
    sd_shm_params_t p;
    apr_shm_t *shm;
    sd_shm_t *st;
    const char *why;
    apr_status_t rv;
    apr_size_t size;

    p.capacity = sc->capacity;
    p.memory = sc->memory;
    p.max_data = (apr_uint32_t)sc->max_data;
    p.when_full = (sd_shm_when_full_t)sc->when_full;
    if (sd_shm_check_params(&p, &why) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "SDEMO00041: bad store settings: %s", why);
        return APR_EINVAL;
    }
    if (g->store && g->params.capacity == p.capacity &&
        g->params.memory == p.memory && g->params.max_data == p.max_data) {
        sd_shm_set_when_full(g->store, p.when_full);
        g->params.when_full = p.when_full;
        sd_shm_set_log(g->store, store_log, s);
        sd_shm_set_evict_hook(g->store, store_evicted, s);
        return APR_SUCCESS;
    }
    size = sd_shm_size(&p);
    rv = apr_shm_create(&shm, size, NULL, pp);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "SDEMO00042: cannot create %" APR_SIZE_T_FMT
                     " bytes of shared memory for the session store; "
                     "lower SessionDemoCapacity or SessionDemoMemory",
                     size);
        return rv;
    }
    rv = sd_shm_format(pp, apr_shm_baseaddr_get(shm), apr_shm_size_get(shm),
                         &p, &st);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "SDEMO00043: cannot lay out the session store");
        apr_shm_destroy(shm);
        return rv;
    }
    sd_shm_set_log(st, store_log, s);
    sd_shm_set_evict_hook(st, store_evicted, s);
    if (g->store) {
        /* A restart with a new size: the old segment is still mapped
         * here, so its sessions move over before it goes. */
        sd_shm_stats_t was, now;
        sd_shm_stats(g->store, &was);
        sd_shm_migrate(g->store, st,
                         (apr_int64_t)apr_time_sec(apr_time_now()));
        sd_shm_stats(st, &now);
        ap_log_error(APLOG_MARK,
                     now.sessions < was.sessions ? APLOG_WARNING
                                                 : APLOG_NOTICE,
                     0, s,
                     "SDEMO00044: the session store changed size; %"
                     APR_UINT64_T_FMT " of %" APR_UINT64_T_FMT " sessions "
                     "moved into the new store (the rest had ended or did "
                     "not fit)",
                     now.sessions, was.sessions);
        apr_shm_destroy(g->shm);
    }
    else if (sc->snapshot) {
        /* A fresh start: bring back what the last stop saved. The file is
         * removed once loaded, so a crash later cannot resurrect sessions
         * that were logged out after it was written. */
        apr_uint64_t n = 0;
        const char *why = NULL;
        apr_pool_t *tp;
        apr_pool_create(&tp, s->process->pool);
        rv = sd_snapshot_load(st, sc->snapshot, tp,
                              (apr_int64_t)apr_time_sec(apr_time_now()), &n,
                              &why);
        if (rv == APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                         "SDEMO00047: %" APR_UINT64_T_FMT " sessions loaded "
                         "from the snapshot %s",
                         n, sc->snapshot);
            apr_file_remove(sc->snapshot, s->process->pool);
        }
        else if (!APR_STATUS_IS_ENOENT(rv)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                         "SDEMO00048: the snapshot %s is ignored: %s; "
                         "starting with an empty store",
                         sc->snapshot, why ? why : "it cannot be read");
        }
        apr_pool_destroy(tp);
    }
    g->shm = shm;
    g->store = st;
    g->params = p;
    return APR_SUCCESS;
}

typedef struct {
    server_rec *s;
    const char *path;
    pid_t parent;
} snapshot_baton;

/* When the parent exits (a stop, not a restart: restarts keep the segment
 * itself), write the store out. Children never do. A snapshot written at
 * restarts would sit on disk while sessions log out, and a crash would
 * then bring them back. */
static apr_status_t snapshot_save(void *data)
{
    snapshot_baton *b = data;
    apr_pool_t *p;
    apr_uint64_t n = 0;
    apr_status_t rv;

    if (getpid() != b->parent || !g || !g->store ||
        ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING)
        return APR_SUCCESS;
    apr_pool_create(&p, NULL);
    rv = sd_snapshot_save(g->store, b->path, p, &n);
    if (rv != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, b->s,
                     "SDEMO00049: cannot write the snapshot %s; sessions "
                     "will not survive a stop",
                     b->path);
    else
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, b->s,
                     "SDEMO00050: %" APR_UINT64_T_FMT " sessions saved to "
                     "the snapshot %s",
                     n, b->path);
    apr_pool_destroy(p);
    return APR_SUCCESS;
}

static void warn_weak_users(server_rec *s)
{
    int i;
    if (!user_files)
        return;
    for (i = 0; i < user_files->nelts; i++) {
        const char *path = APR_ARRAY_IDX(user_files, i, const char *);
        sdemo_file *f;
        apr_hash_index_t *hi;
        int j;
        for (j = 0; j < i; j++)
            if (strcmp(path, APR_ARRAY_IDX(user_files, j, const char *)) == 0)
                break;
        if (j < i)
            continue;
        apr_thread_rwlock_wrlock(files_lock);
        f = file_get(s, path, 1, apr_time_now());
        for (hi = apr_hash_first(NULL, f->map); hi; hi = apr_hash_next(hi)) {
            const sd_user_t *u = apr_hash_this_val(hi);
            if (u->weak)
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                             "SDEMO00012: user \"%s\" in %s cannot log in: "
                             "the entry is %s; only bcrypt of cost 10 or "
                             "more is accepted. Fix: htpasswd -B -C 12 %s %s",
                             u->user, path, u->weak, path, u->user);
        }
        apr_thread_rwlock_unlock(files_lock);
    }
}

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                       server_rec *s)
{
    sdemo_srv_cfg *sc = ap_get_module_config(s->module_config,
                                             &session_demo_module);
    apr_status_t rv;
    void *data = NULL;

    /* The first pass at startup only checks the configuration. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;

    apr_pool_userdata_get(&data, SDEMO_STORE_KEY, s->process->pool);
    g = data;
    if (!g) {
        g = apr_pcalloc(s->process->pool, sizeof(*g));
        apr_generate_random_bytes(g->secret, sizeof(g->secret));
        apr_pool_userdata_set(g, SDEMO_STORE_KEY, apr_pool_cleanup_null,
                              s->process->pool);
    }

    /* Per-generation caches of user and group files. */
    apr_pool_create(&files_pool, pconf);
    files = apr_hash_make(files_pool);
    apr_thread_rwlock_create(&files_lock, pconf);
    guest_dummy = make_dummy(pconf, 12);

    if ((rv = store_setup(s, sc)) != APR_SUCCESS)
        return HTTP_INTERNAL_SERVER_ERROR;
    if (!g->throttle) {
        /* 64K counters (1.5 MB): room for far more usernames and
         * addresses than fail at once; beyond that the oldest go. */
        apr_uint32_t slots = 65536;
        rv = apr_shm_create(&g->throttle_shm, sd_throttle_size(slots), NULL,
                            s->process->pool);
        if (rv == APR_SUCCESS)
            rv = sd_throttle_format(s->process->pool,
                                    apr_shm_baseaddr_get(g->throttle_shm),
                                    apr_shm_size_get(g->throttle_shm), slots,
                                    &g->throttle);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         "SDEMO00046: cannot create the login throttle "
                         "table in shared memory");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* Mutex session-demo serialises whole-store work (moving sessions
     * between stores, snapshots). The per-session hot path uses the
     * store's own striped robust locks, which must outlive generations
     * and survive kill -9. */
    rv = ap_global_mutex_create(&g->mutex, &g->mutex_file, SDEMO_MUTEX_TYPE,
                                NULL, s, pconf, 0);
    if (rv != APR_SUCCESS)
        return HTTP_INTERNAL_SERVER_ERROR;

    if (sc->snapshot) {
        snapshot_baton *b = apr_pcalloc(pconf, sizeof(*b));
        b->s = s;
        b->path = sc->snapshot;
        b->parent = getpid();
        apr_pool_cleanup_register(pconf, b, snapshot_save,
                                  apr_pool_cleanup_null);
    }
    warn_weak_users(s);
    return OK;
}

static void child_init(apr_pool_t *p, server_rec *s)
{
    if (g && g->mutex) {
        apr_status_t rv =
            apr_global_mutex_child_init(&g->mutex, g->mutex_file, p);
        if (rv != APR_SUCCESS)
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "SDEMO00045: cannot re-attach the session-demo "
                         "mutex in this child");
    }
}

static int dispatch(request_rec *r)
{
    if (!r->handler)
        return DECLINED;
    if (strcmp(r->handler, SDEMO_HANDLER_LOGIN) == 0)
        return sdemo_login_handler(r);
    if (strcmp(r->handler, SDEMO_HANDLER_DASHBOARD) == 0)
        return sdemo_dashboard_handler(r);
    if (strcmp(r->handler, SDEMO_HANDLER_LOGOUT) == 0)
        return sdemo_logout_handler(r);
    if (strcmp(r->handler, SDEMO_HANDLER_STATUS) == 0)
        return sdemo_status_handler(r);
    return DECLINED;
}

static void register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_read_request(strip_headers, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_check_authn(check_authn, NULL, NULL, APR_HOOK_MIDDLE,
                        AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_handler(dispatch, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, sdemo_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA session_demo_module = {
    STANDARD20_MODULE_STUFF,
    create_dir_cfg,
    merge_dir_cfg,
    create_srv_cfg,
    NULL,
    sdemo_cmds,
    register_hooks,
    AP_MODULE_FLAG_NONE
};
