/*
 * sd_users_parse (htpasswd), sd_groups_parse (htgroup), sd_hash_policy and
 * sd_username_valid. The same input is read as a user file and as a group
 * file; each of its lines, and the whole input as one C string, also go
 * through sd_hash_policy and sd_username_valid. (sd_password_check is left
 * out: it runs bcrypt, a few milliseconds an input.)
 *
 * Properties, all against independent reference readers of the formats:
 *  - users: the same set of names, each with the same hash (up to the next
 *    ':'), the first entry for a name winning; u->user is the key;
 *    u->weak is exactly sd_hash_policy(u->hash); names are non-empty with
 *    no ':' and no NUL; *bad_line is the first line without a usable ':'
 *    (or with a NUL), 0 when none, and passing NULL for it changes nothing;
 *  - groups: the same user -> first group map; groups are non-empty and do
 *    not end in blanks, users have no blanks;
 *  - sd_hash_policy accepts exactly "$2a$" / "$2b$" / "$2y$", a two-digit
 *    cost of 10 to 15 (SD_BCRYPT_MAX_COST), '$' and 53 bcrypt-base64
 *    characters, nothing more;
 *    a well-formed hash of a low cost N gets "bcrypt of cost N, below 10";
 *    every refusal has a non-empty reason;
 *  - sd_username_valid: 1 to 128 bytes of valid UTF-8 with no control
 *    character, DEL, ':' or space.
 */
#include <apr_hash.h>
#include <apr_strings.h>

#include "fuzz_common.h"
#include "sd_passwd.h"

static int ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
           c == '\f';
}

/* Lines as next_line() in src/ defines them: split on '\n', trimmed; a
 * final '\n' does not start another line. */
typedef struct {
    const char *s;
    size_t len;
} line_t;

static size_t split_lines(const char *t, size_t len, line_t **out)
{
    size_t n = 0, cap = 16, a = 0;
    line_t *v = malloc(cap * sizeof(*v));

    while (a < len) {
        size_t b = a, s, e;
        while (b < len && t[b] != '\n') {
            b++;
        }
        s = a;
        e = b;
        while (s < e && ws(t[s])) {
            s++;
        }
        while (e > s && ws(t[e - 1])) {
            e--;
        }
        if (n == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof(*v));
        }
        v[n].s = t + s;
        v[n].len = e - s;
        n++;
        a = b + 1;
    }
    *out = v;
    return n;
}

static int bchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '/';
}

/* -1: acceptable; else the cost of a well-formed low-cost bcrypt hash, or
 * 100 for any other refusal. */
static int ref_policy(const char *h)
{
    size_t i;
    int cost;

    if (strlen(h) != 60 || h[0] != '$' || h[1] != '2' ||
        !(h[2] == 'a' || h[2] == 'b' || h[2] == 'y') || h[3] != '$' ||
        !(h[4] >= '0' && h[4] <= '9') || !(h[5] >= '0' && h[5] <= '9') ||
        h[6] != '$') {
        return 100;
    }
    for (i = 7; i < 60; i++) {
        if (!bchar((unsigned char)h[i])) {
            return 100;
        }
    }
    cost = (h[4] - '0') * 10 + (h[5] - '0');
    if (cost > SD_BCRYPT_MAX_COST) { /* 16..31: too slow; over 31: bcrypt */
        return 100;
    }
    return cost >= 10 ? -1 : cost;
}

static void check_policy(apr_pool_t *pool, const char *h)
{
    const char *why = sd_hash_policy(h);
    int ref = ref_policy(h);

    if (ref == -1) {
        FUZZ_CHECK(why == NULL, "hash \"%s\" refused: %s", h, why);
    }
    else {
        FUZZ_CHECK(why != NULL && *why, "hash \"%s\" accepted", h);
        if (ref < 10) {
            FUZZ_CHECK(strcmp(why, apr_psprintf(pool, "bcrypt of cost %d, "
                                                      "below 10",
                                                ref)) == 0,
                       "hash \"%s\": \"%s\"", h, why);
        }
    }
}

static int ref_username(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > 128) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == ':' || c == ' ') {
            return 0;
        }
    }
    return fuzz_utf8_valid((const unsigned char *)s, len);
}

static void check_users(apr_pool_t *pool, const char *text, size_t len,
                        const line_t *ln, size_t nl)
{
    apr_hash_t *users = NULL, *users2 = NULL, *ref = apr_hash_make(pool);
    apr_hash_index_t *hi;
    int bad = -1, rbad = 0;
    size_t i;

    FUZZ_CHECK(sd_users_parse(pool, text, len, &users, &bad) ==
                   APR_SUCCESS,
               "sd_users_parse failed");
    FUZZ_CHECK(sd_users_parse(pool, text, len, &users2, NULL) ==
                   APR_SUCCESS,
               "sd_users_parse failed without bad_line");
    for (i = 0; i < nl; i++) {
        const char *s = ln[i].s, *c, *he;
        size_t l = ln[i].len;
        char *name;

        if (l == 0 || s[0] == '#') {
            continue;
        }
        c = memchr(s, ':', l);
        if (c == NULL || c == s || memchr(s, '\0', l) != NULL) {
            if (rbad == 0) {
                rbad = (int)i + 1;
            }
            continue;
        }
        name = apr_pstrmemdup(pool, s, c - s);
        if (apr_hash_get(ref, name, APR_HASH_KEY_STRING)) {
            continue;
        }
        he = memchr(c + 1, ':', s + l - c - 1);
        apr_hash_set(ref, name, APR_HASH_KEY_STRING,
                     apr_pstrmemdup(pool, c + 1, (he ? he : s + l) - c - 1));
    }
    FUZZ_CHECK(bad == rbad, "bad_line %d, the reference %d", bad, rbad);
    FUZZ_CHECK(apr_hash_count(users) == apr_hash_count(ref) &&
                   apr_hash_count(users2) == apr_hash_count(ref),
               "%u users, the reference %u", apr_hash_count(users),
               apr_hash_count(ref));
    for (hi = apr_hash_first(pool, users); hi; hi = apr_hash_next(hi)) {
        const void *k;
        void *v;
        const sd_user_t *u;
        const char *rh, *w;

        apr_hash_this(hi, &k, NULL, &v);
        u = v;
        FUZZ_CHECK(u && u->user && u->hash, "incomplete entry");
        FUZZ_CHECK(strcmp(k, u->user) == 0, "key \"%s\" vs user \"%s\"",
                   (const char *)k, u->user);
        FUZZ_CHECK(u->user[0] != '\0' && strchr(u->user, ':') == NULL &&
                       strchr(u->user, '\n') == NULL,
                   "bad user name \"%s\"", u->user);
        FUZZ_CHECK(strchr(u->hash, ':') == NULL, "hash with ':'");
        rh = apr_hash_get(ref, u->user, APR_HASH_KEY_STRING);
        FUZZ_CHECK(rh != NULL, "user \"%s\" not in the reference", u->user);
        FUZZ_CHECK(strcmp(rh, u->hash) == 0,
                   "user \"%s\": hash \"%s\", the reference \"%s\"",
                   u->user, u->hash, rh);
        w = sd_hash_policy(u->hash);
        FUZZ_CHECK((w == NULL) == (u->weak == NULL) &&
                       (w == NULL || strcmp(w, u->weak) == 0),
                   "user \"%s\": weak is not sd_hash_policy(hash)", u->user);
        FUZZ_CHECK(apr_hash_get(users2, u->user, APR_HASH_KEY_STRING),
                   "bad_line NULL changed the users");
        check_policy(pool, u->hash);
    }
}

static void check_groups(apr_pool_t *pool, const char *text, size_t len,
                         const line_t *ln, size_t nl)
{
    apr_hash_t *roles = NULL, *ref = apr_hash_make(pool);
    apr_hash_index_t *hi;
    size_t i;

    FUZZ_CHECK(sd_groups_parse(pool, text, len, &roles) == APR_SUCCESS,
               "sd_groups_parse failed");
    for (i = 0; i < nl; i++) {
        const char *s = ln[i].s, *c, *ge, *u, *le;
        size_t l = ln[i].len;
        char *group;

        if (l == 0 || s[0] == '#' || memchr(s, '\0', l)) {
            continue;
        }
        c = memchr(s, ':', l);
        if (c == NULL) {
            continue;
        }
        for (ge = c; ge > s && ws(ge[-1]); ge--) {
        }
        if (ge == s) {
            continue;
        }
        group = apr_pstrmemdup(pool, s, ge - s);
        le = s + l;
        for (u = c + 1; u < le;) {
            const char *ue;
            if (ws(*u)) {
                u++;
                continue;
            }
            for (ue = u; ue < le && !ws(*ue); ue++) {
            }
            {
                char *user = apr_pstrmemdup(pool, u, ue - u);
                if (!apr_hash_get(ref, user, APR_HASH_KEY_STRING)) {
                    apr_hash_set(ref, user, APR_HASH_KEY_STRING, group);
                }
            }
            u = ue;
        }
    }
    FUZZ_CHECK(apr_hash_count(roles) == apr_hash_count(ref),
               "%u group members, the reference %u", apr_hash_count(roles),
               apr_hash_count(ref));
    for (hi = apr_hash_first(pool, roles); hi; hi = apr_hash_next(hi)) {
        const void *k;
        void *v;
        const char *user, *group, *rg;
        size_t gl;

        apr_hash_this(hi, &k, NULL, &v);
        user = k;
        group = v;
        rg = apr_hash_get(ref, user, APR_HASH_KEY_STRING);
        FUZZ_CHECK(rg != NULL && strcmp(rg, group) == 0,
                   "user \"%s\": group \"%s\", the reference \"%s\"", user,
                   group, rg ? rg : "(none)");
        gl = strlen(group);
        FUZZ_CHECK(gl > 0 && !ws(group[gl - 1]) && !ws(group[0]) &&
                       strchr(group, ':') == NULL,
                   "bad group name \"%s\"", group);
        FUZZ_CHECK(user[0] && strpbrk(user, " \t\r\n\v\f") == NULL,
                   "bad user \"%s\"", user);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return fuzz_apr_init();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *pool = fuzz_pool();
    char *text = fuzz_dup(data, size, 0);
    line_t *ln;
    size_t nl = split_lines(text, size, &ln), i;

    check_users(pool, text, size, ln, nl);
    check_groups(pool, text, size, ln, nl);
    for (i = 0; i < nl && i < 64; i++) {
        char *s = apr_pstrmemdup(pool, ln[i].s, ln[i].len);
        check_policy(pool, s);
        FUZZ_CHECK(!!sd_username_valid(ln[i].s, ln[i].len) ==
                       ref_username(ln[i].s, ln[i].len),
                   "sd_username_valid of line %zu", i + 1);
    }
    {
        char *whole = fuzz_dup(data, size, 1);
        check_policy(pool, whole);
        FUZZ_CHECK(!!sd_username_valid(whole, size) ==
                       ref_username(whole, size),
                   "sd_username_valid of the whole input");
        free(whole);
    }
    if (size == 0) {
        apr_hash_t *h = NULL;
        int b = -1;
        FUZZ_CHECK(sd_users_parse(pool, NULL, 0, &h, &b) == APR_SUCCESS &&
                       h && apr_hash_count(h) == 0 && b == 0,
                   "NULL, 0 users");
        FUZZ_CHECK(sd_users_parse(pool, NULL, 1, &h, &b) == APR_EINVAL,
                   "NULL, 1 users");
        FUZZ_CHECK(sd_groups_parse(pool, NULL, 0, &h) == APR_SUCCESS && h &&
                       apr_hash_count(h) == 0,
                   "NULL, 0 groups");
        FUZZ_CHECK(sd_groups_parse(pool, NULL, 1, &h) == APR_EINVAL,
                   "NULL, 1 groups");
        FUZZ_CHECK(sd_hash_policy(NULL) != NULL, "NULL hash accepted");
        FUZZ_CHECK(!sd_username_valid(NULL, 0), "NULL username valid");
    }

    free(ln);
    free(text);
    apr_pool_destroy(pool);
    return 0;
}
