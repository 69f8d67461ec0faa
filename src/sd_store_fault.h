/*
 * A store that fails on demand, for testing what users see when the real
 * store cannot answer (SessionDemoStore fault:PATH).
 *
 * It passes every operation through to another store, except while the
 * file PATH exists: then every operation answers SD_EUNAVAIL, exactly as a
 * Redis that is down would. Tests create and remove the file to switch the
 * outage on and off in a running server.
 */
#ifndef SD_STORE_FAULT_H
#define SD_STORE_FAULT_H

#include "sd_store.h"

/** Wrap @a inner; fail while @a path exists. */
apr_status_t sd_store_fault_open(apr_pool_t *pool, sd_store_t *inner,
                                 const char *path, sd_store_t **out);

#endif
