/*
 * The demo's pages (see sdemo_pages.h).
 *
 * Each handler allows only the methods it serves, checks every POST for a
 * CSRF token and a same-origin request, escapes every dynamic value, and
 * allocates from r->pool. Session operations come from sdemo_session.c;
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
#include "apr_lib.h"
#include "apr_strings.h"

#include "sdemo_pages.h"
#include "sd_form.h"
#include "sd_sha256.h"

/* ---------------------------------------------------------------------
 * Common page parts
 * --------------------------------------------------------------------- */

/* In err_headers_out so that error and redirect responses carry them. */
static void sdemo_security_headers(request_rec *r)
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

/* HTML-escape without turning UTF-8 into byte references: every text we
 * show was checked to be valid UTF-8 when it came in, and the pages are
 * served as UTF-8, so "café" must stay "café". */
static const char *esc(request_rec *r, const char *s)
{
    return ap_escape_html2(r->pool, s ? s : "", 0);
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
              "<body>\n<header><nav class=\"top\" aria-label=\"Site\">"
              "<a href=\"/\">Server Sessions Demo</a></nav></header>\n"
              "<main>\n",
              NULL);
}

static void page_end(request_rec *r)
{
    ap_rputs("</main>\n<footer>mod_session_demo: server-side sessions for "
             "Apache httpd</footer>\n</body>\n</html>\n",
             r);
}

/* The store cannot answer (the session layer has set Retry-After): say
 * so, and that nobody was logged out. */
static int unavailable_page(request_rec *r)
{
    const char *ra = apr_table_get(r->err_headers_out, "Retry-After");
    r->status = HTTP_SERVICE_UNAVAILABLE;
    page_start(r, "Sessions unavailable");
    ap_rvputs(r, "<div class=\"card\">\n<h1>Sessions unavailable</h1>\n"
              "<p class=\"msg-error\" role=\"alert\">The session store "
              "cannot be reached right now. You have not been logged out: "
              "try again in ",
              ra ? ra : "a few", " seconds.</p>\n</div>\n", NULL);
    page_end(r);
    return OK;
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
              "</h1>\n<p class=\"msg-error\" role=\"alert\">", esc(r, msg),
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

/* What every POST starts with: same-origin, then a well-formed body. OK
 * with *form; else the refusal page is written and DONE returned. */
static int posted_form(request_rec *r, apr_table_t **form)
{
    int rc;
    if (cross_site(r)) {
        csrf_refused(r);
        return DONE;
    }
    if ((rc = read_form(r, form)) != OK) {
        form_error(r, rc);
        return DONE;
    }
    return OK;
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

static int login_form(request_rec *r, int status, const char *title,
                      const char *ret, const char *notice,
                      const char *notice_class, const char *username)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    r->status = status;
    page_start(r, title);
    ap_rputs("<div class=\"card\">\n<h1>Log in</h1>\n", r);
    if (notice)
        ap_rvputs(r, "<p class=\"", notice_class, "\" role=\"",
                  strcmp(notice_class, "msg-error") == 0 ? "alert"
                                                         : "status",
                  "\">", esc(r, notice), "</p>\n", NULL);
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

static const char *generic_failure = "Invalid username or password.";

/* "15 minutes", "40 seconds": how long a throttled visitor waits. */
static const char *wait_text(apr_pool_t *p, apr_int64_t secs)
{
    if (secs >= 120)
        return apr_psprintf(p, "%" APR_INT64_T_FMT " minutes",
                            (secs + 59) / 60);
    return apr_psprintf(p, "%" APR_INT64_T_FMT " seconds", secs);
}

static int login_post(request_rec *r)
{
    apr_table_t *form;
    const char *user, *pw, *ret, *prefix = NULL;
    apr_int64_t wait = 0;

    if (posted_form(r, &form) != OK)
        return OK;
    ret = local_return(apr_table_get(form, "return"));
    if (!sdemo_login_token_ok(r, apr_table_get(form, "csrf")))
        return csrf_refused(r);
    user = apr_table_get(form, "username");
    pw = apr_table_get(form, "password");
    if (!user || !pw)
        return message_page(r, HTTP_BAD_REQUEST, "Incomplete form",
                            "The login form needs a username and a "
                            "password.");

    switch (sdemo_login(r, user, pw, &wait, &prefix)) {
    case SDEMO_LOGIN_OK:
        return redirect(r, ret ? ret : sdemo_dconf(r)->dashboard_url);
    case SDEMO_LOGIN_THROTTLED:
        apr_table_setn(r->err_headers_out, "Retry-After",
                       apr_psprintf(r->pool, "%" APR_INT64_T_FMT, wait));
        return login_form(
            r, HTTP_TOO_MANY_REQUESTS, "Too many attempts - Log in", ret,
            apr_psprintf(r->pool,
                         "Too many failed logins. Wait %s, then try again.",
                         wait_text(r->pool, wait)),
            "msg-error", user);
    case SDEMO_LOGIN_BAD:
        return login_form(r, HTTP_FORBIDDEN, "Login failed - Log in", ret,
                          generic_failure, "msg-error", user);
    case SDEMO_LOGIN_FULL:
        apr_table_setn(r->err_headers_out, "Retry-After", "60");
        return message_page(r, HTTP_SERVICE_UNAVAILABLE, "Server busy",
                            "The server has too many active sessions right "
                            "now. Please try again in a few minutes.");
    default:
        if (!apr_table_get(r->err_headers_out, "Retry-After"))
            apr_table_setn(r->err_headers_out, "Retry-After",
                           apr_psprintf(r->pool, "%u", sdemo_retry_after()));
        return unavailable_page(r);
    }
}

int sdemo_login_handler(request_rec *r)
{
    apr_table_t *q;
    const char *n, *ret;
    int rc;

    if ((rc = only_get_post(r)) != OK)
        return rc;
    sdemo_security_headers(r);
    if (r->method_number == M_POST)
        return login_post(r);
    if (query(r, &q) != OK)
        return message_page(r, HTTP_BAD_REQUEST, "Malformed address",
                            "The query string could not be decoded.");
    ret = local_return(apr_table_get(q, "return"));
    if ((n = apr_table_get(q, "ended_all")) != NULL &&
        strspn(n, "0123456789") == strlen(n) && strlen(n) < 8)
        return login_form(r, HTTP_OK, "Logged out everywhere - Log in", ret,
                          apr_psprintf(r->pool,
                                       "You have been logged out "
                                       "everywhere: %s session%s ended.",
                                       n, strcmp(n, "1") ? "s" : ""),
                          "msg-ok", NULL);
    if (apr_table_get(q, "logged_out"))
        return login_form(r, HTTP_OK, "Logged out - Log in", ret,
                          "You have been logged out.", "msg-ok", NULL);
    if (apr_table_get(q, "ended"))
        return login_form(r, HTTP_OK, "Session ended - Log in", ret,
                          "Your session had ended, so what you sent was "
                          "not saved. Log in again.",
                          "msg-error", NULL);
    return login_form(r, HTTP_OK, "Log in", ret, NULL, NULL, NULL);
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
               ss->meta.created, ss->meta.last_access, ss->expires,
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

/* What the dashboard and the logout page start with: GET or POST only,
 * the security headers, the request's session. DONE when the store could
 * not answer (its page is written), else OK with *ss (NULL: anonymous). */
static int page_session(request_rec *r, sdemo_session **ss)
{
    int rc, status;

    if ((rc = only_get_post(r)) != OK)
        return rc;
    *ss = sdemo_session_load(r, &status);
    if (status != OK) {
        unavailable_page(r);
        return DONE;
    }
    return OK;
}

/* The session's CSRF token in @a form, compared in constant time. */
static int session_token_ok(apr_table_t *form, sdemo_session *ss)
{
    const char *token = apr_table_get(form, "csrf");
    return token && strlen(token) == SD_CSRF_LEN &&
           sd_ct_equal(token, ss->s->csrf, SD_CSRF_LEN);
}

/* A POST form of one button on the dashboard. */
static void action_button(request_rec *r, sdemo_session *ss,
                          const char *action, const char *extra,
                          const char *label, const char *cls)
{
    ap_rvputs(r, "<form method=\"post\" action=\"",
              esc(r, sdemo_dconf(r)->dashboard_url), "\">\n", NULL);
    hidden_csrf(r, ss);
    ap_rvputs(r, "<input type=\"hidden\" name=\"action\" value=\"", action,
              "\">\n", extra ? extra : "", "<button class=\"", cls,
              "\" type=\"submit\">", label, "</button>\n</form>\n", NULL);
}

static void your_sessions(request_rec *r, sdemo_session *ss)
{
    apr_array_header_t *list = NULL;
    int i;

    ap_rputs("<section aria-labelledby=\"sessions\">\n"
             "<h2 id=\"sessions\">Your sessions</h2>\n",
             r);
    if (sdemo_session_list(r, ss, &list) != OK || !list) {
        ap_rputs("<p class=\"muted\">The list of your sessions cannot be "
                 "read right now.</p>\n</section>\n",
                 r);
        return;
    }
    ap_rputs("<div class=\"table-wrap\"><table class=\"sessions stacked\">\n"
             "<thead><tr><th scope=\"col\">Device</th><th scope=\"col\">"
             "Signed in</th><th scope=\"col\">Last active</th>"
             "<th scope=\"col\"><span class=\"sr-only\">Action</span></th>"
             "</tr></thead>\n<tbody>\n",
             r);
    for (i = 0; i < list->nelts; i++) {
        sdemo_session_info *in = &APR_ARRAY_IDX(list, i, sdemo_session_info);
        ap_rvputs(r, "<tr><td>", esc(r, in->device),
                  in->current ? " <strong>(this device)</strong>" : "",
                  "</td><td>", fmt_time(r, in->created), "</td><td>",
                  fmt_time(r, in->last_access), "</td><td>", NULL);
        if (in->current)
            ap_rputs("&mdash;", r);
        else
            action_button(r, ss, "end_session",
                          apr_pstrcat(r->pool,
                                      "<input type=\"hidden\" "
                                      "name=\"session\" value=\"",
                                      in->handle, "\">\n", NULL),
                          "End this session", "btn btn-secondary");
        ap_rputs("</td></tr>\n", r);
    }
    ap_rputs("</tbody>\n</table></div>\n", r);
    action_button(r, ss, "logout_all", NULL, "Log out everywhere",
                  "btn btn-secondary");
    ap_rputs("</section>\n", r);
}

static void dashboard_html(request_rec *r, sdemo_session *ss,
                           const char *notice, int notice_ok)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    sd_session_t *s = ss->s;
    int i;

    page_start(r, apr_pstrcat(r->pool, "Dashboard of ", s->user, NULL));
    ap_rvputs(r, "<div class=\"card wide\">\n<h1>Welcome, ", esc(r, s->user),
              "!</h1>\n", NULL);
    if (notice)
        ap_rvputs(r, "<p class=\"", notice_ok ? "msg-ok" : "msg-error",
                  "\" role=\"", notice_ok ? "status" : "alert", "\">",
                  esc(r, notice), "</p>\n", NULL);
    ap_rputs("<p class=\"muted\">Everything below is kept on the server; "
             "your browser holds only an opaque session ID.</p>\n"
             "<table class=\"kv\">\n",
             r);
    ap_rvputs(r, "<tr><th scope=\"row\">User</th><td>", esc(r, s->user),
              "</td></tr>\n<tr><th scope=\"row\">Role</th><td>",
              esc(r, s->role), "</td></tr>\n<tr><th scope=\"row\">Created"
              "</th><td>", fmt_time(r, ss->meta.created),
              "</td></tr>\n<tr><th scope=\"row\">Last access</th><td>",
              fmt_time(r, ss->meta.last_access),
              "</td></tr>\n<tr><th scope=\"row\">Expires</th><td>",
              fmt_time(r, ss->expires), " (",
              strcmp(ss->expires_why, "idle") == 0
                  ? "idle timeout, unless you come back before"
                  : "absolute timeout, however active you are",
              ")</td></tr>\n", NULL);
    ap_rprintf(r,
               "<tr><th scope=\"row\">Visits</th><td>%" APR_UINT64_T_FMT
               "</td></tr>\n",
               s->visits);
    ap_rvputs(r, "<tr><th scope=\"row\">Cookie</th><td><code>",
              esc(r, sdemo_cookie_name(r)),
              "</code> (HttpOnly: page scripts cannot read it)</td></tr>\n"
              "<tr><th scope=\"row\">In the logs</th><td><code>",
              ss->prefix,
              "</code> (a prefix of the ID's hash; the ID itself is never "
              "logged)</td></tr>\n</table>\n<h2>Notes</h2>\n",
              NULL);
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
    action_button(r, ss, "clear_notes", NULL, "Clear notes",
                  "btn btn-secondary");
    ap_rvputs(r, "<form method=\"post\" action=\"", esc(r, d->logout_url),
              "\">\n", NULL);
    hidden_csrf(r, ss);
    ap_rputs("<button class=\"btn\" type=\"submit\">Log out</button>\n"
             "</form>\n</div>\n",
             r);
    your_sessions(r, ss);
    ap_rputs("</div>\n", r);
    page_end(r);
}

static int session_gone(request_rec *r)
{
    return redirect(r, sdemo_login_redirect(r));
}

/* A form posted after its session ended (elsewhere, or by a timeout):
 * say that what it carried was not saved. */
static int form_orphaned(request_rec *r)
{
    return redirect(r, apr_pstrcat(r->pool, sdemo_dconf(r)->login_url,
                                   "?ended=1", NULL));
}

static int dashboard_post(request_rec *r, sdemo_session *ss)
{
    apr_table_t *form;
    const char *action, *note;
    apr_uint64_t n = 0;
    int rc;

    if (posted_form(r, &form) != OK)
        return OK;
    if (!session_token_ok(form, ss))
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
    else if (action && strcmp(action, "end_session") == 0) {
        rc = sdemo_session_end_other(r, ss, apr_table_get(form, "session"));
        if (rc == HTTP_NOT_FOUND) {
            r->status = HTTP_NOT_FOUND;
            dashboard_html(r, ss,
                           "That session had already ended.", 0);
            return OK;
        }
    }
    else if (action && strcmp(action, "logout_all") == 0) {
        /* Ends every session of this user, on every device, this one
         * included (ASVS 4.0.3 3.3.4 / 5.0 7.5.2). */
        rc = sdemo_session_end_all(r, ss, &n);
        if (rc == OK) {
            sdemo_cookie_clear(r);
            return redirect(
                r, apr_psprintf(r->pool, "%s?ended_all=%" APR_UINT64_T_FMT,
                                sdemo_dconf(r)->login_url, n));
        }
    }
    else {
        return message_page(r, HTTP_BAD_REQUEST, "Unknown action",
                            "The form asked for an action the dashboard "
                            "does not know (add_note, clear_notes, "
                            "end_session or logout_all).");
    }
    if (rc == HTTP_SERVICE_UNAVAILABLE)
        return unavailable_page(r);
    if (rc == HTTP_NOT_FOUND)
        return form_orphaned(r);
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        r->status = rc;
        dashboard_html(r, ss,
                       "That note does not fit: a note holds at most 1000 "
                       "bytes and a session at most SessionDemoMaxDataSize. "
                       "Nothing was changed; clear some notes first.",
                       0);
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
    int rc;

    if ((rc = page_session(r, &ss)) != OK)
        return rc == DONE ? OK : rc;
    if (!ss)
        return r->method_number == M_POST ? form_orphaned(r)
                                          : session_gone(r);
    if (r->method_number == M_POST)
        return dashboard_post(r, ss);

    /* One visit per view, counted atomically even when many requests of
     * the session run at once. */
    rc = sdemo_session_update(r, ss, count_visit, NULL);
    if (rc == HTTP_NOT_FOUND)
        return session_gone(r);
    if (rc == HTTP_SERVICE_UNAVAILABLE)
        return unavailable_page(r);
    if (rc != OK)
        return message_page(r, HTTP_SERVICE_UNAVAILABLE, "Try again",
                            "The session could not be updated. Please try "
                            "again.");
    if (wants_json(r))
        dashboard_json(r, ss);
    else
        dashboard_html(r, ss, NULL, 0);
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
    int rc;

    if ((rc = page_session(r, &ss)) != OK)
        return rc == DONE ? OK : rc;
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
    if (posted_form(r, &form) != OK)
        return OK;
    if (ss) {
        if (!session_token_ok(form, ss))
            return csrf_refused(r);
        if (sdemo_session_end(r, ss, NULL) != OK)
            return unavailable_page(r);
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "SDEMO00103: logout: user \"%s\" from %s, session %s",
                      sd_log_name(r->pool, ss->s->user),
                      r->useragent_ip, ss->prefix);
    }
    sdemo_cookie_clear(r);
    return redirect(r, apr_pstrcat(r->pool, d->login_url, "?logged_out=1",
                                   NULL));
}

/* ---------------------------------------------------------------------
 * Status
 * --------------------------------------------------------------------- */

typedef enum { FIG_COUNT, FIG_BYTES, FIG_GAUGE } fig_unit;

/* The store's figures, once: the status page (HTML, JSON, Prometheus) and
 * mod_status's /server-status (HTML and ?auto) all render this table. A
 * figure a store does not have (capacity and memory in Redis) is left
 * out, not shown as 0. */
typedef struct {
    const char *json;           /* JSON field */
    const char *auto_key;       /* /server-status?auto key */
    const char *label;          /* HTML row */
    const char *help;           /* what it means, for people and Prometheus */
    fig_unit unit;
    unsigned need;              /* SD_STATS_* bits it needs */
    apr_size_t offset;          /* in sd_store_stats_t */
} sdemo_figure_t;

#define FIGURE(json, key, label, help, unit, need, field)                      \
    {json, "SessionDemo" key, label, help, unit, need,                         \
     APR_OFFSETOF(sd_store_stats_t, field)}

static const sdemo_figure_t figures[] = {
    FIGURE("capacity", "Capacity", "Capacity",
           "Most sessions the store holds at once", FIG_GAUGE,
           SD_STATS_CAPACITY, capacity),
    FIGURE("sessions", "Sessions", "Live sessions",
           "Sessions that have not ended", FIG_GAUGE, 0, sessions),
    FIGURE("memory_used", "MemoryUsed", "Memory used",
           "Shared memory holding session data now", FIG_BYTES,
           SD_STATS_CAPACITY, memory_used),
    FIGURE("memory_total", "MemoryTotal", "Memory total",
           "Shared memory for session data (SessionDemoMemory)", FIG_BYTES,
           SD_STATS_CAPACITY, memory_total),
    FIGURE("logins_ok", "LoginsOk", "Logins ok", "Successful logins",
           FIG_COUNT, 0, logins_ok),
    FIGURE("logins_failed", "LoginsFailed", "Logins failed",
           "Logins refused for a wrong name or password", FIG_COUNT, 0,
           logins_failed),
    FIGURE("logins_throttled", "LoginsThrottled", "Logins throttled",
           "Logins refused with 429 by SessionDemoLoginThrottle", FIG_COUNT,
           0, logins_throttled),
    FIGURE("hits", "Hits", "Lookups that hit",
           "Requests whose cookie named a live session", FIG_COUNT, 0, hits),
    FIGURE("misses", "Misses", "Lookups that missed",
           "Requests whose cookie named no live session", FIG_COUNT, 0,
           misses),
    FIGURE("expirations", "Expirations", "Expirations",
           "Sessions ended by the idle or absolute timeout", FIG_COUNT, 0,
           expirations),
    FIGURE("evictions", "Evictions", "Evictions",
           "Sessions dropped to make room in a full store", FIG_COUNT, 0,
           evictions),
    FIGURE("refusals", "Refusals", "Refused (store full)",
           "Logins refused because the store was full", FIG_COUNT, 0,
           refusals),
    FIGURE("repairs", "Repairs", "Crash repairs",
           "Store stripes repaired after a process died inside one",
           FIG_COUNT, SD_STATS_CAPACITY, repairs),
    FIGURE("errors", "Errors", "Store errors",
           "Operations the store could not answer (503s)", FIG_COUNT, 0,
           errors),
    FIGURE("failovers", "Failovers", "Failovers seen",
           "Times this process found the Redis master moved (Sentinel)",
           FIG_COUNT, SD_STATS_REPLICATION, failovers),
    FIGURE("unreplicated", "Unreplicated", "Writes not replicated in time",
           "Logins and logouts that fewer replicas acknowledged than "
           "SessionDemoRedisWait asks for",
           FIG_COUNT, SD_STATS_REPLICATION, unreplicated),
};
#define NFIGURES (sizeof(figures) / sizeof(figures[0]))

static apr_uint64_t figure(const sd_store_stats_t *s, const sdemo_figure_t *f)
{
    return *(const apr_uint64_t *)((const char *)s + f->offset);
}

static int has(const sd_store_stats_t *s, const sdemo_figure_t *f)
{
    return (s->have & f->need) == f->need;
}

/* 1536 -> "1.5 KiB": figures people read at a glance. */
static const char *human(apr_pool_t *p, apr_uint64_t v, fig_unit unit)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double d = (double)v;
    int i = 0;
    if (unit != FIG_BYTES)
        return apr_psprintf(p, "%" APR_UINT64_T_FMT, v);
    while (d >= 1024 && i < 4) {
        d /= 1024;
        i++;
    }
    return i ? apr_psprintf(p, "%.1f %s", d, units[i])
             : apr_psprintf(p, "%" APR_UINT64_T_FMT " bytes", v);
}

static void figures_html(request_rec *r, const sd_store_stats_t *s)
{
    apr_size_t i;
    ap_rputs("<table class=\"kv\">\n", r);
    ap_rvputs(r, "<tr><th scope=\"row\">Store</th><td>", esc(r, s->kind),
              s->address ? " at " : "", s->address ? esc(r, s->address) : "",
              s->connected ? " (connected)" : " (not reachable)",
              "</td><td class=\"muted\">Where sessions live "
              "(SessionDemoStore)</td></tr>\n",
              NULL);
    if (sdemo_sconf(r->server)->store == SDEMO_STORE_SENTINEL) {
        const sd_redis_config_t *rc = &sdemo_sconf(r->server)->redis;
        ap_rvputs(r, "<tr><th scope=\"row\">Sentinels</th><td>",
                  esc(r, apr_array_pstrcat(r->pool, rc->sentinels, ',')),
                  "</td><td class=\"muted\">Asked for the master of <code>",
                  esc(r, rc->master_name),
                  "</code>; the store above is the master they named"
                  "</td></tr>\n",
                  NULL);
    }
    if (s->have & SD_STATS_CAPACITY) {
        ap_rprintf(r,
                   "<tr><th scope=\"row\">Use</th><td>%.1f%% of capacity, "
                   "%.1f%% of memory</td><td class=\"muted\">How full the "
                   "store is; at 100%% SessionDemoWhenFull applies</td>"
                   "</tr>\n",
                   s->capacity ? 100.0 * (double)s->sessions /
                                     (double)s->capacity
                               : 0.0,
                   s->memory_total ? 100.0 * (double)s->memory_used /
                                         (double)s->memory_total
                                   : 0.0);
    }
    for (i = 0; i < NFIGURES; i++)
        if (has(s, &figures[i]))
            ap_rvputs(r, "<tr><th scope=\"row\">", figures[i].label,
                      "</th><td>",
                      human(r->pool, figure(s, &figures[i]), figures[i].unit),
                      "</td><td class=\"muted\">", figures[i].help,
                      "</td></tr>\n", NULL);
    if (s->latency_us)
        ap_rprintf(r,
                   "<tr><th scope=\"row\">Round trip</th><td>%.2f ms</td>"
                   "<td class=\"muted\">The last request to the store</td>"
                   "</tr>\n",
                   (double)s->latency_us / 1000.0);
    if (s->last_error)
        ap_rvputs(r, "<tr><th scope=\"row\">Last error</th><td colspan=\"2\">",
                  esc(r, s->last_error), "</td></tr>\n", NULL);
    ap_rputs("</table>\n", r);
}

/* Prometheus's text format: counters end in _total, bytes in _bytes, each
 * with its HELP and TYPE. */
static void figures_prometheus(request_rec *r, const sd_store_stats_t *s)
{
    apr_size_t i;
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    ap_rvputs(r,
              "# HELP session_demo_store_up Whether the session store "
              "answered its last operation\n# TYPE session_demo_store_up "
              "gauge\nsession_demo_store_up{store=\"",
              s->kind, "\"} ", s->connected ? "1" : "0", "\n", NULL);
    for (i = 0; i < NFIGURES; i++) {
        const sdemo_figure_t *f = &figures[i];
        const char *name;
        if (!has(s, f))
            continue;
        name = apr_pstrcat(r->pool, "session_demo_", f->json,
                           f->unit == FIG_BYTES   ? "_bytes"
                           : f->unit == FIG_COUNT ? "_total"
                                                  : "",
                           NULL);
        ap_rvputs(r, "# HELP ", name, " ", f->help, "\n# TYPE ", name,
                  f->unit == FIG_COUNT ? " counter\n" : " gauge\n", name,
                  " ", apr_psprintf(r->pool, "%" APR_UINT64_T_FMT, figure(s, f)),
                  "\n", NULL);
    }
    if (s->latency_us)
        ap_rprintf(r,
                   "# HELP session_demo_store_latency_seconds Round trip of "
                   "the last store request\n# TYPE "
                   "session_demo_store_latency_seconds gauge\n"
                   "session_demo_store_latency_seconds %.6f\n",
                   (double)s->latency_us / 1e6);
}

int sdemo_status_hook(request_rec *r, int flags)
{
    sd_store_stats_t s;
    apr_size_t i;

    if (!sdemo_store())
        return OK;
    sd_store_stats(sdemo_store(), r->pool, &s);
    if (flags & AP_STATUS_SHORT) {
        ap_rvputs(r, "SessionDemoStore: ", s.kind, "\n", NULL);
        for (i = 0; i < NFIGURES; i++)
            if (has(&s, &figures[i]))
                ap_rprintf(r, "%s: %" APR_UINT64_T_FMT "\n",
                           figures[i].auto_key, figure(&s, &figures[i]));
        return OK;
    }
    ap_rputs("<hr>\n<h2>Server sessions (mod_session_demo)</h2>\n", r);
    figures_html(r, &s);
    return OK;
}

static int query_has(request_rec *r, const char *word)
{
    apr_size_t n = strlen(word);
    return r->args && strncmp(r->args, word, n) == 0 &&
           (r->args[n] == '\0' || r->args[n] == '&');
}

int sdemo_status_handler(request_rec *r)
{
    const char *accept = apr_table_get(r->headers_in, "Accept");
    sd_store_stats_t s;
    apr_size_t i;

    sdemo_security_headers(r);
    ap_allow_methods(r, REPLACE_ALLOW, "GET", "HEAD", NULL);
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    if (!sdemo_store())
        return message_page(r, HTTP_SERVICE_UNAVAILABLE, "No store",
                            "The session store is not set up.");
    sd_store_stats(sdemo_store(), r->pool, &s);
    if (query_has(r, "prometheus") ||
        (accept && ap_strstr_c(accept, "version=0.0.4"))) {
        figures_prometheus(r, &s);
        return OK;
    }
    if (wants_json(r) || query_has(r, "json")) {
        ap_set_content_type(r, "application/json");
        ap_rvputs(r, "{\"store\":", json_str(r->pool, s.kind),
                  ",\"connected\":", s.connected ? "true" : "false", NULL);
        if (s.address)
            ap_rvputs(r, ",\"address\":", json_str(r->pool, s.address), NULL);
        if (s.last_error)
            ap_rvputs(r, ",\"last_error\":", json_str(r->pool, s.last_error),
                      NULL);
        if (s.latency_us)
            ap_rprintf(r, ",\"latency_us\":%" APR_UINT64_T_FMT, s.latency_us);
        for (i = 0; i < NFIGURES; i++)
            if (has(&s, &figures[i]))
                ap_rprintf(r, ",\"%s\":%" APR_UINT64_T_FMT, figures[i].json,
                           figure(&s, &figures[i]));
        ap_rputs("}\n", r);
        return OK;
    }
    page_start(r, "Session store status");
    ap_rputs("<div class=\"card wide\">\n<h1>Session store</h1>\n", r);
    figures_html(r, &s);
    ap_rputs("<p class=\"muted\">Counters run since the store was created "
             "(restarts keep them). Also as <a href=\"?json\">JSON</a> and "
             "for <a href=\"?prometheus\">Prometheus</a>.</p>\n</div>\n",
             r);
    page_end(r);
    return OK;
}

/* ---------------------------------------------------------------------
 * Guarded areas: AuthType session-demo
 * --------------------------------------------------------------------- */

static const char *const identity_headers[] = {"X-Session-Demo-User",
                                               "X-Session-Demo-Role"};

/* The header name with '_' read as '-': many application servers (CGI,
 * PHP, WSGI, Rack) map both to the same variable, so X_Session_Demo_User
 * would reach a backend as HTTP_X_SESSION_DEMO_USER just like ours. */
static int poses_as(const char *name, const char *ours)
{
    for (; *name && *ours; name++, ours++) {
        char a = *name == '_' ? '-' : apr_tolower(*name);
        char b = apr_tolower(*ours);
        if (a != b)
            return 0;
    }
    return !*name && !*ours;
}

static int drop_posing(void *baton, const char *key, const char *val)
{
    apr_array_header_t *bad = baton;
    apr_size_t i;
    for (i = 0; i < sizeof(identity_headers) / sizeof(*identity_headers); i++)
        if (poses_as(key, identity_headers[i]))
            APR_ARRAY_PUSH(bad, const char *) = key;
    return 1;
}

/* Clients must never be able to pose as the module towards a backend:
 * runs first, before anything else sees the request, for HTTP/1.1 and
 * HTTP/2 alike (both arrive here as r->headers_in). */
int sdemo_strip_identity_headers(request_rec *r)
{
    apr_array_header_t *bad = apr_array_make(r->pool, 2, sizeof(char *));
    int i;
    apr_table_do(drop_posing, bad, r->headers_in, NULL);
    for (i = 0; i < bad->nelts; i++)
        apr_table_unset(r->headers_in, APR_ARRAY_IDX(bad, i, const char *));
    return DECLINED;
}

int sdemo_guard_authn(request_rec *r)
{
    const char *type = ap_auth_type(r);
    sdemo_session *ss;
    sdemo_dir_cfg *d;
    int status;

    if (!type || strcasecmp(type, SDEMO_AUTH_TYPE) != 0)
        return DECLINED;
    ss = sdemo_session_load(r, &status);
    sdemo_security_headers(r);
    if (status != OK) {
        /* An auth hook cannot write a page; httpd's error response then
         * sends this text instead of its generic one. */
        ap_custom_response(r, status,
                           "<!doctype html>\n<title>Sessions unavailable"
                           "</title>\n<h1>Sessions unavailable</h1>\n<p>The "
                           "session store cannot be reached right now. You "
                           "have not been logged out: try again in a few "
                           "seconds.</p>\n");
        return status;
    }
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
        apr_table_setn(r->headers_in, identity_headers[0], r->user);
        apr_table_setn(r->headers_in, identity_headers[1], ss->s->role);
    }
    return OK;
}

int sdemo_guard_note_failure(request_rec *r, const char *type)
{
    return strcasecmp(type, SDEMO_AUTH_TYPE) == 0 ? OK : DECLINED;
}

/* A 401 means "send credentials"; a cookie login has none to send. When
 * Require refuses a logged-in user of ours, httpd answers 401 unless
 * AuthzSendForbiddenOnFailure is set; this error filter turns that
 * answer into our 403 page before the status line is written. */
static apr_status_t forbidden_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    apr_bucket *e;
    int eos = 0;

    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb);
         e = APR_BUCKET_NEXT(e))
        if (APR_BUCKET_IS_EOS(e))
            eos = 1;
    apr_brigade_cleanup(bb);
    if (!eos)
        return APR_SUCCESS;
    ap_remove_output_filter(f);
    r->status = HTTP_FORBIDDEN;
    r->status_line = NULL;
    apr_table_unset(r->headers_out, "WWW-Authenticate");
    apr_table_unset(r->err_headers_out, "WWW-Authenticate");
    apr_table_unset(r->headers_out, "Content-Length");
    r->content_type = NULL;
    message_page(r, HTTP_FORBIDDEN, "Access denied",
                 apr_pstrcat(r->pool, "You are logged in as ", r->user,
                             ", and this page is not open to that account.",
                             NULL));
    /* message_page() wrote through r->output_filters (this filter is
     * already out of the chain); the end of the response follows it. */
    APR_BRIGADE_INSERT_TAIL(bb,
                            apr_bucket_eos_create(r->connection->bucket_alloc));
    return ap_pass_brigade(r->output_filters, bb);
}

void sdemo_guard_insert_error_filter(request_rec *r)
{
    const char *type;
    if (r->status != HTTP_UNAUTHORIZED || !r->user)
        return;
    type = r->ap_auth_type ? r->ap_auth_type : ap_auth_type(r);
    if (type && strcasecmp(type, SDEMO_AUTH_TYPE) == 0)
        ap_add_output_filter("SESSION_DEMO_FORBIDDEN", NULL, r,
                             r->connection);
}

void sdemo_guard_register(void)
{
    ap_register_output_filter("SESSION_DEMO_FORBIDDEN", forbidden_filter,
                              NULL, AP_FTYPE_CONTENT_SET);
}
