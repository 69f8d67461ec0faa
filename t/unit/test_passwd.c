/*
 * Password policy and checks , htpasswd and htgroup parsing, and
 * usernames. Real bcrypt hashes are made with APR-util at cost 10, so a
 * handful of checks costs about a second.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <apr_general.h>
#include <apr_hash.h>
#include <apr_md5.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "tap.h"
#include "sd_passwd.h"
#include "sd_record.h" /* SD_USER_MAX */

static apr_pool_t *pool;

/* 53 characters of bcrypt alphabet: 22 of salt, 31 of hash. */
static const char BODY[] =
    "abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ./012";

static const char *mk(const char *prefix)
{
    return apr_pstrcat(pool, prefix, BODY, NULL);
}

static const char *bcrypt(const char *pw, unsigned int cost)
{
    static const unsigned char salt[16] = "0123456789abcdef";
    char out[64];

    if (apr_bcrypt_encode(pw, cost, salt, sizeof salt, out, sizeof out) !=
        APR_SUCCESS) {
        return "bcrypt failed";
    }
    return apr_pstrdup(pool, out);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_policy(void)
{
    char md5[120];

    is_int((long long)strlen(BODY), 53, "(fixture: 53 body characters)");
    is_str(sd_hash_policy(mk("$2y$10$")), NULL, "$2y$10$ accepted");
    is_str(sd_hash_policy(mk("$2a$12$")), NULL, "$2a$12$ accepted");
    is_str(sd_hash_policy(mk("$2y$14$")), NULL, "$2y$14$ accepted");
    is_str(sd_hash_policy(mk("$2y$15$")), NULL, "$2y$15$ accepted");
    /* A cost-31 line would make every failed login (which waits as long
     * as the slowest user) take days: refused with a warning. */
    ok(sd_hash_policy(mk("$2b$16$")) != NULL, "$2b$16$ refused (too slow)");
    ok(sd_hash_policy(mk("$2b$31$")) != NULL, "$2b$31$ refused (too slow)");
    ok(sd_hash_policy(mk("$2y$05$")) != NULL, "$2y$05$ refused (low cost)");
    ok(sd_hash_policy(mk("$2y$09$")) != NULL, "$2y$09$ refused (low cost)");
    ok(sd_hash_policy(mk("$2a$04$")) != NULL, "$2a$04$ refused (low cost)");
    apr_md5_encode("secret", "abcdefgh", md5, sizeof md5);
    ok(sd_hash_policy(md5) != NULL, "$apr1$ refused: %s", md5);
    ok(sd_hash_policy("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=") != NULL,
       "{SHA} refused");
    ok(sd_hash_policy("rqXexS6ZhobKA") != NULL, "13-char crypt refused");
    ok(sd_hash_policy("secret") != NULL, "plaintext refused");
    ok(sd_hash_policy("") != NULL, "empty entry refused");
    ok(sd_hash_policy("$1$abcdefgh$abcdefghijklmnopqrstuv") != NULL,
       "$1$ md5-crypt refused");
    ok(sd_hash_policy("$6$salt$hash") != NULL, "$6$ sha512-crypt refused");
    {
        char *s = apr_pstrdup(pool, mk("$2y$10$"));
        s[59] = '\0';
        ok(sd_hash_policy(s) != NULL, "bcrypt of 59 characters refused");
    }
    ok(sd_hash_policy(apr_pstrcat(pool, mk("$2y$10$"), "x", NULL)) != NULL,
       "bcrypt of 61 characters refused");
    ok(sd_hash_policy("$2y$10$") != NULL, "bare bcrypt prefix refused");
    ok(sd_hash_policy(mk("$2x$10$")) != NULL, "$2x$ refused");
    ok(sd_hash_policy(mk("$2y$32$")) != NULL, "cost 32 refused (bcrypt: 4-31)");
    ok(sd_hash_policy(mk("$2y$1x$")) != NULL, "cost '1x' refused");
    ok(sd_hash_policy(apr_pstrcat(pool, "$2y$1$", BODY, "a", NULL)) != NULL,
       "one-digit cost refused");
    {
        char *s = apr_pstrdup(pool, mk("$2y$10$"));
        s[30] = '!';
        ok(sd_hash_policy(s) != NULL, "non-bcrypt character refused");
    }
    is_str(sd_hash_policy(bcrypt("x", 10)), NULL,
           "a real apr_bcrypt_encode cost-10 hash accepted");
}

static void test_check(void)
{
    const char *good = bcrypt("correct horse", 10);
    const char *dummy = bcrypt("dummy password nobody knows", 10);
    char pw72[73], pw73[80];
    const char *h72;
    sd_user_t u, weak;
    double t0, t_wrong = 1e9, t_unknown = 1e9, t_weak = 1e9, t;
    int i;

    u.user = "alice";
    u.hash = good;
    u.weak = NULL;
    is_int(sd_password_check(&u, "correct horse", dummy), APR_SUCCESS,
           "right password accepted");
    ok(sd_password_check(&u, "correct hors", dummy) != APR_SUCCESS,
       "wrong password refused");
    ok(sd_password_check(&u, "", dummy) != APR_SUCCESS,
       "empty password refused");
    ok(sd_password_check(NULL, "correct horse", dummy) != APR_SUCCESS,
       "unknown user refused");
    ok(sd_password_check(NULL, "dummy password nobody knows", dummy) !=
           APR_SUCCESS,
       "unknown user refused even with the dummy's password");

    memset(pw72, 'p', 72);
    pw72[72] = '\0';
    h72 = bcrypt(pw72, 10);
    u.hash = h72;
    is_int(sd_password_check(&u, pw72, dummy), APR_SUCCESS,
           "a 72-byte password accepted");
    memcpy(pw73, pw72, 72);
    strcpy(pw73 + 72, "extra");
    ok(apr_password_validate(pw73, h72) == APR_SUCCESS,
       "(bcrypt itself ignores bytes after 72)");
    ok(sd_password_check(&u, pw73, dummy) != APR_SUCCESS,
       "a 77-byte password whose first 72 bytes are right is refused");

    /* A weak entry cannot log in, even with the right password. */
    {
        char md5[120];
        apr_md5_encode("correct horse", "abcdefgh", md5, sizeof md5);
        weak.user = "bob";
        weak.hash = apr_pstrdup(pool, md5);
        weak.weak = "an MD5 ($apr1$) hash";
        ok(apr_password_validate("correct horse", weak.hash) == APR_SUCCESS,
           "(the MD5 entry matches the password)");
        ok(sd_password_check(&weak, "correct horse", dummy) != APR_SUCCESS,
           "weak entry refused with the right password");
    }

    /* Timing: the unknown and weak paths must run bcrypt too. */
    u.hash = good;
    for (i = 0; i < 2; i++) {
        t0 = now_s();
        sd_password_check(&u, "wrong", dummy);
        t = now_s() - t0;
        t_wrong = t < t_wrong ? t : t_wrong;
        t0 = now_s();
        sd_password_check(NULL, "wrong", dummy);
        t = now_s() - t0;
        t_unknown = t < t_unknown ? t : t_unknown;
        t0 = now_s();
        sd_password_check(&weak, "wrong", dummy);
        t = now_s() - t0;
        t_weak = t < t_weak ? t : t_weak;
    }
    diag("wrong password %.1f ms, unknown user %.1f ms, weak entry %.1f ms",
         t_wrong * 1e3, t_unknown * 1e3, t_weak * 1e3);
    ok(t_wrong > 0.005, "a cost-10 check takes real time (%.1f ms)",
       t_wrong * 1e3);
    ok(t_unknown >= 0.5 * t_wrong, "unknown user spends bcrypt time too");
    ok(t_weak >= 0.5 * t_wrong, "weak entry spends bcrypt time too");
    t0 = now_s();
    sd_password_check(NULL, pw73, dummy);
    t = now_s() - t0;
    ok(t >= 0.5 * t_wrong, "over-long password spends bcrypt time too");
}

static void test_users(void)
{
    const char *good = bcrypt("s3cret", 10);
    const char *weak5 = bcrypt("s3cret", 5);
    const char *text =
        apr_pstrcat(pool, "# users of the demo\n",                 /* 1 */
                    "alice:", good, "\r\n",                        /* 2 */
                    "\n",                                          /* 3 */
                    "bob:$apr1$abcdefgh$0123456789abcdefghijkl\n", /* 4 */
                    "   # an indented comment\n",                  /* 5 */
                    "this line has no colon\n",                    /* 6 */
                    "alice:$2y$10$", BODY, "\n", /* 7: duplicate */
                    "carol:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\r\n", /* 8 */
                    "dave:", weak5, "\n",                          /* 9 */
                    "erin:", mk("$2a$12$"), /* 10: no newline */
                    NULL);
    apr_hash_t *users = NULL;
    sd_user_t *u;
    int bad = -1;

    is_int(sd_users_parse(pool, text, strlen(text), &users, &bad), APR_SUCCESS,
           "users parse");
    if (users == NULL) {
        skip(14, "no table");
        return;
    }
    is_int(apr_hash_count(users), 5,
           "five users (comments, blanks, "
           "the colon-less line and the duplicate skipped)");
    is_int(bad, 6, "the line without ':' is reported as line 6");
    u = apr_hash_get(users, "alice", APR_HASH_KEY_STRING);
    ok(u != NULL && strcmp(u->user, "alice") == 0, "alice present");
    is_str(u ? u->hash : NULL, good, "alice: first entry wins, CR removed");
    ok(u && u->weak == NULL, "alice: not weak");
    ok(u && sd_password_check(u, "s3cret", good) == APR_SUCCESS,
       "alice logs in with the parsed entry (CRLF file)");
    u = apr_hash_get(users, "bob", APR_HASH_KEY_STRING);
    ok(u && u->weak != NULL, "bob ($apr1$) marked weak: %s",
       u && u->weak ? u->weak : "-");
    u = apr_hash_get(users, "carol", APR_HASH_KEY_STRING);
    ok(u && u->weak != NULL && strchr(u->hash, '\r') == NULL,
       "carol ({SHA}) marked weak, CR removed");
    u = apr_hash_get(users, "dave", APR_HASH_KEY_STRING);
    ok(u && u->weak != NULL, "dave (bcrypt cost 5) marked weak: %s",
       u && u->weak ? u->weak : "-");
    ok(u && apr_password_validate("s3cret", u->hash) == APR_SUCCESS &&
           sd_password_check(u, "s3cret", good) != APR_SUCCESS,
       "dave cannot log in with the right password");
    u = apr_hash_get(users, "erin", APR_HASH_KEY_STRING);
    ok(u && u->weak == NULL && strcmp(u->hash, mk("$2a$12$")) == 0,
       "erin (last line, no newline) parsed and strong");
    ok(apr_hash_get(users, "# users of the demo", APR_HASH_KEY_STRING) ==
               NULL &&
           apr_hash_get(users, "", APR_HASH_KEY_STRING) == NULL,
       "no entry from a comment or blank line");
    ok(apr_hash_get(users, "Alice", APR_HASH_KEY_STRING) == NULL,
       "usernames are case-sensitive");

    bad = -1;
    is_int(sd_users_parse(pool, "", 0, &users, &bad), APR_SUCCESS,
           "empty file parses");
    ok(users && apr_hash_count(users) == 0 && bad == 0,
       "... to no users, no bad line");
    bad = -1;
    sd_users_parse(pool, "\n  \n\t\r\n# x\n", 11, &users, &bad);
    ok(users && apr_hash_count(users) == 0 && bad == 0,
       "whitespace-only lines are blank, not bad");
    bad = -1;
    sd_users_parse(pool, "a:x\nb:y\nzzz", 11, &users, &bad);
    ok(users && apr_hash_count(users) == 2 && bad == 3,
       "a bad last line without newline is line 3");
    bad = -1;
    sd_users_parse(pool, "a:x\nb:y", 3, &users, &bad);
    ok(users && apr_hash_count(users) == 1, "only len bytes are read");
}

static void test_groups(void)
{
    static const char text[] = "# groups\n"
                               "admins: alice bob\r\n"
                               "\n"
                               "staff:carol  alice\n"
                               "devs:\tdave\tcarol \n"
                               "nobody:\n"
                               "ops: erin";
    apr_hash_t *roles = NULL;

    is_int(sd_groups_parse(pool, text, strlen(text), &roles), APR_SUCCESS,
           "groups parse");
    if (roles == NULL) {
        skip(7, "no table");
        return;
    }
    is_int(apr_hash_count(roles), 5, "five users have a role");
    is_str(apr_hash_get(roles, "alice", APR_HASH_KEY_STRING), "admins",
           "alice: the first group listing her wins");
    is_str(apr_hash_get(roles, "bob", APR_HASH_KEY_STRING), "admins",
           "bob: admins (CRLF line)");
    is_str(apr_hash_get(roles, "carol", APR_HASH_KEY_STRING), "staff",
           "carol: staff, not devs");
    is_str(apr_hash_get(roles, "dave", APR_HASH_KEY_STRING), "devs",
           "dave: tab-separated");
    is_str(apr_hash_get(roles, "erin", APR_HASH_KEY_STRING), "ops",
           "erin: last line without newline");
    ok(apr_hash_get(roles, "nobody", APR_HASH_KEY_STRING) == NULL,
       "a group name is not a user");
}

static void test_username(void)
{
    char longname[200];

    ok(sd_username_valid("alice", 5), "username alice");
    ok(sd_username_valid("j.doe-2_x@example.com", 21), "username with . - _ @");
    ok(!sd_username_valid("", 0), "empty username refused");
    ok(!sd_username_valid("al:ice", 6), "':' refused");
    ok(!sd_username_valid("al\nice", 6), "newline refused (log forging)");
    ok(!sd_username_valid("al\rice", 6), "CR refused");
    ok(!sd_username_valid("al\0ce", 5), "NUL refused");
    ok(!sd_username_valid("al\x7f"
                          "ce",
                          5),
       "DEL refused");
    ok(!sd_username_valid("al\tce", 5), "tab refused");
    ok(!sd_username_valid("a\xff", 2), "invalid UTF-8 refused");
    memset(longname, 'a', sizeof longname);
    ok(sd_username_valid(longname, SD_USER_MAX), "%d characters accepted",
       SD_USER_MAX);
    ok(!sd_username_valid(longname, SD_USER_MAX + 1), "%d characters refused",
       SD_USER_MAX + 1);
    ok(!sd_username_valid("alice", 0), "len 0 refused");
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_policy();
    test_check();
    test_users();
    test_groups();
    test_username();
    apr_pool_destroy(pool);
    apr_terminate();
    return done_testing();
}
