/*
 * Users: the user and group files (htpasswd and htgroup format), cached
 * per process and re-read when they change, and the credential checks
 * built on them. Layer 2 of the glue: it knows configuration and the
 * core's password policy, nothing about sessions or pages.
 */
#ifndef SDEMO_USERS_H
#define SDEMO_USERS_H

#include "sdemo_config.h"
#include "sd_record.h"

/** The role every guest gets (SessionDemoGuestPassword), whatever the
 *  group file says. */
#define SDEMO_GUEST_ROLE "guest"

/** Per-generation set-up: the file caches, and a warning for every user
 *  who cannot log in (weak or too slow hash). */
void sdemo_users_init(apr_pool_t *pconf, server_rec *s);

/**
 * Check a login. Returns 1 and sets *role and *stamp (what ties the
 * session to this credential, see sdemo_cred_still_valid()) when
 * @a password is right for @a user; else 0. A failure takes as long as a
 * check of the file's slowest hash, whoever the user is, so timing does
 * not tell known names from unknown ones.
 */
int sdemo_check_credentials(request_rec *r, const char *user,
                            const char *password, const char **role,
                            apr_uint64_t *stamp);

/** NULL when the credential behind @a s is still what it was at login,
 *  else why not (the user was deleted, the password or role changed). */
const char *sdemo_cred_still_valid(request_rec *r, const sd_session_t *s);

/** The identity of the user database @a r logs in against: the same
 *  name in two user files is two users. */
const char *sdemo_realm(request_rec *r);

#endif
