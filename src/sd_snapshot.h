/*
 * Snapshots: the whole session store in a file, so that sessions survive a
 * full stop and start of httpd (SessionDemoSnapshot).
 *
 * A snapshot is written to a temporary file beside the target and renamed
 * over it only when complete and synced, so a crash mid-write leaves the
 * previous snapshot (or none), never a torn one. Loading trusts nothing:
 * a file that is truncated, corrupt, foreign or of another version is
 * refused as a whole, and every record is bounds-checked.
 */
#ifndef SD_SNAPSHOT_H
#define SD_SNAPSHOT_H

#include "sd_shm.h"

/** Write every live session of @a st to @a path. *count gets the number
 *  written. */
apr_status_t sd_snapshot_save(sd_shm_t *st, const char *path,
                              apr_pool_t *pool, apr_uint64_t *count);

/**
 * Load @a path into @a st: sessions that ended by @a now are skipped, and
 * so are those that do not fit. APR_EINVAL with *why set when the file is
 * not a valid snapshot (nothing is loaded then); APR_ENOENT when there is
 * no file.
 */
apr_status_t sd_snapshot_load(sd_shm_t *st, const char *path,
                              apr_pool_t *pool, apr_int64_t now,
                              apr_uint64_t *loaded, const char **why);

/** Parse a snapshot already in memory (what sd_snapshot_load does after
 *  reading the file; separate so that fuzzers can reach it). */
apr_status_t sd_snapshot_parse(sd_shm_t *st, const unsigned char *buf,
                               apr_size_t len, apr_int64_t now,
                               apr_uint64_t *loaded, const char **why);

#endif
