/*
 * Cookie parsing and formatting (RFC 6265), for the session cookie only.
 *
 * Parsing is deliberately strict: a request that carries the session cookie
 * twice (cookie tossing from a sibling domain) or in a malformed header is
 * treated as anonymous rather than guessing which value is genuine.
 */
#ifndef SD_COOKIE_H
#define SD_COOKIE_H

#include <apr_pools.h>

typedef enum {
    SD_COOKIE_ABSENT = 0,       /* no cookie of that name */
    SD_COOKIE_FOUND,            /* exactly one, value returned */
    SD_COOKIE_DUPLICATE,        /* present more than once */
    SD_COOKIE_MALFORMED         /* the header could not be parsed */
} sd_cookie_result_t;

/**
 * Look for cookie @a name in @a nheaders Cookie header values.
 * On SD_COOKIE_FOUND, *value points into @a pool (quotes removed).
 */
sd_cookie_result_t sd_cookie_find(apr_pool_t *pool, const char *const *headers,
                                  int nheaders, const char *name,
                                  const char **value);

typedef struct {
    const char *samesite;       /* "Strict", "Lax" or "None" */
    int secure;                 /* add Secure */
    int clear;                  /* empty value and Max-Age=0 */
    long max_age;               /* seconds; 0: a browser-session cookie */
} sd_cookie_attrs_t;

/** Format a Set-Cookie value: NAME=VALUE; Path=/; HttpOnly; SameSite=..;
 *  [Secure][; Max-Age=N]. Never a Domain, never an Expires. */
const char *sd_cookie_format(apr_pool_t *pool, const char *name,
                             const char *value, const sd_cookie_attrs_t *a);

/** Non-zero when @a name is a valid cookie-name token. */
int sd_cookie_name_valid(const char *name);

#endif
