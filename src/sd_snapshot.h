/*
 * Snapshots: the whole session store in a file, so that sessions survive a
 * full stop and start of httpd (SessionDemoSnapshot).
 *
 * A snapshot holds live sessions, logged-in users and their roles, so it
 * is treated as a credential. It is written to a temporary file with a
 * random name beside the target, created exclusively and never through a
 * symbolic link, mode 0600, synced and renamed over the target only when
 * complete: a crash mid-write leaves the previous snapshot (or none), and
 * nobody can make the writer follow a link into another file. Its whole
 * contents are authenticated with HMAC-SHA-256 under a 32-byte key the
 * glue keeps beside it (sd_snapshot_key(), "<snapshot>.key"), so a user
 * who can write the file still cannot forge or alter a session in it.
 * Loading trusts nothing: the file must be a regular file of the expected
 * owner that only its owner can read or write, opened without following a
 * link; a file that is truncated, damaged, altered, written under another
 * key, foreign or of another version is refused as a whole, and every
 * record is bounds-checked.
 */
#ifndef SD_SNAPSHOT_H
#define SD_SNAPSHOT_H

#include <apr_user.h>

#include "sd_shm.h"

/** Bytes of a snapshot key. */
#define SD_SNAPSHOT_KEY_LEN 32

/**
 * Get the snapshot key from the file @a path, creating it when there is
 * none.
 *
 * An existing file must be a regular file (a symbolic link is not
 * followed), owned by the user this process runs as (root in production:
 * the parent loads and saves snapshots), with no permission for group or
 * others, and exactly SD_SNAPSHOT_KEY_LEN bytes long. A missing one is
 * created exclusively (O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600) with
 * bytes from apr_generate_random_bytes() and synced.
 *
 * @param path the key file
 * @param p    a pool for the reason
 * @param key  where the key goes (wipe it with sd_wipe() after use)
 * @param why  on error, what is wrong with the file, for the log
 * @return APR_SUCCESS; APR_EINVAL when the file exists but is refused;
 *         the system's error when it cannot be read or created.
 */
apr_status_t sd_snapshot_key(const char *path, apr_pool_t *p,
                             unsigned char key[SD_SNAPSHOT_KEY_LEN],
                             const char **why);

/**
 * Write every live session of @a st to @a path, authenticated under
 * @a key. The file is made as described above (random temporary name,
 * O_EXCL | O_NOFOLLOW, 0600, fsync, rename) and is owned by the user this
 * process runs as.
 *
 * @param count the number of sessions written
 * @return APR_SUCCESS, or the error that stopped the save (the previous
 *         snapshot, if any, is then untouched and no temporary file left).
 */
apr_status_t sd_snapshot_save(sd_shm_t *st, const char *path,
                              const unsigned char key[SD_SNAPSHOT_KEY_LEN],
                              apr_pool_t *pool, apr_uint64_t *count);

/**
 * Load @a path into @a st: sessions that ended by @a now are skipped, and
 * so are those that do not fit.
 *
 * @param key   the key the snapshot was written under
 * @param owner the user the file must belong to (root in production)
 * @return APR_SUCCESS; APR_ENOENT when there is no file; APR_EINVAL with
 *         *why set when the file is refused (a symbolic link, not a
 *         regular file, another owner, group or other permission bits, or
 *         not a valid snapshot under @a key): nothing is loaded then;
 *         another error, with *why, when the file cannot be read.
 */
apr_status_t sd_snapshot_load(sd_shm_t *st, const char *path,
                              const unsigned char key[SD_SNAPSHOT_KEY_LEN],
                              apr_uid_t owner, apr_pool_t *pool,
                              apr_int64_t now, apr_uint64_t *loaded,
                              const char **why);

/** Parse a snapshot already in memory (what sd_snapshot_load does after
 *  checking and mapping the file; separate so that fuzzers can reach it).
 *  APR_EINVAL with *why when it is not a valid snapshot under @a key;
 *  nothing is loaded then. */
apr_status_t sd_snapshot_parse(sd_shm_t *st,
                               const unsigned char key[SD_SNAPSHOT_KEY_LEN],
                               const unsigned char *buf, apr_size_t len,
                               apr_int64_t now, apr_uint64_t *loaded,
                               const char **why);

#endif
