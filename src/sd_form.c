/*
 * Strict application/x-www-form-urlencoded parsing, for login and note
 * forms and for query strings.
 *
 * httpd's ap_parse_form_data() needs a request_rec and is lenient about bad
 * escapes; the core must be testable without httpd and must not half
 * understand hostile input, so this parser refuses the whole body on the
 * first thing it cannot decode exactly: a bad or truncated %XX, a NUL byte,
 * invalid UTF-8, a repeated name, an empty name, or too many fields. The
 * glue turns APR_EINVAL into 400.
 */
#include <string.h>

#include <apr_strings.h>

#include "sd_form.h"
#include "sd_utf8.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decode one name or value into a fresh NUL-terminated string. The output
 * is never longer than the input, so one allocation of len + 1 suffices. */
static apr_status_t decode(apr_pool_t *pool, const char *in, apr_size_t len,
                           char **out)
{
    char *buf = apr_palloc(pool, len + 1);
    apr_size_t i, o = 0;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];

        if (c == '+') {
            c = ' ';
        }
        else if (c == '%') {
            int hi, lo;

            if (len - i < 3) {
                return APR_EINVAL;
            }
            hi = hexval((unsigned char)in[i + 1]);
            lo = hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0) {
                return APR_EINVAL;
            }
            c = (unsigned char)((hi << 4) | lo);
            i += 2;
        }
        /* A NUL, literal or escaped, would silently cut the C string the
         * rest of the module sees: refuse it. */
        if (c == '\0') {
            return APR_EINVAL;
        }
        buf[o++] = (char)c;
    }
    buf[o] = '\0';
    if (!sd_utf8_valid(buf, o)) {
        return APR_EINVAL;
    }
    *out = buf;
    return APR_SUCCESS;
}

apr_status_t sd_form_parse(apr_pool_t *pool, const char *in, apr_size_t len,
                           apr_table_t **out)
{
    apr_table_t *t = apr_table_make(pool, 8);
    const char *p, *end;
    int fields = 0;

    *out = NULL;
    if (in == NULL) {
        /* No body at all is an empty form; NULL + 0 is not valid C. */
        if (len) {
            return APR_EINVAL;
        }
        *out = t;
        return APR_SUCCESS;
    }
    p = in;
    end = in + len;
    while (p < end) {
        const char *amp = memchr(p, '&', end - p);
        const char *pe = amp ? amp : end;
        const char *eq;
        char *name, *value;
        apr_status_t rv;

        /* Empty pieces ("a=1&&b=2", a trailing '&') carry nothing; browsers
         * never send them, but tolerating them costs nothing. */
        if (pe > p) {
            if (++fields > SD_FORM_MAX_FIELDS) {
                return APR_EINVAL;
            }
            eq = memchr(p, '=', pe - p);
            if (eq == p) {
                return APR_EINVAL;
            }
            rv = decode(pool, p, (eq ? eq : pe) - p, &name);
            if (rv == APR_SUCCESS) {
                rv = eq ? decode(pool, eq + 1, pe - eq - 1, &value)
                        : decode(pool, "", 0, &value);
            }
            if (rv != APR_SUCCESS) {
                return rv;
            }
            /* apr_table compares names case-insensitively, so "User"
             * after "user" counts as a repeat: that is how the glue's own
             * lookups would see them, and two readings of one form are
             * exactly what strictness is meant to exclude. */
            if (apr_table_get(t, name) != NULL) {
                return APR_EINVAL;
            }
            apr_table_setn(t, name, value);
        }
        p = amp ? amp + 1 : end;
    }
    *out = t;
    return APR_SUCCESS;
}
