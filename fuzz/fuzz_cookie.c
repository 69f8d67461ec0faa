/*
 * sd_cookie_find / sd_cookie_format / sd_cookie_name_valid.
 *
 * Input: the cookie name up to the first '\n' (no '\n' at all: the name is
 * "sid" and the whole input is one header), then up to 8 Cookie header
 * values separated by '\n' (the last takes the rest). Strings are C strings,
 * so a NUL ends each one, for the code under test and the oracle alike.
 *
 * Properties:
 *  - the result is the one an independent reference parser gives (ABSENT,
 *    FOUND, DUPLICATE, MALFORMED), with the same value on FOUND;
 *  - FOUND only with a non-NULL value made only of cookie-octets; any other
 *    result leaves *value NULL;
 *  - sd_cookie_name_valid agrees with the RFC 7230 token rule (1..64
 *    tchars);
 *  - for a valid name, sd_cookie_format's output has the documented shape
 *    and, read back as a Cookie header, gives the same value (FOUND).
 */
#include <strings.h>

#include <apr_strings.h>

#include "fuzz_common.h"
#include "sd_cookie.h"

#define MAX_HEADERS 8

static int ref_octet(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' &&
           c != '\\';
}

static int ref_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int ref_name_valid(const char *n)
{
    size_t i, l = strlen(n);

    if (l < 1 || l > 64) {
        return 0;
    }
    for (i = 0; i < l; i++) {
        if (!ref_tchar((unsigned char)n[i])) {
            return 0;
        }
    }
    return 1;
}

static int sp(char c)
{
    return c == ' ' || c == '\t';
}

/* Reference: split every header on ';', trim blanks, pairs without '='
 * are not cookies; count pairs named exactly @a name and keep the first
 * value. */
static sd_cookie_result_t ref_find(char **hdr, int n, const char *name,
                                   const char **vs, size_t *vl)
{
    size_t nl = strlen(name);
    int count = 0, valid = 0, h;

    for (h = 0; h < n; h++) {
        const char *s = hdr[h];
        size_t len = strlen(s), a = 0;

        while (a < len) {
            size_t b = a, e, ns, ne, v0, v1;

            while (b < len && s[b] != ';') {
                b++;
            }
            ns = a;
            while (ns < b && sp(s[ns])) {
                ns++;
            }
            for (e = ns; e < b && s[e] != '='; e++) {
            }
            if (e < b) {
                ne = e;
                while (ne > ns && sp(s[ne - 1])) {
                    ne--;
                }
                if (ne - ns == nl && strncmp(s + ns, name, nl) == 0) {
                    count++;
                    v0 = e + 1;
                    v1 = b;
                    while (v0 < v1 && sp(s[v0])) {
                        v0++;
                    }
                    while (v1 > v0 && sp(s[v1 - 1])) {
                        v1--;
                    }
                    if (count == 1) {
                        size_t i;
                        valid = 1;
                        if (v1 > v0 && s[v0] == '"') {
                            if (v1 - v0 < 2 || s[v1 - 1] != '"') {
                                valid = 0;
                            }
                            else {
                                v0++;
                                v1--;
                            }
                        }
                        for (i = v0; valid && i < v1; i++) {
                            if (!ref_octet((unsigned char)s[i])) {
                                valid = 0;
                            }
                        }
                        *vs = s + v0;
                        *vl = v1 - v0;
                    }
                }
            }
            a = b + 1;
        }
    }
    if (count == 0) {
        return SD_COOKIE_ABSENT;
    }
    if (count > 1) {
        return SD_COOKIE_DUPLICATE;
    }
    return valid ? SD_COOKIE_FOUND : SD_COOKIE_MALFORMED;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return fuzz_apr_init();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *pool = fuzz_pool();
    char *buf = fuzz_dup(data, size, 1);
    char *hdr[MAX_HEADERS];
    const char *name, *value = (const char *)"sentinel", *rvs = NULL;
    char *nl = memchr(buf, '\n', size), *p;
    size_t rvl = 0, i;
    int n = 0;
    sd_cookie_result_t r, ref;

    if (nl) {
        *nl = '\0';
        name = buf;
        p = nl + 1;
    }
    else {
        name = "sid";
        p = buf;
    }
    /* Headers: p .. buf + size, split on '\n'. */
    while (n < MAX_HEADERS) {
        char *e = (n < MAX_HEADERS - 1)
                      ? memchr(p, '\n', (size_t)(buf + size - p))
                      : NULL;
        hdr[n++] = p;
        if (e == NULL || p >= buf + size) {
            break;
        }
        *e = '\0';
        p = e + 1;
    }

    r = sd_cookie_find(pool, (const char *const *)hdr, n, name, &value);
    ref = ref_find(hdr, n, name, &rvs, &rvl);
    FUZZ_CHECK(r == ref, "sd_cookie_find returned %d, the reference %d "
               "(name \"%s\")", (int)r, (int)ref, name);
    if (r == SD_COOKIE_FOUND) {
        size_t vl;
        FUZZ_CHECK(value != NULL, "FOUND with a NULL value");
        vl = strlen(value);
        FUZZ_CHECK(vl == rvl && memcmp(value, rvs, rvl) == 0,
                   "FOUND value \"%s\" differs from the reference (%zu "
                   "bytes)", value, rvl);
        for (i = 0; i < vl; i++) {
            FUZZ_CHECK(ref_octet((unsigned char)value[i]),
                       "FOUND value has a non cookie-octet 0x%02x at %zu",
                       (unsigned char)value[i], i);
        }
    }
    else {
        FUZZ_CHECK(value == NULL, "result %d but *value is not NULL",
                   (int)r);
    }

    /* Null headers are skipped. */
    {
        const char *two[2] = {NULL, NULL};
        const char *v2 = "x";
        two[1] = hdr[0];
        sd_cookie_result_t r2 = sd_cookie_find(pool, two, 2, name, &v2);
        sd_cookie_result_t r1 = sd_cookie_find(pool, two + 1, 1, name, &v2);
        FUZZ_CHECK(r1 == r2, "a NULL header changed the result");
    }

    FUZZ_CHECK(!!sd_cookie_name_valid(name) == ref_name_valid(name),
               "sd_cookie_name_valid(\"%s\") = %d", name,
               sd_cookie_name_valid(name));

    if (r == SD_COOKIE_FOUND && sd_cookie_name_valid(name) &&
        strcmp(name, "Path") != 0 && strcmp(name, "SameSite") != 0 &&
        strcmp(name, "Max-Age") != 0) {
        static const char *const ss[] = {"Strict", "Lax", "None"};
        unsigned sel = size ? data[size - 1] : 0;
        sd_cookie_attrs_t a = {0};
        const char *set, *back = NULL, *one[1];
        const char *prefix;

        a.samesite = ss[sel % 3];
        a.secure = (sel >> 2) & 1;
        a.clear = (sel >> 3) & 1;
        set = sd_cookie_format(pool, name, value, &a);
        prefix = apr_pstrcat(pool, name, "=", a.clear ? "" : value,
                             "; Path=/; HttpOnly; SameSite=", a.samesite,
                             NULL);
        FUZZ_CHECK(strncmp(set, prefix, strlen(prefix)) == 0,
                   "Set-Cookie \"%s\" does not start with \"%s\"", set,
                   prefix);
        FUZZ_CHECK(strstr(set, "Domain") == NULL ||
                       strstr(value, "Domain") != NULL ||
                       strstr(name, "Domain") != NULL,
                   "Set-Cookie carries a Domain: \"%s\"", set);
        FUZZ_CHECK(((a.secure || sel % 3 == 2) ==
                    (strstr(set + strlen(prefix), "; Secure") != NULL)),
                   "Secure attribute wrong in \"%s\"", set);
        FUZZ_CHECK(a.clear == (strstr(set + strlen(prefix), "; Max-Age=0") !=
                               NULL),
                   "Max-Age wrong in \"%s\"", set);
        one[0] = set;
        FUZZ_CHECK(sd_cookie_find(pool, one, 1, name, &back) ==
                           SD_COOKIE_FOUND &&
                       strcmp(back, a.clear ? "" : value) == 0,
                   "Set-Cookie \"%s\" does not read back as the value",
                   set);
    }

    free(buf);
    apr_pool_destroy(pool);
    return 0;
}
