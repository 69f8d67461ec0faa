/*
 * What the parts of the httpd glue share: configuration records, the
 * per-process state, and the helpers the page handlers use.
 *
 * The glue translates between request_rec and the plain-C core in src/;
 * anything that can be tested without httpd belongs in the core instead.
 */
#ifndef SDEMO_PRIVATE_H
#define SDEMO_PRIVATE_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_request.h"
#include "apr_global_mutex.h"
#include "apr_hash.h"

#include "sd_shm.h"
#include "sd_record.h"
#include "sd_passwd.h"
#include "sd_throttle.h"

APLOG_USE_MODULE(session_demo);

#define SDEMO_UNSET (-1)
#define SDEMO_HANDLER_LOGIN "session-demo-login"
#define SDEMO_HANDLER_DASHBOARD "session-demo-dashboard"
#define SDEMO_HANDLER_LOGOUT "session-demo-logout"
#define SDEMO_HANDLER_STATUS "session-demo-status"
#define SDEMO_AUTH_TYPE "session-demo"
#define SDEMO_FORM_MAX 8192           /* largest login or note form body */
#define SDEMO_LOGIN_TOKEN_TTL 7200    /* seconds a login form stays valid */

/* Server-wide settings: one store serves every virtual host, so these are
 * read from the main server only. */
typedef struct {
    const char *store_spec;           /* "shm" or "socache:..." */
    apr_uint64_t capacity;            /* SessionDemoCapacity */
    apr_uint64_t memory;              /* SessionDemoMemory */
    apr_uint64_t max_data;            /* SessionDemoMaxDataSize */
    int when_full;                    /* SessionDemoWhenFull, or UNSET */
    const char *snapshot;             /* SessionDemoSnapshot, or NULL */
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

/* A session as one request sees it. */
typedef struct {
    sd_key_t key;                     /* store key (hash of the ID) */
    char prefix[SD_KEY_PREFIX_LEN + 1]; /* log-safe short form of the key */
    sd_session_t *s;                  /* decoded record */
    sd_shm_meta_t meta;                   /* times and version */
} sdemo_session;

/* mod_session_demo.c */
sdemo_dir_cfg *sdemo_dconf(request_rec *r);
sd_shm_t *sdemo_store(void);
sd_throttle_t *sdemo_throttle(void);
apr_uint64_t sdemo_delete_if(request_rec *r, sd_shm_match_fn match,
                             void *baton);
const char *sdemo_store_kind(void);
apr_int64_t sdemo_now(request_rec *r);
const char *sdemo_log_name(apr_pool_t *p, const char *name);
int sdemo_is_tls(request_rec *r);
const char *sdemo_cookie_name(request_rec *r, const sdemo_dir_cfg *d);
sdemo_session *sdemo_session_load(request_rec *r, int *status);
int sdemo_session_update(request_rec *r, sdemo_session *ss,
                         int (*change)(request_rec *r, sd_session_t *s,
                                       void *baton),
                         void *baton);
void sdemo_session_end(request_rec *r, sdemo_session *ss, const char *why);
int sdemo_session_start(request_rec *r, const char *user, const char *role,
                        const char *hash, sdemo_session **out);
void sdemo_cookie_set(request_rec *r, const char *id);
void sdemo_cookie_clear(request_rec *r);
const char *sdemo_login_token(request_rec *r);
int sdemo_login_token_ok(request_rec *r, const char *token);
int sdemo_check_credentials(request_rec *r, const char *user,
                            const char *password, const char **role,
                            const char **hash);
const char *sdemo_login_redirect(request_rec *r);

/* sdemo_pages.c */
int sdemo_login_handler(request_rec *r);
int sdemo_dashboard_handler(request_rec *r);
int sdemo_logout_handler(request_rec *r);
int sdemo_status_handler(request_rec *r);
int sdemo_status_hook(request_rec *r, int flags);
void sdemo_security_headers(request_rec *r);

#endif
