/*
 * The Redis store against real redis-server processes (Debian's), started
 * here on free loopback ports and stopped at the end: every operation of
 * the store interface, the timeouts (by passing `now`) and the TTLs Redis
 * really holds, the owner index, the per-user cap, the throttle and its
 * atomicity across 20 processes, exact counts from 8 processes doing
 * read-modify-write through get and replace, prefixes kept apart, AUTH,
 * outages (SIGSTOP, kill and restart), the circuit breaker, Sentinel
 * discovery, WAIT and a real failover, and a fake server that answers
 * errors and garbage. An outage must always be SD_EUNAVAIL, never
 * APR_NOTFOUND: that is the difference between a 503 and a logout.
 *
 * Skipped as a whole only when redis-server is not installed; the
 * Sentinel part only when redis-sentinel is not.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <hiredis/hiredis.h>

#include "tap.h"
#include "sd_sha256.h"
#include "sd_store_redis.h"

#define REDIS_SERVER "/usr/bin/redis-server"
#define REDIS_SENTINEL "/usr/bin/redis-sentinel"

static apr_pool_t *pool;
static char tmpdir[] = "/tmp/sd_redis_test.XXXXXX";
static const unsigned char secret[SD_REDIS_SECRET_LEN] =
    "0123456789abcdef0123456789abcde";

/* ------------------------------------------------------------------ */
/* Servers                                                             */
/* ------------------------------------------------------------------ */

#define MAXSERVERS 8
static pid_t servers[MAXSERVERS];
static int nservers;

static double now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A loopback port nobody listens on now: bind port 0, see what the
 * kernel gave, let it go. */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t l = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &l) != 0) {
        close(s);
        return -1;
    }
    port = ntohs(a.sin_port);
    close(s);
    return port;
}

static redisContext *raw_auth(int port, const char *password)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (password) {
        redisReply *r = redisCommand(c, "AUTH %s", password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            if (r)
                freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    return c;
}

static redisContext *raw(int port)
{
    return raw_auth(port, NULL);
}

/* A command on a raw connection; the integer it answered, or -999. */
static long long raw_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v = -999;
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    if (r)
        freeReplyObject(r);
    return v;
}

/* A command on a raw connection; its status or string answer (static
 * buffer), or "" . */
static const char *raw_str(redisContext *c, const char *fmt, ...)
{
    static char buf[8192];
    va_list ap;
    redisReply *r;
    buf[0] = '\0';
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
              r->type == REDIS_REPLY_ERROR))
        apr_cpystrn(buf, r->str, sizeof(buf));
    if (r)
        freeReplyObject(r);
    return buf;
}

static int pings(int port, const char *password)
{
    redisContext *c = raw_auth(port, password);
    int ok = 0;
    if (c) {
        ok = strcmp(raw_str(c, "PING"), "PONG") == 0;
        redisFree(c);
    }
    return ok;
}

static pid_t spawn(const char *const *argv, const char *log)
{
    pid_t p;
    tap_flush();
    p = fork();
    if (p == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (p > 0 && nservers < MAXSERVERS)
        servers[nservers++] = p;
    return p;
}

/* redis-server on @a port with extra arguments (NULL-terminated list);
 * returns its pid once it answers PING, or -1. */
static pid_t start_redis(int port, const char *password, ...)
{
    const char *argv[32];
    char p[16], log[300], db[64];
    int n = 0, i;
    va_list ap;
    pid_t pid;

    apr_snprintf(p, sizeof(p), "%d", port);
    apr_snprintf(log, sizeof(log), "%s/redis-%d.log", tmpdir, port);
    apr_snprintf(db, sizeof(db), "dump-%d.rdb", port);
    argv[n++] = REDIS_SERVER;
    argv[n++] = "--port";
    argv[n++] = p;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = tmpdir;
    argv[n++] = "--dbfilename";
    argv[n++] = db;
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    va_start(ap, password);
    while (n < 30) {
        const char *a = va_arg(ap, const char *);
        if (!a)
            break;
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    pid = spawn(argv, log);
    for (i = 0; i < 100; i++) {
        if (pings(port, password))
            return pid;
        sleep_ms(50);
    }
    diag("redis-server on port %d did not answer; see %s", port, log);
    return -1;
}

static void stop(pid_t pid, int sig)
{
    int i;
    if (pid <= 0)
        return;
    kill(pid, SIGCONT);
    kill(pid, sig);
    waitpid(pid, NULL, 0);
    for (i = 0; i < nservers; i++)
        if (servers[i] == pid)
            servers[i] = 0;
}

static void stop_all(void)
{
    int i;
    for (i = 0; i < nservers; i++)
        if (servers[i] > 0)
            stop(servers[i], SIGKILL);
}

/* ------------------------------------------------------------------ */
/* Stores                                                              */
/* ------------------------------------------------------------------ */

/* Every message the stores logged (this process). */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char logs[256][600];
static int nlogs;

static void logfn(void *baton, sd_log_level_t level, const char *msg)
{
    pthread_mutex_lock(&log_lock);
    if (nlogs < 256)
        apr_snprintf(logs[nlogs++], sizeof(logs[0]), "%d %s", (int)level, msg);
    pthread_mutex_unlock(&log_lock);
}

static int count_logs(const char *needle)
{
    int i, n = 0;
    pthread_mutex_lock(&log_lock);
    for (i = 0; i < nlogs; i++)
        if (strstr(logs[i], needle))
            n++;
    pthread_mutex_unlock(&log_lock);
    return n;
}

static void clear_logs(void)
{
    pthread_mutex_lock(&log_lock);
    nlogs = 0;
    pthread_mutex_unlock(&log_lock);
}

static void show_logs(void)
{
    int i;
    for (i = 0; i < nlogs; i++)
        diag("log: %s", logs[i]);
}

static sd_redis_config_t config(int port, const char *prefix)
{
    sd_redis_config_t c;
    sd_redis_config_init(&c);
    c.port = port;
    c.prefix = prefix;
    c.secret = secret;
    c.connect_timeout = apr_time_from_msec(500);
    c.command_timeout = apr_time_from_msec(300);
    c.breaker_backoff_ms = 100;
    c.max_data = 4096;
    return c;
}

static sd_store_t *open_cfg(const sd_redis_config_t *c)
{
    sd_store_t *st = NULL;
    apr_status_t rv = sd_store_redis_open(pool, c, logfn, NULL, &st);
    if (rv != APR_SUCCESS)
        diag("sd_store_redis_open: %d", rv);
    return st;
}

static sd_store_t *open_store(int port, const char *prefix)
{
    sd_redis_config_t c = config(port, prefix);
    return open_cfg(&c);
}

static void key_n(sd_key_t *k, const char *tag, int n)
{
    char s[64];
    int l = snprintf(s, sizeof s, "%s-%d", tag, n);
    sd_sha256(s, (apr_size_t)l, k->b);
}

static void owner_n(sd_owner_t *o, int n)
{
    unsigned char d[32];
    char s[32];
    int l = snprintf(s, sizeof s, "owner-%d", n);
    sd_sha256(s, (apr_size_t)l, d);
    memcpy(o->b, d, SD_OWNER_LEN);
}

static void hexs(const unsigned char *b, int n, char *out)
{
    int i;
    for (i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* The Redis key of a session under @a prefix. */
static const char *skey(const char *prefix, const sd_key_t *k)
{
    static char buf[2][128];
    static int w;
    char h[33];
    hexs(k->b, 16, h);
    w ^= 1;
    apr_snprintf(buf[w], sizeof(buf[w]), "%ss:%s", prefix, h);
    return buf[w];
}

static const char *ukey(const char *prefix, const sd_owner_t *o)
{
    static char buf[128];
    char h[33];
    hexs(o->b, 16, h);
    apr_snprintf(buf, sizeof(buf), "%su:%s", prefix, h);
    return buf;
}

static sd_store_limits_t limits(apr_uint32_t idle, apr_uint32_t max_age,
                                apr_uint32_t per_user)
{
    sd_store_limits_t l;
    l.idle = idle;
    l.max_age = max_age;
    l.per_user = per_user;
    return l;
}

static const char *status_name(apr_status_t rv)
{
    static char b[32];
    if (rv == APR_SUCCESS)
        return "SUCCESS";
    if (rv == APR_NOTFOUND)
        return "NOTFOUND";
    if (rv == APR_TIMEUP)
        return "TIMEUP";
    if (rv == APR_EAGAIN)
        return "EAGAIN";
    if (rv == APR_EINVAL)
        return "EINVAL";
    if (rv == SD_EUNAVAIL)
        return "EUNAVAIL";
    apr_snprintf(b, sizeof(b), "%d", rv);
    return b;
}

#define is_rv(got, want, ...)                                                  \
    do {                                                                       \
        apr_status_t got_ = (got);                                             \
        if (!ok(got_ == (want), __VA_ARGS__))                                  \
            diag("     got: %s, expected: %s", status_name(got_),              \
                 status_name(want));                                           \
    } while (0)

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

static void test_config(void)
{
    sd_redis_config_t c;
    const char *why = NULL;
    sd_store_t *st = NULL;

    sd_redis_config_init(&c);
    ok(sd_redis_parse_address(pool, "redis:cache.example:6390", &c, &why) ==
               APR_SUCCESS &&
           strcmp(c.host, "cache.example") == 0 && c.port == 6390,
       "redis:HOST:PORT");
    ok(sd_redis_parse_address(pool, "redis:[::1]:7000", &c, &why) ==
               APR_SUCCESS &&
           strcmp(c.host, "::1") == 0 && c.port == 7000,
       "redis:[IPv6]:PORT");
    ok(sd_redis_parse_address(pool, "redis:localhost", &c, &why) ==
               APR_SUCCESS &&
           c.port == 6379,
       "redis:HOST takes port 6379");
    ok(sd_redis_parse_address(pool, "redis:host:99999", &c, &why) ==
               APR_EINVAL &&
           why && strstr(why, "PORT"),
       "a port over 65535 is refused with a reason");
    ok(sd_redis_parse_address(pool,
                              "redis-sentinel:mm@10.0.0.1:26379,[::1]:26380",
                              &c, &why) == APR_SUCCESS &&
           strcmp(c.master_name, "mm") == 0 && c.sentinels->nelts == 2,
       "redis-sentinel:MASTER@H:P,H:P");
    ok(sd_redis_parse_address(pool, "redis-sentinel:mm@nohost", &c, &why) ==
               APR_EINVAL &&
           strstr(why, "nohost"),
       "a Sentinel without a port is refused, naming it");
    ok(sd_redis_parse_address(pool, "memcached:x", &c, &why) == APR_EINVAL,
       "another scheme is refused");

    c = config(6379, "x:");
    c.secret = NULL;
    ok(sd_redis_config_check(&c, &why) == APR_EINVAL && strstr(why, "secret"),
       "a missing throttle secret is refused");
    is_rv(sd_store_redis_open(pool, &c, NULL, NULL, &st), APR_EINVAL,
          "open refuses what the check refuses");
}

/* ------------------------------------------------------------------ */
/* Sessions                                                            */
/* ------------------------------------------------------------------ */

static void test_sessions(int port)
{
    const char *P = "t1:";
    sd_store_t *st = open_store(port, P);
    redisContext *rc = raw(port);
    apr_int64_t T = (apr_int64_t)time(NULL);
    sd_store_limits_t lim = limits(600, 3600, 0);
    sd_owner_t o1, o2;
    sd_key_t k1, k2, k3;
    sd_store_meta_t m;
    apr_uint32_t ended = 9;
    char *data, big[5000];
    apr_size_t len;
    apr_uint64_t v;
    long long ttl;

    owner_n(&o1, 1);
    owner_n(&o2, 2);
    key_n(&k1, "s", 1);
    key_n(&k2, "s", 2);
    key_n(&k3, "s", 3);

    is_rv(sd_store_create(st, &k1, &o1, "hello", 5, T, &lim, &ended),
          APR_SUCCESS, "create");
    is_int(ended, 0, "create without a cap ends nothing");
    is_rv(sd_store_get(st, &k1, T + 5, pool, &data, &len, &m), APR_SUCCESS,
          "get finds it");
    ok(len == 5 && memcmp(data, "hello", 5) == 0, "get returns the record");
    ok(m.created == T && m.last_access == T && m.idle == 600 &&
           m.max_age == 3600 && m.expires == T + 5 + 600,
       "get reports created, the access before this one (as the interface "
       "says), timeouts and the end counted from this access");
    v = m.version;
    ok(v > 0, "a version");
    is_rv(sd_store_get(st, &k2, T + 5, pool, &data, &len, &m), APR_NOTFOUND,
          "an unknown key is APR_NOTFOUND");

    is_rv(sd_store_replace(st, &k1, v, "world!", 6, T + 6), APR_SUCCESS,
          "replace at the version read");
    is_rv(sd_store_replace(st, &k1, v, "stale", 5, T + 7), APR_EAGAIN,
          "replace at an old version is APR_EAGAIN");
    is_rv(sd_store_get(st, &k1, T + 8, pool, &data, &len, &m), APR_SUCCESS,
          "get after replace");
    ok(len == 6 && memcmp(data, "world!", 6) == 0 && m.version == v + 1,
       "the new record, version + 1; the refused replace changed nothing");
    is_rv(sd_store_replace(st, &k2, 1, "x", 1, T), APR_NOTFOUND,
          "replace of an unknown key is APR_NOTFOUND");

    memset(big, 'b', sizeof(big));
    is_rv(sd_store_create(st, &k3, &o1, big, 4097, T, &lim, NULL), APR_EINVAL,
          "create over max_data is APR_EINVAL");
    is_rv(sd_store_replace(st, &k1, v + 1, big, 4097, T), APR_EINVAL,
          "replace over max_data is APR_EINVAL");
    is_rv(sd_store_create(st, &k3, &o1, big, 4096, T, &lim, NULL), APR_SUCCESS,
          "create of exactly max_data");
    is_rv(sd_store_create(st, &k3, &o1, "x", 1, T, &lim, NULL), APR_EEXIST,
          "a key already present is APR_EEXIST");

    /* What Redis holds. */
    is_int(raw_int(rc, "EXISTS %s", skey(P, &k1)), 1, "the hash is there");
    ttl = raw_int(rc, "TTL %s", skey(P, &k1));
    ok(ttl > 0 && ttl <= 600 + 1 + 30, "the session key has a TTL (%lld s)",
       ttl);
    ttl = raw_int(rc, "TTL %s", ukey(P, &o1));
    ok(ttl > 0 && ttl <= 3600 + 1 + 30,
       "the owner index has a bounded TTL (%lld s)", ttl);
    ok(strcmp(raw_str(rc, "HGET %s owner", skey(P, &k1)), "") != 0,
       "the owner is recorded");

    is_rv(sd_store_remove(st, &k1, &o2), APR_NOTFOUND,
          "remove for another owner is APR_NOTFOUND");
    is_rv(sd_store_get(st, &k1, T + 9, pool, &data, &len, &m), APR_SUCCESS,
          "... and leaves the session alone");
    is_rv(sd_store_remove(st, &k1, &o1), APR_SUCCESS, "remove for its owner");
    is_rv(sd_store_get(st, &k1, T + 9, pool, &data, &len, &m), APR_NOTFOUND,
          "removed is gone");
    is_rv(sd_store_remove(st, &k1, NULL), APR_NOTFOUND,
          "remove again is APR_NOTFOUND");
    is_rv(sd_store_remove(st, &k3, NULL), APR_SUCCESS,
          "remove without an owner");
    is_int(raw_int(rc, "ZCARD %s", ukey(P, &o1)), 0,
           "removes leave the owner index empty");

    /* A key created again (never, for random IDs; a test can) must not
     * be served from the cache under its old version. */
    memset(big, 'A', 600);
    is_rv(sd_store_create(st, &k2, &o1, big, 600, T, &lim, NULL), APR_SUCCESS,
          "create a 600-byte record");
    sd_store_get(st, &k2, T + 1, pool, &data, &len, &m);
    sd_store_remove(st, &k2, NULL);
    memset(big, 'B', 600);
    sd_store_create(st, &k2, &o1, big, 600, T, &lim, NULL);
    sd_store_get(st, &k2, T + 1, pool, &data, &len, &m);
    ok(len == 600 && data[0] == 'B' && data[599] == 'B',
       "a key removed and created again reads its new record");
    sd_store_remove(st, &k2, NULL);
    redisFree(rc);
}

static void test_timeouts(int port)
{
    const char *P = "t2:";
    sd_store_t *st = open_store(port, P);
    redisContext *rc = raw(port);
    apr_int64_t T = (apr_int64_t)time(NULL);
    sd_store_limits_t lim = limits(60, 300, 0);
    sd_store_stats_t s;
    sd_owner_t o;
    sd_key_t k1, k2;
    sd_store_meta_t m;
    char *data = NULL;
    apr_size_t len = 0;

    owner_n(&o, 3);
    key_n(&k1, "t", 1);
    key_n(&k2, "t", 2);
    sd_store_create(st, &k1, &o, "idle-one", 8, T, &lim, NULL);
    is_rv(sd_store_get(st, &k1, T + 60, pool, &data, &len, &m), APR_SUCCESS,
          "idle: alive at exactly idle seconds");
    is_int(m.expires, T + 120, "expires counts from this access");
    is_rv(sd_store_get(st, &k1, T + 121, pool, &data, &len, &m), APR_TIMEUP,
          "idle: APR_TIMEUP one second past it");
    ok(len == 8 && memcmp(data, "idle-one", 8) == 0,
       "APR_TIMEUP returns the last record");
    is_rv(sd_store_get(st, &k1, T + 121, pool, &data, &len, &m), APR_NOTFOUND,
          "then it is gone");
    is_int(raw_int(rc, "EXISTS %s", skey(P, &k1)), 0, "and its key is deleted");

    sd_store_create(st, &k2, &o, "abs", 3, T, &lim, NULL);
    is_rv(sd_store_get(st, &k2, T + 50, pool, &data, &len, &m), APR_SUCCESS,
          "absolute: alive at 50 s");
    ok(m.expires == T + 110, "expires is the idle end while it is earlier");
    sd_store_get(st, &k2, T + 100, pool, &data, &len, &m);
    sd_store_get(st, &k2, T + 150, pool, &data, &len, &m);
    sd_store_get(st, &k2, T + 200, pool, &data, &len, &m);
    sd_store_get(st, &k2, T + 250, pool, &data, &len, &m);
    is_int(m.expires, T + 300, "expires is the absolute end once earlier");
    is_rv(sd_store_get(st, &k2, T + 300, pool, &data, &len, &m), APR_SUCCESS,
          "absolute: alive at exactly max_age");
    is_rv(sd_store_replace(st, &k2, m.version, "x", 1, T + 301), APR_NOTFOUND,
          "replace after the absolute end is APR_NOTFOUND");
    is_rv(sd_store_get(st, &k2, T + 301, pool, &data, &len, &m), APR_NOTFOUND,
          "... and it ended the session");
    sd_store_stats(st, pool, &s);
    is_int((long long)s.expirations, 2, "two expirations counted");

    /* Sessions that end unseen: counted live until their end, then
     * swept by a later create, counted once. */
    {
        sd_store_limits_t shortl = limits(10, 300, 0);
        sd_key_t k;
        int i;
        /* stats() judges "live" at the latest clock its handle was given,
         * and the tests above went 301 s ahead: a handle of its own. */
        st = open_store(port, P);
        for (i = 0; i < 5; i++) {
            key_n(&k, "unseen", i);
            sd_store_create(st, &k, &o, "u", 1, T, &shortl, NULL);
        }
        sd_store_stats(st, pool, &s);
        is_int((long long)s.sessions, 5, "five live sessions");
        key_n(&k, "late", 0);
        sd_store_create(st, &k, &o, "l", 1, T + 20, &shortl, NULL);
        sd_store_stats(st, pool, &s);
        is_int((long long)s.sessions, 1, "at T+20 only the new one is live");
        is_int((long long)s.expirations, 7, "the five ended ones counted");
        key_n(&k, "unseen", 0);
        is_int(raw_int(rc, "EXISTS %s", skey(P, &k)), 0,
               "the sweep deleted their keys");
        is_int(raw_int(rc, "ZCARD %sends", P), 1,
               "\"ends\" holds only the live session");
    }
    redisFree(rc);
}

static void test_owners(int port)
{
    const char *P = "t3:";
    sd_store_t *st = open_store(port, P);
    redisContext *rc = raw(port);
    apr_int64_t T = (apr_int64_t)time(NULL);
    sd_store_limits_t cap2 = limits(600, 3600, 2);
    apr_array_header_t *list = NULL;
    sd_store_entry_t *e;
    sd_owner_t o, other;
    sd_key_t a, b, c, x;
    apr_uint32_t ended = 0;
    apr_uint64_t gone = 0;
    sd_store_meta_t m;
    char *data;
    apr_size_t len;

    owner_n(&o, 4);
    owner_n(&other, 5);
    key_n(&a, "o", 1);
    key_n(&b, "o", 2);
    key_n(&c, "o", 3);
    key_n(&x, "o", 9);
    sd_store_create(st, &x, &other, "other", 5, T, &cap2, NULL);
    sd_store_create(st, &a, &o, "A", 1, T, &cap2, &ended);
    sd_store_create(st, &b, &o, "B", 1, T + 1, &cap2, &ended);
    is_int(ended, 0, "two sessions fit a cap of two");
    sd_store_get(st, &a, T + 2, pool, &data, &len, &m);
    is_rv(sd_store_create(st, &c, &o, "C", 1, T + 3, &cap2, &ended),
          APR_SUCCESS, "a third session under a cap of two");
    is_int(ended, 1, "... ends one");
    is_rv(sd_store_get(st, &b, T + 3, pool, &data, &len, &m), APR_NOTFOUND,
          "the least recently used (B) went");
    is_rv(sd_store_get(st, &x, T + 3, pool, &data, &len, &m), APR_SUCCESS,
          "another owner's session stays");

    is_rv(sd_store_list_owner(st, &o, T + 3, pool, &list), APR_SUCCESS,
          "list_owner");
    ok(list && list->nelts == 2, "lists two sessions");
    if (list && list->nelts == 2) {
        e = &APR_ARRAY_IDX(list, 0, sd_store_entry_t);
        ok(memcmp(e->key.b, c.b, 16) == 0 && e->len == 1 &&
               e->record[0] == 'C' && e->last_access == T + 3 &&
               e->created == T + 3 && e->expires == T + 603,
           "most recently used first, with times and record");
        e = &APR_ARRAY_IDX(list, 1, sd_store_entry_t);
        ok(memcmp(e->key.b, a.b, 16) == 0 && e->record[0] == 'A' &&
               e->last_access == T + 2,
           "then the older one");
    }
    else {
        skip(2, "list is wrong");
    }

    /* A session that vanished behind the index's back (a TTL, an admin)
     * is pruned from it by the next list. */
    raw_int(rc, "DEL %s", skey(P, &a));
    sd_store_list_owner(st, &o, T + 4, pool, &list);
    is_int(list->nelts, 1, "a vanished session is not listed");
    is_int(raw_int(rc, "ZCARD %s", ukey(P, &o)), 1,
           "and is pruned from the index");

    sd_store_create(st, &a, &o, "A2", 2, T + 5, &cap2, &ended);
    is_rv(sd_store_end_owner(st, &o, &gone), APR_SUCCESS, "end_owner");
    is_int((long long)gone, 2, "ended both sessions");
    is_int(raw_int(rc, "EXISTS %s", ukey(P, &o)), 0, "the index is deleted");
    is_rv(sd_store_get(st, &c, T + 6, pool, &data, &len, &m), APR_NOTFOUND,
          "its sessions are gone");
    sd_store_list_owner(st, &o, T + 6, pool, &list);
    is_int(list->nelts, 0, "and none is listed");
    is_rv(sd_store_get(st, &x, T + 6, pool, &data, &len, &m), APR_SUCCESS,
          "another owner's session stays");
    redisFree(rc);
}

/* ------------------------------------------------------------------ */
/* Throttle                                                            */
/* ------------------------------------------------------------------ */

static apr_int64_t hit(sd_store_t *st, const char *k, apr_int64_t now)
{
    apr_int64_t w = -1;
    apr_status_t rv = sd_store_throttle_hit(st, k, strlen(k), 3, 60, now, &w);
    return rv == APR_SUCCESS ? w : -100 - (apr_int64_t)rv;
}

static void test_throttle(int port)
{
    const char *P = "t4:";
    sd_store_t *st = open_store(port, P);
    redisContext *rc = raw(port);
    apr_int64_t T = (apr_int64_t)time(NULL);
    redisReply *r;
    size_t i;
    int clear = 1, named = 0;
    long long ttl;

    is_int(hit(st, "u:alice", T) + hit(st, "u:alice", T + 1) +
               hit(st, "u:alice", T + 2),
           0, "three attempts pass a limit of three");
    is_int(hit(st, "u:alice", T + 10), 50,
           "the fourth waits for the rest of the window");
    is_int(hit(st, "u:alice", T + 59), 1, "one second before its end");
    is_int(hit(st, "u:bob", T + 10), 0, "another key is counted apart");
    is_rv(sd_store_throttle_undo(st, "u:alice", 7, 0), APR_SUCCESS,
          "undo one attempt");
    is_int(hit(st, "u:alice", T + 20), 0,
           "one attempt again: throttled attempts were not counted");
    is_int(hit(st, "u:alice", T + 21), 39, "and then throttled again");
    is_int(hit(st, "u:alice", T + 60), 0,
           "a new window starts with the first attempt after the end");
    is_int(hit(st, "u:alice", T + 61) + hit(st, "u:alice", T + 62), 0,
           "and counts from there");
    is_int(hit(st, "u:alice", T + 63), 57, "its own 60 seconds");
    sd_store_throttle_undo(st, "u:alice", 7, 1);
    is_int(hit(st, "u:alice", T + 64) + hit(st, "u:alice", T + 64) +
               hit(st, "u:alice", T + 64),
           0, "forget clears every attempt");

    r = redisCommand(rc, "KEYS %s*", P);
    for (i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const char *k = r->element[i]->str;
        if (strstr(k, "alice") || strstr(k, "bob"))
            clear = 0;
        if (strncmp(k, "t4:t:", 5) == 0 && strlen(k) == 5 + 32)
            named++;
    }
    ok(clear && named == 2,
       "throttle keys are 32 hex digits of an HMAC, no name in clear");
    if (r)
        freeReplyObject(r);
    {
        char h[65];
        unsigned char md[32];
        char k[80];
        sd_hmac_sha256(secret, sizeof(secret), "u:bob", 5, md);
        hexs(md, 16, h);
        apr_snprintf(k, sizeof(k), "%st:%s", P, h);
        ttl = raw_int(rc, "TTL %s", k);
        ok(ttl > 0 && ttl <= 60,
           "a throttle key expires with its window "
           "(%lld s)",
           ttl);
        is_str(raw_str(rc, "HGET %s n", k), "1",
               "HMAC-SHA256(secret, name), first 16 bytes, names the key");
    }
    redisFree(rc);
}

/* 20 processes try one name at once with a limit of 5: exactly 5 pass. */
static void test_throttle_race(int port)
{
    sd_store_t *st = open_store(port, "t5:");
    apr_int64_t T = (apr_int64_t)time(NULL), w;
    int go[2], i, passed = 0, errors = 0;
    pid_t kids[20];

    /* The parent uses the store first, so the children inherit a live
     * connection they must not share. */
    sd_store_throttle_hit(st, "warm", 4, 5, 60, T, &w);
    if (pipe(go) != 0)
        return;
    tap_flush();
    for (i = 0; i < 20; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            char c;
            close(go[1]);
            if (read(go[0], &c, 1) < 0)
                _exit(3);
            if (sd_store_throttle_hit(st, "u:carol", 7, 5, 900, T, &w) !=
                APR_SUCCESS)
                _exit(2);
            _exit(w == 0 ? 0 : 1);
        }
    }
    close(go[0]);
    close(go[1]);
    for (i = 0; i < 20; i++) {
        int status;
        waitpid(kids[i], &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            passed++;
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 1)
            errors++;
    }
    is_int(errors, 0, "20 processes' attempts all answered");
    is_int(passed, 5, "exactly 5 of 20 concurrent attempts pass a limit of 5");
}

/* ------------------------------------------------------------------ */
/* Read-modify-write from many processes and threads                   */
/* ------------------------------------------------------------------ */

#define RECLEN 300 /* over the cache's threshold, so the cache is used */

static int increment(sd_store_t *st, const sd_key_t *k, apr_int64_t now,
                     apr_pool_t *p, int *retries)
{
    int tries;
    for (tries = 0; tries < 10000; tries++) {
        char *data, rec[RECLEN + 1];
        apr_size_t len;
        sd_store_meta_t m;
        long n;
        apr_status_t rv = sd_store_get(st, k, now, p, &data, &len, &m);
        if (rv != APR_SUCCESS || len != RECLEN)
            return -1;
        n = strtol(data, NULL, 10);
        memset(rec, '.', RECLEN);
        snprintf(rec, sizeof(rec), "%010ld", n + 1);
        rec[10] = '.';
        rv = sd_store_replace(st, k, m.version, rec, RECLEN, now);
        if (rv == APR_SUCCESS)
            return 0;
        if (rv != APR_EAGAIN)
            return -1;
        ++*retries;
    }
    return -1;
}

static long counter_of(sd_store_t *st, const sd_key_t *k, apr_int64_t now)
{
    char *data;
    apr_size_t len;
    sd_store_meta_t m;
    if (sd_store_get(st, k, now, pool, &data, &len, &m) != APR_SUCCESS)
        return -1;
    return strtol(data, NULL, 10);
}

typedef struct {
    sd_store_t *st;
    sd_key_t key;
    apr_int64_t now;
    int fails, retries;
} worker_t;

static void *thread_main(void *arg)
{
    worker_t *w = arg;
    apr_pool_t *p;
    int i;
    apr_pool_create(&p, NULL);
    for (i = 0; i < 100; i++) {
        if (increment(w->st, &w->key, w->now, p, &w->retries) != 0)
            w->fails++;
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    return NULL;
}

static void test_counts(int port)
{
    sd_store_t *st = open_store(port, "t6:");
    sd_store_limits_t lim = limits(600, 3600, 0);
    apr_int64_t T = (apr_int64_t)time(NULL);
    char rec[RECLEN];
    sd_key_t k;
    pid_t kids[8];
    int i, bad = 0;
    double t0;

    key_n(&k, "counter", 0);
    memset(rec, '.', RECLEN);
    memcpy(rec, "0000000000", 10);
    sd_store_create(st, &k, NULL, rec, RECLEN, T, &lim, NULL);
    counter_of(st, &k, T); /* warm the parent's connection and cache */
    t0 = now_s();
    tap_flush();
    for (i = 0; i < 8; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            apr_pool_t *p;
            int j, retries = 0;
            apr_pool_create(&p, NULL);
            for (j = 0; j < 200; j++) {
                if (increment(st, &k, T, p, &retries) != 0)
                    _exit(1);
                apr_pool_clear(p);
            }
            _exit(0);
        }
    }
    for (i = 0; i < 8; i++) {
        int status;
        waitpid(kids[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            bad++;
    }
    is_int(bad, 0, "8 processes did 200 increments each");
    is_int(counter_of(st, &k, T), 1600,
           "get+replace retry loops lose no increment (1600)");
    diag("8 x 200 increments in %.2f s", now_s() - t0);

    /* Threads share one store handle and its connection pool. */
    {
        pthread_t th[4];
        worker_t w[4];
        int fails = 0, retries = 0;
        for (i = 0; i < 4; i++) {
            w[i].st = st;
            w[i].key = k;
            w[i].now = T;
            w[i].fails = w[i].retries = 0;
            pthread_create(&th[i], NULL, thread_main, &w[i]);
        }
        for (i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            fails += w[i].fails;
            retries += w[i].retries;
        }
        is_int(fails, 0, "4 threads did 100 increments each");
        is_int(counter_of(st, &k, T), 2000,
               "threads on one handle lose no increment (2000)");
        diag("%d version conflicts among the threads", retries);
    }
}

/* ------------------------------------------------------------------ */
/* Prefixes, stats, scripts, bytes                                     */
/* ------------------------------------------------------------------ */

/* Bytes the server has read and written so far, in one INFO call. Each
 * sample's own request is in its "in", its reply in the next sample's
 * "out": the cost of an operation between two samples is the difference
 * minus that of two samples with nothing between (base). */
static void net(redisContext *c, long long *in, long long *out)
{
    const char *s = raw_str(c, "INFO stats"), *p;
    p = strstr(s, "total_net_input_bytes:");
    *in = p ? atoll(p + 22) : -1;
    p = strstr(s, "total_net_output_bytes:");
    *out = p ? atoll(p + 23) : -1;
}

static void test_prefix_stats(int port)
{
    sd_store_t *a = open_store(port, "pa:"), *b = open_store(port, "pb:");
    redisContext *rc = raw(port);
    apr_int64_t T = (apr_int64_t)time(NULL);
    sd_store_limits_t lim = limits(600, 3600, 0);
    apr_array_header_t *list;
    sd_store_stats_t s;
    sd_store_meta_t m;
    sd_owner_t o;
    sd_key_t k;
    char *data;
    apr_size_t len;

    owner_n(&o, 6);
    key_n(&k, "p", 1);
    sd_store_create(a, &k, &o, "mine", 4, T, &lim, NULL);
    is_rv(sd_store_get(b, &k, T, pool, &data, &len, &m), APR_NOTFOUND,
          "another prefix does not see the session");
    sd_store_list_owner(b, &o, T, pool, &list);
    is_int(list->nelts, 0, "nor lists it");
    is_rv(sd_store_get(a, &k, T, pool, &data, &len, &m), APR_SUCCESS,
          "its own prefix does");

    sd_store_count(a, SD_COUNT_LOGIN_OK);
    sd_store_count(a, SD_COUNT_LOGIN_OK);
    sd_store_count(a, SD_COUNT_LOGIN_FAILED);
    sd_store_count(a, SD_COUNT_LOGIN_THROTTLED);
    is_rv(sd_store_stats(a, pool, &s), APR_SUCCESS, "stats");
    ok(strcmp(s.kind, "redis") == 0 && s.address &&
           strstr(s.address, "127.0.0.1:") && s.connected &&
           s.have == SD_STATS_REPLICATION,
       "kind, address, connected; no capacity figures");
    ok(s.sessions == 1 && s.hits == 1 && s.misses == 0 && s.logins_ok == 2 &&
           s.logins_failed == 1 && s.logins_throttled == 1,
       "sessions, hits, misses and login counters");
    ok(s.latency_us > 0 && s.errors == 0 && s.last_error == NULL,
       "latency measured, no errors (%llu us)",
       (unsigned long long)s.latency_us);
    sd_store_stats(b, pool, &s);
    ok(s.sessions == 0 && s.misses == 1 && s.logins_ok == 0,
       "the other prefix has figures of its own");

    /* The server forgets its scripts (restart, SCRIPT FLUSH): NOSCRIPT,
     * then the text, transparently. */
    raw_str(rc, "SCRIPT FLUSH");
    is_rv(sd_store_get(a, &k, T, pool, &data, &len, &m), APR_SUCCESS,
          "after SCRIPT FLUSH a get still works (EVAL on NOSCRIPT)");
    is_int(raw_int(rc, "EXISTS %s", skey("pa:", &k)), 1, "sanity");

    /* Bytes of the dashboard's round trips: get (record cached from the
     * replace before), replace. */
    {
        char rec[600];
        long long i0, o0, i1, o1, i2, o2, i3, o3, bin, bout;
        sd_key_t d;
        key_n(&d, "dash", 1);
        memset(rec, 'r', sizeof(rec));
        sd_store_create(a, &d, &o, rec, sizeof(rec), T, &lim, NULL);
        sd_store_get(a, &d, T + 1, pool, &data, &len, &m);
        /* Once, so that the server has the replace script again (it was
         * flushed above) and the cache holds the version written. */
        sd_store_replace(a, &d, m.version, rec, sizeof(rec), T + 1);
        net(rc, &i0, &o0);
        net(rc, &i1, &o1);
        bin = i1 - i0;
        bout = o1 - o0;
        sd_store_get(a, &d, T + 2, pool, &data, &len, &m);
        net(rc, &i2, &o2);
        ok(len == sizeof(rec) && data[599] == 'r',
           "a cached get returns the record");
        ok(o2 - o1 - bout < 100,
           "a get of an unchanged 600-byte record brings %lld bytes back",
           o2 - o1 - bout);
        sd_store_replace(a, &d, m.version, rec, sizeof(rec), T + 2);
        net(rc, &i3, &o3);
        diag("dashboard request, 600-byte record: get %lld B sent, %lld B "
             "back; replace %lld B sent, %lld B back",
             i2 - i1 - bin, o2 - o1 - bout, i3 - i2 - bin, o3 - o2 - bout);
        {
            sd_redis_config_t c = config(port, "pa:");
            sd_store_t *nc;
            c.cache_slots = 0;
            nc = open_cfg(&c);
            sd_store_get(nc, &d, T + 3, pool, &data, &len, &m);
            net(rc, &i1, &o1);
            sd_store_get(nc, &d, T + 3, pool, &data, &len, &m);
            net(rc, &i2, &o2);
            ok(o2 - o1 - bout > 600,
               "without the cache a get brings the record (%lld bytes)",
               o2 - o1 - bout);
            /* The other handle changed it: the first one's cached copy
             * is stale and must not be served. */
            sd_store_replace(nc, &d, m.version, "changed", 7, T + 3);
            sd_store_get(a, &d, T + 4, pool, &data, &len, &m);
            ok(len == 7 && memcmp(data, "changed", 7) == 0,
               "a record changed by another process is read anew");
        }
    }
    redisFree(rc);
}

/* ------------------------------------------------------------------ */
/* AUTH and SELECT                                                     */
/* ------------------------------------------------------------------ */

static void test_auth(void)
{
    int port = free_port();
    pid_t pid = start_redis(port, "sesame", "--requirepass", "sesame", NULL);
    sd_redis_config_t c;
    sd_store_t *st;
    sd_store_stats_t s;
    sd_store_meta_t m;
    redisContext *rc;
    sd_key_t k;
    char *data;
    apr_size_t len;

    if (pid < 0) {
        skip(7, "no redis-server with a password");
        return;
    }
    key_n(&k, "auth", 1);
    c = config(port, "au:");
    c.password = "wrong";
    st = open_cfg(&c);
    clear_logs();
    is_rv(sd_store_get(st, &k, 1, pool, &data, &len, &m), SD_EUNAVAIL,
          "a wrong password is SD_EUNAVAIL, not APR_NOTFOUND");
    sd_store_stats(st, pool, &s);
    ok(s.last_error && strstr(s.last_error, "AUTH refused") &&
           strstr(s.last_error, "WRONGPASS") && !strstr(s.last_error, "wrong"),
       "last_error says AUTH was refused, without the password: %s",
       s.last_error ? s.last_error : "NULL");
    is_int(count_logs("unreachable: AUTH refused"), 1,
           "and the log says so once");

    c.password = NULL;
    st = open_cfg(&c);
    sd_store_get(st, &k, 1, pool, &data, &len, &m);
    sd_store_stats(st, pool, &s);
    ok(s.last_error && strstr(s.last_error, "NOAUTH") &&
           strstr(s.last_error, "wants a password"),
       "no password: NOAUTH, explained: %s",
       s.last_error ? s.last_error : "NULL");

    c.password = "sesame";
    c.db = 3;
    st = open_cfg(&c);
    is_rv(sd_store_get(st, &k, 1, pool, &data, &len, &m), APR_NOTFOUND,
          "the right password works");
    sd_store_count(st, SD_COUNT_LOGIN_OK);
    rc = raw_auth(port, "sesame");
    raw_str(rc, "SELECT 3");
    is_int(raw_int(rc, "EXISTS au:stats"), 1, "keys land in the SELECTed db");

    raw_str(rc, "ACL SETUSER sdemo on >pw2 ~au:* +@all");
    c.user = "sdemo";
    c.password = "pw2";
    c.db = 0;
    st = open_cfg(&c);
    is_rv(sd_store_count(st, SD_COUNT_LOGIN_OK), APR_SUCCESS,
          "an ACL user and password work");
    redisFree(rc);
    stop(pid, SIGTERM);
}

/* ------------------------------------------------------------------ */
/* Outages                                                             */
/* ------------------------------------------------------------------ */

static apr_status_t get_until(sd_store_t *st, const sd_key_t *k,
                              apr_int64_t now, apr_status_t want, int max_ms,
                              apr_status_t *other)
{
    double end = now_s() + max_ms / 1000.0;
    apr_status_t rv;
    char *data;
    apr_size_t len;
    sd_store_meta_t m;
    *other = APR_SUCCESS;
    do {
        rv = sd_store_get(st, k, now, pool, &data, &len, &m);
        if (rv == want)
            return rv;
        if (rv != SD_EUNAVAIL)
            *other = rv;
        sleep_ms(20);
    } while (now_s() < end);
    return rv;
}

static void test_stop_cont(int port, pid_t pid)
{
    sd_store_t *st = open_store(port, "t7:");
    apr_int64_t T = (apr_int64_t)time(NULL);
    sd_store_limits_t lim = limits(600, 3600, 0);
    sd_store_stats_t s;
    sd_store_meta_t m;
    apr_status_t rv, other;
    sd_key_t k;
    char *data;
    apr_size_t len;
    double t0, t1;
    int i, notfound = 0;

    key_n(&k, "stop", 1);
    sd_store_create(st, &k, NULL, "kept", 4, T, &lim, NULL);
    clear_logs();
    kill(pid, SIGSTOP);
    t0 = now_s();
    rv = sd_store_get(st, &k, T, pool, &data, &len, &m);
    t1 = now_s();
    is_rv(rv, SD_EUNAVAIL, "a stopped server: SD_EUNAVAIL");
    ok(t1 - t0 >= 0.25 && t1 - t0 < 1.0,
       "after about the command timeout of 300 ms (%.0f ms)", (t1 - t0) * 1000);
    ok(st->retry_after >= 1, "retry_after is set (%u s)", st->retry_after);
    t0 = now_s();
    for (i = 0; i < 50; i++)
        if (sd_store_get(st, &k, T, pool, &data, &len, &m) == APR_NOTFOUND)
            notfound++;
    t1 = now_s();
    ok(notfound == 0 && t1 - t0 < 0.3,
       "the breaker answers 50 more at once (%.0f ms), none NOTFOUND",
       (t1 - t0) * 1000);
    sd_store_stats(st, pool, &s);
    ok(!s.connected && s.errors >= 51 && s.last_error &&
           strstr(s.last_error, "no answer within 300 ms"),
       "stats: not connected, errors counted, last_error: %s",
       s.last_error ? s.last_error : "NULL");
    kill(pid, SIGCONT);
    rv = get_until(st, &k, T, APR_SUCCESS, 8000, &other);
    is_rv(rv, APR_SUCCESS, "after SIGCONT the session is read again");
    is_rv(other, APR_SUCCESS, "never anything but SD_EUNAVAIL meanwhile");
    ok(count_logs("unreachable: no answer within 300 ms; pages that need a "
                  "session answer 503 until it is back") == 1 &&
           count_logs("reachable again") == 1 && nlogs == 2,
       "one line when it went, one when it came back");
    if (nlogs != 2)
        show_logs();
}

static pid_t test_restart(int port, pid_t pid)
{
    sd_store_t *st = open_store(port, "t8:");
    apr_int64_t T = (apr_int64_t)time(NULL);
    sd_store_limits_t lim = limits(600, 3600, 0);
    apr_status_t rv, other;
    sd_key_t k;

    key_n(&k, "restart", 1);
    sd_store_create(st, &k, NULL, "x", 1, T, &lim, NULL);
    clear_logs();
    stop(pid, SIGKILL);
    is_rv(sd_store_create(st, &k, NULL, "x", 1, T, &lim, NULL), SD_EUNAVAIL,
          "a killed server: SD_EUNAVAIL");
    is_rv(sd_store_get(st, &k, T, pool, NULL, NULL, NULL), SD_EUNAVAIL,
          "get too, never APR_NOTFOUND");
    pid = start_redis(port, NULL, NULL);
    rv = get_until(st, &k, T, APR_NOTFOUND, 8000, &other);
    is_rv(rv, APR_NOTFOUND,
          "after a restart (no persistence) the session is really gone");
    is_rv(other, APR_SUCCESS, "only SD_EUNAVAIL until then");
    is_rv(sd_store_create(st, &k, NULL, "y", 1, T, &lim, NULL), APR_SUCCESS,
          "and new sessions are made (scripts loaded again)");
    ok(count_logs("unreachable") == 1 && count_logs("reachable again") == 1,
       "one line each way");
    return pid;
}

/* ------------------------------------------------------------------ */
/* A fake server                                                       */
/* ------------------------------------------------------------------ */

enum {
    F_CLOSE, /* accept, then close at once */
    F_ERR,   /* -ERR to everything */
    F_LOADING,
    F_BUSY,
    F_READONLY,
    F_OOM,
    F_NOAUTH,
    F_NOSCRIPT,  /* -NOSCRIPT to EVALSHA, then a real answer to EVAL */
    F_NOSCRIPT2, /* -NOSCRIPT to both */
    F_GARBAGE,   /* not RESP */
    F_CUT,       /* half an answer, then close */
    F_SHAPE,     /* a valid answer of the wrong shape */
    F_RANGE,     /* the right shape, impossible values */
    F_NESTED,    /* deeper than hiredis reads */
    F_BIGBULK,   /* announces 2 GB, sends 3 bytes, closes */
    F_SILENT,    /* reads, never answers */
    F_STATUS,    /* +OK where a script answer belongs */
    F_MODES
};

static const char *const fmode_name[F_MODES] = {"closes at once",
                                                "-ERR",
                                                "-LOADING",
                                                "-BUSY",
                                                "-READONLY",
                                                "-OOM",
                                                "-NOAUTH",
                                                "-NOSCRIPT then EVAL",
                                                "-NOSCRIPT twice",
                                                "garbage",
                                                "a cut reply",
                                                "a wrong shape",
                                                "impossible values",
                                                "nesting too deep",
                                                "a huge bulk",
                                                "silence",
                                                "+OK"};

typedef struct {
    volatile int mode;
    volatile int accepts;
} fake_t;

static fake_t *fake;

/* Read one RESP command from @a fd into @a name (its first word);
 * 0 on EOF. Good enough for what hiredis sends. */
static int read_command(int fd, char *buf, size_t *have, size_t cap, char *name,
                        size_t namecap)
{
    for (;;) {
        /* Try to parse a whole array of bulk strings from buf. */
        char *p = buf, *end = buf + *have;
        long n, i;
        int complete = 0;
        name[0] = '\0';
        if (*have > 0 && *p == '*') {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            if (nl) {
                n = strtol(p + 1, NULL, 10);
                p = nl + 1;
                for (i = 0; i < n; i++) {
                    long l;
                    nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
                    if (!nl || *p != '$')
                        break;
                    l = strtol(p + 1, NULL, 10);
                    p = nl + 1;
                    if (end - p < l + 2)
                        break;
                    if (i == 0) {
                        size_t c =
                            (size_t)l < namecap - 1 ? (size_t)l : namecap - 1;
                        memcpy(name, p, c);
                        name[c] = '\0';
                    }
                    p += l + 2;
                }
                complete = i == n;
            }
        }
        if (complete) {
            memmove(buf, p, (size_t)(end - p));
            *have = (size_t)(end - p);
            return 1;
        }
        if (*have == cap)
            *have = 0; /* too big to care about: drop it */
        {
            ssize_t r = read(fd, buf + *have, cap - *have);
            if (r <= 0)
                return 0;
            *have += (size_t)r;
        }
    }
}

static void say(int fd, const char *s)
{
    if (write(fd, s, strlen(s)) < 0)
        return;
}

static void fake_serve(int fd)
{
    static char buf[1 << 16];
    size_t have = 0;
    char name[32];
    int mode = fake->mode;

    if (mode == F_CLOSE)
        return;
    while (read_command(fd, buf, &have, sizeof(buf), name, sizeof(name))) {
        int evalsha = strcasecmp(name, "EVALSHA") == 0;
        int eval = strcasecmp(name, "EVAL") == 0;
        if (!evalsha && !eval) {
            say(fd, "+OK\r\n");
            continue;
        }
        switch (mode) {
        case F_ERR:
            say(fd, "-ERR fake failure\r\n");
            break;
        case F_LOADING:
            say(fd, "-LOADING Redis is loading the dataset in memory\r\n");
            break;
        case F_BUSY:
            say(fd, "-BUSY Redis is busy running a script.\r\n");
            break;
        case F_READONLY:
            say(fd, "-READONLY You can't write against a read only "
                    "replica.\r\n");
            break;
        case F_OOM:
            say(fd, "-OOM command not allowed when used memory > "
                    "'maxmemory'.\r\n");
            break;
        case F_NOAUTH:
            say(fd, "-NOAUTH Authentication required.\r\n");
            break;
        case F_NOSCRIPT:
            if (evalsha)
                say(fd, "-NOSCRIPT No matching script. Please use EVAL.\r\n");
            else
                say(fd, "*7\r\n:1\r\n:100\r\n:150\r\n:60\r\n:600\r\n:5\r\n"
                        "$4\r\nreal\r\n");
            break;
        case F_NOSCRIPT2:
            say(fd, "-NOSCRIPT No matching script. Please use EVAL.\r\n");
            break;
        case F_GARBAGE:
            say(fd, "!this is not RESP\r\n");
            break;
        case F_CUT:
            say(fd, "*7\r\n:1\r\n:100\r\n:1");
            return;
        case F_SHAPE:
            say(fd, "*2\r\n:1\r\n:2\r\n");
            break;
        case F_RANGE:
            say(fd, "*7\r\n:1\r\n:-100\r\n:150\r\n:60\r\n:600\r\n:5\r\n"
                    "$4\r\nreal\r\n");
            break;
        case F_NESTED:
            say(fd, "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n"
                    "*1\r\n*1\r\n:1\r\n");
            break;
        case F_BIGBULK:
            say(fd, "*7\r\n:1\r\n:100\r\n:150\r\n:60\r\n:600\r\n:5\r\n"
                    "$2147483647\r\nabc");
            return;
        case F_SILENT:
            break;
        case F_STATUS:
            say(fd, "+OK\r\n");
            break;
        }
    }
}

static pid_t fake_start(int *port)
{
    struct sockaddr_in a;
    socklen_t l = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    pid_t pid;

    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 64) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &l) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    tap_flush();
    pid = fork();
    if (pid == 0) {
        for (;;) {
            int c = accept(s, NULL, NULL);
            if (c < 0)
                continue;
            fake->accepts++;
            fake_serve(c);
            close(c);
        }
    }
    close(s);
    if (pid > 0 && nservers < MAXSERVERS)
        servers[nservers++] = pid;
    return pid;
}

static void test_fake(void)
{
    int port, mode;
    pid_t pid;
    sd_key_t k;

    fake = mmap(NULL, sizeof(*fake), PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (fake == MAP_FAILED || (pid = fake_start(&port)) < 0) {
        skip(F_MODES + 5, "no fake server");
        return;
    }
    key_n(&k, "fake", 1);
    for (mode = 0; mode < F_MODES; mode++) {
        sd_store_t *st;
        sd_store_stats_t s;
        sd_store_meta_t m;
        char *data = NULL;
        apr_size_t len = 0;
        apr_status_t rv;
        fake->mode = mode;
        st = open_store(port, "f:");
        rv = sd_store_get(st, &k, 200, pool, &data, &len, &m);
        sd_store_stats(st, pool, &s);
        if (mode == F_NOSCRIPT)
            ok(rv == APR_SUCCESS && len == 4 && memcmp(data, "real", 4) == 0 &&
                   m.version == 5,
               "fake %s: the EVAL answer is used", fmode_name[mode]);
        else if (!ok(rv == SD_EUNAVAIL && s.last_error,
                     "fake %s: SD_EUNAVAIL (%s)", fmode_name[mode],
                     s.last_error ? s.last_error : "no last_error"))
            diag("got %s", status_name(rv));
    }

    /* The breaker: a server that hangs up at once, asked as fast as we
     * can for 700 ms with a 200 ms first back-off: a handful of connection
     * attempts, not hundreds, and one log line. */
    {
        sd_redis_config_t c = config(port, "f:");
        sd_store_t *st;
        int ops = 0, unavail = 0, accepts;
        double end, t0;
        c.breaker_backoff_ms = 200;
        st = open_cfg(&c);
        fake->mode = F_CLOSE;
        fake->accepts = 0;
        clear_logs();
        t0 = now_s();
        end = t0 + 0.7;
        while (now_s() < end) {
            if (sd_store_get(st, &k, 200, pool, NULL, NULL, NULL) ==
                SD_EUNAVAIL)
                unavail++;
            ops++;
            sleep_ms(1);
        }
        accepts = fake->accepts;
        is_int(unavail, ops, "every one of %d operations is SD_EUNAVAIL", ops);
        ok(accepts >= 2 && accepts <= 4,
           "the breaker let %d connection attempts through in 700 ms "
           "(200, 400 ms back-off)",
           accepts);
        ok(ops > 100, "the others failed at once");
        is_int(count_logs("unreachable"), 1, "one log line for the outage");
        ok(st->retry_after >= 1, "retry_after suggested");
    }
    stop(pid, SIGKILL);
    munmap(fake, sizeof(*fake));
}

/* ------------------------------------------------------------------ */
/* Sentinel                                                            */
/* ------------------------------------------------------------------ */

static pid_t start_sentinel(int port, int master, const char *password)
{
    char conf[300], log[300], p[16];
    const char *argv[4];
    FILE *f;
    int i;
    pid_t pid;

    apr_snprintf(conf, sizeof(conf), "%s/sentinel-%d.conf", tmpdir, port);
    apr_snprintf(log, sizeof(log), "%s/sentinel-%d.log", tmpdir, port);
    apr_snprintf(p, sizeof(p), "%d", port);
    f = fopen(conf, "w");
    if (!f)
        return -1;
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n"
            "sentinel monitor mm 127.0.0.1 %d 1\n"
            "sentinel down-after-milliseconds mm 1000\n"
            "sentinel failover-timeout mm 3000\n"
            "requirepass %s\n",
            port, tmpdir, master, password);
    fclose(f);
    argv[0] = REDIS_SENTINEL;
    argv[1] = conf;
    argv[2] = NULL;
    pid = spawn(argv, log);
    for (i = 0; i < 100; i++) {
        if (pings(port, password))
            return pid;
        sleep_ms(50);
    }
    return -1;
}

/* Wait until @a cmd, sent to @a port on a new connection each time (a
 * failover kills the old ones), gives an answer containing @a want ("+":
 * any non-empty array). */
static int wait_for(int port, const char *password, const char *want,
                    int max_ms, const char *cmd)
{
    double end = now_s() + max_ms / 1000.0;
    do {
        redisContext *c = raw_auth(port, password);
        redisReply *r = c ? redisCommand(c, cmd) : NULL;
        int found = 0;
        if (r &&
            (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
            found = strstr(r->str, want) != NULL;
        else if (r && r->type == REDIS_REPLY_ARRAY)
            found = r->elements > 0 && strcmp(want, "+") == 0;
        if (r)
            freeReplyObject(r);
        if (c)
            redisFree(c);
        if (found)
            return 1;
        sleep_ms(100);
    } while (now_s() < end);
    return 0;
}

/* The version of a session as the server behind @a c has it (0: none). */
static apr_uint64_t version_at(redisContext *c, const char *prefix,
                               const sd_key_t *k)
{
    return strtoull(raw_str(c, "HGET %s ver", skey(prefix, k)), NULL, 10);
}

#define SENTINEL_TESTS 17

static void test_sentinel(void)
{
    int pm = free_port(), pr, ps;
    pid_t m, r, s = -1;
    redisContext *rr = NULL;
    sd_redis_config_t c;
    sd_store_t *st, *st2, *st3;
    sd_store_stats_t stats;
    sd_key_t lost;
    char rec[300];
    apr_uint64_t v;
    int i;
    sd_store_limits_t lim = limits(600, 3600, 0);
    apr_int64_t T = (apr_int64_t)time(NULL);
    apr_array_header_t *sentinels;
    apr_status_t rv, other;
    char mport[16], sentinel[32], want[64];
    sd_key_t k;
    char *data;
    apr_size_t len;
    sd_store_meta_t meta;

    if (access(REDIS_SENTINEL, X_OK) != 0) {
        skip(SENTINEL_TESTS, "redis-sentinel is not installed");
        return;
    }
    apr_snprintf(mport, sizeof(mport), "%d", pm);
    m = start_redis(pm, NULL, NULL);
    pr = free_port();
    r = start_redis(pr, NULL, "--replicaof", "127.0.0.1", mport, NULL);
    /* The Sentinel learns of replicas from the master's INFO, which it
     * asks at once and then every 10 s: start it once the replica is
     * attached, or wait those 10 s. */
    if (m < 0 || r < 0 ||
        !wait_for(pr, NULL, "master_link_status:up", 10000,
                  "INFO replication")) {
        skip(SENTINEL_TESTS, "could not set up a master and a replica");
        goto out;
    }
    ps = free_port();
    s = start_sentinel(ps, pm, "spw");
    rr = raw(pr);
    if (s < 0 || !rr ||
        !wait_for(ps, "spw", "+", 15000, "SENTINEL replicas mm")) {
        skip(SENTINEL_TESTS, "could not set up master, replica and Sentinel");
        goto out;
    }
    key_n(&k, "sentinel", 1);
    apr_snprintf(sentinel, sizeof(sentinel), "127.0.0.1:%d", ps);
    sentinels = apr_array_make(pool, 1, sizeof(const char *));
    APR_ARRAY_PUSH(sentinels, const char *) = sentinel;

    c = config(0, "sn:");
    c.host = NULL;
    c.master_name = "mm";
    c.sentinels = sentinels;
    c.sentinel_password = "wrong";
    st = open_cfg(&c);
    sd_store_get(st, &k, T, pool, &data, &len, &meta);
    sd_store_stats(st, pool, &stats);
    ok(stats.last_error && strstr(stats.last_error, "AUTH refused"),
       "a wrong Sentinel password: %s",
       stats.last_error ? stats.last_error : "NULL");
    c.sentinel_password = "spw";
    c.master_name = "nosuch";
    st = open_cfg(&c);
    sd_store_get(st, &k, T, pool, &data, &len, &meta);
    sd_store_stats(st, pool, &stats);
    ok(stats.last_error && strstr(stats.last_error, "does not know master"),
       "an unknown master name: %s",
       stats.last_error ? stats.last_error : "NULL");

    c.master_name = "mm";
    c.wait_replicas = 1;
    c.wait_ms = 1000;
    c.command_timeout = apr_time_from_msec(500);
    st = open_cfg(&c);
    clear_logs();
    is_rv(sd_store_create(st, &k, NULL, "durable", 7, T, &lim, NULL),
          APR_SUCCESS, "create through Sentinel, with WAIT 1");
    sd_store_stats(st, pool, &stats);
    apr_snprintf(want, sizeof(want), "127.0.0.1:%d", pm);
    ok(stats.address && strcmp(stats.address, want) == 0,
       "the master the Sentinel named (%s)", stats.address);
    is_int((long long)stats.unreplicated, 0, "the replica acknowledged it");
    is_int(raw_int(rr, "EXISTS %s", skey("sn:", &k)), 1,
           "so the replica has it");

    c.wait_replicas = 2;
    c.wait_ms = 50;
    st2 = open_cfg(&c);
    sd_store_remove(st2, &k, NULL);
    sd_store_create(st2, &k, NULL, "durable", 7, T, &lim, NULL);
    sd_store_stats(st2, pool, &stats);
    is_int((long long)stats.unreplicated, 2,
           "WAIT 2 with one replica: both writes counted as unreplicated");

    /* A write the failover loses: st replaces a session (version v to
     * v + 1) and caches what it wrote; the replica is then made to lack
     * that replace (made writable and given version v back), as if the
     * master had died before sending it. */
    key_n(&lost, "sentinel", 3);
    memset(rec, 'a', sizeof(rec));
    sd_store_create(st, &lost, NULL, rec, sizeof(rec), T, &lim, NULL);
    sd_store_get(st, &lost, T, pool, &data, &len, &meta);
    v = meta.version;
    memset(rec, 'b', sizeof(rec));
    is_rv(sd_store_replace(st, &lost, v, rec, sizeof(rec), T), APR_SUCCESS,
          "a replace, cached by the process that made it");
    for (i = 0; i < 100 && version_at(rr, "sn:", &lost) != v + 1; i++)
        sleep_ms(20);
    raw_str(rr, "CONFIG SET replica-read-only no");
    memset(rec, 'a', sizeof(rec));
    ok(strcmp(raw_str(rr, "HSET %s ver %llu data %b", skey("sn:", &lost),
                      (unsigned long long)v, rec, sizeof(rec)),
              "") == 0 &&
           version_at(rr, "sn:", &lost) == v,
       "the replica lacks that replace (version %llu)", (unsigned long long)v);

    /* A failover: the replica becomes master, the old master its
     * replica. The store must follow. */
    if (!wait_for(ps, "spw", "OK", 10000, "SENTINEL FAILOVER mm")) {
        skip(8, "SENTINEL FAILOVER did not start");
        goto out;
    }
    /* Until the Sentinel demotes the old master (and kills its client
     * connections), that one still takes writes: Sentinel's own window,
     * which no client closes. Wait for both ends of the switch. */
    if (!wait_for(pr, NULL, "role:master", 10000, "INFO replication") ||
        !wait_for(pm, NULL, "role:slave", 15000, "INFO replication")) {
        skip(8, "the replica did not become master");
        goto out;
    }
    rv = get_until(st, &k, T, APR_SUCCESS, 15000, &other);
    is_rv(rv, APR_SUCCESS, "after the failover the session is read");
    is_rv(other, APR_SUCCESS, "never anything but SD_EUNAVAIL meanwhile");
    sd_store_stats(st, pool, &stats);
    apr_snprintf(want, sizeof(want), "127.0.0.1:%d", pr);
    ok(stats.address && strcmp(stats.address, want) == 0,
       "from the new master (%s)", stats.address);
    is_int((long long)stats.failovers, 1, "one failover seen");
    ok(count_logs("Redis master mm is now at") == 1, "the move is logged once");
    is_rv(sd_store_replace(st, &k, 0, "x", 1, T), APR_EAGAIN,
          "writes go to the new master");

    /* Another server replaces the rolled-back session: the new master
     * reaches version v + 1 again, with other data. The process that
     * cached its own (lost) v + 1 must not take it for this one. */
    st3 = open_cfg(&c);
    memset(rec, 'c', sizeof(rec));
    is_rv(sd_store_replace(st3, &lost, v, rec, sizeof(rec), T), APR_SUCCESS,
          "another server replaces it at the version the new master has");
    rv = sd_store_get(st, &lost, T, pool, &data, &len, &meta);
    ok(rv == APR_SUCCESS && meta.version == v + 1 && len == sizeof(rec) &&
           data[0] == 'c',
       "the process that cached the lost write reads the new master's record "
       "(%c), not its cached copy of the same version",
       rv == APR_SUCCESS && len ? data[0] : '?');
out:
    if (rr)
        redisFree(rr);
    stop(s, SIGKILL);
    stop(r, SIGKILL);
    stop(m, SIGKILL);
}

/* ------------------------------------------------------------------ */

int main(void)
{
    int port;
    pid_t pid;
    char cmd[400];

    if (access(REDIS_SERVER, X_OK) != 0) {
        printf("1..0 # SKIP redis-server is not installed "
               "(apt-get install redis-server)\n");
        return 0;
    }
    signal(SIGPIPE, SIG_IGN); /* as httpd does */
    apr_initialize();
    apr_pool_create(&pool, NULL);
    if (!mkdtemp(tmpdir)) {
        printf("1..0 # SKIP cannot make a temporary directory\n");
        return 0;
    }
    tap_watchdog("the Redis tests");
    alarm(240);

    test_config();
    port = free_port();
    pid = start_redis(port, NULL, NULL);
    if (pid < 0) {
        ok(0, "redis-server starts");
        stop_all();
        return done_testing();
    }
    test_sessions(port);
    test_timeouts(port);
    test_owners(port);
    test_throttle(port);
    test_throttle_race(port);
    test_counts(port);
    test_prefix_stats(port);
    test_auth();
    test_stop_cont(port, pid);
    pid = test_restart(port, pid);
    test_fake();
    test_sentinel();

    stop(pid, SIGTERM);
    stop_all();
    apr_pool_destroy(pool);
    apr_terminate();
    apr_snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        diag("could not remove %s", tmpdir);
    return done_testing();
}
