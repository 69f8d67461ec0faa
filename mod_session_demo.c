/*
 * mod_session_demo: server-side sessions for Apache httpd 2.4.
 *
 * The browser holds only a random 256-bit ID in a cookie; the session's
 * data (user, role, times, visits, notes) lives on the server, in a store
 * that every process and thread of the server sees: shared memory inside
 * httpd, which survives graceful and plain restarts, or Redis shared by
 * several servers. The module serves the demo's pages (login, dashboard,
 * logout, status) and guards any URL space with AuthType session-demo.
 *
 * This file is the front door: the module record, the hooks, and the
 * dispatch of handlers. Everything else lives in layers under src/, each
 * including only the ones below it:
 *
 *   src/sdemo_pages.c    what each page shows and answers; guarded areas
 *   src/sdemo_session.c  cookies, load/update/start/end, login policy
 *   src/sdemo_users.c    user and group files, credentials
 *   src/sdemo_config.c   directives, process state, the store's lifecycle
 *   src/sd_*.c           the plain-C core (store interface and stores,
 *                        IDs, cookies, forms, records, passwords), tested
 *                        without httpd
 */

#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_core.h"
#include "ap_mpm.h"
#include "mod_auth.h"
#include "mod_status.h"

#include "sdemo_pages.h"

module AP_MODULE_DECLARE_DATA session_demo_module;

/* ---------------------------------------------------------------------
 * Lifecycle hooks
 * --------------------------------------------------------------------- */

static int pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    return sdemo_state_pre_config(pconf);
}

static int check_config(apr_pool_t *pconf, apr_pool_t *plog,
                        apr_pool_t *ptemp, server_rec *s)
{
    return sdemo_check_config(pconf, s);
}

/* The store is made in the parent, so that every child shares it. httpd
 * reads the configuration twice at start; the first pass only checks
 * it, and nothing is made then. */
static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                       server_rec *s)
{
    int rc;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    if ((rc = sdemo_state_post_config(pconf, s)) != OK)
        return rc;
    sdemo_users_init(pconf, s);
    return OK;
}

/* ---------------------------------------------------------------------
 * Handlers
 * --------------------------------------------------------------------- */

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
    ap_hook_check_config(check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* First of all: no other module may see a forged identity header. */
    ap_hook_post_read_request(sdemo_strip_identity_headers, NULL, NULL,
                              APR_HOOK_REALLY_FIRST);
    ap_hook_check_authn(sdemo_guard_authn, NULL, NULL, APR_HOOK_MIDDLE,
                        AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_note_auth_failure(sdemo_guard_note_failure, NULL, NULL,
                              APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(sdemo_guard_insert_error_filter, NULL, NULL,
                                APR_HOOK_MIDDLE);
    sdemo_guard_register();
    ap_hook_handler(dispatch, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, sdemo_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA session_demo_module = {
    STANDARD20_MODULE_STUFF,
    sdemo_create_dir_cfg,             /* per-directory config */
    sdemo_merge_dir_cfg,              /* merge per-directory */
    sdemo_create_srv_cfg,             /* per-server config */
    NULL,                             /* merge per-server: main server only */
    sdemo_cmds,                       /* directives */
    register_hooks,
    AP_MODULE_FLAG_NONE
};
