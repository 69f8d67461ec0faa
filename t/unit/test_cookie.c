/*
 * Reading the session cookie out of Cookie headers, strictly for ours and
 * leniently for everybody else's, and the exact Set-Cookie we send.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "tap.h"
#include "sd_cookie.h"

static apr_pool_t *pool;

static const char *rname(sd_cookie_result_t r)
{
    switch (r) {
    case SD_COOKIE_ABSENT:
        return "ABSENT";
    case SD_COOKIE_FOUND:
        return "FOUND";
    case SD_COOKIE_DUPLICATE:
        return "DUPLICATE";
    case SD_COOKIE_MALFORMED:
        return "MALFORMED";
    }
    return "?";
}

/* Look up "sid" in @a n headers and render "RESULT" or "FOUND:value". */
static const char *findn(const char *const *h, int n, const char *name)
{
    const char *v = (const char *)"untouched";
    sd_cookie_result_t r = sd_cookie_find(pool, h, n, name, &v);
    if (r == SD_COOKIE_FOUND) {
        return apr_pstrcat(pool, "FOUND:", v ? v : "(null)", NULL);
    }
    return rname(r);
}

static const char *find1(const char *h)
{
    return findn(&h, 1, "sid");
}

static void test_find_basic(void)
{
    const char *three[] = {"a=1", "b=2; sid=abc; c=3", "d=4"};
    const char *dup2[] = {"sid=abc", "sid=def"};
    const char *dup2same[] = {"a=1; sid=abc", "sid=abc"};
    const char *none[] = {"a=1", "b=2"};
    const char *empty[] = {""};

    is_str(find1("sid=abc"), "FOUND:abc", "one header, one cookie");
    is_str(find1("a=1; sid=abc; b=2"), "FOUND:abc", "ours among others");
    is_str(find1("a=1; b=2; sid=abc"), "FOUND:abc", "ours last");
    is_str(findn(three, 3, "sid"), "FOUND:abc", "several Cookie headers");
    is_str(findn(none, 2, "sid"), "ABSENT", "our cookie absent");
    is_str(findn(empty, 1, "sid"), "ABSENT", "an empty header");
    is_str(findn(NULL, 0, "sid"), "ABSENT", "no Cookie header at all");
    is_str(find1("sid=\"abc\""), "FOUND:abc", "quoted value: quotes removed");
    is_str(find1("a=1; sid=\"\"; b=2"), "FOUND:", "quoted empty value");
    is_str(find1("sid="), "FOUND:", "empty value is found, empty");
    is_str(find1("sid=; a=1"), "FOUND:", "empty value before others");
    is_str(find1(" \tsid=abc\t ;\ta=1 "), "FOUND:abc",
           "spaces and tabs around the pair are ignored");
    is_str(find1("a=1;sid=abc;b=2"), "FOUND:abc", "no space after ';'");
    is_str(find1("a=1;  \t sid = abc ; b=2"), "FOUND:abc",
           "whitespace around '=' trimmed (RFC 6265 5.2)");
    is_str(find1("sid=Ab-_09.~!#$%&'()*+/:<=>?@[]^`{|}"),
           "FOUND:Ab-_09.~!#$%&'()*+/:<=>?@[]^`{|}",
           "every cookie-octet punctuation is kept as is");
    is_str(find1("sid=a=b"), "FOUND:a=b", "'=' inside a value is kept");

    /* Names are exact and case-sensitive. */
    is_str(find1("xsid=1; sid=2"), "FOUND:2", "xsid is not sid");
    is_str(find1("sid2=1; sid=2"), "FOUND:2", "sid2 is not sid");
    is_str(find1("sidx=1; xsid=2"), "ABSENT", "only look-alikes: absent");
    is_str(find1("SID=1; Sid=3; sid=2"), "FOUND:2",
           "names are case-sensitive (SID, Sid are others)");
    is_str(find1("SID=1"), "ABSENT", "SID alone is not sid");
    is_str(find1("sid; a=1"), "ABSENT",
           "a bare 'sid' without '=' is not"
           " our cookie");
    is_str(find1("a=sid=2"), "ABSENT", "sid= inside another value");
    {
        const char *h = "__Host-sid=zz; sid=yy";
        is_str(findn(&h, 1, "__Host-sid"), "FOUND:zz", "__Host- name");
        is_str(findn(&h, 1, "sid"), "FOUND:yy",
               "sid is not the suffix of __Host-sid");
    }

    /* A second copy is cookie tossing: never guess. */
    is_str(findn(dup2, 2, "sid"), "DUPLICATE", "duplicate across headers");
    is_str(findn(dup2same, 2, "sid"), "DUPLICATE",
           "duplicate with the same value across headers");
    is_str(find1("sid=abc; a=1; sid=def"), "DUPLICATE",
           "duplicate within one header");
    is_str(find1("sid=abc; sid=abc"), "DUPLICATE",
           "duplicate with the same value within one header");
    is_str(find1("sid=abc; sid=a b"), "DUPLICATE",
           "duplicate where the second copy is malformed");
    is_str(find1("sid=; sid=abc"), "DUPLICATE", "empty first copy counts");
}

static void test_find_malformed(void)
{
    is_str(find1("sid=a b"), "MALFORMED", "space inside our value");
    is_str(find1("sid=a,b"), "MALFORMED", "comma inside our value");
    is_str(find1("sid=a\\b"), "MALFORMED", "backslash inside our value");
    is_str(find1("sid=a\x7f"
                 "b"),
           "MALFORMED", "DEL inside our value");
    is_str(find1("sid=a\x01"
                 "b"),
           "MALFORMED", "control char in our value");
    is_str(find1("sid=\xc3\xa9t\xc3\xa9"), "MALFORMED",
           "high bytes in our value");
    is_str(find1("sid=\xff"), "MALFORMED", "0xff in our value");
    is_str(find1("sid=a\"b"), "MALFORMED", "DQUOTE inside our value");
    is_str(find1("sid=\"abc"), "MALFORMED", "unterminated quote");
    is_str(find1("sid=abc\""), "MALFORMED", "a lone closing quote");
    is_str(find1("sid=\""), "MALFORMED", "a single quote character");
    is_str(find1("sid=\"a b\""), "MALFORMED", "space inside quotes");
    is_str(find1("a=1; sid=a\tb; c=2"), "MALFORMED", "tab inside our value");

    /* Other people's junk must not log our users out. */
    is_str(find1("json={\"a\":1,\"b\":[2,3]}; sid=abc"), "FOUND:abc",
           "JSON in another cookie");
    is_str(find1("x=a b, c\\d; sid=abc"), "FOUND:abc",
           "space, comma, backslash in another cookie");
    is_str(find1("x=\"unterminated; sid=abc"), "FOUND:abc",
           "unterminated quote in another cookie");
    is_str(find1("x=\xc3\xa9\xff\x7f; sid=abc"), "FOUND:abc",
           "high bytes and DEL in another cookie");
    is_str(find1("=novalue; sid=abc"), "FOUND:abc", "an empty name before");
    is_str(find1("novalue; ;; ;sid=abc;;"), "FOUND:abc",
           "pairs without '=' and empty pieces around ours");
    is_str(find1("x=1; sid=abc; y=\x01\x02"), "FOUND:abc",
           "control bytes in a later cookie");
}

static void test_find_huge(void)
{
    apr_size_t n = 100 * 1024;
    char *big = apr_palloc(pool, n + 64);
    clock_t t0;
    double secs;
    apr_size_t i;
    const char *r1, *r2, *r3, *r4;

    t0 = clock();
    /* 100 KB of small cookies, then ours. */
    for (i = 0; i + 5 <= n; i += 5) {
        memcpy(big + i, "a=b; ", 5);
    }
    strcpy(big + i, "sid=zzz");
    r1 = find1(big);
    /* 100 KB of '=' (a naive name/value split rescans from each). */
    memset(big, '=', n);
    big[n] = '\0';
    r2 = find1(big);
    /* 100 KB of ';' */
    memset(big, ';', n);
    strcpy(big + n, "sid=q");
    r3 = find1(big);
    /* 100 KB of spaces inside our value. */
    memcpy(big, "sid=a", 5);
    memset(big + 5, ' ', n);
    strcpy(big + 5 + n, "x");
    r4 = find1(big);
    secs = (double)(clock() - t0) / CLOCKS_PER_SEC;

    is_str(r1, "FOUND:zzz", "ours after 100 KB of other cookies");
    is_str(r2, "ABSENT", "100 KB of '='");
    is_str(r3, "FOUND:q", "ours after 100 KB of ';'");
    is_str(r4, "MALFORMED", "100 KB of spaces inside our value");
    ok(secs < 1.0, "four 100 KB headers parsed in %.3f s", secs);
}

static void test_format(void)
{
    sd_cookie_attrs_t a = {0};
    const char *s;

    a.samesite = "Lax";
    a.secure = 0;
    a.clear = 0;
    s = sd_cookie_format(pool, "sid", "ABC", &a);
    is_str(s, "sid=ABC; Path=/; HttpOnly; SameSite=Lax", "Lax, not Secure");
    a.max_age = 600;
    is_str(sd_cookie_format(pool, "f", "X", &a),
           "f=X; Path=/; HttpOnly; SameSite=Lax; Max-Age=600",
           "a helper cookie with a lifetime");
    a.max_age = 0;

    a.samesite = "Strict";
    a.secure = 1;
    s = sd_cookie_format(pool, "__Host-sid", "ABC", &a);
    is_str(s, "__Host-sid=ABC; Path=/; HttpOnly; SameSite=Strict; Secure",
           "Strict and Secure, __Host- name");

    a.samesite = "Lax";
    a.secure = 0;
    a.clear = 1;
    s = sd_cookie_format(pool, "sid", "ABC", &a);
    is_str(s, "sid=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
           "clear: empty value and Max-Age=0");

    a.secure = 1;
    s = sd_cookie_format(pool, "sid", "", &a);
    is_str(s, "sid=; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=0",
           "clear with Secure");

    a.samesite = "None";
    a.secure = 0;
    a.clear = 0;
    s = sd_cookie_format(pool, "sid", "ABC", &a);
    is_str(s, "sid=ABC; Path=/; HttpOnly; SameSite=None; Secure",
           "SameSite=None forces Secure");

    {
        static const char *ss[] = {"Strict", "Lax", "None"};
        int i, j, k, bad = 0;
        for (i = 0; i < 3; i++) {
            for (j = 0; j < 2; j++) {
                for (k = 0; k < 2; k++) {
                    a.samesite = ss[i];
                    a.secure = j;
                    a.clear = k;
                    s = sd_cookie_format(pool, "sid", "V", &a);
                    if (strstr(s, "Domain") || strstr(s, "domain") ||
                        strstr(s, "Expires") || strstr(s, "expires") ||
                        (!k && strstr(s, "Max-Age")) ||
                        strstr(s, "Path=/;") == NULL ||
                        strstr(s, "; HttpOnly") == NULL) {
                        diag("bad: %s", s);
                        bad++;
                    }
                }
            }
        }
        is_int(bad, 0,
               "no Domain, no Expires, Max-Age only when clearing,"
               " always Path=/ and HttpOnly (12 combinations)");
    }
}

static void test_name_valid(void)
{
    ok(sd_cookie_name_valid("sid"), "name: sid");
    ok(sd_cookie_name_valid("__Host-sid"), "name: __Host-sid");
    ok(sd_cookie_name_valid("my_session.v2!#$%&'*+^`|~"),
       "name: tchar punctuation");
    ok(!sd_cookie_name_valid(""), "name: empty refused");
    ok(!sd_cookie_name_valid("a b"), "name: space refused");
    ok(!sd_cookie_name_valid("a=b"), "name: '=' refused");
    ok(!sd_cookie_name_valid("a;b"), "name: ';' refused");
    ok(!sd_cookie_name_valid("a,b"), "name: ',' refused");
    ok(!sd_cookie_name_valid("a\"b"), "name: '\"' refused");
    ok(!sd_cookie_name_valid("(sid)"), "name: parentheses refused");
    ok(!sd_cookie_name_valid("s/d"), "name: '/' refused");
    ok(!sd_cookie_name_valid("sid\t"), "name: tab refused");
    ok(!sd_cookie_name_valid("s\xc3\xa9"), "name: high bytes refused");
    ok(!sd_cookie_name_valid("a\x7f"), "name: DEL refused");
    ok(!sd_cookie_name_valid("a:b"), "name: ':' refused");
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_find_basic();
    test_find_malformed();
    test_find_huge();
    test_format();
    test_name_valid();
    apr_pool_destroy(pool);
    apr_terminate();
    return done_testing();
}
