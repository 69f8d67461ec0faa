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
    sd_redis_config_init(&c->redis);
    /* Short, so that an outage answers 503 quickly rather than tying up
     * workers: a healthy Redis on the same network answers in well under
     * a millisecond. */
    c->redis.connect_timeout = apr_time_from_msec(500);
    c->redis.command_timeout = apr_time_from_msec(500);
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

/* A whole number from @a min to @a max; the message names the directive
 * and says what the number counts (@a what). */
static const char *parse_int(cmd_parms *cmd, const char *arg, apr_int64_t min,
                             apr_int64_t max, const char *what,
                             apr_int64_t *out)
{
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);
    if (!apr_isdigit(*arg) || *end || v < min || v > max)
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a number of %s between %"
                            APR_INT64_T_FMT " and %" APR_INT64_T_FMT,
                            cmd->directive->directive, arg, what, min, max);
    *out = v;
    return NULL;
}

static const char *parse_seconds(cmd_parms *cmd, const char *arg,
                                 apr_int64_t *out)
{
    return parse_int(cmd, arg, 1, 31536000, "seconds", out);
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
    const char *err = global_only(cmd), *why = NULL;
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
    if (strncmp(arg, "redis", 5) == 0 && strchr(arg, ':')) {
        if (sd_redis_parse_address(cmd->pool, arg, &sc->redis, &why) !=
            APR_SUCCESS)
            return apr_psprintf(cmd->pool, "SessionDemoStore: '%s': %s", arg,
                                why);
        sc->store = arg[5] == ':' ? SDEMO_STORE_REDIS : SDEMO_STORE_SENTINEL;
        sc->store_arg = arg;
        return NULL;
    }
    return apr_psprintf(cmd->pool,
                        "SessionDemoStore: '%s' is not a store; use 'shm', "
                        "'redis:HOST:PORT' or "
                        "'redis-sentinel:MASTER@HOST:PORT[,HOST:PORT...]' "
                        "(or, for tests, 'fault:PATH')",
                        arg);
}

static const char *set_redis_db(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd);
    apr_int64_t v;
    if (!err)
        err = parse_int(cmd, arg, 0, 1023, "a database", &v);
    if (!err)
        sconf(cmd)->redis.db = (int)v;
    return err;
}

static const char *set_redis_prefix(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd), *p;
    if (err)
        return err;
    for (p = arg; *p; p++)
        if (*p <= ' ' || *p >= 0x7f)
            break;
    if (*p || strlen(arg) > 64)
        return apr_psprintf(cmd->pool,
                            "SessionDemoRedisPrefix: '%s' is not a key prefix "
                            "(at most 64 printable characters, no spaces)",
                            arg);
    sconf(cmd)->redis.prefix = arg;
    return NULL;
}

/* Milliseconds, 1 to 60000. */
static const char *set_redis_ms(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd);
    apr_int64_t v;
    if (!err)
        err = parse_int(cmd, arg, 1, 60000, "milliseconds", &v);
    if (err)
        return err;
    if (((const char *)cmd->info)[0] == 'c')
        sconf(cmd)->redis.connect_timeout = apr_time_from_msec(v);
    else
        sconf(cmd)->redis.command_timeout = apr_time_from_msec(v);
    return NULL;
}

static const char *set_redis_wait(cmd_parms *cmd, void *dc, const char *n,
                                  const char *ms)
{
    const char *err = global_only(cmd);
    sdemo_srv_cfg *sc = sconf(cmd);
    char *end;
    apr_int64_t v, w = 100;
    if (err)
        return err;
    v = apr_strtoi64(n, &end, 10);
    if (!apr_isdigit(*n) || *end || v < 0 || v > 16)
        return apr_psprintf(cmd->pool,
                            "SessionDemoRedisWait: '%s' is not a number of "
                            "replicas between 0 (off) and 16",
                            n);
    if (ms) {
        w = apr_strtoi64(ms, &end, 10);
        if (!apr_isdigit(*ms) || *end || w < 1 || w > 10000)
            return apr_psprintf(cmd->pool,
                                "SessionDemoRedisWait: '%s' is not a number "
                                "of milliseconds between 1 and 10000",
                                ms);
    }
    sc->redis.wait_replicas = (int)v;
    sc->redis.wait_ms = (apr_uint32_t)w;
    sc->wait_set = 1;
    return NULL;
}

/* Paths of files that hold secrets, resolved against ServerRoot. */
static const char *set_srv_path(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd);
    sdemo_srv_cfg *sc = sconf(cmd);
    const char *path = ap_server_root_relative(cmd->pool, arg);
    if (err)
        return err;
    if (!path)
        return apr_psprintf(cmd->pool, "%s: bad path '%s'",
                            cmd->directive->directive, arg);
    switch (((const char *)cmd->info)[0]) {
    case 'r': sc->redis_password_file = path; break;
    case 's': sc->sentinel_password_file = path; break;
    default: sc->secret_file = path; break;
    }
    return NULL;
}

static const char *set_srv_string(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd);
    if (err)
        return err;
    if (((const char *)cmd->info)[0] == 'r')
        sconf(cmd)->redis.user = arg;
    else
        sconf(cmd)->redis.sentinel_user = arg;
    return NULL;
}

static const char *set_per_user(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd);
    apr_int64_t v;
    if (!err)
        err = parse_int(cmd, arg, 0, 100000, "sessions (0: no limit)", &v);
    if (!err)
        sconf(cmd)->max_per_user = (int)v;
    return err;
}

static const char *set_capacity(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = global_only(cmd);
    apr_int64_t v;
    if (!err)
        err = parse_int(cmd, arg, 1, 10000000, "sessions", &v);
    if (!err)
        sconf(cmd)->capacity = (apr_uint64_t)v;
    return err;
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
                  "Where sessions live: shm (default), redis:HOST:PORT or "
                  "redis-sentinel:MASTER@HOST:PORT[,HOST:PORT...]"),
    AP_INIT_TAKE1("SessionDemoSecretFile", set_srv_path, "k", RSRC_CONF,
                  "File with the key that signs login forms and device "
                  "cookies; the same file on every server sharing a Redis "
                  "(default: a random key per start)"),
    AP_INIT_TAKE1("SessionDemoRedisPasswordFile", set_srv_path, "r",
                  RSRC_CONF,
                  "File holding the Redis AUTH password (default none)"),
    AP_INIT_TAKE1("SessionDemoRedisUser", set_srv_string, "r", RSRC_CONF,
                  "Redis ACL user for AUTH (default none: password only)"),
    AP_INIT_TAKE1("SessionDemoRedisDatabase", set_redis_db, NULL, RSRC_CONF,
                  "Redis database number, 0-1023 (default 0)"),
    AP_INIT_TAKE1("SessionDemoRedisPrefix", set_redis_prefix, NULL,
                  RSRC_CONF,
                  "Start of every Redis key, so sites can share a Redis "
                  "(default sdemo:)"),
    AP_INIT_TAKE1("SessionDemoRedisConnectTimeout", set_redis_ms, "c",
                  RSRC_CONF,
                  "Milliseconds to connect to Redis (default 500)"),
    AP_INIT_TAKE1("SessionDemoRedisTimeout", set_redis_ms, "t", RSRC_CONF,
                  "Milliseconds for one Redis command (default 500)"),
    AP_INIT_TAKE12("SessionDemoRedisWait", set_redis_wait, NULL, RSRC_CONF,
                   "Replicas that must acknowledge logins and logouts, and "
                   "milliseconds to wait (default: 1 100 with Sentinel, 0 "
                   "with one Redis)"),
    AP_INIT_TAKE1("SessionDemoSentinelPasswordFile", set_srv_path, "s",
                  RSRC_CONF,
                  "File holding the Sentinels' AUTH password (default "
                  "none)"),
    AP_INIT_TAKE1("SessionDemoSentinelUser", set_srv_string, "s", RSRC_CONF,
                  "Sentinel ACL user for AUTH (default none)"),
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

/* `Mutex session-demo` stays a known mutex type so that configurations
 * that set it keep working, but nothing takes it any more: the per-session
 * locks are robust mutexes inside the segment (they must outlive
 * configuration generations and survive kill -9), and a user's sessions
 * are listed and ended under one stripe lock, without a whole-store
 * scan. */
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

    if (sc->store == SDEMO_STORE_REDIS || sc->store == SDEMO_STORE_SENTINEL) {
        if (sc->snapshot) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                         "SDEMO00053: SessionDemoSnapshot does not apply to "
                         "SessionDemoStore %s: the sessions live in Redis "
                         "and outlive every restart, stop and start of "
                         "httpd; remove SessionDemoSnapshot",
                         sc->store_arg);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        sc->redis.max_data = (apr_uint32_t)sc->max_data;
        if (!sc->wait_set)
            sc->redis.wait_replicas = sc->store == SDEMO_STORE_SENTINEL;
        {
            /* The secret is read at start; a stand-in lets the check
             * look at everything else. */
            static const unsigned char none[SD_REDIS_SECRET_LEN];
            sd_redis_config_t c = sc->redis;
            c.secret = none;
            if (sd_redis_config_check(&c, &why) != APR_SUCCESS) {
                ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                             "SDEMO00054: SessionDemoStore %s cannot be "
                             "used: %s",
                             sc->store_arg, why);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
        return OK;
    }
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
    const char *why = NULL;
    apr_status_t rv;

    if (getpid() != b->parent || !g || !g->shm ||
        ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING)
        return APR_SUCCESS;
    apr_pool_create(&p, NULL);
    rv = sd_store_shm_save(g->shm, b->path, p, &n, &why);
    if (rv != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, b->s,
                     "SDEMO00049: cannot write the snapshot %s%s%s; sessions "
                     "will not survive a stop",
                     b->path, why ? ": " : "", why ? why : "");
    else
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, b->s,
                     "SDEMO00050: %" APR_UINT64_T_FMT " sessions saved to "
                     "the snapshot %s",
                     n, b->path);
    apr_pool_destroy(p);
    return APR_SUCCESS;
}

/* The first line of @a path, which holds a password: read at start, as
 * root, so the secret is neither in httpd.conf nor readable by the
 * children's user. */
static const char *read_password(apr_pool_t *p, server_rec *s,
                                 const char *directive, const char *path)
{
    apr_file_t *f;
    char buf[1024];
    apr_size_t n = sizeof(buf) - 1;
    apr_status_t rv;

    rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, p);
    if (rv == APR_SUCCESS) {
        rv = apr_file_read(f, buf, &n);
        apr_file_close(f);
    }
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EOF(rv)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "SDEMO00055: %s %s cannot be read; it must hold the "
                     "password on its first line",
                     directive, path);
        return NULL;
    }
    buf[rv == APR_SUCCESS ? n : 0] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!*buf) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "SDEMO00056: %s %s is empty; put the password on its "
                     "first line",
                     directive, path);
        return NULL;
    }
    return apr_pstrdup(p, buf);
}

/* SessionDemoSecretFile: the key is SHA-256 of the file's contents, so
 * any passphrase of 32 characters or more will do. A missing file is made
 * with 32 random bytes (as base64url text), readable by root only; copy it
 * to every server that shares a Redis. */
static int read_secret(apr_pool_t *p, server_rec *s, const char *path,
                       unsigned char out[32])
{
    apr_file_t *f;
    apr_finfo_t fi;
    char buf[4096];
    apr_size_t n = sizeof(buf);
    apr_status_t rv;

    rv = apr_file_open(&f, path,
                       APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    if (rv == APR_SUCCESS) {
        unsigned char rnd[32];
        char text[44];
        if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS) {
            apr_file_close(f);
            apr_file_remove(path, p);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        sd_b64url_encode(rnd, sizeof(rnd), text);
        apr_file_printf(f, "%s\n", text);
        apr_file_close(f);
        sd_wipe(rnd, sizeof(rnd));
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     "SDEMO00057: made a new SessionDemoSecretFile %s; "
                     "servers that share sessions need the same file",
                     path);
    }
    rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, p);
    if (rv == APR_SUCCESS)
        rv = apr_file_info_get(&fi, APR_FINFO_TYPE | APR_FINFO_PROT, f);
    if (rv == APR_SUCCESS &&
        (fi.filetype != APR_REG ||
         (fi.protection & (APR_FPROT_GREAD | APR_FPROT_WREAD)))) {
        apr_file_close(f);
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "SDEMO00058: SessionDemoSecretFile %s must be a regular "
                     "file that only its owner can read (chmod 600)",
                     path);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_read(f, buf, &n);
        apr_file_close(f);
    }
    if (rv != APR_SUCCESS || n < 32) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "SDEMO00059: SessionDemoSecretFile %s cannot be read or "
                     "holds fewer than 32 bytes",
                     path);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    sd_sha256(buf, n, out);
    sd_wipe(buf, sizeof(buf));
    return OK;
}

static int redis_setup(apr_pool_t *pconf, server_rec *s, sdemo_srv_cfg *sc)
{
    sd_redis_config_t c = sc->redis;
    apr_status_t rv;

    if (sc->redis_password_file &&
        !(c.password = read_password(pconf, s, "SessionDemoRedisPasswordFile",
                                     sc->redis_password_file)))
        return HTTP_INTERNAL_SERVER_ERROR;
    if (sc->sentinel_password_file &&
        !(c.sentinel_password = read_password(
              pconf, s, "SessionDemoSentinelPasswordFile",
              sc->sentinel_password_file)))
        return HTTP_INTERNAL_SERVER_ERROR;
    c.max_data = (apr_uint32_t)sc->max_data;
    {
        /* One idle connection kept per worker thread: fewer, and busy
         * threads would open (and AUTH) a new connection on a third of
         * their requests. */
        int threads = 0;
        ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
        c.pool_size = threads > 1 ? (threads > 1024 ? 1024 : threads) : 1;
    }
    /* The throttle keys in Redis are HMACs under the shared secret, so
     * every server counts the same name under the same key. */
    c.secret = g->secret;
    rv = sd_store_redis_open(pconf, &c, store_log, s, &g->store);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "SDEMO00064: SessionDemoStore %s cannot be used",
                     sc->store_arg);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!sc->secret_file)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     "SDEMO00063: SessionDemoStore %s without "
                     "SessionDemoSecretFile: login forms and device cookies "
                     "of this server are valid on this server only; give "
                     "every server the same SessionDemoSecretFile",
                     sc->store_arg);
    return OK;
}

/* Open this generation's store: the shared-memory one keeps the last
 * generation's segments when the settings allow, so sessions survive
 * restarts; Redis keeps them anyway. */
static int store_setup(apr_pool_t *pconf, server_rec *s, sdemo_srv_cfg *sc)
{
    apr_pool_t *pp = s->process->pool;
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    sd_store_shm_config_t shm;
    const char *why = NULL;
    apr_status_t rv;

    if (sc->store == SDEMO_STORE_REDIS || sc->store == SDEMO_STORE_SENTINEL)
        return redis_setup(pconf, s, sc);
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
    if (sc->secret_file &&
        (rc = read_secret(pconf, s, sc->secret_file, g->secret)) != OK)
        return rc;
    if ((rc = store_setup(pconf, s, sc)) != OK)
        return rc;

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
