/*
 * Strict UTF-8 validation, for every text that reaches a page or a log.
 */
#ifndef SD_UTF8_H
#define SD_UTF8_H

#include <apr.h>

/** Non-zero when the @a len bytes at @a buf are valid UTF-8. */
int sd_utf8_valid(const void *buf, apr_size_t len);

#endif
