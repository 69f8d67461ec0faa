/*
 * application/x-www-form-urlencoded bodies and query strings.
 *
 * Strict: a bad percent escape, a NUL byte or too many fields make the whole
 * input invalid (the glue answers 400) instead of being half-understood.
 */
#ifndef SD_FORM_H
#define SD_FORM_H

#include <apr_pools.h>
#include <apr_tables.h>

#define SD_FORM_MAX_FIELDS 32

/**
 * Parse @a len bytes of @a in into @a *out (name -> value, first value wins;
 * a repeated name makes the input invalid). Returns APR_SUCCESS or
 * APR_EINVAL.
 */
apr_status_t sd_form_parse(apr_pool_t *pool, const char *in, apr_size_t len,
                           apr_table_t **out);

#endif
