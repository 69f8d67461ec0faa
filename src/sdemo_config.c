/*
 * Configuration and process state (see sdemo_config.h): the directives,
 * their records and merge rules, and what one httpd process keeps between
 * requests.
 *
 * The store and the token secret hang off httpd's process pool, not pconf:
 * the parent keeps them from one configuration generation to the next, so
 * restarts keep every session and every login form still valid.
 */

#include "http_core.h"
#include "http_protocol.h"
#include "util_mutex.h"
#include "ap_mpm.h"
#include "apr_lib.h"
#include "apr_strings.h"

#include <unistd.h>

#include "sdemo_config.h"
#include "sd_cookie.h"
#include "sd_passwd.h"
#include "sd_record.h"
#include "sd_sha256.h"
#include "sd_store_fault.h"
#include "sd_store_shm.h"
#include "sd_utf8.h"

/* The one thing of ours kept in httpd's process pool from one generation
 * to the next: 32 bytes of secret, under a key that names the format, so
 * a newer build of the module never reads a struct of an older one. */
#define SDEMO_SECRET_KEY "sdemo-secret-v1"

/* ---------------------------------------------------------------------
 * Process state
 * --------------------------------------------------------------------- */

typedef struct {
    sd_store_t *store;                /* this generation's store */
    sd_store_t *shm;                  /* the shm store under it, if any */
    unsigned char *secret;            /* 32 bytes: HMAC key for tokens */
    apr_global_mutex_t *mutex;        /* Mutex session-demo */
    const char *mutex_file;           /* its lock file, if any */
} sdemo_state;

static sdemo_state *g;
static apr_array_header_t *user_files;  /* paths named in the config */

sd_store_t *sdemo_store(void)
{
    return g ? g->store : NULL;
}

const unsigned char *sdemo_secret(void)
{
    return g->secret;
}

apr_array_header_t *sdemo_user_files(void)
{
    return user_files;
}

/* ---------------------------------------------------------------------
 * Configuration records
 * --------------------------------------------------------------------- */

void *sdemo_create_srv_cfg(apr_pool_t *p, server_rec *s)
{
    sdemo_srv_cfg *c = apr_pcalloc(p, sizeof(*c));
    c->store = SDEMO_STORE_SHM;
    c->max_per_user = 10;
    c->capacity = 10000;
    c->memory = 64 * 1024 * 1024;
    c->max_data = 16 * 1024;
    c->when_full = SD_SHM_FULL_EVICT;
    return c;
}

void *sdemo_create_dir_cfg(apr_pool_t *p, char *dir)
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

void *sdemo_merge_dir_cfg(apr_pool_t *p, void *basev, void *addv)
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

sdemo_srv_cfg *sdemo_sconf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &session_demo_module);
}

static const char *set_store(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd);
    sdemo_srv_cfg *sc = sconf(cmd);
    if (err)
        return err;
    if (strcmp(arg, "shm") == 0) {
        sc->store = SDEMO_STORE_SHM;
        return NULL;
    }
    if (strncmp(arg, "fault:", 6) == 0 && arg[6]) {
        sc->store = SDEMO_STORE_FAULT;
        sc->store_arg = ap_server_root_relative(cmd->pool, arg + 6);
        return NULL;
    }
    return apr_psprintf(cmd->pool,
                        "SessionDemoStore: '%s' is not a store; use 'shm' "
                        "(or, for tests, 'fault:PATH')",
                        arg);
}

static const char *set_per_user(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd);
    char *end;
    apr_int64_t v;
    if (err)
        return err;
    v = apr_strtoi64(arg, &end, 10);
    if (!apr_isdigit(*arg) || *end || v < 0 || v > 100000)
        return apr_psprintf(cmd->pool,
                            "SessionDemoMaxSessionsPerUser: '%s' is not a "
                            "number between 0 (no limit) and 100000",
                            arg);
    sconf(cmd)->max_per_user = (int)v;
    return NULL;
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

#define DIRCTX (RSRC_CONF | ACCESS_CONF)

const command_rec sdemo_cmds[] = {
    AP_INIT_TAKE1("SessionDemoStore", set_store, NULL, RSRC_CONF,
                  "Where sessions live: shm (default)"),
    AP_INIT_TAKE1("SessionDemoMaxSessionsPerUser", set_per_user, NULL,
                  RSRC_CONF,
                  "Most sessions of one user; a new login ends their least "
                  "recently used one (default 10; 0 = no limit)"),
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
    AP_INIT_TAKE1("SessionDemoGroupFile", ap_set_file_slot,
                  (void *)APR_OFFSETOF(sdemo_dir_cfg, group_file), DIRCTX,
                  "htgroup file giving each user a role (default none)"),
    AP_INIT_TAKE1("SessionDemoGuestPassword", set_guest, NULL, DIRCTX,
                  "Demo mode: any username logs in with this password "
                  "(default off)"),
    AP_INIT_TAKE2("SessionDemoLoginThrottle", set_throttle, NULL, DIRCTX,
                  "Failed logins allowed per username and window in seconds "
                  "(default 5 900)"),
    AP_INIT_FLAG("SessionDemoBindUserAgent", ap_set_flag_slot,
                 (void *)APR_OFFSETOF(sdemo_dir_cfg, bind_ua), DIRCTX,
                 "End a session presented with another User-Agent "
                 "(default Off)"),
    AP_INIT_TAKE1("SessionDemoLoginURL", set_url, "l", DIRCTX,
                  "Path of the login page (default /login)"),
    AP_INIT_TAKE1("SessionDemoDashboardURL", set_url, "d", DIRCTX,
                  "Path of the dashboard (default /dashboard)"),
    AP_INIT_TAKE1("SessionDemoLogoutURL", set_url, "o", DIRCTX,
                  "Path of the logout page (default /logout)"),
    AP_INIT_FLAG("SessionDemoEnv", ap_set_flag_slot,
                 (void *)APR_OFFSETOF(sdemo_dir_cfg, env), DIRCTX,
                 "Pass the user and role to backends in guarded areas "
                 "(default Off)"),
    {NULL}};

/* ---------------------------------------------------------------------
 * Lifecycle
 * --------------------------------------------------------------------- */

int sdemo_state_pre_config(apr_pool_t *pconf)
{
    user_files = NULL;
    return ap_mutex_register(pconf, SDEMO_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT,
                             0) == APR_SUCCESS
               ? OK
               : HTTP_INTERNAL_SERVER_ERROR;
}

/* At every start and at configtest (httpd -t), before anything is made:
 * refuse settings the store cannot honour, naming the directives, so that
 * `apachectl configtest` catches them rather than a failed start. */
int sdemo_check_config(apr_pool_t *pconf, server_rec *s)
{
    sdemo_srv_cfg *sc = sdemo_sconf(s);
    sd_shm_params_t p;
    const char *why = NULL;

    p.capacity = sc->capacity;
    p.memory = sc->memory;
    p.max_data = (apr_uint32_t)sc->max_data;
    p.when_full = (sd_shm_when_full_t)sc->when_full;
    if (sd_shm_check_params(&p, &why) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                     "SDEMO00052: the session store cannot be set up with "
                     "these settings: %s",
                     why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* What a store reports goes to the main server's error log; its message
 * carries its own tag. */
static void store_log(void *baton, sd_log_level_t level, const char *msg)
{
    static const int lv[] = {APLOG_ERR, APLOG_WARNING, APLOG_NOTICE,
                             APLOG_INFO};
    ap_log_error(APLOG_MARK, lv[level], 0, (server_rec *)baton, "%s", msg);
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

    if (getpid() != b->parent || !g || !g->shm ||
        ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING)
        return APR_SUCCESS;
    apr_pool_create(&p, NULL);
    rv = sd_store_shm_save(g->shm, b->path, p, &n);
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

/* Open this generation's store: keep the last generation's when the
 * settings allow, so sessions survive restarts. */
static int store_setup(apr_pool_t *pconf, server_rec *s,
                       const sdemo_srv_cfg *sc)
{
    apr_pool_t *pp = s->process->pool;
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    sd_store_shm_config_t shm;
    const char *why = NULL;
    apr_status_t rv;

    shm.params.capacity = sc->capacity;
    shm.params.memory = sc->memory;
    shm.params.max_data = (apr_uint32_t)sc->max_data;
    shm.params.when_full = (sd_shm_when_full_t)sc->when_full;
    shm.snapshot = sc->snapshot;
    /* 64K counters: room for far more usernames and addresses than fail
     * at once (see sd_throttle.c for what a flood can do). */
    shm.throttle_slots = 65536;
    rv = sd_store_shm_open(pp, pconf, &shm, store_log, s, now, &g->shm,
                           &why);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "SDEMO00041: the session store cannot start: %s",
                     why ? why : "unknown error");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    g->store = g->shm;
    if (sc->store == SDEMO_STORE_FAULT)
        sd_store_fault_open(pconf, g->shm, sc->store_arg, &g->store);
    return OK;
}

int sdemo_state_post_config(apr_pool_t *pconf, server_rec *s)
{
    sdemo_srv_cfg *sc = sdemo_sconf(s);
    void *data = NULL;
    apr_status_t rv;
    int rc;

    g = apr_pcalloc(pconf, sizeof(*g));
    apr_pool_userdata_get(&data, SDEMO_SECRET_KEY, s->process->pool);
    g->secret = data;
    if (!g->secret) {
        g->secret = apr_pcalloc(s->process->pool, 32);
        rv = apr_generate_random_bytes(g->secret, 32);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         "SDEMO00051: the system's random source failed; "
                         "the module cannot make its secret key");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        apr_pool_userdata_set(g->secret, SDEMO_SECRET_KEY,
                              apr_pool_cleanup_null, s->process->pool);
    }
    if ((rc = store_setup(pconf, s, sc)) != OK)
        return rc;

    /* Mutex session-demo serialises whole-store scans (log out
     * everywhere, listing a user's sessions in shm). The per-session hot
     * path uses the store's own striped robust locks, which must outlive
     * generations and survive kill -9. */
    rv = ap_global_mutex_create(&g->mutex, &g->mutex_file, SDEMO_MUTEX_TYPE,
                                NULL, s, pconf, 0);
    if (rv != APR_SUCCESS)
        return HTTP_INTERNAL_SERVER_ERROR;
    sd_store_shm_set_scan_lock(g->shm, g->mutex);

    if (sc->snapshot) {
        snapshot_baton *b = apr_pcalloc(pconf, sizeof(*b));
        b->s = s;
        b->path = sc->snapshot;
        b->parent = getpid();
        apr_pool_cleanup_register(pconf, b, snapshot_save,
                                  apr_pool_cleanup_null);
    }
    return OK;
}

void sdemo_state_child_init(apr_pool_t *p, server_rec *s)
{
    if (g && g->mutex) {
        apr_status_t rv =
            apr_global_mutex_child_init(&g->mutex, g->mutex_file, p);
        if (rv != APR_SUCCESS)
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "SDEMO00045: cannot re-attach the session-demo "
                         "mutex in this child");
        else if (g->shm)
            sd_store_shm_set_scan_lock(g->shm, g->mutex);
    }
}

/* ---------------------------------------------------------------------
 * Request helpers
 * --------------------------------------------------------------------- */

apr_int64_t sdemo_now(request_rec *r)
{
    return (apr_int64_t)apr_time_sec(r->request_time);
}

int sdemo_is_tls(request_rec *r)
{
    return strcmp(ap_http_scheme(r), "https") == 0;
}

const char *sdemo_log_name(apr_pool_t *p, const char *name)
{
    return sd_log_name(p, name);
}
