/*
 * The session lifecycle (see sdemo_session.h).
 *
 * Store results are translated here once: SD_EUNAVAIL becomes a 503 with
 * Retry-After that leaves every cookie alone (an outage is never a
 * logout), APR_NOTFOUND an anonymous visitor. One line goes to the error
 * log when this process first sees the store fail, and one when it
 * answers again, so an outage does not write a line per request.
 */

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_escape.h"
#include "apr_atomic.h"
#include "apr_encode.h"

#include "sdemo_session.h"
#include "sd_cookie.h"
#include "sd_id.h"
#include "sd_sha256.h"
#include "sd_token.h"

#define FORM_COOKIE_BYTES 16          /* randomness of the login-form cookie */
#define DEVICE_TTL (30 * 86400)       /* a device cookie is good for 30 days */
#define NONCE_BYTES 12                /* a device cookie's own name */

/* ---------------------------------------------------------------------
 * Store results
 * --------------------------------------------------------------------- */

static volatile apr_uint32_t store_down;  /* this process saw it fail */

/* Note what the store answered; returns it. */
static apr_status_t seen(request_rec *r, apr_status_t rv)
{
    if (sdemo_store()->logs_outages) {
        /* The store says it itself, with more to say (its address). */
    }
    else if (rv == SD_EUNAVAIL) {
        if (!apr_atomic_xchg32(&store_down, 1)) {
            sd_store_stats_t st;
            sd_store_stats(sdemo_store(), r->pool, &st);
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, r->server,
                         "SDEMO00060: the session store (%s%s%s) cannot be "
                         "reached%s%s; pages that need a session answer 503 "
                         "until it is back, and no one is logged out",
                         st.kind, st.address ? " at " : "",
                         st.address ? st.address : "",
                         st.last_error ? ": " : "",
                         st.last_error ? st.last_error : "");
        }
    }
    else if (store_down && apr_atomic_xchg32(&store_down, 0)) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, r->server,
                     "SDEMO00061: the session store answers again");
    }
    return rv;
}

apr_uint32_t sdemo_retry_after(void)
{
    sd_store_t *st = sdemo_store();
    return st && st->retry_after ? st->retry_after : 5;
}

static int unavailable(request_rec *r)
{
    apr_table_setn(r->err_headers_out, "Retry-After",
                   apr_psprintf(r->pool, "%u", sdemo_retry_after()));
    return HTTP_SERVICE_UNAVAILABLE;
}

/* ---------------------------------------------------------------------
 * Cookies
 * --------------------------------------------------------------------- */

static int cookie_secure(request_rec *r, const sdemo_dir_cfg *d)
{
    if (strcmp(d->samesite, "None") == 0)
        return 1;
    if (d->secure == SDEMO_SECURE_AUTO)
        return sdemo_is_tls(r);
    return d->secure == SDEMO_SECURE_ON;
}

/* Over TLS the cookies are Secure, host-only and Path=/, which is exactly
 * what the __Host- prefix promises, so browsers will refuse a look-alike
 * cookie planted by a sibling domain or over plain HTTP. */
static const char *named(request_rec *r, const sdemo_dir_cfg *d,
                         const char *suffix)
{
    const char *name = apr_pstrcat(r->pool, d->cookie_name, suffix, NULL);
    if ((*suffix || cookie_secure(r, d)) && sdemo_is_tls(r))
        return apr_pstrcat(r->pool, "__Host-", name, NULL);
    return name;
}

const char *sdemo_cookie_name(request_rec *r)
{
    return named(r, sdemo_dconf(r), "");
}

static void cookie_out(request_rec *r, const char *suffix, const char *value,
                       int clear, long max_age, const char *samesite)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    sd_cookie_attrs_t a;
    a.samesite = samesite ? samesite : d->samesite;
    /* The helper cookies (login form, device) are Secure exactly when the
     * request came over TLS: a Secure cookie set over plain HTTP would
     * never come back, and the login form would never work. */
    a.secure = *suffix ? sdemo_is_tls(r) : cookie_secure(r, d);
    a.clear = clear;
    a.max_age = max_age;
    /* err_headers_out: the cookie must survive error and redirect
     * responses too. */
    apr_table_addn(r->err_headers_out, "Set-Cookie",
                   sd_cookie_format(r->pool, named(r, d, suffix),
                                    clear ? "" : value, &a));
}

void sdemo_cookie_clear(request_rec *r)
{
    cookie_out(r, "", NULL, 1, 0, NULL);
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

/* The value of our cookie @a name, or NULL when the request has none, or
 * more than one (cookie tossing), or a malformed header. */
static const char *cookie_in(request_rec *r, const char *name)
{
    cookie_collect c;
    const char *value = NULL;
    sd_cookie_result_t res;

    c.vals = apr_array_make(r->pool, 2, sizeof(const char *));
    apr_table_do(collect_cookie, &c, r->headers_in, "Cookie", NULL);
    if (c.vals->nelts == 0)
        return NULL;
    res = sd_cookie_find(r->pool, (const char *const *)c.vals->elts,
                         c.vals->nelts, name, &value);
    if (res == SD_COOKIE_DUPLICATE || res == SD_COOKIE_MALFORMED)
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "SDEMO00020: %s cookie %s from %s; treated as absent",
                      res == SD_COOKIE_DUPLICATE ? "duplicate" : "malformed",
                      name, r->useragent_ip);
    return res == SD_COOKIE_FOUND ? value : NULL;
}

/* The session ID the request presents, or NULL when it presents none we
 * could have issued. */
static const char *request_id(request_rec *r)
{
    const char *v = cookie_in(r, sdemo_cookie_name(r));
    return v && sd_id_wellformed(v, strlen(v)) ? v : NULL;
}

/* ---------------------------------------------------------------------
 * Signed tokens (sd_token.c): login forms and device cookies need no
 * store space this way.
 * --------------------------------------------------------------------- */

static const char *token_make(apr_pool_t *p, const char *purpose,
                              const void *bind, apr_size_t blen,
                              apr_int64_t now)
{
    char *out = apr_palloc(p, SD_TOKEN_LEN + 1);
    sd_token_make(sdemo_secret(), 32, purpose, bind, blen, now, out);
    return out;
}

static int token_check(const char *purpose, const void *bind, apr_size_t blen,
                       const char *token, apr_int64_t now, apr_int64_t ttl)
{
    return sd_token_check(sdemo_secret(), 32, purpose, bind, blen, token, now,
                          ttl);
}

/* The login form is bound to a random cookie of the browser that fetched
 * it (double submit): a token lifted from one client is useless to
 * another, with or without an Origin header. */
const char *sdemo_login_token(request_rec *r)
{
    const char *c = cookie_in(r, named(r, sdemo_dconf(r), "_form"));
    if (!c || strlen(c) != (FORM_COOKIE_BYTES * 4 + 2) / 3) {
        unsigned char rnd[FORM_COOKIE_BYTES];
        char *v = apr_palloc(r->pool, (sizeof(rnd) * 4 + 2) / 3 + 1);
        if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS)
            return "";
        sd_b64url_encode(rnd, sizeof(rnd), v);
        /* Strict: the form cookie is needed only on this site's own POST
         * to the login page. */
        cookie_out(r, "_form", v, 0, SDEMO_LOGIN_TOKEN_TTL, "Strict");
        c = v;
    }
    return token_make(r->pool, "login", c, strlen(c), sdemo_now(r));
}

int sdemo_login_token_ok(request_rec *r, const char *token)
{
    const char *c = cookie_in(r, named(r, sdemo_dconf(r), "_form"));
    if (!c)
        return 0;
    return token_check("login", c, strlen(c), token, sdemo_now(r),
                       SDEMO_LOGIN_TOKEN_TTL);
}

/* Percent-encode a local path for a return= parameter. */
const char *sdemo_login_redirect(request_rec *r)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    request_rec *main = r->main ? r->main : r;
    const char *here = main->unparsed_uri;
    if (!here || here[0] != '/' || strlen(here) > 2000)
        return d->login_url;
    return apr_pstrcat(r->pool, d->login_url, "?return=",
                       apr_pescape_urlencoded(r->pool, here), NULL);
}

/* ---------------------------------------------------------------------
 * Loading and changing the session
 * --------------------------------------------------------------------- */

static sdemo_session **request_cache(request_rec *r)
{
    request_rec *main = r->main ? r->main : r;
    sdemo_session **cached = NULL;
    apr_pool_userdata_get((void **)&cached, "sdemo-session", main->pool);
    return cached;
}

/* When the session ends if unused, and which timeout ends it, under the
 * stricter of the limits it was created with and this area's. */
static void expiry(request_rec *r, sdemo_session *ss)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    apr_int64_t idle_end = sdemo_now(r) + d->idle;
    apr_int64_t abs_end = ss->meta.created + d->max_age;
    if (ss->meta.expires && ss->meta.expires < idle_end)
        idle_end = ss->meta.expires;
    ss->expires = idle_end < abs_end ? idle_end : abs_end;
    ss->expires_why = idle_end < abs_end ? "idle" : "absolute";
}

/* Decode a record the store gave us; one that does not decode (the store
 * was written by something else) ends its session, with one log line. */
static int decode_or_end(request_rec *r, sdemo_session *ss, const char *buf,
                         apr_size_t len, sd_session_t **out)
{
    if (sd_record_decode(r->pool, buf, len, out) == APR_SUCCESS)
        return 1;
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  "SDEMO00021: session %s holds a damaged record; it is "
                  "ended",
                  ss->prefix);
    seen(r, sd_store_remove(sdemo_store(), &ss->key, NULL));
    return 0;
}

sdemo_session *sdemo_session_load(request_rec *r, int *status)
{
    request_rec *main = r->main ? r->main : r;
    sdemo_session **cached, *ss;
    sdemo_dir_cfg *d = sdemo_dconf(r);
    sd_store_t *st = sdemo_store();
    apr_int64_t now = sdemo_now(r);
    const char *id, *why;
    apr_size_t len = 0;
    char *buf;
    apr_status_t rv;

    *status = OK;
    if ((cached = request_cache(r)) != NULL)
        return *cached;
    cached = apr_pcalloc(main->pool, sizeof(*cached));
    apr_pool_userdata_setn(cached, "sdemo-session", NULL, main->pool);

    if (!st || !(id = request_id(main)))
        return NULL;
    ss = apr_pcalloc(main->pool, sizeof(*ss));
    sd_id_key(id, strlen(id), &ss->key);
    sd_key_prefix(&ss->key, ss->prefix);

    rv = seen(r, sd_store_get(st, &ss->key, now, main->pool, &buf, &len,
                              &ss->meta));
    if (rv == SD_EUNAVAIL) {
        /* Not a logout: the cookie stays, and the next request after the
         * outage finds the session as it was. */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "SDEMO00062: the session of this request from %s "
                      "could not be read: the store is unavailable",
                      main->useragent_ip);
        *status = unavailable(r);
        apr_pool_userdata_setn(NULL, "sdemo-session", NULL, main->pool);
        return NULL;
    }
    if (rv == APR_TIMEUP) {
        sd_session_t *gone;
        if (sd_record_decode(main->pool, buf, len, &gone) == APR_SUCCESS)
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "SDEMO00024: session %s of user \"%s\" from %s "
                          "expired (idle or absolute timeout)",
                          ss->prefix, sd_log_name(r->pool, gone->user),
                          main->useragent_ip);
        return NULL;
    }
    if (rv != APR_SUCCESS)
        return NULL;
    if (!decode_or_end(main, ss, buf, len, &ss->s))
        return NULL;

    /* A guarded area may be stricter than the login page that created
     * the session: its own SessionDemoIdleTimeout and SessionDemoMaxAge
     * apply to every request it serves. */
    if (now - ss->meta.last_access > d->idle) {
        sdemo_session_end(main, ss, "idle timeout of this area");
        return NULL;
    }
    if (now - ss->meta.created >= d->max_age) {
        sdemo_session_end(main, ss, "absolute timeout of this area");
        return NULL;
    }
    /* The store has just marked the session used at this request. */
    ss->meta.last_access = now;
    expiry(r, ss);

    if ((why = sdemo_cred_still_valid(main, ss->s)) != NULL) {
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
                          ss->prefix, sd_log_name(r->pool, ss->s->user),
                          main->useragent_ip);
            seen(r, sd_store_remove(st, &ss->key, NULL));
            return NULL;
        }
    }
    *cached = ss;
    return ss;
}

/* Read-modify-write without holding a lock across the change: change a
 * private copy of what the request loaded, replace it if its version is
 * still the one loaded, else read it again and retry. The common case
 * costs one encode and one replace. */
int sdemo_session_update(request_rec *r, sdemo_session *ss,
                         int (*change)(request_rec *r, sd_session_t *s,
                                       void *baton),
                         void *baton)
{
    sd_store_t *st = sdemo_store();
    sd_session_t *cur = ss->s;
    apr_uint64_t version = ss->meta.version;
    int tries;

    for (tries = 0; tries < 1000; tries++) {
        sd_session_t *next = apr_pmemdup(r->pool, cur, sizeof(*cur));
        apr_size_t elen, len;
        sd_store_meta_t meta;
        apr_status_t rv;
        char *enc, *buf;
        int rc;

        /* A copy, so that a refused change (413) leaves the page showing
         * what is stored. */
        next->notes = apr_array_copy(r->pool, cur->notes);
        if ((rc = change(r, next, baton)) != OK)
            return rc;
        elen = sd_record_encode(r->pool, next, &enc);
        if (elen > st->max_data)
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        rv = seen(r, sd_store_replace(st, &ss->key, version, enc, elen,
                                      sdemo_now(r)));
        if (rv == APR_SUCCESS) {
            ss->s = next;
            ss->meta.version = version + 1;
            return OK;
        }
        if (rv == SD_EUNAVAIL)
            return unavailable(r);
        if (rv == APR_ENOSPC || rv == APR_EINVAL)
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        if (rv != APR_EAGAIN)
            return HTTP_NOT_FOUND;

        /* Another request changed it first: start again from its copy. */
        rv = seen(r, sd_store_get(st, &ss->key, sdemo_now(r), r->pool, &buf,
                                  &len, &meta));
        if (rv == SD_EUNAVAIL)
            return unavailable(r);
        if (rv != APR_SUCCESS)
            return HTTP_NOT_FOUND;
        if (!decode_or_end(r, ss, buf, len, &cur))
            return HTTP_NOT_FOUND;
        version = meta.version;
        ss->meta.expires = meta.expires;
    }
    return unavailable(r);
}

int sdemo_session_end(request_rec *r, sdemo_session *ss, const char *why)
{
    sdemo_session **cached;
    apr_status_t rv = APR_SUCCESS;

    if (sdemo_store())
        rv = seen(r, sd_store_remove(sdemo_store(), &ss->key, NULL));
    if (rv == SD_EUNAVAIL)
        return unavailable(r);
    if (why)
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "SDEMO00023: session %s of user \"%s\" from %s "
                      "ended: %s",
                      ss->prefix, sd_log_name(r->pool, ss->s->user),
                      r->useragent_ip, why);
    /* Forget it for the rest of this request. */
    if ((cached = request_cache(r)) != NULL)
        *cached = NULL;
    return OK;
}

/* ---------------------------------------------------------------------
 * A user's sessions
 * --------------------------------------------------------------------- */

/* Whose @a ss is: the user under this request's user file. Only the
 * pages that list or end a user's sessions need it. */
static const sd_owner_t *owner_of(request_rec *r, const sdemo_session *ss,
                                  sd_owner_t *out)
{
    sd_owner(sdemo_realm(r), ss->s->user, out);
    return out;
}

static const char *handle_of(apr_pool_t *p, const sd_key_t *key)
{
    /* The stored half of the key (a hash of the ID, never the ID), in
     * hex: it names a session to its owner and is useless to anyone
     * else, since ending one checks the owner. */
    return apr_pescape_hex(p, key->b, SD_SHM_KEY_BYTES, 0);
}

int sdemo_session_list(request_rec *r, sdemo_session *ss,
                       apr_array_header_t **infos)
{
    apr_array_header_t *entries;
    sd_owner_t owner;
    apr_status_t rv;
    int i;

    rv = seen(r, sd_store_list_owner(sdemo_store(), owner_of(r, ss, &owner),
                                     sdemo_now(r), r->pool, &entries));
    if (rv == SD_EUNAVAIL)
        return unavailable(r);
    *infos = apr_array_make(r->pool, entries->nelts + 1,
                            sizeof(sdemo_session_info));
    for (i = 0; rv == APR_SUCCESS && i < entries->nelts; i++) {
        sd_store_entry_t *e = &APR_ARRAY_IDX(entries, i, sd_store_entry_t);
        sdemo_session_info *in = apr_array_push(*infos);
        sd_session_t *s;
        in->handle = handle_of(r->pool, &e->key);
        in->created = e->created;
        in->last_access = e->last_access;
        in->expires = e->expires;
        in->device = sd_record_decode(r->pool, e->record, e->len, &s) ==
                             APR_SUCCESS && s->device && *s->device
                         ? s->device
                         : "Unknown device";
        in->current =
            memcmp(e->key.b, ss->key.b, SD_SHM_KEY_BYTES) == 0;
        if (in->current)
            in->last_access = sdemo_now(r);
    }
    return OK;
}

int sdemo_session_end_other(request_rec *r, sdemo_session *ss,
                            const char *handle)
{
    sd_owner_t owner;
    sd_key_t key;
    apr_size_t n = 0;
    apr_status_t rv;

    memset(&key, 0, sizeof(key));
    if (!handle || strlen(handle) != 2 * SD_SHM_KEY_BYTES ||
        apr_unescape_hex(key.b, handle, strlen(handle), 0, &n) !=
            APR_SUCCESS ||
        n != SD_SHM_KEY_BYTES)
        return HTTP_NOT_FOUND;
    rv = seen(r, sd_store_remove(sdemo_store(), &key,
                                 owner_of(r, ss, &owner)));
    if (rv == SD_EUNAVAIL)
        return unavailable(r);
    if (rv != APR_SUCCESS)
        return HTTP_NOT_FOUND;
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                  "SDEMO00106: user \"%s\" from %s ended one of their other "
                  "sessions",
                  sd_log_name(r->pool, ss->s->user), r->useragent_ip);
    return OK;
}

int sdemo_session_end_all(request_rec *r, sdemo_session *ss, apr_uint64_t *n)
{
    sd_owner_t owner;
    apr_status_t rv = seen(r, sd_store_end_owner(sdemo_store(),
                                                 owner_of(r, ss, &owner), n));
    if (rv == SD_EUNAVAIL)
        return unavailable(r);
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                  "SDEMO00105: logout everywhere: user \"%s\" from %s "
                  "ended %" APR_UINT64_T_FMT " sessions",
                  sd_log_name(r->pool, ss->s->user), r->useragent_ip, *n);
    return OK;
}

/* ---------------------------------------------------------------------
 * Login
 * --------------------------------------------------------------------- */

/* "Firefox on Linux": enough for a person to recognise a device in "your
 * sessions", and nothing that identifies it further. */
static const char *device_of(apr_pool_t *p, const char *ua)
{
    static const struct {
        const char *token, *name;
    } browsers[] = {{"Edg/", "Edge"},       {"OPR/", "Opera"},
                    {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"},
                    {"Chromium/", "Chromium"}, {"Safari/", "Safari"},
                    {"curl/", "curl"},       {"Wget/", "Wget"},
                    {"libwww-perl", "Perl LWP"}},
      systems[] = {{"Android", "Android"}, {"iPhone", "iPhone"},
                   {"iPad", "iPad"},       {"Windows", "Windows"},
                   {"Mac OS X", "macOS"},  {"CrOS", "ChromeOS"},
                   {"Linux", "Linux"}};
    const char *b = NULL, *o = NULL;
    apr_size_t i;

    if (!ua)
        return "Unknown device";
    for (i = 0; i < sizeof(browsers) / sizeof(browsers[0]) && !b; i++)
        if (strstr(ua, browsers[i].token))
            b = browsers[i].name;
    for (i = 0; i < sizeof(systems) / sizeof(systems[0]) && !o; i++)
        if (strstr(ua, systems[i].token))
            o = systems[i].name;
    if (b && o)
        return apr_pstrcat(p, b, " on ", o, NULL);
    return b ? b : o ? o : "Unknown device";
}

/* A device cookie: NONCE.TOKEN, the token binding the nonce to the user
 * it was issued to. It proves that this browser logged in as that user
 * before, so failures from elsewhere do not lock it out. */
static const char *device_cookie(request_rec *r, const sd_owner_t *owner)
{
    unsigned char nonce[NONCE_BYTES], bind[SD_OWNER_LEN + NONCE_BYTES];
    char n64[(NONCE_BYTES * 4 + 2) / 3 + 1];

    if (apr_generate_random_bytes(nonce, sizeof(nonce)) != APR_SUCCESS)
        return NULL;
    sd_b64url_encode(nonce, sizeof(nonce), n64);
    memcpy(bind, owner->b, SD_OWNER_LEN);
    memcpy(bind + SD_OWNER_LEN, nonce, NONCE_BYTES);
    return apr_pstrcat(r->pool, n64, ".",
                       token_make(r->pool, "device", bind, sizeof(bind),
                                  sdemo_now(r)),
                       NULL);
}

/* The nonce of the request's device cookie when it is valid for
 * @a owner, else NULL. */
static const char *device_valid(request_rec *r, const sd_owner_t *owner)
{
    const char *c = cookie_in(r, named(r, sdemo_dconf(r), "_device"));
    unsigned char bind[SD_OWNER_LEN + NONCE_BYTES];
    apr_size_t nlen = (NONCE_BYTES * 4 + 2) / 3, n = 0;

    if (!c || strlen(c) != nlen + 1 + SD_TOKEN_LEN || c[nlen] != '.')
        return NULL;
    memcpy(bind, owner->b, SD_OWNER_LEN);
    if (apr_decode_base64_binary(bind + SD_OWNER_LEN, c, nlen,
                                 APR_ENCODE_BASE64URL | APR_ENCODE_NOPADDING,
                                 &n) != APR_SUCCESS ||
        n != NONCE_BYTES)
        return NULL;
    if (!token_check("device", bind, sizeof(bind), c + nlen + 1,
                     sdemo_now(r), DEVICE_TTL))
        return NULL;
    return apr_pstrndup(r->pool, c, nlen);
}

static void log_login(request_rec *r, int ok, const char *user,
                      const char *prefix)
{
    if (ok)
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "SDEMO00101: login ok: user \"%s\" from %s, session %s",
                      sd_log_name(r->pool, user), r->useragent_ip,
                      prefix);
    else
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "SDEMO00102: login failed: user \"%s\" from %s",
                      sd_log_name(r->pool, user), r->useragent_ip);
}

typedef struct {
    const char *key;                  /* "u:NAME", "a:ADDR", "d:NONCE" */
    apr_uint32_t limit;
    const char *why;                  /* for the log when it throttles */
} throttle_key;

/* Create the session of a login that just succeeded. */
static sdemo_login_result session_start(request_rec *r, const char *user,
                                        const char *role, apr_uint64_t stamp,
                                        const sd_owner_t *owner,
                                        const char **prefix)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    sdemo_srv_cfg *sc = sdemo_sconf(r->server);
    sd_store_t *st = sdemo_store();
    const char *ua = apr_table_get(r->headers_in, "User-Agent");
    char id[SD_ID_LEN + 1], *enc, *p;
    sd_store_limits_t lim;
    apr_uint32_t ended = 0;
    int draws = 0;
    sd_session_t *s;
    sd_key_t key;
    apr_size_t len;
    apr_status_t rv;

    s = sd_session_make(r->pool, user, role);
    /* A random ID whose key the store can place with the owner's other
     * sessions (see sd_store_key_fits()): a few draws at most. */
    do {
        if (!s || sd_id_new(id) != APR_SUCCESS || ++draws > 100000) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "SDEMO00030: the system's random source failed; "
                          "no session can be created");
            return SDEMO_LOGIN_UNAVAILABLE;
        }
        sd_id_key(id, SD_ID_LEN, &key);
    } while (!sd_store_key_fits(st, &key, owner));
    s->cred_stamp = stamp;
    s->ua_hash = sd_hash64(ua ? ua : "", ua ? strlen(ua) : 0);
    s->device = device_of(r->pool, ua);
    len = sd_record_encode(r->pool, s, &enc);
    lim.idle = (apr_uint32_t)d->idle;
    lim.max_age = (apr_uint32_t)d->max_age;
    lim.per_user = (apr_uint32_t)sc->max_per_user;
    rv = seen(r, sd_store_create(st, &key, owner, enc, len, sdemo_now(r),
                                 &lim, &ended));
    if (rv == SD_EUNAVAIL)
        return SDEMO_LOGIN_UNAVAILABLE;
    if (rv == APR_ENOSPC) {
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "SDEMO00031: login of user \"%s\" from %s refused: "
                      "the session store is full (SessionDemoWhenFull "
                      "refuse)",
                      sd_log_name(r->pool, user), r->useragent_ip);
        return SDEMO_LOGIN_FULL;
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      "SDEMO00032: could not store the new session of user "
                      "\"%s\"",
                      sd_log_name(r->pool, user));
        return SDEMO_LOGIN_UNAVAILABLE;
    }
    if (ended)
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "SDEMO00034: user \"%s\" has more than %d sessions "
                      "(SessionDemoMaxSessionsPerUser): %u least recently "
                      "used ended",
                      sd_log_name(r->pool, user), sc->max_per_user, ended);
    cookie_out(r, "", id, 0, 0, NULL);
    p = apr_palloc(r->pool, SD_KEY_PREFIX_LEN + 1);
    sd_key_prefix(&key, p);
    *prefix = p;
    return SDEMO_LOGIN_OK;
}

sdemo_login_result sdemo_login(request_rec *r, const char *user,
                               const char *password, apr_int64_t *wait,
                               const char **prefix)
{
    sdemo_dir_cfg *d = sdemo_dconf(r);
    sd_store_t *st = sdemo_store();
    apr_int64_t now = sdemo_now(r);
    throttle_key keys[2];
    const char *role = NULL, *nonce;
    apr_uint64_t stamp = 0;
    sdemo_login_result res;
    sd_owner_t owner;
    sdemo_session *old;
    int nkeys, i, status;
    apr_status_t rv;

    *wait = 0;
    if (!st)
        return SDEMO_LOGIN_UNAVAILABLE;
    sd_owner(sdemo_realm(r), user, &owner);

    /* Who is counted: a browser with a valid device cookie for this user
     * has a counter of its own (as strict as the per-user one), so that
     * strangers' failures for the name or from the address do not lock
     * the real user out. Everyone else counts against the name and the
     * address. Counted before the password check and taken back on
     * success, so concurrent guesses cannot all pass the check. */
    if ((nonce = device_valid(r, &owner)) != NULL) {
        keys[0].key = apr_pstrcat(r->pool, "d:", nonce, NULL);
        keys[0].limit = (apr_uint32_t)d->throttle_n;
        keys[0].why = "too many failures from this device";
        nkeys = 1;
    }
    else {
        keys[0].key = apr_pstrcat(r->pool, "u:", user, NULL);
        keys[0].limit = (apr_uint32_t)d->throttle_n;
        keys[0].why = "too many failures for this user";
        keys[1].key = apr_pstrcat(r->pool, "a:", r->useragent_ip, NULL);
        keys[1].limit = (apr_uint32_t)d->throttle_n * 10;
        keys[1].why = "too many failures from this address";
        nkeys = 2;
    }
    for (i = 0; i < nkeys; i++) {
        apr_int64_t w = 0;
        rv = seen(r, sd_store_throttle_hit(st, keys[i].key,
                                           strlen(keys[i].key),
                                           keys[i].limit,
                                           (apr_uint32_t)d->throttle_window,
                                           now, &w));
        if (rv == SD_EUNAVAIL) {
            while (--i >= 0)
                sd_store_throttle_undo(st, keys[i].key, strlen(keys[i].key),
                                       0);
            return SDEMO_LOGIN_UNAVAILABLE;
        }
        if (w > 0) {
            /* Not counted here; take back what the keys before counted,
             * so a throttled attempt costs nothing anywhere. */
            int j;
            for (j = 0; j < i; j++)
                sd_store_throttle_undo(st, keys[j].key, strlen(keys[j].key),
                                       0);
            ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                          "SDEMO00104: login throttled: user \"%s\" from %s, "
                          "%s for %" APR_INT64_T_FMT " more seconds",
                          sd_log_name(r->pool, user), r->useragent_ip,
                          keys[i].why, w);
            sd_store_count(st, SD_COUNT_LOGIN_THROTTLED);
            *wait = w;
            return SDEMO_LOGIN_THROTTLED;
        }
    }

    if (!sdemo_check_credentials(r, user, password, &role, &stamp)) {
        log_login(r, 0, user, NULL);
        sd_store_count(st, SD_COUNT_LOGIN_FAILED);
        return SDEMO_LOGIN_BAD;
    }

    /* Rotation: whatever session this client had ends here, and the new
     * one gets an ID nobody has seen (session fixation). */
    old = sdemo_session_load(r, &status);
    if (status != OK)
        res = SDEMO_LOGIN_UNAVAILABLE;
    else {
        if (old)
            sdemo_session_end(r, old, "replaced by a new login");
        res = session_start(r, user, role, stamp, &owner, prefix);
    }
    if (res != SDEMO_LOGIN_OK) {
        /* The password was right: this attempt is no failure. */
        for (i = 0; i < nkeys; i++)
            sd_store_throttle_undo(st, keys[i].key, strlen(keys[i].key), 0);
        return res;
    }
    /* Success clears the name's (or the device's) failures; the
     * address keeps its count, or one account could launder an address
     * that guesses at many. */
    sd_store_throttle_undo(st, keys[0].key, strlen(keys[0].key), 1);
    if (nkeys == 2)
        sd_store_throttle_undo(st, keys[1].key, strlen(keys[1].key), 0);
    sd_store_count(st, SD_COUNT_LOGIN_OK);
    {
        const char *dc = device_cookie(r, &owner);
        if (dc)
            cookie_out(r, "_device", dc, 0, DEVICE_TTL, "Strict");
    }
    log_login(r, 1, user, *prefix);
    return SDEMO_LOGIN_OK;
}
