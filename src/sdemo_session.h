/*
 * The session lifecycle: layer 3 of the glue.
 *
 * Cookies (the session cookie, the login-form cookie, the device cookie),
 * loading the request's session from the store, changing it without lost
 * updates, starting one at login and ending it, a user's list of sessions,
 * the login-attempt policy with its throttle, and the signed tokens.
 * Every store call of the module is made here, through the store
 * interface; the pages above never see the store.
 */
#ifndef SDEMO_SESSION_H
#define SDEMO_SESSION_H

#include "sdemo_users.h"

/* A session as one request sees it. */
typedef struct {
    sd_key_t key;                     /* store key (hash of the ID) */
    char prefix[SD_KEY_PREFIX_LEN + 1]; /* log-safe short form of the key */
    sd_session_t *s;                  /* decoded record */
    sd_store_meta_t meta;             /* times and version */
    apr_int64_t expires;              /* when it ends if unused */
    const char *expires_why;          /* "idle" or "absolute" timeout */
} sdemo_session;

/** One of the user's sessions, for "your sessions". */
typedef struct {
    const char *handle;               /* opaque, for "end this session" */
    apr_int64_t created;
    apr_int64_t last_access;
    apr_int64_t expires;
    const char *device;               /* a short User-Agent summary */
    int current;                      /* the session of this request */
} sdemo_session_info;

/**
 * Load the request's session (cached for the request and its
 * subrequests). NULL with *status OK: anonymous. NULL with *status 503:
 * the store cannot answer; Retry-After is set, the cookie is left alone,
 * and the page must say so.
 */
sdemo_session *sdemo_session_load(request_rec *r, int *status);

/**
 * Read-modify-write of the session: @a change edits a private copy, which
 * replaces the stored one if nobody changed it meanwhile (else it is read
 * again and @a change runs again). Returns OK; 413 when the result would
 * exceed SessionDemoMaxDataSize (nothing changes); HTTP_NOT_FOUND when
 * the session ended meanwhile; 503 when the store cannot answer; or what
 * @a change returned.
 */
int sdemo_session_update(request_rec *r, sdemo_session *ss,
                         int (*change)(request_rec *r, sd_session_t *s,
                                       void *baton),
                         void *baton);

/** End @a ss on the server and log @a why (NULL: the caller logs).
 *  Returns OK or 503. */
int sdemo_session_end(request_rec *r, sdemo_session *ss, const char *why);

/** The user's live sessions, most recently used first. OK or 503. */
int sdemo_session_list(request_rec *r, sdemo_session *ss,
                       apr_array_header_t **infos);

/** End the user's session named by @a handle (from the list). OK, 404
 *  when there is no such session of theirs, or 503. */
int sdemo_session_end_other(request_rec *r, sdemo_session *ss,
                            const char *handle);

/** End every session of the user ("log out everywhere"); *n gets how
 *  many. OK or 503. */
int sdemo_session_end_all(request_rec *r, sdemo_session *ss,
                          apr_uint64_t *n);

/** Clear the session cookie (same attributes, Max-Age=0). */
void sdemo_cookie_clear(request_rec *r);

/** The session cookie's name for @a r (with __Host- over TLS). */
const char *sdemo_cookie_name(request_rec *r);

/* ---- login ----------------------------------------------------------- */

typedef enum {
    SDEMO_LOGIN_OK,                   /* logged in: cookie set */
    SDEMO_LOGIN_BAD,                  /* wrong name or password: 403 */
    SDEMO_LOGIN_THROTTLED,            /* too many failures: 429 */
    SDEMO_LOGIN_FULL,                 /* the store refuses new sessions */
    SDEMO_LOGIN_UNAVAILABLE           /* the store cannot answer: 503 */
} sdemo_login_result;

/**
 * A login attempt, with all its policy: the throttle (counted before the
 * password is checked, so concurrent guesses cannot all pass), the device
 * cookie that exempts the real user from lockouts that strangers caused,
 * rotation (the client's old session ends, the new one gets a new ID),
 * the per-user session cap, counters and one log line. *wait gets the
 * seconds to wait when throttled; *prefix the new session's log prefix.
 */
sdemo_login_result sdemo_login(request_rec *r, const char *user,
                               const char *password, apr_int64_t *wait,
                               const char **prefix);

/** A login form token for @a r, bound to its login-form cookie (set here
 *  when the request has none). */
const char *sdemo_login_token(request_rec *r);

/** Non-zero when @a token was issued with this request's login-form
 *  cookie, by this server, less than two hours ago. */
int sdemo_login_token_ok(request_rec *r, const char *token);

/** Where to send an anonymous visitor: the login page, returning here. */
const char *sdemo_login_redirect(request_rec *r);

/** Seconds a client should wait after a 503 from the store. */
apr_uint32_t sdemo_retry_after(void);

#endif
