/*
 * Configuration and process state: the lowest layer of the httpd glue.
 *
 * The directives and their records (server-wide and per directory), the
 * effective settings of a request, and what one httpd process keeps
 * between requests: the session store, the secret that signs tokens, and
 * the Mutex session-demo. Everything above (users, session lifecycle,
 * pages, the module's hooks) reads its settings and the store from here.
 *
 * Layers of the glue, each including only those below it:
 *   mod_session_demo.c (module record, hooks, dispatch)
 *   -> sdemo_pages    (what each page shows and answers)
 *   -> sdemo_session  (cookies, load/update/start/end, login policy, tokens)
 *   -> sdemo_users    (user and group files, credentials)
 *   -> sdemo_config   (this file)
 *   -> the plain-C core, src/sd_*.h (no httpd headers)
 */
#ifndef SDEMO_CONFIG_H
#define SDEMO_CONFIG_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_global_mutex.h"

#include "sd_shm.h"
#include "sd_store.h"
#include "sd_store_redis.h"
#include "sd_utf8.h" /* sd_log_name(): usernames as log lines show them */

APLOG_USE_MODULE(session_demo);

extern module AP_MODULE_DECLARE_DATA session_demo_module;

#define SDEMO_UNSET (-1)
#define SDEMO_HANDLER_LOGIN "session-demo-login"
#define SDEMO_HANDLER_DASHBOARD "session-demo-dashboard"
#define SDEMO_HANDLER_LOGOUT "session-demo-logout"
#define SDEMO_HANDLER_STATUS "session-demo-status"
#define SDEMO_AUTH_TYPE "session-demo"
#define SDEMO_MUTEX_TYPE "session-demo"
#define SDEMO_FORM_MAX 8192           /* largest login or note form body */
#define SDEMO_LOGIN_TOKEN_TTL 7200    /* seconds a login form stays valid */

typedef enum {
    SDEMO_STORE_SHM,                  /* shared memory in this httpd */
    SDEMO_STORE_FAULT,                /* shm that fails on demand (tests) */
    SDEMO_STORE_REDIS,                /* one Redis */
    SDEMO_STORE_SENTINEL              /* the master that Sentinels name */
} sdemo_store_kind_t;

/* Server-wide settings: one store serves every virtual host, so these are
 * read from the main server only. */
typedef struct {
    sdemo_store_kind_t store;         /* SessionDemoStore */
    const char *store_arg;            /* its argument after "kind:" */
    apr_uint64_t capacity;            /* SessionDemoCapacity */
    apr_uint64_t memory;              /* SessionDemoMemory */
    apr_uint64_t max_data;            /* SessionDemoMaxDataSize */
    int when_full;                    /* SessionDemoWhenFull */
    const char *snapshot;             /* SessionDemoSnapshot, or NULL */
    int max_per_user;                 /* SessionDemoMaxSessionsPerUser */
    const char *secret_file;          /* SessionDemoSecretFile, or NULL */
    sd_redis_config_t redis;          /* SessionDemoStore redis..., and
                                       * SessionDemoRedis* */
    const char *redis_password_file;  /* SessionDemoRedisPasswordFile */
    const char *sentinel_password_file; /* SessionDemoSentinelPasswordFile */
    int wait_set;                     /* SessionDemoRedisWait was given */
} sdemo_srv_cfg;

typedef enum { SDEMO_SECURE_AUTO, SDEMO_SECURE_ON, SDEMO_SECURE_OFF }
    sdemo_secure_t;

/* Per virtual host and directory; every field has "unset" so that merging
 * takes the innermost setting. */
typedef struct {
    const char *cookie_name;          /* SessionDemoCookieName */
    const char *samesite;             /* SessionDemoCookieSameSite */
    int secure;                       /* sdemo_secure_t or UNSET */
    apr_int64_t idle;                 /* SessionDemoIdleTimeout, seconds */
    apr_int64_t max_age;              /* SessionDemoMaxAge, seconds */
    const char *user_file;            /* SessionDemoUserFile */
    const char *group_file;           /* SessionDemoGroupFile */
    const char *guest_password;       /* SessionDemoGuestPassword */
    apr_uint64_t guest_stamp;         /* its cred_stamp, precomputed */
    int throttle_n;                   /* SessionDemoLoginThrottle N */
    int throttle_window;              /* ... SECONDS */
    int bind_ua;                      /* SessionDemoBindUserAgent */
    const char *login_url;            /* SessionDemoLoginURL */
    const char *dashboard_url;        /* SessionDemoDashboardURL */
    const char *logout_url;           /* SessionDemoLogoutURL */
    int env;                          /* SessionDemoEnv */
} sdemo_dir_cfg;

/* The command table and the record functions, for the module record. */
extern const command_rec sdemo_cmds[];
void *sdemo_create_srv_cfg(apr_pool_t *p, server_rec *s);
void *sdemo_create_dir_cfg(apr_pool_t *p, char *dir);
void *sdemo_merge_dir_cfg(apr_pool_t *p, void *basev, void *addv);

/** The effective per-directory settings of @a r, defaults filled in
 *  (computed once per request). */
sdemo_dir_cfg *sdemo_dconf(request_rec *r);

/** The server-wide settings (from the main server). */
sdemo_srv_cfg *sdemo_sconf(server_rec *s);

/** Every SessionDemoUserFile named in the configuration (const char *). */
apr_array_header_t *sdemo_user_files(void);

/* ---- process state ---------------------------------------------------- */

/** The store of this generation, or NULL before post_config. */
sd_store_t *sdemo_store(void);

/** 32 random bytes, made once per server start, kept across restarts:
 *  the key of login tokens and device cookies. */
const unsigned char *sdemo_secret(void);

/** Lifecycle, called by the module's hooks. */
int sdemo_state_pre_config(apr_pool_t *pconf);
int sdemo_check_config(apr_pool_t *pconf, server_rec *s);
int sdemo_state_post_config(apr_pool_t *pconf, server_rec *s);

/* ---- small request helpers ------------------------------------------- */

/** The request's time in whole seconds: every expiry decision of one
 *  request uses the same "now". */
apr_int64_t sdemo_now(request_rec *r);

/** Whether @a r came over TLS. */
int sdemo_is_tls(request_rec *r);

#endif
