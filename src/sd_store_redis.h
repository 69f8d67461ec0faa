/*
 * The Redis session store: the store interface (sd_store.h) kept in one
 * Redis server, or in whichever server the Sentinels name as master, so
 * that several web servers share sessions, login-throttle counters and
 * figures.
 *
 * sd_store_redis_open() only checks and copies the configuration: it
 * opens no connection, so the module calls it in the parent before the
 * children fork. Each process then connects when it first needs to, keeps
 * a few connections for its threads, and stops trying for a while after a
 * failure (a circuit breaker), so that an outage costs each request a
 * quick SD_EUNAVAIL rather than a connect timeout.
 *
 * Plain C over APR, OpenSSL and hiredis (0.14, synchronous, no TLS); never
 * httpd headers. The process must ignore SIGPIPE (httpd does): hiredis
 * writes to sockets the server may have closed.
 */
#ifndef SD_STORE_REDIS_H
#define SD_STORE_REDIS_H

#include <apr_pools.h>
#include <apr_errno.h>
#include <apr_tables.h>
#include <apr_time.h>
#include "sd_store.h"

/** Bytes of the secret that login-throttle keys are derived with. */
#define SD_REDIS_SECRET_LEN 32


/** How to reach Redis, and how hard to try. sd_redis_config_init() fills
 *  in the defaults. */
typedef struct {
    const char *host; /* the server, when not found by Sentinel */
    int port;
    const char *user;     /* ACL user (Redis 6+), or NULL */
    const char *password; /* NULL: no AUTH; without user: AUTH pass */
    int db;               /* SELECTed when not 0 */
    const char *prefix;   /* starts every key; "" is allowed */
    apr_interval_time_t connect_timeout; /* per connection attempt */
    apr_interval_time_t command_timeout; /* per round trip */
    apr_uint32_t max_data;  /* largest record taken (APR_EINVAL above) */
    apr_uint32_t pool_size; /* idle connections kept per process */
    apr_uint32_t breaker_backoff_ms; /* first pause after a failure */
    int wait_replicas;               /* > 0: WAIT for that many after writes */
    apr_uint32_t wait_ms;            /* how long WAIT may take */
    apr_uint32_t cache_slots;        /* records cached per process; 0 = none */
    const unsigned char *secret;     /* SD_REDIS_SECRET_LEN bytes: throttle
                                      * keys are HMACs under it */
    /* Sentinel: when master_name is set, host and port are ignored. */
    const char *master_name;
    apr_array_header_t *sentinels; /* const char * "host:port" entries */
    const char *sentinel_user;     /* AUTH for the Sentinels, or NULL */
    const char *sentinel_password;
} sd_redis_config_t;

/** Defaults: 127.0.0.1:6379, prefix "sdemo:", connect timeout 1 s,
 *  command timeout 500 ms, max_data 16 KB, pool of 4, back-off from
 *  250 ms, no WAIT (100 ms when asked), 64 cached records. Pointers are
 *  left NULL (secret included: the caller must set it). */
void sd_redis_config_init(sd_redis_config_t *cfg);

/**
 * Read a store address into @a cfg: "redis:HOST[:PORT]" or
 * "redis-sentinel:MASTER@HOST:PORT[,HOST:PORT...]" (an IPv6 host in
 * brackets). Strings are allocated from @a pool. APR_EINVAL with *why
 * saying what is wrong.
 */
apr_status_t sd_redis_parse_address(apr_pool_t *pool, const char *spec,
                                    sd_redis_config_t *cfg, const char **why);

/** Check @a cfg; APR_EINVAL with *why naming the value that is wrong. */
apr_status_t sd_redis_config_check(const sd_redis_config_t *cfg,
                                   const char **why);

/**
 * A Redis store with @a cfg (copied, with its strings and the secret, into
 * @a pool): no network until the first operation. Messages go to @a log
 * (may be NULL). APR_EINVAL if sd_redis_config_check() refuses @a cfg.
 * The store lives as long as @a pool, which closes its connections.
 */
apr_status_t sd_store_redis_open(apr_pool_t *pool, const sd_redis_config_t *cfg,
                                 sd_store_log_fn log, void *baton,
                                 sd_store_t **st);

#endif
