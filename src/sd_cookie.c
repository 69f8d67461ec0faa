/*
 * Reading the session cookie from Cookie headers and writing Set-Cookie.
 *
 * The parser follows RFC 6265 section 5.2 loosely for cookies that are not
 * ours and strictly for ours. Another application on the same site may set
 * cookies with junk in them; that must not log our users out, so foreign
 * pairs are skipped whatever they hold. Our own cookie, though, must appear
 * exactly once and be made only of cookie-octets: a second copy is the mark
 * of cookie tossing from a sibling domain, and guessing which copy is
 * genuine would let an attacker fix a victim's session.
 *
 * The scan is a single pass over each header with no backtracking, so a
 * hostile, huge header costs time linear in its size.
 *
 * Why not httpd's ap_cookie_read(): it returns the first cookie of a name
 * (a tossed duplicate then wins or loses by order), does not check the
 * value's characters, and needs a request_rec, so it could not be tested
 * or fuzzed on its own.
 */
#include <string.h>

#include <apr_strings.h>

#include "sd_cookie.h"

#define SD_COOKIE_NAME_MAX 64

/* RFC 6265 cookie-octet: visible ASCII except DQUOTE, comma, semicolon and
 * backslash. */
static int is_cookie_octet(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
           (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

/* RFC 7230 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9')) {
        return 1;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Check a raw value (already trimmed) and find the part inside optional
 * quotes. Returns 0 when the value is not valid for our cookie. */
static int unquote_value(const char *v, apr_size_t len, const char **inner,
                         apr_size_t *inner_len)
{
    apr_size_t i;

    if (len >= 1 && v[0] == '"') {
        if (len < 2 || v[len - 1] != '"') {
            return 0;
        }
        v++;
        len -= 2;
    }
    for (i = 0; i < len; i++) {
        if (!is_cookie_octet((unsigned char)v[i])) {
            return 0;
        }
    }
    *inner = v;
    *inner_len = len;
    return 1;
}

sd_cookie_result_t sd_cookie_find(apr_pool_t *pool, const char *const *headers,
                                  int nheaders, const char *name,
                                  const char **value)
{
    apr_size_t namelen = strlen(name);
    const char *found = NULL;
    apr_size_t found_len = 0;
    int count = 0, valid = 0;
    int h;

    *value = NULL;
    for (h = 0; h < nheaders; h++) {
        const char *p = headers[h];

        if (p == NULL) {
            continue;
        }
        while (*p) {
            const char *n, *ne, *v, *ve, *end;

            /* One pair runs up to the next ';' or the end of the header;
             * strcspn keeps the whole scan linear. */
            end = p + strcspn(p, ";");
            n = p;
            while (n < end && is_ows(*n)) {
                n++;
            }
            ne = memchr(n, '=', end - n);
            if (ne != NULL) {
                v = ne + 1;
                while (ne > n && is_ows(ne[-1])) {
                    ne--;
                }
                if ((apr_size_t)(ne - n) == namelen &&
                    memcmp(n, name, namelen) == 0) {
                    /* Only ours is inspected; other pairs may hold
                     * anything. */
                    while (v < end && is_ows(*v)) {
                        v++;
                    }
                    ve = end;
                    while (ve > v && is_ows(ve[-1])) {
                        ve--;
                    }
                    count++;
                    if (count == 1) {
                        valid = unquote_value(v, ve - v, &found, &found_len);
                    }
                }
            }
            /* A pair without '=' is not a cookie at all (RFC 6265 5.2
             * step 2): ignore it. */
            p = *end ? end + 1 : end;
        }
    }

    if (count == 0) {
        return SD_COOKIE_ABSENT;
    }
    if (count > 1) {
        return SD_COOKIE_DUPLICATE;
    }
    if (!valid) {
        return SD_COOKIE_MALFORMED;
    }
    *value = apr_pstrmemdup(pool, found, found_len);
    return SD_COOKIE_FOUND;
}

const char *sd_cookie_format(apr_pool_t *pool, const char *name,
                             const char *value, const sd_cookie_attrs_t *a)
{
    const char *samesite = (a && a->samesite) ? a->samesite : "Lax";
    int clear = a && a->clear;
    /* Browsers drop SameSite=None cookies that are not Secure, so None
     * always implies Secure rather than producing a dead cookie. */
    int secure = (a && a->secure) || strcmp(samesite, "None") == 0;

    /* Host-only (no Domain), no Expires. The session cookie lives as long
     * as the browser session: its expiry is the server's business, and
     * Max-Age=0 is the only lifetime it ever gets, to delete it. The
     * short-lived helper cookies (login form, device) carry a Max-Age. */
    const char *age = clear ? "; Max-Age=0"
                      : a && a->max_age > 0
                          ? apr_psprintf(pool, "; Max-Age=%ld", a->max_age)
                          : "";
    return apr_pstrcat(pool, name, "=", clear || !value ? "" : value,
                       "; Path=/; HttpOnly; SameSite=", samesite,
                       secure ? "; Secure" : "", age, NULL);
}

int sd_cookie_name_valid(const char *name)
{
    apr_size_t i;

    if (name == NULL || name[0] == '\0') {
        return 0;
    }
    for (i = 0; name[i]; i++) {
        if (i >= SD_COOKIE_NAME_MAX || !is_tchar((unsigned char)name[i])) {
            return 0;
        }
    }
    return 1;
}
