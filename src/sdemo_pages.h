/*
 * The pages: layer 4 of the glue, what each URL shows and answers.
 *
 * The login, dashboard, logout and status handlers, the mod_status
 * section, and the guarded areas (AuthType session-demo): who gets in,
 * who is sent to the login page, who gets a 403, and which identity
 * headers reach a backend. Pages decide what to show and which status to
 * answer; the session lifecycle below does everything with sessions.
 */
#ifndef SDEMO_PAGES_H
#define SDEMO_PAGES_H

#include "sdemo_session.h"

int sdemo_login_handler(request_rec *r);
int sdemo_dashboard_handler(request_rec *r);
int sdemo_logout_handler(request_rec *r);
int sdemo_status_handler(request_rec *r);

/** mod_status's hook: the store's figures on /server-status. */
int sdemo_status_hook(request_rec *r, int flags);

/** post_read_request: remove every request header that poses as one of
 *  the identity headers the module sends to backends. */
int sdemo_strip_identity_headers(request_rec *r);

/** check_authn for AuthType session-demo. */
int sdemo_guard_authn(request_rec *r);

/** note_auth_failure for AuthType session-demo: no WWW-Authenticate (a
 *  cookie login has no credentials to send again). */
int sdemo_guard_note_failure(request_rec *r, const char *type);

/** insert_error_filter: turn the 401 that Require gives a logged-in
 *  user into our 403 page. */
void sdemo_guard_insert_error_filter(request_rec *r);

/** Register the output filter used by the above. */
void sdemo_guard_register(void);

#endif
