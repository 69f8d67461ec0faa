/*
 * Users (htpasswd format) and groups (htgroup format), and password checks.
 *
 * Only bcrypt of cost 10 to 15 is accepted: the parser keeps
 * every entry but marks weak ones, so the glue can warn about each by name
 * and refuse their logins, and the verifier spends the same bcrypt time on
 * an unknown user as on a known one.
 */
#ifndef SD_PASSWD_H
#define SD_PASSWD_H

#include <apr_pools.h>
#include <apr_hash.h>

#define SD_BCRYPT_MIN_COST 10
#define SD_BCRYPT_MAX_COST 15
#define SD_PASSWORD_MAX 72      /* bcrypt reads no more; longer is refused */

typedef struct {
    const char *user;           /* name as in the file */
    const char *hash;           /* the stored hash */
    const char *weak;           /* NULL, or why this entry cannot log in */
} sd_user_t;

/** Why @a hash is not acceptable, or NULL when it is bcrypt of cost 10 to
 *  15. */
const char *sd_hash_policy(const char *hash);

/**
 * Parse htpasswd text into @a *users (name -> sd_user_t *). Blank lines and
 * '#' comments are skipped; a line without ':' is reported through
 * @a *bad_line (1-based, 0 when none) and skipped.
 */
apr_status_t sd_users_parse(apr_pool_t *pool, const char *text,
                            apr_size_t len, apr_hash_t **users,
                            int *bad_line);

/**
 * Parse htgroup text into @a *roles (user -> first group naming them).
 */
apr_status_t sd_groups_parse(apr_pool_t *pool, const char *text,
                             apr_size_t len, apr_hash_t **roles);

/**
 * Check @a password against @a u (NULL: unknown user). Always spends one
 * bcrypt verification, against @a dummy_hash when the user is unknown or
 * weak, so timing does not tell them apart. APR_SUCCESS on a match.
 */
apr_status_t sd_password_check(const sd_user_t *u, const char *password,
                               const char *dummy_hash);

/** Non-zero when @a name is acceptable as a username for login. */
int sd_username_valid(const char *name, apr_size_t len);

#endif
