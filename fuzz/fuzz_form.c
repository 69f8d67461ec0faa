/*
 * sd_form_parse: application/x-www-form-urlencoded bodies.
 *
 * Input: the body, as is (an exact-size copy, no terminator).
 *
 * Properties:
 *  - accepted exactly when an independent reference decoder accepts
 *    (strict %XX, no NUL, strict UTF-8, no empty or repeated name — names
 *    compare case-insensitively, as apr_table does —, at most
 *    SD_FORM_MAX_FIELDS fields; empty pieces between '&' are skipped);
 *  - on success the table holds the reference's fields, in order, byte for
 *    byte: so no value was cut by a NUL, and every name and value is valid
 *    UTF-8 with no NUL; on failure *out is NULL;
 *  - NULL with length 0 is the empty form, NULL with a length is refused.
 */
#include <strings.h>

#include <apr_tables.h>

#include "fuzz_common.h"
#include "sd_form.h"

typedef struct {
    char *name, *value;
    size_t nlen, vlen;
} field_t;

static int hexdig(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Decode [s, s+len) into a malloc'd buffer; -1 on a bad escape, a NUL or
 * invalid UTF-8. */
static int ref_decode(const char *s, size_t len, char **out, size_t *olen)
{
    char *b = malloc(len + 1);
    size_t i, o = 0;

    for (i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= len) { /* a truncated escape */
                free(b);
                return -1;
            }
            h = hexdig((unsigned char)s[i + 1]);
            l = hexdig((unsigned char)s[i + 2]);
            if (h < 0 || l < 0) {
                free(b);
                return -1;
            }
            c = h * 16 + l;
            i += 2;
        }
        else if (c == '+') {
            c = ' ';
        }
        if (c == 0) {
            free(b);
            return -1;
        }
        b[o++] = (char)c;
    }
    b[o] = '\0';
    if (!fuzz_utf8_valid((unsigned char *)b, o)) {
        free(b);
        return -1;
    }
    *out = b;
    *olen = o;
    return 0;
}

/* Returns the number of fields, or -1 when the body is invalid. */
static int ref_parse(const char *in, size_t len, field_t *f)
{
    size_t a = 0;
    int n = 0, i, bad = 0;

    while (a < len && !bad) {
        size_t b = a, eq;
        while (b < len && in[b] != '&') {
            b++;
        }
        if (b > a) {
            if (n == SD_FORM_MAX_FIELDS) {
                bad = 1;
                break;
            }
            for (eq = a; eq < b && in[eq] != '='; eq++) {
            }
            if (eq == a) {
                bad = 1;
                break;
            }
            if (ref_decode(in + a, eq - a, &f[n].name, &f[n].nlen) != 0) {
                bad = 1;
                break;
            }
            if (ref_decode(in + (eq < b ? eq + 1 : b),
                           eq < b ? b - eq - 1 : 0, &f[n].value,
                           &f[n].vlen) != 0) {
                free(f[n].name);
                bad = 1;
                break;
            }
            for (i = 0; i < n; i++) {
                if (strcasecmp(f[i].name, f[n].name) == 0) {
                    bad = 1;
                }
            }
            n++;
        }
        a = b + 1;
    }
    if (bad) {
        for (i = 0; i < n; i++) {
            free(f[i].name);
            free(f[i].value);
        }
        return -1;
    }
    return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return fuzz_apr_init();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *pool = fuzz_pool();
    char *in = fuzz_dup(data, size, 0);
    field_t f[SD_FORM_MAX_FIELDS + 1];
    apr_table_t *t = (apr_table_t *)(void *)"not set";
    apr_status_t rv;
    int n, i;

    rv = sd_form_parse(pool, in, size, &t);
    n = ref_parse(in, size, f);
    FUZZ_CHECK(rv == APR_SUCCESS || rv == APR_EINVAL,
               "unexpected status %d", (int)rv);
    FUZZ_CHECK((rv == APR_SUCCESS) == (n >= 0),
               "sd_form_parse says %s, the reference %s (%d fields)",
               rv == APR_SUCCESS ? "valid" : "invalid",
               n >= 0 ? "valid" : "invalid", n);
    if (rv == APR_SUCCESS) {
        const apr_array_header_t *arr;
        const apr_table_entry_t *e;

        FUZZ_CHECK(t != NULL, "success with a NULL table");
        arr = apr_table_elts(t);
        e = (const apr_table_entry_t *)arr->elts;
        FUZZ_CHECK(arr->nelts == n, "%d fields, the reference has %d",
                   arr->nelts, n);
        FUZZ_CHECK(n <= SD_FORM_MAX_FIELDS, "more than %d fields",
                   SD_FORM_MAX_FIELDS);
        for (i = 0; i < n; i++) {
            size_t kl = strlen(e[i].key), vl = strlen(e[i].val);
            FUZZ_CHECK(kl == f[i].nlen && memcmp(e[i].key, f[i].name, kl) ==
                                              0,
                       "field %d name \"%s\" (%zu) differs from the "
                       "reference (%zu)", i, e[i].key, kl, f[i].nlen);
            FUZZ_CHECK(vl == f[i].vlen &&
                           memcmp(e[i].val, f[i].value, vl) == 0,
                       "field %d value \"%s\" (%zu) differs from the "
                       "reference (%zu): cut by a NUL?", i, e[i].val, vl,
                       f[i].vlen);
            FUZZ_CHECK(kl > 0, "field %d has an empty name", i);
            FUZZ_CHECK(fuzz_utf8_valid((const unsigned char *)e[i].key, kl) &&
                           fuzz_utf8_valid((const unsigned char *)e[i].val,
                                           vl),
                       "field %d is not valid UTF-8", i);
            /* The first (only) value is what a lookup sees. */
            FUZZ_CHECK(apr_table_get(t, e[i].key) == e[i].val,
                       "apr_table_get(\"%s\") is not the field", e[i].key);
            free(f[i].name);
            free(f[i].value);
        }
    }
    else {
        FUZZ_CHECK(t == NULL, "failure but *out is not NULL");
    }

    if (size == 0) {
        apr_table_t *t0 = NULL;
        FUZZ_CHECK(sd_form_parse(pool, NULL, 0, &t0) == APR_SUCCESS &&
                       t0 != NULL && apr_table_elts(t0)->nelts == 0,
                   "NULL, 0 is not the empty form");
        FUZZ_CHECK(sd_form_parse(pool, NULL, 1, &t0) == APR_EINVAL &&
                       t0 == NULL,
                   "NULL with a length is not refused");
    }

    free(in);
    apr_pool_destroy(pool);
    return 0;
}
