/*
 * Text that reaches a page or a log: strict UTF-8 validation, and the
 * log-safe form of a username.
 */
#ifndef SD_UTF8_H
#define SD_UTF8_H

#include <apr.h>
#include <apr_pools.h>

/** Non-zero when the @a len bytes at @a buf are valid UTF-8. */
int sd_utf8_valid(const void *buf, apr_size_t len);

/**
 * A username as log lines show it: letters, digits and . _ @ + - as they
 * are, every other byte as %XX. No quote or backslash can appear, so a
 * crafted name cannot fake the rest of a line for a log watcher such as
 * fail2ban (httpd doubles backslashes, which would undo a \" escape).
 * httpd's ap_escape_logitem() keeps quotes and spaces, which a log
 * watcher's pattern would then have to survive.
 */
const char *sd_log_name(apr_pool_t *pool, const char *name);

#endif
