/*
 * The shared-memory store: sessions in an APR shared memory segment inside
 * httpd (the table of sd_shm.c), login-throttle counters in a second
 * segment (sd_throttle.c), and optionally a snapshot file that carries the
 * sessions over a full stop and start (sd_snapshot.c).
 *
 * The segments are made once, in the parent, from a pool that outlives
 * configuration generations (httpd's process pool), so graceful and plain
 * restarts keep every session. sd_store_shm_open() is called again at
 * every generation and attaches to them afresh.
 */
#ifndef SD_STORE_SHM_H
#define SD_STORE_SHM_H

#include "sd_shm.h"
#include "sd_store.h"

typedef struct {
    sd_shm_params_t params;     /* SessionDemoCapacity, Memory, ... */
    const char *snapshot;       /* SessionDemoSnapshot, or NULL */
    apr_uint32_t throttle_slots; /* counters in the throttle table */
} sd_store_shm_config_t;

/**
 * Open the shared-memory store for this configuration generation.
 * @param persist a pool that outlives generations (httpd's process pool):
 *                the segments live there, and so does the note of them
 *                that the next generation attaches to
 * @param pool    this generation's pool (the store handle lives there)
 * @param now     the current time, for loading a snapshot
 * The segments of the last generation are attached afresh: kept when
 * their layout and sizes match, their sessions moved into new segments
 * when only the sizes changed, and replaced by empty ones (with a log
 * line) when they come from a build with another layout.
 * APR_EINVAL with *why set for settings the store cannot honour.
 */
apr_status_t sd_store_shm_open(apr_pool_t *persist, apr_pool_t *pool,
                               const sd_store_shm_config_t *cfg,
                               sd_store_log_fn log, void *baton,
                               apr_int64_t now, sd_store_t **out,
                               const char **why);

/** Write the sessions to the snapshot file (at a stop), authenticated
 *  under the key in PATH.key (made when missing). *why says what was
 *  wrong with the key file, when that was the error. */
apr_status_t sd_store_shm_save(sd_store_t *st, const char *path,
                               apr_pool_t *pool, apr_uint64_t *count,
                               const char **why);

#endif
