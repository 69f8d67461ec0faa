/*
 * The demo's pages: login, dashboard, logout and status handlers.
 *
 * Each handler allows only the methods it serves, checks every POST for a
 * CSRF token and a same-origin request, escapes every dynamic value, and
 * allocates from r->pool. Session operations come from mod_session_demo.c;
 * the pages only decide what to show and which status to answer.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_script.h"
#include "mod_status.h"
#include "apr_strings.h"

#include "sdemo_private.h"
#include "sd_form.h"
#include "sd_sha256.h"

/* ---------------------------------------------------------------------
 * Common page parts
 * --------------------------------------------------------------------- */

/* In err_headers_out so that error and redirect responses carry them. */
void sdemo_security_headers(request_rec *r)
{
    apr_table_t *h = r->err_headers_out;
    apr_table_setn(h, "Cache-Control", "no-store");
    apr_table_setn(h, "X-Content-Type-Options", "nosniff");
    apr_table_setn(h, "Referrer-Policy", "same-origin");
    apr_table_setn(h, "X-Frame-Options", "DENY");
    apr_table_setn(h, "Content-Security-Policy",
                   "default-src 'none'; style-src 'self'; img-src 'self'; "
                   "form-action 'self'; frame-ancestors 'none'; "
                   "base-uri 'none'");
}

static const char *esc(request_rec *r, const char *s)
{
    return ap_escape_html2(r->pool, s ? s : "", 1);
}

static void page_start(request_rec *r, const char *title)
{
    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rvputs(r,
              "<!doctype html>\n<html lang=\"en\">\n<head>\n"
              "<meta charset=\"utf-8\">\n"
              "<meta name=\"viewport\" content=\"width=device-width, "
              "initial-scale=1\">\n<title>",
              esc(r, title),
              " - Server Sessions Demo</title>\n"
              "<link rel=\"stylesheet\" href=\"/style.css\">\n</head>\n"
              "<body>\n<nav class=\"top\"><a href=\"/\">Server Sessions "
              "Demo</a></nav>\n<main>\n",
              NULL);
}

static void page_end(request_rec *r)
{
    ap_rputs("</main>\n<footer>mod_session_demo: server-side sessions for "
             "Apache httpd</footer>\n</body>\n</html>\n",
             r);
}

/* Answer @a status with a small page of our own rather than httpd's
 * default error document, so the message says what to do. */
static int message_page(request_rec *r, int status, const char *title,
                        const char *msg)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    r->status = status;
    page_start(r, title);
    ap_rvputs(r, "<div class=\"card\">\n<h1>", esc(r, title),
              "</h1>\n<p class=\"msg-error\">", esc(r, msg),
              "</p>\n<p><a href=\"", esc(r, d->login_url),
              "\">Go to the login page</a></p>\n</div>\n", NULL);
    page_end(r);
    return OK;
}

static int redirect(request_rec *r, const char *url)
{
    r->status = HTTP_SEE_OTHER;
    apr_table_setn(r->headers_out, "Location", url);
    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rvputs(r, "<!doctype html>\n<title>See other</title>\n<a href=\"",
              esc(r, url), "\">Continue</a>\n", NULL);
    return OK;
}

static int wants_json(request_rec *r)
{
    const char *accept = apr_table_get(r->headers_in, "Accept");
    return accept && ap_strcasestr(accept, "application/json") != NULL;
}

/* A JSON string literal. <, > and & are escaped too, so the output is
 * safe even if a browser is talked into rendering it as HTML. */
static const char *json_str(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    char *out = apr_palloc(p, strlen(s) * 6 + 3), *o = out;
    *o++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        }
        else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
        else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

static const char *fmt_time(request_rec *r, apr_int64_t t)
{
    return ap_ht_time(r->pool, apr_time_from_sec(t), "%Y-%m-%d %H:%M:%S UTC",
                      1);
}

/* ---------------------------------------------------------------------
 * Input
 * --------------------------------------------------------------------- */

/* B7: a browser tells us when a request comes from another site. Refuse
 * it before looking at any token. */
static int cross_site(request_rec *r)
{
    const char *sfs = apr_table_get(r->headers_in, "Sec-Fetch-Site");
    const char *origin = apr_table_get(r->headers_in, "Origin");
    const char *host, *expect, *scheme = ap_http_scheme(r);
    apr_port_t port = ap_get_server_port(r);

    if (sfs && strcasecmp(sfs, "cross-site") == 0)
        return 1;
    if (!origin)
        return 0;
    host = r->hostname ? r->hostname : r->server->server_hostname;
    if (ap_strchr_c(host, ':') && host[0] != '[')
        host = apr_pstrcat(r->pool, "[", host, "]", NULL);
    if (port == ap_default_port(r))
        expect = apr_pstrcat(r->pool, scheme, "://", host, NULL);
    else
        expect = apr_psprintf(r->pool, "%s://%s:%u", scheme, host,
                              (unsigned)port);
    return strcasecmp(origin, expect) != 0;
}

/* Read a urlencoded form body: 415 for another type, 413 when too big,
 * 400 when malformed. */
static int read_form(request_rec *r, apr_table_t **form)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    static const char want[] = "application/x-www-form-urlencoded";
    apr_size_t n = 0;
    char *buf;
    int rc;

    if (!ct || strncasecmp(ct, want, sizeof(want) - 1) != 0 ||
        (ct[sizeof(want) - 1] && ct[sizeof(want) - 1] != ';' &&
         ct[sizeof(want) - 1] != ' '))
        return HTTP_UNSUPPORTED_MEDIA_TYPE;
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK)
        return rc;
    if (r->remaining > SDEMO_FORM_MAX)
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    buf = apr_palloc(r->pool, SDEMO_FORM_MAX + 1);
    if (ap_should_client_block(r)) {
        for (;;) {
            long got = ap_get_client_block(r, buf + n, SDEMO_FORM_MAX + 1 - n);
            if (got < 0)
                return HTTP_BAD_REQUEST;
            if (got == 0)
                break;
            n += (apr_size_t)got;
            if (n > SDEMO_FORM_MAX)
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }
    if (sd_form_parse(r->pool, buf, n, form) != APR_SUCCESS)
        return HTTP_BAD_REQUEST;
    return OK;
}

static int form_error(request_rec *r, int status)
{
    switch (status) {
    case HTTP_UNSUPPORTED_MEDIA_TYPE:
        return message_page(r, status, "Unsupported form encoding",
                            "Send the form as "
                            "application/x-www-form-urlencoded.");
    case HTTP_REQUEST_ENTITY_TOO_LARGE:
        return message_page(r, status, "Form too large",
                            "The form is larger than the server accepts "
                            "(8 KiB). Send less data.");
    default:
        return message_page(r, HTTP_BAD_REQUEST, "Malformed form",
                            "The form data could not be decoded (bad "
                            "percent escapes, invalid UTF-8 or repeated "
                            "fields). Reload the page and send it again.");
    }
}

static int csrf_refused(request_rec *r)
{
    return message_page(r, HTTP_FORBIDDEN, "Request refused",
                        "This form was not sent from this site, or it has "
                        "expired. Reload the page and try again.");
}

/* A local path we may send the user back to after login: one leading
 * '/', printable ASCII only, no backslash (browsers read it as '/'). */
static const char *local_return(const char *v)
{
    const char *p;
    if (!v || v[0] != '/' || v[1] == '/' || strlen(v) > 2000)
        return NULL;
    for (p = v; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '\\')
            return NULL;
    return v;
}

static int query(request_rec *r, apr_table_t **q)
{
    *q = NULL;
    if (!r->args)
        return sd_form_parse(r->pool, "", 0, q) == APR_SUCCESS
                   ? OK
                   : HTTP_BAD_REQUEST;
    return sd_form_parse(r->pool, r->args, strlen(r->args), q) == APR_SUCCESS
               ? OK
               : HTTP_BAD_REQUEST;
}

/* Every page answers GET (and so HEAD) and POST; the 405 for anything
 * else carries the security headers and an Allow header that says so. */
static int only_get_post(request_rec *r)
{
    sdemo_security_headers(r);
    ap_allow_methods(r, REPLACE_ALLOW, "GET", "HEAD", "POST", NULL);
    if (r->method_number == M_GET || r->method_number == M_POST)
        return OK;
    return HTTP_METHOD_NOT_ALLOWED;
}

/* ---------------------------------------------------------------------
 * Login
 * --------------------------------------------------------------------- */

static int login_form(request_rec *r, int status, const char *ret,
                      const char *notice, const char *notice_class,
                      const char *username)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    r->status = status;
    page_start(r, "Log in");
    ap_rputs("<div class=\"card\">\n<h1>Log in</h1>\n", r);
    if (notice)
        ap_rvputs(r, "<p class=\"", notice_class, "\">", esc(r, notice),
                  "</p>\n", NULL);
    ap_rvputs(r, "<form class=\"stack\" method=\"post\" action=\"",
              esc(r, d->login_url), "\">\n", NULL);
    ap_rvputs(r, "<input type=\"hidden\" name=\"csrf\" value=\"",
              esc(r, sdemo_login_token(r)), "\">\n", NULL);
    if (ret)
        ap_rvputs(r, "<input type=\"hidden\" name=\"return\" value=\"",
                  esc(r, ret), "\">\n", NULL);
    ap_rvputs(r,
              "<label for=\"username\">Username</label>\n"
              "<input id=\"username\" name=\"username\" "
              "autocomplete=\"username\" required maxlength=\"128\" "
              "value=\"",
              esc(r, username), "\">\n", NULL);
    ap_rputs("<label for=\"password\">Password</label>\n"
             "<input id=\"password\" name=\"password\" type=\"password\" "
             "autocomplete=\"current-password\" required maxlength=\"72\">\n"
             "<button class=\"btn\" type=\"submit\">Log in</button>\n"
             "</form>\n<p class=\"muted\">Demo: <code>admin</code> / "
             "<code>secret</code>, or any username with the password "
             "<code>password</code>.</p>\n</div>\n",
             r);
    page_end(r);
    return OK;
}

static void log_login(request_rec *r, int ok, const char *user,
                      const char *prefix)
{
    if (ok)
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "SDEMO00101: login ok: user \"%s\" from %s, session %s",
                      sdemo_log_name(r->pool, user), r->useragent_ip,
                      prefix);
    else
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "SDEMO00102: login failed: user \"%s\" from %s",
                      sdemo_log_name(r->pool, user), r->useragent_ip);
}

static const char *generic_failure = "Invalid username or password.";

static int login_post(request_rec *r)
{
    sd_shm_t *st = sdemo_store();
    sd_throttle_t *th = sdemo_throttle();
    sdemo_dir_cfg *d = sdemo_dconf(r);
    apr_int64_t now = sdemo_now(r);
    const char *ukey, *akey;
    apr_table_t *form;
    const char *user, *pw, *ret, *role = NULL, *hash = NULL;
    sdemo_session *old, *ss;
    int rc, status;

    if (cross_site(r))
        return csrf_refused(r);
    if ((rc = read_form(r, &form)) != OK)
        return form_error(r, rc);
    ret = local_return(apr_table_get(form, "return"));
    if (!sdemo_login_token_ok(r, apr_table_get(form, "csrf")))
        return csrf_refused(r);
    user = apr_table_get(form, "username");
    pw = apr_table_get(form, "password");
    if (!user || !pw)
        return message_page(r, HTTP_BAD_REQUEST, "Incomplete form",
                            "The login form needs a username and a "
                            "password.");

    /* Throttle before any password check, by name and by address alike,
     * so the answer is the same for known and unknown users. */
    ukey = apr_pstrcat(r->pool, "u:", user, NULL);
    akey = apr_pstrcat(r->pool, "a:", r->useragent_ip, NULL);
    if (th) {
        apr_int64_t w1 = sd_throttle_check(th, ukey, strlen(ukey),
                                           (apr_uint32_t)d->throttle_n,
                                           (apr_uint32_t)d->throttle_window,
                                           now);
        apr_int64_t w2 = sd_throttle_check(th, akey, strlen(akey),
                                           (apr_uint32_t)d->throttle_n * 10,
                                           (apr_uint32_t)d->throttle_window,
                                           now);
        apr_int64_t wait = w1 > w2 ? w1 : w2;
        if (wait > 0) {
            ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                          "SDEMO00104: login throttled: user \"%s\" from %s, "
                          "%s for %" APR_INT64_T_FMT " more seconds",
                          sdemo_log_name(r->pool, user), r->useragent_ip,
                          w1 >= w2 ? "too many failures for this user"
                                   : "too many failures from this address",
                          wait);
            if (st)
                sd_shm_count(st, SD_SHM_COUNT_LOGIN_THROTTLED);
            apr_table_setn(r->err_headers_out, "Retry-After",
                           apr_psprintf(r->pool, "%" APR_INT64_T_FMT, wait));
            return login_form(r, HTTP_TOO_MANY_REQUESTS, ret,
                              "Too many failed logins. Wait a while and try "
                              "again.",
                              "msg-error", NULL);
        }
    }

    if (!sdemo_check_credentials(r, user, pw, &role, &hash)) {
        log_login(r, 0, user, NULL);
        if (st)
            sd_shm_count(st, SD_SHM_COUNT_LOGIN_FAILED);
        if (th) {
            sd_throttle_fail(th, ukey, strlen(ukey),
                             (apr_uint32_t)d->throttle_window, now);
            sd_throttle_fail(th, akey, strlen(akey),
                             (apr_uint32_t)d->throttle_window, now);
        }
        return login_form(r, HTTP_FORBIDDEN, ret, generic_failure,
                          "msg-error", NULL);
    }

    /* Rotation: whatever session this client had ends here, and the new
     * one gets an ID nobody has seen (session fixation). */
    old = sdemo_session_load(r, &status);
    if (old)
        sdemo_session_end(r, old, "replaced by a new login");
    rc = sdemo_session_start(r, user, role, hash, &ss);
    if (rc != OK)
        return message_page(r, rc, "Server busy",
                            "The server has too many active sessions right "
                            "now. Please try again in a few minutes.");
    if (st)
        sd_shm_count(st, SD_SHM_COUNT_LOGIN_OK);
    if (th)
        sd_throttle_reset(th, ukey, strlen(ukey));
    log_login(r, 1, user, ss->prefix);
    return redirect(r, ret ? ret : sdemo_dconf(r)->dashboard_url);
}

int sdemo_login_handler(request_rec *r)
{
    apr_table_t *q;
    int rc;

    if ((rc = only_get_post(r)) != OK)
        return rc;
    sdemo_security_headers(r);
    if (r->method_number == M_POST)
        return login_post(r);
    if (query(r, &q) != OK)
        return message_page(r, HTTP_BAD_REQUEST, "Malformed address",
                            "The query string could not be decoded.");
    if (apr_table_get(q, "logged_out"))
        return login_form(r, HTTP_OK, local_return(apr_table_get(q, "return")),
                          "You have been logged out.", "msg-ok", NULL);
    return login_form(r, HTTP_OK, local_return(apr_table_get(q, "return")),
                      NULL, NULL, NULL);
}

/* ---------------------------------------------------------------------
 * Dashboard
 * --------------------------------------------------------------------- */

static int count_visit(request_rec *r, sd_session_t *s, void *baton)
{
    s->visits++;
    return OK;
}

static int add_note(request_rec *r, sd_session_t *s, void *baton)
{
    APR_ARRAY_PUSH(s->notes, const char *) = baton;
    return OK;
}

static int clear_notes(request_rec *r, sd_session_t *s, void *baton)
{
    apr_array_clear(s->notes);
    return OK;
}

static void dashboard_json(request_rec *r, sdemo_session *ss)
{
    sd_session_t *s = ss->s;
    int i;

    ap_set_content_type(r, "application/json");
    ap_rprintf(r,
               "{\"user\":%s,\"role\":%s,\"created\":%" APR_INT64_T_FMT
               ",\"last_access\":%" APR_INT64_T_FMT
               ",\"expires\":%" APR_INT64_T_FMT
               ",\"visits\":%" APR_UINT64_T_FMT ",\"notes\":[",
               json_str(r->pool, s->user), json_str(r->pool, s->role),
               ss->meta.created, ss->meta.last_access, ss->meta.expires,
               s->visits);
    for (i = 0; i < s->notes->nelts; i++)
        ap_rvputs(r, i ? "," : "",
                  json_str(r->pool, APR_ARRAY_IDX(s->notes, i, const char *)),
                  NULL);
    ap_rputs("]}\n", r);
}

static void hidden_csrf(request_rec *r, sdemo_session *ss)
{
    ap_rvputs(r, "<input type=\"hidden\" name=\"csrf\" value=\"",
              esc(r, ss->s->csrf), "\">\n", NULL);
}

static void dashboard_html(request_rec *r, sdemo_session *ss,
                           const char *notice)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    sd_session_t *s = ss->s;
    int i;

    page_start(r, "Dashboard");
    ap_rvputs(r, "<div class=\"card wide\">\n<h1>Welcome, ", esc(r, s->user),
              "!</h1>\n", NULL);
    if (notice)
        ap_rvputs(r, "<p class=\"msg-error\">", esc(r, notice), "</p>\n",
                  NULL);
    ap_rputs("<p class=\"muted\">Everything below is kept on the server; "
             "your browser holds only an opaque session ID.</p>\n"
             "<table class=\"kv\">\n",
             r);
    ap_rvputs(r, "<tr><th>User</th><td>", esc(r, s->user), "</td></tr>\n",
              "<tr><th>Role</th><td>", esc(r, s->role), "</td></tr>\n",
              "<tr><th>Created</th><td>", fmt_time(r, ss->meta.created),
              "</td></tr>\n", "<tr><th>Last access</th><td>",
              fmt_time(r, ss->meta.last_access), "</td></tr>\n",
              "<tr><th>Expires</th><td>", fmt_time(r, ss->meta.expires),
              " (unless used again before)</td></tr>\n", NULL);
    ap_rprintf(r, "<tr><th>Visits</th><td>%" APR_UINT64_T_FMT "</td></tr>\n",
               s->visits);
    ap_rputs("</table>\n<h2>Notes</h2>\n", r);
    if (s->notes->nelts == 0) {
        ap_rputs("<p class=\"muted\">No notes yet.</p>\n", r);
    }
    else {
        ap_rputs("<ul class=\"notes\">\n", r);
        for (i = 0; i < s->notes->nelts; i++)
            ap_rvputs(r, "<li>",
                      esc(r, APR_ARRAY_IDX(s->notes, i, const char *)),
                      "</li>\n", NULL);
        ap_rputs("</ul>\n", r);
    }
    ap_rvputs(r, "<form class=\"stack\" method=\"post\" action=\"",
              esc(r, d->dashboard_url), "\">\n", NULL);
    hidden_csrf(r, ss);
    ap_rputs("<input type=\"hidden\" name=\"action\" value=\"add_note\">\n"
             "<label for=\"note\">Add a note</label>\n"
             "<textarea id=\"note\" name=\"note\" maxlength=\"1000\" "
             "rows=\"3\" required></textarea>\n"
             "<button class=\"btn\" type=\"submit\">Add note</button>\n"
             "</form>\n<div class=\"actions\">\n",
             r);
    ap_rvputs(r, "<form method=\"post\" action=\"", esc(r, d->dashboard_url),
              "\">\n", NULL);
    hidden_csrf(r, ss);
    ap_rputs("<input type=\"hidden\" name=\"action\" value=\"clear_notes\">\n"
             "<button class=\"btn btn-secondary\" type=\"submit\">Clear "
             "notes</button>\n</form>\n",
             r);
    ap_rvputs(r, "<form method=\"post\" action=\"", esc(r, d->dashboard_url),
              "\">\n", NULL);
    hidden_csrf(r, ss);
    ap_rputs("<input type=\"hidden\" name=\"action\" value=\"logout_all\">\n"
             "<button class=\"btn btn-secondary\" type=\"submit\">Log out "
             "everywhere</button>\n</form>\n",
             r);
    ap_rvputs(r, "<form method=\"post\" action=\"", esc(r, d->logout_url),
              "\">\n", NULL);
    hidden_csrf(r, ss);
    ap_rputs("<button class=\"btn\" type=\"submit\">Log out</button>\n"
             "</form>\n</div>\n</div>\n",
             r);
    page_end(r);
}

static int session_gone(request_rec *r)
{
    return redirect(r, sdemo_login_redirect(r));
}

static int same_user(void *baton, const void *data, apr_size_t len)
{
    return sd_record_is_user(data, len, baton);
}

static int dashboard_post(request_rec *r, sdemo_session *ss)
{
    apr_table_t *form;
    const char *action, *token, *note;
    int rc;

    if (cross_site(r))
        return csrf_refused(r);
    if ((rc = read_form(r, &form)) != OK)
        return form_error(r, rc);
    token = apr_table_get(form, "csrf");
    if (!token || strlen(token) != SD_CSRF_LEN ||
        !sd_ct_equal(token, ss->s->csrf, SD_CSRF_LEN))
        return csrf_refused(r);
    action = apr_table_get(form, "action");
    if (action && strcmp(action, "add_note") == 0) {
        note = apr_table_get(form, "note");
        if (!note || !*note)
            return message_page(r, HTTP_BAD_REQUEST, "Empty note",
                                "Write something in the note before adding "
                                "it.");
        if (strlen(note) > SD_NOTE_MAX)
            rc = HTTP_REQUEST_ENTITY_TOO_LARGE;
        else
            rc = sdemo_session_update(r, ss, add_note,
                                      apr_pstrdup(r->pool, note));
    }
    else if (action && strcmp(action, "clear_notes") == 0) {
        rc = sdemo_session_update(r, ss, clear_notes, NULL);
    }
    else if (action && strcmp(action, "logout_all") == 0) {
        /* Ends every session of this user, on every device, this one
         * included (ASVS 3.3.4 / 7.5.2: users can end their other
         * sessions). */
        apr_uint64_t n = sdemo_delete_if(r, same_user,
                                            (void *)ss->s->user);
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "SDEMO00105: logout everywhere: user \"%s\" from %s "
                      "ended %" APR_UINT64_T_FMT " sessions",
                      sdemo_log_name(r->pool, ss->s->user), r->useragent_ip,
                      n);
        sdemo_cookie_clear(r);
        return redirect(r, apr_pstrcat(r->pool, sdemo_dconf(r)->login_url,
                                       "?logged_out=1", NULL));
    }
    else {
        return message_page(r, HTTP_BAD_REQUEST, "Unknown action",
                            "The form asked for an action the dashboard "
                            "does not know (add_note, clear_notes or "
                            "logout_all).");
    }
    if (rc == HTTP_NOT_FOUND)
        return session_gone(r);
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        r->status = rc;
        dashboard_html(r, ss,
                       "That note does not fit: a note holds at most 1000 "
                       "bytes and a session at most SessionDemoMaxDataSize. "
                       "Nothing was changed; clear some notes first.");
        return OK;
    }
    if (rc != OK)
        return message_page(r, rc, "Try again",
                            "The session could not be updated. Please try "
                            "again.");
    return redirect(r, sdemo_dconf(r)->dashboard_url);
}

int sdemo_dashboard_handler(request_rec *r)
{
    sdemo_session *ss;
    int rc, status;

    if ((rc = only_get_post(r)) != OK)
        return rc;
    sdemo_security_headers(r);
    ss = sdemo_session_load(r, &status);
    if (status != OK)
        return message_page(r, status, "Sessions unavailable",
                            "The session store cannot be reached. Please "
                            "try again later.");
    if (!ss)
        return session_gone(r);
    if (r->method_number == M_POST)
        return dashboard_post(r, ss);

    /* One visit per view, counted atomically even when many requests of
     * the session run at once. */
    rc = sdemo_session_update(r, ss, count_visit, NULL);
    if (rc == HTTP_NOT_FOUND)
        return session_gone(r);
    if (rc != OK)
        return message_page(r, HTTP_SERVICE_UNAVAILABLE, "Try again",
                            "The session could not be updated. Please try "
                            "again.");
    if (wants_json(r))
        dashboard_json(r, ss);
    else
        dashboard_html(r, ss, NULL);
    return OK;
}

/* ---------------------------------------------------------------------
 * Logout
 * --------------------------------------------------------------------- */

int sdemo_logout_handler(request_rec *r)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    sdemo_session *ss;
    apr_table_t *form;
    const char *token;
    int rc, status;

    if ((rc = only_get_post(r)) != OK)
        return rc;
    sdemo_security_headers(r);
    ss = sdemo_session_load(r, &status);
    if (r->method_number == M_GET) {
        /* A GET never logs out: links and prefetchers must not end a
         * session. It offers the button instead. */
        if (!ss)
            return redirect(r, d->login_url);
        page_start(r, "Log out");
        ap_rvputs(r, "<div class=\"card\">\n<h1>Log out</h1>\n<p>You are "
                  "logged in as <strong>", esc(r, ss->s->user),
                  "</strong>.</p>\n<form method=\"post\" action=\"",
                  esc(r, d->logout_url), "\">\n", NULL);
        hidden_csrf(r, ss);
        ap_rputs("<button class=\"btn\" type=\"submit\">Log out</button>\n"
                 "</form>\n</div>\n",
                 r);
        page_end(r);
        return OK;
    }
    if (cross_site(r))
        return csrf_refused(r);
    if ((rc = read_form(r, &form)) != OK)
        return form_error(r, rc);
    if (ss) {
        token = apr_table_get(form, "csrf");
        if (!token || strlen(token) != SD_CSRF_LEN ||
            !sd_ct_equal(token, ss->s->csrf, SD_CSRF_LEN))
            return csrf_refused(r);
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "SDEMO00103: logout: user \"%s\" from %s, session %s",
                      sdemo_log_name(r->pool, ss->s->user),
                      r->useragent_ip, ss->prefix);
        sd_shm_delete(sdemo_store(), &ss->key);
    }
    sdemo_cookie_clear(r);
    return redirect(r, apr_pstrcat(r->pool, d->login_url, "?logged_out=1",
                                   NULL));
}

/* ---------------------------------------------------------------------
 * Status
 * --------------------------------------------------------------------- */

/* The store's figures, once: the status page (HTML and JSON) and
 * mod_status's /server-status (HTML and ?auto) all render this table. */
typedef struct {
    const char *json;           /* JSON field (SPEC B12) */
    const char *auto_key;       /* /server-status?auto key */
    const char *label;          /* HTML row */
    apr_size_t offset;          /* in sd_shm_stats_t */
} sdemo_figure_t;

#define FIGURE(json, key, label, field)                                          {json, "SessionDemo" key, label, APR_OFFSETOF(sd_shm_stats_t, field)}

static const sdemo_figure_t figures[] = {
    FIGURE("capacity", "Capacity", "Capacity (sessions)", capacity),
    FIGURE("sessions", "Sessions", "Live sessions", sessions),
    FIGURE("memory_used", "MemoryUsed", "Memory used (bytes)", memory_used),
    FIGURE("memory_total", "MemoryTotal", "Memory total (bytes)",
           memory_total),
    FIGURE("logins_ok", "LoginsOk", "Logins ok", logins_ok),
    FIGURE("logins_failed", "LoginsFailed", "Logins failed", logins_failed),
    FIGURE("logins_throttled", "LoginsThrottled", "Logins throttled",
           logins_throttled),
    FIGURE("hits", "Hits", "Lookups that hit", hits),
    FIGURE("misses", "Misses", "Lookups that missed", misses),
    FIGURE("expirations", "Expirations", "Expirations", expirations),
    FIGURE("evictions", "Evictions", "Evictions", evictions),
    FIGURE("refusals", "Refusals", "Refused (store full)", refusals),
    FIGURE("repairs", "Repairs", "Crash repairs", repairs),
};
#define NFIGURES (sizeof(figures) / sizeof(figures[0]))

static apr_uint64_t figure(const sd_shm_stats_t *s, const sdemo_figure_t *f)
{
    return *(const apr_uint64_t *)((const char *)s + f->offset);
}

static void figures_html(request_rec *r, const sd_shm_stats_t *s)
{
    apr_size_t i;
    ap_rputs("<table class=\"kv\">\n", r);
    ap_rvputs(r, "<tr><th>Store</th><td>", esc(r, sdemo_store_kind()),
              "</td></tr>\n", NULL);
    for (i = 0; i < NFIGURES; i++)
        ap_rprintf(r, "<tr><th>%s</th><td>%" APR_UINT64_T_FMT "</td></tr>\n",
                   figures[i].label, figure(s, &figures[i]));
    ap_rputs("</table>\n", r);
}

int sdemo_status_hook(request_rec *r, int flags)
{
    sd_shm_stats_t s;
    apr_size_t i;

    if (!sdemo_store())
        return OK;
    sd_shm_stats(sdemo_store(), &s);
    if (flags & AP_STATUS_SHORT) {
        ap_rvputs(r, "SessionDemoStore: ", sdemo_store_kind(), "\n", NULL);
        for (i = 0; i < NFIGURES; i++)
            ap_rprintf(r, "%s: %" APR_UINT64_T_FMT "\n", figures[i].auto_key,
                       figure(&s, &figures[i]));
        return OK;
    }
    ap_rputs("<hr>\n<h2>Server sessions (mod_session_demo)</h2>\n", r);
    figures_html(r, &s);
    return OK;
}

int sdemo_status_handler(request_rec *r)
{
    sd_shm_stats_t s;
    apr_size_t i;
    int json;

    sdemo_security_headers(r);
    ap_allow_methods(r, REPLACE_ALLOW, "GET", "HEAD", NULL);
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    if (!sdemo_store())
        return message_page(r, HTTP_SERVICE_UNAVAILABLE, "No store",
                            "The session store is not set up.");
    sd_shm_stats(sdemo_store(), &s);
    json = wants_json(r) ||
           (r->args && (strcmp(r->args, "json") == 0 ||
                        strncmp(r->args, "json&", 5) == 0));
    if (json) {
        ap_set_content_type(r, "application/json");
        ap_rvputs(r, "{\"store\":", json_str(r->pool, sdemo_store_kind()),
                  NULL);
        for (i = 0; i < NFIGURES; i++)
            ap_rprintf(r, ",\"%s\":%" APR_UINT64_T_FMT, figures[i].json,
                       figure(&s, &figures[i]));
        ap_rputs("}\n", r);
        return OK;
    }
    page_start(r, "Session store status");
    ap_rputs("<div class=\"card wide\">\n<h1>Session store</h1>\n", r);
    figures_html(r, &s);
    ap_rputs("<p class=\"muted\">As JSON: <a href=\"?json\">"
             "?json</a></p>\n</div>\n",
             r);
    page_end(r);
    return OK;
}
