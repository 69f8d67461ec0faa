/*
 * The session record: what one session holds, and its compact binary form.
 *
 * The store treats records as opaque bytes; this codec is the only code that
 * knows their layout. Decoding checks every length against the buffer, so a
 * damaged record (or a hostile snapshot file) is refused, never overread.
 */
#ifndef SD_RECORD_H
#define SD_RECORD_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "sd_id.h"

#define SD_RECORD_VERSION 2
#define SD_USER_MAX 128         /* longest username */
#define SD_ROLE_MAX 128         /* longest role (group) name */
#define SD_NOTE_MAX 1000        /* longest note */
#define SD_DEVICE_MAX 64        /* longest device summary */
#define SD_CSRF_LEN SD_ID_LEN   /* a CSRF token is as strong as an ID */

typedef struct {
    const char *user;           /* who logged in */
    const char *role;           /* their first group, or "user" */
    char csrf[SD_CSRF_LEN + 1]; /* per-session token for POST forms */
    apr_uint64_t cred_stamp;    /* hash of the password entry at login */
    apr_uint64_t ua_hash;       /* hash of the User-Agent at login */
    const char *device;         /* e.g. "Firefox on Linux" (may be "") */
    apr_uint64_t visits;        /* dashboard requests so far */
    apr_array_header_t *notes;  /* const char *, oldest first */
} sd_session_t;

/** A new, empty session record for @a user with role @a role, with a fresh
 *  CSRF token; NULL when the random source fails. */
sd_session_t *sd_session_make(apr_pool_t *pool, const char *user,
                              const char *role);

/** Encode @a s into @a *buf (from @a pool); returns its length. */
apr_size_t sd_record_encode(apr_pool_t *pool, const sd_session_t *s,
                            char **buf);

/** Decode @a len bytes; APR_EINVAL if they are not a valid record. */
apr_status_t sd_record_decode(apr_pool_t *pool, const char *buf,
                              apr_size_t len, sd_session_t **s);

/**
 * Non-zero when the record in @a buf belongs to user @a user: a look at the
 * user field only, cheap enough to run over a whole store.
 */
int sd_record_is_user(const char *buf, apr_size_t len, const char *user);

/**
 * The user's name from the start of a record (@a len may be less than the
 * whole record), copied into @a pool; NULL when it cannot be read.
 */
const char *sd_record_user(apr_pool_t *pool, const char *buf, apr_size_t len);

/** A 64-bit digest of a string, for cred_stamp and ua_hash. */
apr_uint64_t sd_hash64(const char *s, apr_size_t len);

#endif
