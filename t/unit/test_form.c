/*
 * Strict application/x-www-form-urlencoded parsing: what decodes, and every
 * kind of input that must make the whole form invalid (the glue's 400).
 */
#include <stdio.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "tap.h"
#include "sd_form.h"

static apr_pool_t *pool;

/* Parse @a len bytes and render the table as "n1=v1|n2=v2" in order,
 * "EMPTY" for no fields, or "EINVAL" / "rv=N". */
static const char *parsen(const char *in, apr_size_t len)
{
    apr_table_t *t = (apr_table_t *)1;
    apr_status_t rv = sd_form_parse(pool, in, len, &t);
    const apr_array_header_t *arr;
    const apr_table_entry_t *e;
    const char *s = "";
    int i;

    if (rv == APR_EINVAL) {
        return "EINVAL";
    }
    if (rv != APR_SUCCESS) {
        return apr_psprintf(pool, "rv=%d", rv);
    }
    if (t == NULL || t == (apr_table_t *)1) {
        return "SUCCESS but no table";
    }
    arr = apr_table_elts(t);
    if (arr->nelts == 0) {
        return "EMPTY";
    }
    e = (const apr_table_entry_t *)arr->elts;
    for (i = 0; i < arr->nelts; i++) {
        s = apr_pstrcat(pool, s, i ? "|" : "", e[i].key, "=", e[i].val, NULL);
    }
    return s;
}

static const char *parse(const char *in)
{
    return parsen(in, strlen(in));
}

static void test_good(void)
{
    is_str(parse("username=alice&password=s3cret"),
           "username=alice|password=s3cret", "two simple pairs");
    is_str(parse("a=1"), "a=1", "one pair");
    is_str(parse("note=hello+world"), "note=hello world", "'+' is a space");
    is_str(parse("note=hello%20world"), "note=hello world", "%%20 is a space");
    is_str(parse("note=%2B%26%3D%25"), "note=+&=%",
           "escaped '+', '&', '=', '%%' are literal");
    is_str(parse("note=caf%C3%A9"), "note=caf\xc3\xa9", "%%C3%%A9 is UTF-8 é");
    is_str(parse("note=caf%c3%a9"), "note=caf\xc3\xa9", "lowercase hex");
    is_str(parse("n=%E2%82%AC%F0%9F%98%80"), "n=\xe2\x82\xac\xf0\x9f\x98\x80",
           "3- and 4-byte UTF-8 sequences");
    is_str(parse("n=caf\xc3\xa9"), "n=caf\xc3\xa9", "raw UTF-8 accepted");
    is_str(parse("us%65r+name=x"), "user name=x", "names are decoded too");
    is_str(parse("a=b=c"), "a=b=c", "'=' in a value is kept");
    is_str(parse("a=&b="), "a=|b=", "empty values");
    is_str(parse("flag&a=1"), "flag=|a=1", "a name without '=': empty value");
    is_str(parse("&&a=1&&&b=2&"), "a=1|b=2", "empty pieces are skipped");
    is_str(parse("&"), "EMPTY", "only '&': empty table");
    is_str(parse(""), "EMPTY", "empty input: empty table");
    is_str(parsen(NULL, 0), "EMPTY", "NULL with length 0: empty table");
    is_str(parsen("a=1&b=2", 3), "a=1", "only len bytes are read");
    is_str(parse("return=%2Fdashboard%3Fx%3D1"), "return=/dashboard?x=1",
           "an escaped path");
}

static void test_bad(void)
{
    is_str(parse("a=%G1"), "EINVAL", "%%G1 is a bad escape");
    is_str(parse("a=%1G"), "EINVAL", "%%1G is a bad escape");
    is_str(parse("a=%1"), "EINVAL", "%%1 at the end is truncated");
    is_str(parse("a=%1&b=2"), "EINVAL", "%%1 before '&' is truncated");
    is_str(parse("a=x%"), "EINVAL", "trailing %%");
    is_str(parse("a%=1"), "EINVAL", "'%%' right before '='");
    is_str(parse("a=%%41"), "EINVAL", "%%%% is not an escape");
    is_str(parse("a=% 1"), "EINVAL", "'%% 1' is not an escape");
    is_str(parse("a=%00"), "EINVAL", "%%00 is refused");
    is_str(parse("%00=x"), "EINVAL", "%%00 in a name is refused");
    is_str(parse("a=x%00y&b=1"), "EINVAL", "%%00 in the middle is refused");
    is_str(parsen("a=1\0b=2", 7), "EINVAL", "a raw NUL byte is refused");
    is_str(parsen("a=1&b\0=2", 8), "EINVAL", "a raw NUL in a name");
    is_str(parse("a=%FF"), "EINVAL", "%%FF is not UTF-8");
    is_str(parse("a=\xff"), "EINVAL", "raw 0xff is not UTF-8");
    is_str(parse("a=%C0%AF"), "EINVAL", "overlong %%C0%%AF refused");
    is_str(parse("a=%E0%80%AF"), "EINVAL", "overlong 3-byte '/' refused");
    is_str(parse("a=%C3"), "EINVAL", "truncated 2-byte sequence");
    is_str(parse("a=%C3x"), "EINVAL", "bad continuation byte");
    is_str(parse("a=%A9"), "EINVAL", "lone continuation byte");
    is_str(parse("a=%ED%A0%80"), "EINVAL", "UTF-16 surrogate refused");
    is_str(parse("a=%F4%90%80%80"), "EINVAL", "above U+10FFFF refused");
    is_str(parse("%FF=1"), "EINVAL", "invalid UTF-8 in a name");
    is_str(parse("a=1&a=2"), "EINVAL", "repeated name");
    is_str(parse("a=1&a=1"), "EINVAL", "repeated name, same value");
    is_str(parse("a=1&b=2&a"), "EINVAL", "repeated name without '='");
    is_str(parse("a=1&%61=2"), "EINVAL", "repeated name spelled escaped");
    is_str(parse("=x"), "EINVAL", "empty name");
    is_str(parse("a=1&=2"), "EINVAL", "empty name after a good pair");
    is_str(parse("="), "EINVAL", "'=' alone");
}

static void test_limits(void)
{
    char buf[1024];
    int i, n;

    for (n = 0, i = 0; i < SD_FORM_MAX_FIELDS; i++) {
        n += sprintf(buf + n, "%sf%d=%d", i ? "&" : "", i, i);
    }
    {
        apr_table_t *t = NULL;
        is_int(sd_form_parse(pool, buf, n, &t), APR_SUCCESS,
               "exactly SD_FORM_MAX_FIELDS (%d) fields", SD_FORM_MAX_FIELDS);
        is_int(t ? apr_table_elts(t)->nelts : -1, SD_FORM_MAX_FIELDS,
               "... all of them in the table");
        is_str(t ? apr_table_get(t, "f31") : NULL, "31", "... the last one");
    }
    n += sprintf(buf + n, "&&&");
    ok(strcmp(parsen(buf, n), "EINVAL") != 0,
       "empty pieces do not count as fields");
    n += sprintf(buf + n, "&extra=1");
    is_str(parsen(buf, n), "EINVAL", "SD_FORM_MAX_FIELDS + 1 fields");
    n = 0;
    for (i = 0; i < 200; i++) {
        n += sprintf(buf + n, "&x%d", i);
    }
    is_str(parsen(buf, n), "EINVAL", "200 bare names");
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_good();
    test_bad();
    test_limits();
    apr_pool_destroy(pool);
    apr_terminate();
    return done_testing();
}
