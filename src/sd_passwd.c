/*
 * Users, groups and password checks.
 *
 * The user file is ordinary htpasswd text, so admins keep using htpasswd
 * and existing files work unchanged. What differs from mod_authn_file is the
 * policy: only bcrypt of cost SD_BCRYPT_MIN_COST or more may log in. Weak
 * entries are kept, not dropped, so that the glue can name each one in a
 * warning at start and so that a login for a weak user costs exactly what a
 * login for a strong one costs: every check runs one bcrypt verification,
 * against a dummy hash when the entry is missing or weak. A timing
 * difference would otherwise tell an attacker which usernames exist.
 */
#include <string.h>

#include <apr_md5.h>
#include <apr_strings.h>

#include "sd_passwd.h"
#include "sd_utf8.h"
#include "sd_record.h"

/* --------------------------------------------------------------------- */
/* Hash policy                                                            */
/* --------------------------------------------------------------------- */

#define BCRYPT_BODY_LEN 53 /* 22 characters of salt, 31 of hash */

static int is_bcrypt_char(unsigned char c)
{
    return c == '.' || c == '/' || (c >= 'A' && c <= 'Z') ||
           (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

const char *sd_hash_policy(const char *hash)
{
    /* The reasons are static because the caller logs them once per entry
     * at start and there is no pool to format into; bcrypt only defines
     * costs 4 to 31, so the low costs fit in a table. */
    static const char *const low_cost[SD_BCRYPT_MIN_COST] = {
        "bcrypt of cost 0, below 10", "bcrypt of cost 1, below 10",
        "bcrypt of cost 2, below 10", "bcrypt of cost 3, below 10",
        "bcrypt of cost 4, below 10", "bcrypt of cost 5, below 10",
        "bcrypt of cost 6, below 10", "bcrypt of cost 7, below 10",
        "bcrypt of cost 8, below 10", "bcrypt of cost 9, below 10"};
    apr_size_t i;
    int cost;

    if (hash == NULL || hash[0] == '\0') {
        return "an empty password entry";
    }
    if (strncmp(hash, "$apr1$", 6) == 0) {
        return "an MD5 ($apr1$) hash";
    }
    if (strncmp(hash, "{SHA}", 5) == 0) {
        return "a SHA-1 ({SHA}) hash";
    }
    if (strncmp(hash, "$1$", 3) == 0) {
        return "an MD5-crypt ($1$) hash";
    }
    if (strncmp(hash, "$5$", 3) == 0 || strncmp(hash, "$6$", 3) == 0) {
        return "a SHA-crypt ($5$ or $6$) hash";
    }
    if (strncmp(hash, "$2", 2) != 0) {
        return "a crypt or plaintext entry";
    }

    /* "$2y$" "$2a$" "$2b$": the variants APR's bcrypt verifies correctly
     * ("$2x$" exists only to reproduce an old bug). */
    if ((hash[2] != 'y' && hash[2] != 'a' && hash[2] != 'b') ||
        hash[3] != '$' || hash[4] < '0' || hash[4] > '9' || hash[5] < '0' ||
        hash[5] > '9' || hash[6] != '$') {
        return "a malformed bcrypt hash";
    }
    for (i = 0; i < BCRYPT_BODY_LEN; i++) {
        if (!is_bcrypt_char((unsigned char)hash[7 + i])) {
            return "a malformed bcrypt hash";
        }
    }
    if (hash[7 + BCRYPT_BODY_LEN] != '\0') {
        return "a malformed bcrypt hash";
    }
    cost = (hash[4] - '0') * 10 + (hash[5] - '0');
    if (cost > 31) {
        return "a malformed bcrypt hash";
    }
    if (cost < SD_BCRYPT_MIN_COST) {
        return low_cost[cost];
    }
    /* Each step doubles the time: cost 16 is already about 5 s of CPU per
     * login, and one cost-31 line would let every failed login (which
     * waits as long as the slowest user's check) stall a worker for
     * hours. */
    if (cost > SD_BCRYPT_MAX_COST) {
        return "bcrypt of a cost over 15 (every login would take seconds)";
    }
    return NULL;
}

/* --------------------------------------------------------------------- */
/* File parsing                                                           */
/* --------------------------------------------------------------------- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
           c == '\f';
}

/* Step to the next line of [*p, end), trimmed of surrounding whitespace
 * (which also removes the CR of CRLF files). Returns 0 at the end. */
static int next_line(const char **p, const char *end, const char **line,
                     apr_size_t *len)
{
    const char *s = *p, *e, *nl;

    if (s >= end) {
        return 0;
    }
    nl = memchr(s, '\n', end - s);
    e = nl ? nl : end;
    *p = nl ? nl + 1 : end;
    while (s < e && is_space(*s)) {
        s++;
    }
    while (e > s && is_space(e[-1])) {
        e--;
    }
    *line = s;
    *len = e - s;
    return 1;
}

apr_status_t sd_users_parse(apr_pool_t *pool, const char *text, apr_size_t len,
                            apr_hash_t **users, int *bad_line)
{
    apr_hash_t *h = apr_hash_make(pool);
    const char *p, *end, *line;
    apr_size_t ll;
    int lineno = 0;

    if (bad_line) {
        *bad_line = 0;
    }
    *users = h;
    if (text == NULL) {
        return len ? APR_EINVAL : APR_SUCCESS;
    }
    p = text;
    end = text + len;
    while (next_line(&p, end, &line, &ll)) {
        const char *colon, *hend;
        sd_user_t *u;
        char *name;

        lineno++;
        if (ll == 0 || line[0] == '#') {
            continue;
        }
        colon = memchr(line, ':', ll);
        /* A NUL would make the C strings below disagree with the file. */
        if (colon == NULL || colon == line || memchr(line, '\0', ll)) {
            if (bad_line && *bad_line == 0) {
                *bad_line = lineno;
            }
            continue;
        }
        name = apr_pstrmemdup(pool, line, colon - line);
        /* First entry wins, as in mod_authn_file, which stops at the
         * first matching line. */
        if (apr_hash_get(h, name, APR_HASH_KEY_STRING) != NULL) {
            continue;
        }
        /* Like mod_authn_file, the hash ends at the next ':', so files with
         * trailing fields (user:hash:comment) keep working. */
        hend = memchr(colon + 1, ':', line + ll - colon - 1);
        if (hend == NULL) {
            hend = line + ll;
        }
        u = apr_palloc(pool, sizeof(*u));
        u->user = name;
        u->hash = apr_pstrmemdup(pool, colon + 1, hend - colon - 1);
        u->weak = sd_hash_policy(u->hash);
        apr_hash_set(h, u->user, APR_HASH_KEY_STRING, u);
    }
    return APR_SUCCESS;
}

apr_status_t sd_groups_parse(apr_pool_t *pool, const char *text, apr_size_t len,
                             apr_hash_t **roles)
{
    apr_hash_t *h = apr_hash_make(pool);
    const char *p, *end, *line;
    apr_size_t ll;

    *roles = h;
    if (text == NULL) {
        return len ? APR_EINVAL : APR_SUCCESS;
    }
    p = text;
    end = text + len;
    while (next_line(&p, end, &line, &ll)) {
        const char *colon, *ge, *u, *le = line + ll;
        const char *group;

        if (ll == 0 || line[0] == '#' || memchr(line, '\0', ll)) {
            continue;
        }
        colon = memchr(line, ':', ll);
        if (colon == NULL) {
            continue;
        }
        ge = colon;
        while (ge > line && is_space(ge[-1])) {
            ge--;
        }
        if (ge == line) {
            continue;
        }
        group = apr_pstrmemdup(pool, line, ge - line);

        u = colon + 1;
        while (u < le) {
            const char *ue;
            char *user;

            while (u < le && is_space(*u)) {
                u++;
            }
            ue = u;
            while (ue < le && !is_space(*ue)) {
                ue++;
            }
            if (ue > u) {
                user = apr_pstrmemdup(pool, u, ue - u);
                /* The role is the first group naming the user (as the README documents),
                 * so later lines never override an earlier one. */
                if (apr_hash_get(h, user, APR_HASH_KEY_STRING) == NULL) {
                    apr_hash_set(h, user, APR_HASH_KEY_STRING, group);
                }
            }
            u = ue;
        }
    }
    return APR_SUCCESS;
}

/* --------------------------------------------------------------------- */
/* Checking                                                               */
/* --------------------------------------------------------------------- */

apr_status_t sd_password_check(const sd_user_t *u, const char *password,
                               const char *dummy_hash)
{
    apr_size_t plen = password ? strlen(password) : 0;

    if (password == NULL || plen > SD_PASSWORD_MAX || u == NULL || u->weak) {
        /* Spend the same bcrypt time as a real check so that the answer's
         * timing says nothing about why it failed. The over-long password
         * is cut to what bcrypt would read anyway, which keeps the cost
         * bounded whatever the dummy hash is. */
        char buf[SD_PASSWORD_MAX + 1];

        if (plen > SD_PASSWORD_MAX) {
            plen = SD_PASSWORD_MAX;
        }
        if (plen) {
            memcpy(buf, password, plen);
        }
        buf[plen] = '\0';
        if (dummy_hash) {
            (void)apr_password_validate(buf, dummy_hash);
        }
        memset(buf, 0, sizeof(buf));
        return APR_EMISMATCH;
    }
    return apr_password_validate(password, u->hash) == APR_SUCCESS
               ? APR_SUCCESS
               : APR_EMISMATCH;
}

int sd_username_valid(const char *name, apr_size_t len)
{
    apr_size_t i;

    if (name == NULL || len == 0 || len > SD_USER_MAX) {
        return 0;
    }
    /* ':' would break the htpasswd and htgroup formats, a space the
     * htgroup one, and control characters would let a name forge log
     * lines that fail2ban reads. */
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == ':' || c == ' ') {
            return 0;
        }
    }
    return sd_utf8_valid(name, len);
}
