/*
 * The Redis session store: sd_store.h's operations as Lua scripts run by
 * one Redis server (or the master the Sentinels name), so that every web
 * server in front of it sees the same sessions, throttle counters and
 * figures.
 *
 * Every operation is one script, so it is atomic (Redis runs a script
 * alone) and costs one round trip: the script checks timeouts, updates the
 * indexes and the counters, and returns what the caller needs. Scripts are
 * sent by SHA-1 (EVALSHA); a server that does not know one yet (a restart,
 * SCRIPT FLUSH) answers NOSCRIPT and gets the text once (EVAL, which also
 * caches it there).
 *
 * Data layout (P is the configured prefix; times are the callers' clock,
 * whole seconds; "hex" is lowercase hex):
 *
 *   P s:<hex of the key's first 16 bytes>   hash, one session
 *        data     the record (opaque bytes)
 *        created  when it was created
 *        last     its last access
 *        idle     idle timeout, seconds
 *        max_age  absolute timeout, seconds
 *        ver      version: random 40-bit start, +1 per replace
 *        owner    hex of the owner digest, "" for none
 *        TTL      ends - now + 1 + SD_REDIS_LINGER, where
 *                 ends = min(last + idle, created + max_age)
 *
 *   P u:<hex of the owner digest>           sorted set, one owner's sessions
 *        member   session hex, score = its last access (LRU first)
 *        TTL      never shorter than its longest-lived member's
 *
 *   P ends                                  sorted set, every session
 *        member   session hex, score = when it ends ("ends" above)
 *        live sessions = ZCOUNT ends now +inf (no SCAN); ended members
 *        are swept (16 per create) and counted as expirations
 *
 *   P t:<first 32 hex of HMAC-SHA256(secret, name)>   hash, one throttle
 *        n        attempts in the current window
 *        start    when the window started (its first attempt)
 *        TTL      the rest of the window
 *
 *   P stats                                 hash, shared counters
 *        hits misses expirations logins_ok logins_failed logins_throttled
 *
 * A session ends when now - last > idle or now - created > max_age, the
 * same rule as the shared-memory store. The scripts decide that from the
 * fields; a key's TTL is only the backstop that frees memory, and it is
 * relative (EXPIRE, not EXPIREAT) so that Redis's clock and the web
 * servers' need not agree. Keys linger SD_REDIS_LINGER seconds past their
 * end so that a visitor who comes back just then is told their session
 * timed out (APR_TIMEUP with the record) rather than silently losing it.
 *
 * Scripts touch keys they derive from the one they are given (the owner
 * index, "ends", "stats"), so this store needs one Redis (with replicas
 * and Sentinels if wanted), not Redis Cluster. Redis should run with
 * maxmemory-policy noeviction: a full Redis then refuses writes (OOM,
 * which becomes SD_EUNAVAIL) instead of evicting live sessions.
 *
 * Per process: a small pool of connections (one checked out per
 * operation, returned only after a complete, expected reply), a circuit
 * breaker, the Sentinel's answer, figures, and a cache of recent records
 * keyed by (key, version) so that a get of an unchanged session does not
 * bring its record over the network again. Versions start at a random
 * 40-bit number, so a key that is removed and created again never repeats
 * a (key, version) pair the cache may hold.
 */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <apr_time.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sd_store_redis.h"

#if !APR_HAS_THREADS
#error "sd_store_redis needs APR with threads (apr_thread_mutex)"
#endif

/* ---------------------------------------------------------------------
 * Constants
 * --------------------------------------------------------------------- */

#define SD_REDIS_KEY_BYTES 16     /* of a session key: 128 bits tell apart */
#define SD_REDIS_LINGER "30"      /* seconds a key outlives its session (Lua) */
#define SD_REDIS_SWEEP "16"       /* ended sessions one create clears (Lua) */
#define SD_REDIS_BACKOFF_MAX 5000 /* ms: the longest breaker pause */
#define SD_REDIS_SENTINEL_MS 500  /* ms: a Sentinel question's timeouts */
#ifndef SD_HIREDIS_TLS
#define SD_HIREDIS_TLS 0 /* set by the Makefile when hiredis_ssl.h exists */
#endif
#define SD_REDIS_CACHE_MIN 256    /* smaller records are cheaper to resend */
#define SD_REDIS_PREFIX_MAX 64    /* so that keys fit the buffers below */
#define SD_REDIS_HOST_MAX 255
/* Versions start at a random number of this many bits: with +1 per
 * replace they stay exact in Lua's numbers (doubles, 2^53). */
#define SD_REDIS_VERSION_BITS 40

/* Room for P + "u:" + 32 hex + NUL. */
#define KEYBUF (SD_REDIS_PREFIX_MAX + 40)

/* ---------------------------------------------------------------------
 * Scripts
 *
 * Every script gets KEYS[1], the key the operation is about, and ARGV[1]
 * = the prefix, ARGV[2] = the caller's clock; what follows depends on the
 * script. They all start with the helpers below (a script cannot call
 * another).
 * --------------------------------------------------------------------- */

/*
 * The helpers every script starts with:
 *
 *   ends(c, l, i, a)  a session's end: the earlier of its idle end (last
 *                     access + idle) and its absolute end (created +
 *                     max_age)
 *   over(...)         it has ended: the shared-memory store's rule,
 *                     strictly after the end
 *   ttl(t)            seconds a key must live to outlast end t by the
 *                     linger time; relative, since Redis's clock is not
 *                     the callers'
 *   stat(f)           one more in a shared counter
 *   drop(id, o)       a session leaves its hash, "ends" and its owner's
 *                     index at once, so no index names it for long
 *   place(...)        after a session's last access moved: its TTL, its
 *                     place in "ends" and in its owner's index follow; the
 *                     index's TTL only grows, so it outlives every member
 *                     yet never lives forever
 *   times(h)          created, last, idle, max_age from an HMGET
 */
static const char lua_common[] =
    "local P, now = ARGV[1], tonumber(ARGV[2])\n"
    "local function ends(c, l, i, a)\n"
    "  if l + i < c + a then return l + i end\n"
    "  return c + a\n"
    "end\n"
    "local function over(c, l, i, a)\n"
    "  return now - l > i or now - c > a\n"
    "end\n"
    "local function ttl(t) return t - now + 1 + " SD_REDIS_LINGER " end\n"
    "local function stat(f) redis.call('HINCRBY', P .. 'stats', f, 1) end\n"
    "local function drop(id, o)\n"
    "  redis.call('DEL', P .. 's:' .. id)\n"
    "  redis.call('ZREM', P .. 'ends', id)\n"
    "  if o and o ~= '' then redis.call('ZREM', P .. 'u:' .. o, id) end\n"
    "end\n"
    "local function place(k, id, o, c, l, i, a)\n"
    "  local t = ends(c, l, i, a)\n"
    "  redis.call('EXPIRE', k, ttl(t))\n"
    "  redis.call('ZADD', P .. 'ends', t, id)\n"
    "  if o ~= '' then\n"
    "    local u = P .. 'u:' .. o\n"
    "    redis.call('ZADD', u, l, id)\n"
    "    if redis.call('TTL', u) < ttl(t) then\n"
    "      redis.call('EXPIRE', u, ttl(t))\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local function times(h)\n"
    "  return tonumber(h[1]), tonumber(h[2]), tonumber(h[3]), "
    "tonumber(h[4])\n"
    "end\n";

/* get: ARGV[3] = session hex, ARGV[4] = the version this process has
 * cached (0: none). Returns {0} (none), {2, times, ver, record} (it has
 * just ended: removed, record returned once more so the caller can say
 * whose it was), or {1, created, last, idle, max_age, ver[, record]}
 * where last is the access before this one: the record is left out when
 * the caller already has that version. */
static const char lua_get[] =
    "local k, id = KEYS[1], ARGV[3]\n"
    "local h = redis.call('HMGET', k, 'created', 'last', 'idle', "
    "'max_age', 'ver', 'owner')\n"
    "if not h[1] then stat('misses') return {0} end\n"
    "local c, l, i, a = times(h)\n"
    "local v, o = tonumber(h[5]), h[6] or ''\n"
    "if over(c, l, i, a) then\n"
    "  local d = redis.call('HGET', k, 'data') or ''\n"
    "  drop(id, o)\n"
    "  stat('misses') stat('expirations')\n"
    "  return {2, c, l, i, a, v, d}\n"
    "end\n"
    /* Whole seconds: a session read many times in one second is written
     * once, not on every read. */
    "local prev = l\n"
    "if now > l then\n"
    "  l = now\n"
    "  redis.call('HSET', k, 'last', l)\n"
    "  place(k, id, o, c, l, i, a)\n"
    "end\n"
    "stat('hits')\n"
    /* The access before this one goes back: a guarded area with a
     * stricter idle timeout than the session's judges by it. */
    "if v == tonumber(ARGV[4]) then return {1, c, prev, i, a, v} end\n"
    "return {1, c, prev, i, a, v, redis.call('HGET', k, 'data') or ''}\n";

/* create: ARGV[3] = session hex, [4] = owner hex or "", [5] idle,
 * [6] max_age, [7] per_user cap (0: none), [8] first version, [9] the
 * record. Returns {1, sessions the cap ended} or {-1, 0} if the key is
 * taken (never, for random IDs). */
static const char lua_create[] =
    "local k, id, o = KEYS[1], ARGV[3], ARGV[4]\n"
    "local i, a, cap = tonumber(ARGV[5]), tonumber(ARGV[6]), "
    "tonumber(ARGV[7])\n"
    "if redis.call('EXISTS', k) == 1 then return {-1, 0} end\n"
    /* Bounded sweep of sessions that ended unseen: their memory goes
     * (if the TTL has not freed it already), "ends" stays the size
     * of the live set, and each is counted once as an expiration. A
     * score that disagrees with its hash (never, but cheap to heal)
     * is set right instead. */
    "local e = P .. 'ends'\n"
    "for _, m in ipairs(redis.call('ZRANGEBYSCORE', e, '-inf', "
    "'(' .. ARGV[2], 'LIMIT', 0, " SD_REDIS_SWEEP ")) do\n"
    "  local g = redis.call('HMGET', P .. 's:' .. m, "
    "'created', 'last', "
    "'idle', 'max_age', 'owner')\n"
    "  if g[1] and not over(times(g)) then\n"
    "    redis.call('ZADD', e, ends(times(g)), m)\n"
    "  else\n"
    "    drop(m, g[5])\n"
    "    stat('expirations')\n"
    "  end\n"
    "end\n"
    /* The cap: look at every session of the owner, least
     * recently used first; members whose hash is gone leave
     * the index, ended ones are expirations, and of the
     * live ones the oldest go until the new one fits. The
     * index is short (the cap keeps it so). */
    "local ended = 0\n"
    "if o ~= '' and cap > 0 then\n"
    "  local u, live = P .. 'u:' .. o, {}\n"
    "  for _, m in ipairs(redis.call('ZRANGE', u, 0, -1)) "
    "do\n"
    "    local g = redis.call('HMGET', P .. 's:' .. m, "
    "'created', 'last', "
    "'idle', 'max_age')\n"
    "    if not g[1] then redis.call('ZREM', u, m)\n"
    "    elseif over(times(g)) then drop(m, o) "
    "stat('expirations')\n"
    "    else live[#live + 1] = m end\n"
    "  end\n"
    "  for n = 1, #live - cap + 1 do\n"
    "    drop(live[n], o)\n"
    "    ended = ended + 1\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', k, 'data', ARGV[9], 'created', "
    "now, 'last', now, "
    "'idle', i, 'max_age', a, 'ver', ARGV[8], 'owner', o)\n"
    "place(k, id, o, now, now, i, a)\n"
    "return {1, ended}\n";

/* replace: ARGV[3] = session hex, [4] = the version the caller read,
 * [5] = the new record. Returns {1, new version}, {0, 0} (gone or just
 * ended) or {-2, current version} (someone else replaced it first). */
static const char lua_replace[] =
    "local k, id = KEYS[1], ARGV[3]\n"
    "local h = redis.call('HMGET', k, 'created', 'last', 'idle', "
    "'max_age', 'ver', 'owner')\n"
    "if not h[1] then return {0, 0} end\n"
    "local c, l, i, a = times(h)\n"
    "local v, o = tonumber(h[5]), h[6] or ''\n"
    "if over(c, l, i, a) then drop(id, o) stat('expirations') "
    "return {0, 0} end\n"
    /* Compare and set: the caller changed what it read at version v; if
     * another request replaced it since, the caller must read again. */
    "if v ~= tonumber(ARGV[4]) then return {-2, v} end\n"
    "v = v + 1\n"
    "redis.call('HSET', k, 'data', ARGV[5], 'ver', v)\n"
    /* A replace is an access, as in the shared-memory store. */
    "if now > l then\n"
    "  l = now\n"
    "  redis.call('HSET', k, 'last', l)\n"
    "  place(k, id, o, c, l, i, a)\n"
    "end\n"
    "return {1, v}\n";

/* remove: ARGV[3] = session hex, [4] = owner hex, or "" for any owner.
 * Returns 1, or 0 if there was no such session (of that owner). */
static const char lua_remove[] =
    "local o = redis.call('HGET', KEYS[1], 'owner')\n"
    "if not o then return 0 end\n"
    "if ARGV[4] ~= '' and o ~= ARGV[4] then return 0 end\n"
    "drop(ARGV[3], o)\n"
    "return 1\n";

/* end_owner: KEYS[1] = the owner's index, ARGV[3] = owner hex. Returns
 * how many sessions it deleted. A member is only deleted when its hash
 * says it is this owner's: an index is never trusted to delete someone
 * else's session. A member whose hash is already gone stays in "ends", so
 * that the sweep counts it as the expiration it was. */
static const char lua_end_owner[] =
    "local n = 0\n"
    "for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
    "  local k = P .. 's:' .. m\n"
    "  if redis.call('HGET', k, 'owner') == ARGV[3] then\n"
    "    redis.call('DEL', k)\n"
    "    redis.call('ZREM', P .. 'ends', m)\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return n\n";

/* list_owner: KEYS[1] = the owner's index. Returns, most recently used
 * first, 5 elements per live session: hex, created, last, ends, record.
 * Members whose hash is gone are pruned here; ended ones are skipped and
 * left to get or the sweep, which count them. */
static const char lua_list[] =
    "local out = {}\n"
    "for _, m in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do\n"
    "  local g = redis.call('HMGET', P .. 's:' .. m, 'created', 'last', "
    "'idle', 'max_age', 'data')\n"
    "  if not g[1] then redis.call('ZREM', KEYS[1], m)\n"
    "  elseif not over(times(g)) then\n"
    "    local c, l = times(g)\n"
    "    out[#out + 1] = m\n"
    "    out[#out + 1] = c\n"
    "    out[#out + 1] = l\n"
    "    out[#out + 1] = ends(times(g))\n"
    "    out[#out + 1] = g[5] or ''\n"
    "  end\n"
    "end\n"
    "return out\n";

/* throttle_hit: KEYS[1] = the throttle key, ARGV[3] = limit, [4] =
 * window. Returns 0 (counted) or the seconds left in the window (not
 * counted). Check and count are one step, so of many concurrent attempts
 * exactly `limit` pass. A window starts at its first attempt and ends
 * `window` seconds later; its key expires then. */
static const char lua_throttle_hit[] =
    "local lim, win = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local h = redis.call('HMGET', KEYS[1], 'n', 'start')\n"
    "local n, s = tonumber(h[1]) or 0, tonumber(h[2]) or now\n"
    "if n == 0 or now - s >= win then n, s = 0, now end\n"
    /* A window started by a server whose clock runs ahead still counts;
     * it only never reports more than a whole window to wait. */
    "if n >= lim then return math.min(s + win - now, win) end\n"
    "redis.call('HSET', KEYS[1], 'n', n + 1, 'start', s)\n"
    "redis.call('EXPIRE', KEYS[1], math.max(s + win - now, 1))\n"
    "return 0\n";

/* throttle_undo: ARGV[3] = "1" to forget every attempt, else take back
 * one (never below zero; an emptied window restarts at the next one). */
static const char lua_throttle_undo[] =
    "if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) return 0 end\n"
    "local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')\n"
    "if n > 0 then redis.call('HINCRBY', KEYS[1], 'n', -1) end\n"
    "return n\n";

/* stats: KEYS[1] = P stats. Returns {live, ended but not swept, hits,
 * misses, expirations, logins ok, failed, throttled}. Read-only, and
 * O(log n): no SCAN. */
static const char lua_stats[] =
    "local h = redis.call('HMGET', KEYS[1], 'hits', 'misses', "
    "'expirations', 'logins_ok', 'logins_failed', 'logins_throttled')\n"
    "local e = P .. 'ends'\n"
    "local out = {redis.call('ZCOUNT', e, ARGV[2], '+inf'), "
    "redis.call('ZCOUNT', e, '-inf', '(' .. ARGV[2])}\n"
    "for n = 1, 6 do out[n + 2] = tonumber(h[n]) or 0 end\n"
    "return out\n";

enum {
    S_GET,
    S_CREATE,
    S_REPLACE,
    S_REMOVE,
    S_END_OWNER,
    S_LIST,
    S_THROTTLE_HIT,
    S_THROTTLE_UNDO,
    S_STATS,
    S_COUNT
};

/* The bodies; each script is lua_common followed by its body, joined in
 * sd_store_redis_open(). */
static const char *const script_body[S_COUNT] = {
    lua_get,  lua_create,       lua_replace,       lua_remove, lua_end_owner,
    lua_list, lua_throttle_hit, lua_throttle_undo, lua_stats};

static const char *const script_name[S_COUNT] = {
    "get",        "create",       "replace",       "remove", "end_owner",
    "list_owner", "throttle_hit", "throttle_undo", "stats"};

/* ---------------------------------------------------------------------
 * The store
 * --------------------------------------------------------------------- */

typedef struct {
    redisContext *c;
    apr_uint64_t gen;        /* the store's gen when it was made */
    apr_uint64_t latency_us; /* of its last round trip */
} sd_rconn_t;

typedef struct {
    unsigned char key[SD_REDIS_KEY_BYTES];
    apr_uint64_t version; /* 0: empty */
    apr_uint64_t gen;     /* the store's gen when Redis answered with it */
    char *data;           /* malloc'd copy of that version */
    apr_size_t len;
} sd_rcache_t;

typedef struct {
    sd_store_t base; /* first: what callers see */
    apr_pool_t *pool;
    sd_redis_config_t cfg; /* strings copied into pool */
    unsigned char secret[SD_REDIS_SECRET_LEN];
    sd_store_log_fn log;
    void *log_baton;
    const char *script[S_COUNT]; /* each script's whole text */
    apr_size_t script_len[S_COUNT];
    char sha[S_COUNT][41];    /* hex SHA-1 of each script */
    apr_thread_mutex_t *lock; /* guards everything below */

    /* Per process: a child that inherits these from the parent starts
     * them afresh (see own_process()). */
    pid_t pid;        /* the process they belong to */
    sd_rconn_t *idle; /* connections ready for use */
    apr_uint32_t nidle;
    apr_uint64_t gen;                 /* +1 on every failure: older
                                       * connections are not reused */
    apr_time_t retry_at;              /* no new connection before this */
    apr_uint32_t backoff_ms;          /* current pause; 0 after a success */
    int down;                         /* "unreachable" was logged */
    char host[SD_REDIS_HOST_MAX + 1]; /* where the server (master) is */
    int port;
    int rediscover;             /* ask the Sentinels before connecting */
    apr_uint32_t sentinel_next; /* the one that answered last */
    apr_uint64_t errors;        /* operations that got SD_EUNAVAIL */
    apr_uint64_t failovers;     /* master changes seen */
    apr_uint64_t unreplicated;  /* writes fewer replicas acked */
    apr_uint64_t latency_us;    /* last round trip */
    int connected;              /* the last operation reached Redis */
    char last_error[256];       /* "" when none yet */
    apr_int64_t last_now;       /* latest clock a caller passed */
    const char *sentinel_list;  /* "h:p,h:p", for messages */
    sd_rcache_t *cache;         /* cfg.cache_slots of them */
} sd_redis_t;

static void lock(sd_redis_t *rs)
{
    apr_thread_mutex_lock(rs->lock);
}

static void unlock(sd_redis_t *rs)
{
    apr_thread_mutex_unlock(rs->lock);
}

static void hex(const unsigned char *b, apr_size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    apr_size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *s, apr_size_t n, unsigned char *out)
{
    apr_size_t i;
    for (i = 0; i < 2 * n; i++) {
        int v;
        char ch = s[i];
        if (ch >= '0' && ch <= '9')
            v = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            v = ch - 'a' + 10;
        else
            return 0;
        if (i % 2 == 0)
            out[i / 2] = (unsigned char)(v << 4);
        else
            out[i / 2] |= (unsigned char)v;
    }
    return 1;
}

/* "host:port", with brackets for an IPv6 host. */
static void format_address(char *out, apr_size_t n, const char *host, int port)
{
    apr_snprintf(out, n, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

/* Where the store is, for messages: the server, or before the Sentinels
 * have answered, whom we ask. Called under the lock. */
static void where(sd_redis_t *rs, char *out, apr_size_t n)
{
    if (rs->host[0]) {
        format_address(out, n, rs->host, rs->port);
    }
    else {
        apr_snprintf(out, n, "master %s via Sentinel %s", rs->cfg.master_name,
                     rs->sentinel_list);
    }
}

static struct timeval to_timeval(apr_interval_time_t t)
{
    struct timeval tv;
    tv.tv_sec = (time_t)(t / APR_USEC_PER_SEC);
    tv.tv_usec = (suseconds_t)(t % APR_USEC_PER_SEC);
    return tv;
}

/* ---------------------------------------------------------------------
 * The per-process record cache
 *
 * Direct-mapped: a key has one slot, and a newer record simply takes it.
 * Only a hint: the script is told the version we hold and leaves the
 * record out of its answer only when that is the version it has.
 *
 * A version names one record only as long as Redis keeps every write it
 * acknowledged. A failover (or a restart that lost the end of its log)
 * can roll a session back to an older version, from which another server
 * reaches our version number again with other data. So an entry is only
 * offered while the store's gen is the one of the connection that brought
 * it: every failure bumps gen, and no new master is reached without one.
 * --------------------------------------------------------------------- */

static sd_rcache_t *cache_slot(sd_redis_t *rs, const sd_key_t *key)
{
    apr_uint32_t h;
    if (!rs->cfg.cache_slots)
        return NULL;
    h = (apr_uint32_t)key->b[4] | (apr_uint32_t)key->b[5] << 8 |
        (apr_uint32_t)key->b[6] << 16 | (apr_uint32_t)key->b[7] << 24;
    return &rs->cache[h % rs->cfg.cache_slots];
}

static void cache_clear(sd_rcache_t *e)
{
    free(e->data);
    e->data = NULL;
    e->len = 0;
    e->version = 0;
}

/* The version we hold of @a key, with a copy of its record in @a pool
 * and the gen it belongs to in *gen; 0 when none. */
static apr_uint64_t cache_get(sd_redis_t *rs, const sd_key_t *key,
                              apr_pool_t *pool, char **data, apr_size_t *len,
                              apr_uint64_t *gen)
{
    apr_uint64_t v = 0;
    sd_rcache_t *e;

    lock(rs);
    e = cache_slot(rs, key);
    if (e && e->version && e->gen == rs->gen &&
        memcmp(e->key, key->b, SD_REDIS_KEY_BYTES) == 0) {
        *data = apr_pmemdup(pool, e->data, e->len ? e->len : 1);
        *len = e->len;
        *gen = e->gen;
        v = e->version;
    }
    unlock(rs);
    return v;
}

static void cache_put(sd_redis_t *rs, const sd_key_t *key, apr_uint64_t gen,
                      apr_uint64_t version, const void *data, apr_size_t len)
{
    sd_rcache_t *e;
    char *copy = NULL;

    if (!rs->cfg.cache_slots || len < SD_REDIS_CACHE_MIN)
        return;
    /* Copied before the lock is taken: malloc can be slow. */
    if ((copy = malloc(len)) == NULL)
        return;
    memcpy(copy, data, len);
    lock(rs);
    e = cache_slot(rs, key);
    cache_clear(e);
    memcpy(e->key, key->b, SD_REDIS_KEY_BYTES);
    e->version = version;
    e->gen = gen;
    e->data = copy;
    e->len = len;
    unlock(rs);
}

static void cache_forget(sd_redis_t *rs, const sd_key_t *key)
{
    sd_rcache_t *e;
    lock(rs);
    e = cache_slot(rs, key);
    if (e && e->version && memcmp(e->key, key->b, SD_REDIS_KEY_BYTES) == 0)
        cache_clear(e);
    unlock(rs);
}

/* ---------------------------------------------------------------------
 * Connections, the breaker and Sentinel
 * --------------------------------------------------------------------- */

static void drop_idle(sd_redis_t *rs)
{
    while (rs->nidle)
        redisFree(rs->idle[--rs->nidle].c);
}

/* A child inherits the parent's connections and state with the memory:
 * its copies of those sockets are the parent's conversations, so they are
 * closed unused, and the child starts its own. Called under the lock. */
static void own_process(sd_redis_t *rs)
{
    pid_t me = getpid();
    if (rs->pid == me)
        return;
    rs->pid = me;
    drop_idle(rs);
    rs->gen++;
    rs->retry_at = 0;
    rs->backoff_ms = 0;
    rs->down = 0;
    rs->errors = rs->unreplicated = rs->latency_us = 0;
    rs->connected = 0;
    rs->last_error[0] = '\0';
}

/* Called under the lock. */
static void suggest_retry(sd_redis_t *rs, apr_time_t now)
{
    apr_time_t left = rs->retry_at > now ? rs->retry_at - now : 0;
    apr_uint32_t s =
        (apr_uint32_t)((left + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC);
    rs->base.retry_after = s ? s : 1;
}

/*
 * Record a failure: @a c (may be NULL) is closed, and so is every idle
 * connection (after a failure they are no better than unknown); no new
 * connection is tried for the back-off, which doubles with each failure
 * in a row. The first failure after a success is logged, once, however
 * many requests fail meanwhile. Returns SD_EUNAVAIL.
 */
static apr_status_t failed(sd_redis_t *rs, redisContext *c, const char *why)
{
    char line[768], at[300];
    apr_time_t now = apr_time_now();
    int say = 0;

    if (c)
        redisFree(c);
    lock(rs);
    drop_idle(rs);
    rs->gen++;
    if (rs->backoff_ms == 0)
        rs->backoff_ms = rs->cfg.breaker_backoff_ms;
    else if (rs->backoff_ms < SD_REDIS_BACKOFF_MAX)
        rs->backoff_ms = rs->backoff_ms * 2 > SD_REDIS_BACKOFF_MAX
                             ? SD_REDIS_BACKOFF_MAX
                             : rs->backoff_ms * 2;
    rs->retry_at = now + (apr_time_t)rs->backoff_ms * 1000;
    /* With Sentinel, any failure may mean the master moved. */
    if (rs->cfg.master_name)
        rs->rediscover = 1;
    rs->connected = 0;
    rs->errors++;
    apr_cpystrn(rs->last_error, why, sizeof(rs->last_error));
    if (!rs->down) {
        rs->down = 1;
        say = 1;
        where(rs, at, sizeof(at));
        apr_snprintf(line, sizeof(line),
                     "SDEMO00301: Redis at %s unreachable: %s; pages that "
                     "need a session answer 503 until it is back; no one is "
                     "logged out"
                     "",
                     at, why);
    }
    suggest_retry(rs, now);
    unlock(rs);
    if (say && rs->log)
        rs->log(rs->log_baton, SD_LOG_ERR, line);
    return SD_EUNAVAIL;
}

/* Describe a context's error in @a why. */
static void context_error(const redisContext *c, int err_no,
                          apr_interval_time_t timeout, char *why, apr_size_t n)
{
    if (!c)
        apr_cpystrn(why, "out of memory", n);
    else if (c->err == REDIS_ERR_IO &&
             (err_no == EAGAIN || err_no == EWOULDBLOCK || err_no == ETIMEDOUT))
        apr_snprintf(why, n, "no answer within %d ms", (int)(timeout / 1000));
    else if (c->err == REDIS_ERR_EOF)
        apr_cpystrn(why, "the server closed the connection", n);
    else if (c->err == REDIS_ERR_PROTOCOL)
        apr_snprintf(why, n, "protocol error (%s)", c->errstr);
    else
        apr_cpystrn(why, c->errstr, n);
}

/* Describe an error reply. Only its first line, and not all of it: it is
 * the server's text, and it goes into logs. */
static void reply_error(const char *what, const redisReply *r, char *why,
                        apr_size_t n)
{
    int len = (int)(r->len > 160 ? 160 : r->len);
    const char *nl = memchr(r->str, '\n', (apr_size_t)len);
    if (nl)
        len = (int)(nl - r->str);
    apr_snprintf(why, n, "%s: %.*s%s", what, len, r->str,
                 strncmp(r->str, "NOAUTH", 6) == 0 ? " (it wants a password)"
                                                   : "");
}

/*
 * Connect to @a host:@a port and make the connection ready: timeouts,
 * AUTH, SELECT and, with Sentinel, a ROLE check that it is a master, all
 * sent at once (one round trip). NULL with *why on failure.
 */
static redisContext *conn_open(sd_redis_t *rs, const char *host, int port,
                               char *why, apr_size_t n)
{
    const sd_redis_config_t *cfg = &rs->cfg;
    redisContext *c;
    enum { AUTH, SELECT, ROLE } sent[3];
    int k, nsent = 0;
    char db[16];

    c = redisConnectWithTimeout(host, port, to_timeval(cfg->connect_timeout));
    if (!c || c->err) {
        apr_snprintf(why, n, "cannot connect (%s)",
                     c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, to_timeval(cfg->command_timeout)) != REDIS_OK) {
        apr_snprintf(why, n, "cannot set the command timeout (%s)", c->errstr);
        redisFree(c);
        return NULL;
    }
    if (cfg->password) {
        if (cfg->user)
            redisAppendCommand(c, "AUTH %s %s", cfg->user, cfg->password);
        else
            redisAppendCommand(c, "AUTH %s", cfg->password);
        sent[nsent++] = AUTH;
    }
    if (cfg->db) {
        apr_snprintf(db, sizeof(db), "%d", cfg->db);
        redisAppendCommand(c, "SELECT %s", db);
        sent[nsent++] = SELECT;
    }
    if (cfg->master_name) {
        redisAppendCommand(c, "ROLE");
        sent[nsent++] = ROLE;
    }
    for (k = 0; k < nsent; k++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            context_error(c, errno, cfg->command_timeout, why, n);
            redisFree(c);
            return NULL;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            reply_error(sent[k] == AUTH     ? "AUTH refused"
                        : sent[k] == SELECT ? "SELECT refused"
                                            : "ROLE refused",
                        r, why, n);
            freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        /* The Sentinels may answer with a master that has just been
         * demoted (their view lags a failover): only a server that says
         * it is a master gets our writes. */
        if (sent[k] == ROLE &&
            (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
             r->element[0]->type != REDIS_REPLY_STRING ||
             strcmp(r->element[0]->str, "master") != 0)) {
            char at[300];
            format_address(at, sizeof(at), host, port);
            apr_snprintf(why, n,
                         "%s is not a master (ROLE says %s); a failover "
                         "may be under way",
                         at,
                         r->type == REDIS_REPLY_ARRAY && r->elements &&
                                 r->element[0]->type == REDIS_REPLY_STRING
                             ? r->element[0]->str
                             : "something else");
            freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    return c;
}

/* Split "host:port" or "[v6]:port". */
static int split_hostport(const char *s, char *host, apr_size_t hostlen,
                          int *port)
{
    const char *colon, *h = s, *he;
    char *end;
    long p;

    if (*s == '[') {
        h = s + 1;
        he = strchr(h, ']');
        if (!he || he[1] != ':')
            return 0;
        colon = he + 1;
    }
    else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (apr_size_t)(colon - s)))
            return 0;
        he = colon;
    }
    if (he == h || (apr_size_t)(he - h) >= hostlen)
        return 0;
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || errno || p < 1 || p > 65535)
        return 0;
    memcpy(host, h, (apr_size_t)(he - h));
    host[he - h] = '\0';
    *port = (int)p;
    return 1;
}

/*
 * Ask the Sentinels, one at a time and starting with the one that
 * answered last, where the master is. Short timeouts: a Sentinel that is
 * down must not cost the request the whole connect timeout of each.
 */
static apr_status_t sentinel_ask(sd_redis_t *rs, char *host, int *port,
                                 char *why, apr_size_t n)
{
    const sd_redis_config_t *cfg = &rs->cfg;
    apr_interval_time_t cto = cfg->connect_timeout, rto = cfg->command_timeout;
    int count = cfg->sentinels->nelts, i;
    apr_uint32_t first;

    if (cto > SD_REDIS_SENTINEL_MS * 1000)
        cto = SD_REDIS_SENTINEL_MS * 1000;
    if (rto > SD_REDIS_SENTINEL_MS * 1000)
        rto = SD_REDIS_SENTINEL_MS * 1000;
    lock(rs);
    first = rs->sentinel_next;
    unlock(rs);
    apr_cpystrn(why, "no Sentinel configured", n);
    for (i = 0; i < count; i++) {
        int idx = (int)((first + (apr_uint32_t)i) % (apr_uint32_t)count);
        const char *s = APR_ARRAY_IDX(cfg->sentinels, idx, const char *);
        char sh[SD_REDIS_HOST_MAX + 1];
        int sp, k, sent = 0, ok = 0;
        redisContext *c;

        if (!split_hostport(s, sh, sizeof(sh), &sp))
            continue;
        c = redisConnectWithTimeout(sh, sp, to_timeval(cto));
        if (!c || c->err) {
            apr_snprintf(why, n, "Sentinel %s: cannot connect (%s)", s,
                         c ? c->errstr : "out of memory");
            if (c)
                redisFree(c);
            continue;
        }
        redisSetTimeout(c, to_timeval(rto));
        if (cfg->sentinel_password) {
            if (cfg->sentinel_user)
                redisAppendCommand(c, "AUTH %s %s", cfg->sentinel_user,
                                   cfg->sentinel_password);
            else
                redisAppendCommand(c, "AUTH %s", cfg->sentinel_password);
            sent++;
        }
        redisAppendCommand(c, "SENTINEL get-master-addr-by-name %s",
                           cfg->master_name);
        sent++;
        for (k = 0; k < sent; k++) {
            redisReply *r = NULL;
            int last = k == sent - 1;
            if (redisGetReply(c, (void **)&r) != REDIS_OK) {
                char e[160];
                context_error(c, errno, rto, e, sizeof(e));
                apr_snprintf(why, n, "Sentinel %s: %s", s, e);
                break;
            }
            if (r->type == REDIS_REPLY_ERROR) {
                char e[200];
                reply_error(last ? "refused" : "AUTH refused", r, e, sizeof(e));
                apr_snprintf(why, n, "Sentinel %s: %s", s, e);
                freeReplyObject(r);
                break;
            }
            if (last) {
                if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                    r->element[0]->type == REDIS_REPLY_STRING &&
                    r->element[1]->type == REDIS_REPLY_STRING &&
                    r->element[0]->len > 0 &&
                    r->element[0]->len <= SD_REDIS_HOST_MAX &&
                    atoi(r->element[1]->str) > 0 &&
                    atoi(r->element[1]->str) <= 65535) {
                    memcpy(host, r->element[0]->str, r->element[0]->len);
                    host[r->element[0]->len] = '\0';
                    *port = atoi(r->element[1]->str);
                    ok = 1;
                }
                else {
                    apr_snprintf(why, n, "Sentinel %s does not know master %s",
                                 s, cfg->master_name);
                }
            }
            freeReplyObject(r);
        }
        redisFree(c);
        if (ok) {
            lock(rs);
            rs->sentinel_next = (apr_uint32_t)idx;
            unlock(rs);
            return APR_SUCCESS;
        }
    }
    return SD_EUNAVAIL;
}

/*
 * A connection for one operation: an idle one, else a new one unless the
 * breaker is open. While it is open every caller fails at once; when it
 * closes, the first caller pushes it out again before it tries, so that
 * of all the threads waiting only one probes the server.
 */
static apr_status_t conn_get(sd_redis_t *rs, sd_rconn_t *out)
{
    apr_time_t now = apr_time_now();
    char host[SD_REDIS_HOST_MAX + 1], why[400];
    int port, ask;
    apr_uint64_t gen;
    redisContext *c;

    lock(rs);
    own_process(rs);
    if (rs->nidle) {
        *out = rs->idle[--rs->nidle];
        unlock(rs);
        return APR_SUCCESS;
    }
    if (now < rs->retry_at) {
        rs->errors++;
        suggest_retry(rs, now);
        unlock(rs);
        return SD_EUNAVAIL;
    }
    if (rs->down)
        rs->retry_at = now + (apr_time_t)rs->backoff_ms * 1000;
    ask = rs->cfg.master_name && (rs->rediscover || !rs->host[0]);
    apr_cpystrn(host, rs->host, sizeof(host));
    port = rs->port;
    gen = rs->gen;
    unlock(rs);

    if (ask && sentinel_ask(rs, host, &port, why, sizeof(why)) != APR_SUCCESS)
        return failed(rs, NULL, why);
    c = conn_open(rs, host, port, why, sizeof(why));
    if (!c)
        return failed(rs, NULL, why);
    if (ask) {
        char was[300], is[300], line[700];
        int moved = 0;
        lock(rs);
        if (rs->host[0] && (strcmp(rs->host, host) || rs->port != port)) {
            format_address(was, sizeof(was), rs->host, rs->port);
            format_address(is, sizeof(is), host, port);
            rs->failovers++;
            moved = 1;
        }
        apr_cpystrn(rs->host, host, sizeof(rs->host));
        rs->port = port;
        rs->rediscover = 0;
        unlock(rs);
        if (moved && rs->log) {
            apr_snprintf(line, sizeof(line),
                         "SDEMO00303: Redis master %s is now at %s (was %s): "
                         "a failover; sessions follow the new master",
                         rs->cfg.master_name, is, was);
            rs->log(rs->log_baton, SD_LOG_NOTICE, line);
        }
    }
    out->c = c;
    out->gen = gen;
    out->latency_us = 0;
    return APR_SUCCESS;
}

/* The operation on @a conn went as expected: keep the connection (if it
 * is not from before a failure and the pool has room), note the latency,
 * and if this is the first success after an outage, say so once. */
static void conn_done(sd_redis_t *rs, sd_rconn_t *conn)
{
    char line[400], at[300];
    int say = 0;

    lock(rs);
    rs->latency_us = conn->latency_us;
    rs->connected = 1;
    if (conn->gen == rs->gen) {
        /* Only a connection made since the last failure proves that the
         * server is back: one checked out before may just be finishing
         * an exchange begun earlier. */
        rs->backoff_ms = 0;
        rs->retry_at = 0;
        if (rs->down) {
            rs->down = 0;
            say = 1;
            where(rs, at, sizeof(at));
            apr_snprintf(line, sizeof(line),
                         "SDEMO00302: Redis at %s is reachable again; "
                         "sessions are served again",
                         at);
        }
    }
    if (conn->gen == rs->gen && rs->pid == getpid() &&
        rs->nidle < rs->cfg.pool_size) {
        rs->idle[rs->nidle++] = *conn;
        conn->c = NULL;
    }
    unlock(rs);
    if (conn->c)
        redisFree(conn->c);
    conn->c = NULL;
    if (say && rs->log)
        rs->log(rs->log_baton, SD_LOG_NOTICE, line);
}

/* ---------------------------------------------------------------------
 * Round trips
 * --------------------------------------------------------------------- */

#define SD_MAXARGS 16

typedef struct {
    int argc;
    const char *argv[SD_MAXARGS];
    size_t len[SD_MAXARGS];
} sd_args_t;

static void arg(sd_args_t *a, const void *s, apr_size_t n)
{
    a->argv[a->argc] = s;
    a->len[a->argc] = n;
    a->argc++;
}

static void args(sd_args_t *a, const char *s)
{
    arg(a, s, strlen(s));
}

/*
 * Send @a a on a connection (with WAIT after it when @a wait) and read
 * the reply. For a script (@a script >= 0, a->argv[0..1] left for
 * "EVALSHA sha"), NOSCRIPT is answered with the script's text, once.
 * Transport failures and error replies are recorded (failed()) and give
 * SD_EUNAVAIL; otherwise *reply is the answer and *conn holds the
 * connection, for conn_done() once the answer proves sensible or
 * bad_reply() if it does not.
 */
static apr_status_t exchange(sd_redis_t *rs, int script, sd_args_t *a, int wait,
                             sd_rconn_t *conn, redisReply **reply)
{
    const sd_redis_config_t *cfg = &rs->cfg;
    apr_interval_time_t timeout = cfg->command_timeout;
    char why[400], nrep[16], nms[16];
    redisReply *r = NULL, *w = NULL;
    apr_status_t rv;
    apr_time_t t0;
    int attempt;

    *reply = NULL;
    if ((rv = conn_get(rs, conn)) != APR_SUCCESS)
        return rv;
    if (script >= 0) {
        a->argv[0] = "EVALSHA";
        a->len[0] = 7;
        a->argv[1] = rs->sha[script];
        a->len[1] = 40;
    }
    if (wait) {
        /* WAIT may take wait_ms itself: the socket must wait that much
         * longer for this round trip only. */
        timeout += (apr_interval_time_t)cfg->wait_ms * 1000;
        apr_snprintf(nrep, sizeof(nrep), "%d", cfg->wait_replicas);
        apr_snprintf(nms, sizeof(nms), "%u", cfg->wait_ms);
        if (redisSetTimeout(conn->c, to_timeval(timeout)) != REDIS_OK) {
            apr_snprintf(why, sizeof(why), "cannot set a timeout (%s)",
                         conn->c->errstr);
            return failed(rs, conn->c, why);
        }
    }
    for (attempt = 0; attempt < 2; attempt++) {
        t0 = apr_time_now();
        redisAppendCommandArgv(conn->c, a->argc, a->argv, a->len);
        if (wait)
            redisAppendCommand(conn->c, "WAIT %s %s", nrep, nms);
        if (redisGetReply(conn->c, (void **)&r) != REDIS_OK ||
            (wait && redisGetReply(conn->c, (void **)&w) != REDIS_OK)) {
            context_error(conn->c, errno, timeout, why, sizeof(why));
            if (r)
                freeReplyObject(r);
            return failed(rs, conn->c, why);
        }
        if (script >= 0 && attempt == 0 && r->type == REDIS_REPLY_ERROR &&
            strncmp(r->str, "NOSCRIPT", 8) == 0) {
            /* The server has not seen this script (it restarted, or its
             * cache was flushed): send the text, which also caches it. */
            a->argv[0] = "EVAL";
            a->len[0] = 4;
            a->argv[1] = rs->script[script];
            a->len[1] = rs->script_len[script];
            freeReplyObject(r);
            r = NULL;
            if (w)
                freeReplyObject(w);
            w = NULL;
            continue;
        }
        break;
    }
    conn->latency_us = (apr_uint64_t)(apr_time_now() - t0);
    if (wait) {
        /* The write is done on the master either way; too few replicas
         * only makes it less durable, so it is counted, not failed. */
        if (w->type != REDIS_REPLY_INTEGER || w->integer < cfg->wait_replicas) {
            lock(rs);
            rs->unreplicated++;
            unlock(rs);
        }
        freeReplyObject(w);
        if (redisSetTimeout(conn->c, to_timeval(cfg->command_timeout)) !=
            REDIS_OK) {
            freeReplyObject(r);
            apr_snprintf(why, sizeof(why), "cannot set a timeout (%s)",
                         conn->c->errstr);
            return failed(rs, conn->c, why);
        }
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char what[64];
        apr_snprintf(what, sizeof(what), "%s answered",
                     script >= 0 ? script_name[script] : a->argv[0]);
        reply_error(what, r, why, sizeof(why));
        freeReplyObject(r);
        return failed(rs, conn->c, why);
    }
    *reply = r;
    return APR_SUCCESS;
}

/* An answer of the wrong shape: the server is not the one we think it
 * is (or not a Redis at all), so the connection goes, like any failure. */
static apr_status_t bad_reply(sd_redis_t *rs, sd_rconn_t *conn, redisReply *r,
                              const char *op)
{
    char why[200];
    apr_snprintf(why, sizeof(why), "unexpected answer to %s (type %d)", op,
                 r ? r->type : -1);
    if (r)
        freeReplyObject(r);
    return failed(rs, conn->c, why);
}

static void finish(sd_redis_t *rs, sd_rconn_t *conn, redisReply *r)
{
    freeReplyObject(r);
    conn_done(rs, conn);
}

/* Element @a i of array @a r as an integer in [lo, hi]. */
static int int_at(const redisReply *r, apr_size_t i, long long lo, long long hi,
                  long long *out)
{
    const redisReply *e;
    if (r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return 0;
    e = r->element[i];
    if (e->type != REDIS_REPLY_INTEGER || e->integer < lo || e->integer > hi)
        return 0;
    *out = e->integer;
    return 1;
}

/* Start the arguments of a script: "EVALSHA sha" (filled in by
 * exchange()), one key, the prefix and the clock. */
static void script_args(sd_redis_t *rs, sd_args_t *a, const char *key,
                        char *nowbuf, apr_int64_t now)
{
    a->argc = 2;
    args(a, "1");
    args(a, key);
    args(a, rs->cfg.prefix);
    apr_snprintf(nowbuf, 24, "%" APR_INT64_T_FMT, now);
    args(a, nowbuf);
    if (now) {
        lock(rs);
        if (now > rs->last_now)
            rs->last_now = now;
        unlock(rs);
    }
}

static void session_key(sd_redis_t *rs, const sd_key_t *key, char *out,
                        char *id)
{
    hex(key->b, SD_REDIS_KEY_BYTES, id);
    apr_snprintf(out, KEYBUF, "%ss:%s", rs->cfg.prefix, id);
}

#define TIME_MAX ((long long)1 << 50) /* sane times and versions */

/* ---------------------------------------------------------------------
 * Operations
 * --------------------------------------------------------------------- */

static apr_status_t r_create(sd_store_t *st, const sd_key_t *key,
                             const sd_owner_t *owner, const void *data,
                             apr_size_t len, apr_int64_t now,
                             const sd_store_limits_t *lim, apr_uint32_t *ended)
{
    sd_redis_t *rs = (sd_redis_t *)st;
    char k[KEYBUF], id[33], oh[33] = "", nowb[24], idle[16], age[16], cap[16],
                            ver[24];
    unsigned char rnd[8];
    apr_uint64_t v = 0;
    sd_args_t a;
    sd_rconn_t conn;
    redisReply *r;
    long long status, n;
    apr_status_t rv;
    int i;

    if (ended)
        *ended = 0;
    if (!lim)
        return APR_EINVAL;
    if (len > st->max_data)
        return APR_EINVAL;
    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS)
        return APR_EGENERAL;
    for (i = 0; i < 8; i++)
        v = v << 8 | rnd[i];
    v = (v & (((apr_uint64_t)1 << SD_REDIS_VERSION_BITS) - 1)) | 1;
    session_key(rs, key, k, id);
    if (owner)
        hex(owner->b, SD_OWNER_LEN, oh);
    apr_snprintf(idle, sizeof(idle), "%u", lim->idle);
    apr_snprintf(age, sizeof(age), "%u", lim->max_age);
    apr_snprintf(cap, sizeof(cap), "%u", owner ? lim->per_user : 0);
    apr_snprintf(ver, sizeof(ver), "%" APR_UINT64_T_FMT, v);
    script_args(rs, &a, k, nowb, now);
    args(&a, id);
    args(&a, oh);
    args(&a, idle);
    args(&a, age);
    args(&a, cap);
    args(&a, ver);
    arg(&a, data ? data : "", len);
    rv = exchange(rs, S_CREATE, &a, rs->cfg.wait_replicas > 0, &conn, &r);
    if (rv != APR_SUCCESS)
        return rv;
    if (r->elements != 2 || !int_at(r, 0, -1, 1, &status) || status == 0 ||
        !int_at(r, 1, 0, 0xffffffffLL, &n))
        return bad_reply(rs, &conn, r, "create");
    finish(rs, &conn, r);
    if (status < 0)
        return APR_EEXIST;
    if (ended)
        *ended = (apr_uint32_t)n;
    cache_put(rs, key, conn.gen, v, data, len);
    return APR_SUCCESS;
}

static apr_status_t r_get(sd_store_t *st, const sd_key_t *key, apr_int64_t now,
                          apr_pool_t *pool, char **data, apr_size_t *len,
                          sd_store_meta_t *meta)
{
    sd_redis_t *rs = (sd_redis_t *)st;
    char k[KEYBUF], id[33], nowb[24], cv[24];
    char *cdata = NULL;
    apr_size_t clen = 0;
    apr_uint64_t cached;
    long long status, c, l, i, m, v;
    sd_args_t a;
    sd_rconn_t conn;
    redisReply *r;
    apr_status_t rv;
    const char *rec;
    apr_size_t rlen;
    apr_uint64_t cgen = 0;
    int hint;

    session_key(rs, key, k, id);
    for (hint = 1;; hint = 0) {
        cached = hint ? cache_get(rs, key, pool, &cdata, &clen, &cgen) : 0;
        apr_snprintf(cv, sizeof(cv), "%" APR_UINT64_T_FMT, cached);
        script_args(rs, &a, k, nowb, now);
        args(&a, id);
        args(&a, cv);
        rv = exchange(rs, S_GET, &a, 0, &conn, &r);
        if (rv != APR_SUCCESS)
            return rv;
        if (!int_at(r, 0, 0, 2, &status))
            return bad_reply(rs, &conn, r, "get");
        /* The hint was taken before a failure that this connection comes
         * after: it may be another master's answer to our version (see
         * the cache). Ask once more, without it. */
        if (cached && r->elements == 6 && conn.gen != cgen) {
            finish(rs, &conn, r);
            continue;
        }
        break;
    }
    if (status == 0) {
        if (r->elements != 1)
            return bad_reply(rs, &conn, r, "get");
        finish(rs, &conn, r);
        cache_forget(rs, key);
        return APR_NOTFOUND;
    }
    if ((r->elements != 6 && r->elements != 7) ||
        !int_at(r, 1, 0, TIME_MAX, &c) || !int_at(r, 2, 0, TIME_MAX, &l) ||
        !int_at(r, 3, 0, 0xffffffffLL, &i) ||
        !int_at(r, 4, 0, 0xffffffffLL, &m) || !int_at(r, 5, 1, TIME_MAX, &v))
        return bad_reply(rs, &conn, r, "get");
    if (r->elements == 6) {
        /* "You have it already": only sensible for the version we said
         * we have. */
        if (status != 1 || !cached || (apr_uint64_t)v != cached)
            return bad_reply(rs, &conn, r, "get");
        rec = cdata;
        rlen = clen;
    }
    else {
        if (r->element[6]->type != REDIS_REPLY_STRING)
            return bad_reply(rs, &conn, r, "get");
        rlen = r->element[6]->len;
        rec = apr_pmemdup(pool, r->element[6]->str, rlen ? rlen : 1);
        if (status == 1)
            cache_put(rs, key, conn.gen, (apr_uint64_t)v, rec, rlen);
    }
    finish(rs, &conn, r);
    if (data)
        *data = (char *)rec;
    if (len)
        *len = rlen;
    if (meta) {
        /* l is the access before this one; this one is now (whole
         * seconds, never earlier than the last). */
        long long cur = (long long)now > l ? (long long)now : l;
        meta->created = c;
        meta->last_access = l;
        meta->idle = (apr_uint32_t)i;
        meta->max_age = (apr_uint32_t)m;
        meta->expires = cur + i < c + m ? cur + i : c + m;
        meta->version = (apr_uint64_t)v;
    }
    if (status == 2) {
        cache_forget(rs, key);
        return APR_TIMEUP;
    }
    return APR_SUCCESS;
}

static apr_status_t r_replace(sd_store_t *st, const sd_key_t *key,
                              apr_uint64_t version, const void *data,
                              apr_size_t len, apr_int64_t now)
{
    sd_redis_t *rs = (sd_redis_t *)st;
    char k[KEYBUF], id[33], nowb[24], ver[24];
    long long status, v;
    sd_args_t a;
    sd_rconn_t conn;
    redisReply *r;
    apr_status_t rv;

    if (len > st->max_data)
        return APR_EINVAL;
    session_key(rs, key, k, id);
    apr_snprintf(ver, sizeof(ver), "%" APR_UINT64_T_FMT, version);
    script_args(rs, &a, k, nowb, now);
    args(&a, id);
    args(&a, ver);
    arg(&a, data ? data : "", len);
    rv = exchange(rs, S_REPLACE, &a, 0, &conn, &r);
    if (rv != APR_SUCCESS)
        return rv;
    if (r->elements != 2 || !int_at(r, 0, -2, 1, &status) || status == -1 ||
        !int_at(r, 1, 0, TIME_MAX, &v))
        return bad_reply(rs, &conn, r, "replace");
    finish(rs, &conn, r);
    if (status == 0) {
        cache_forget(rs, key);
        return APR_NOTFOUND;
    }
    if (status < 0)
        return APR_EAGAIN;
    /* What we just wrote is that version: the next get of this session
     * by this process need not bring it back. */
    cache_put(rs, key, conn.gen, (apr_uint64_t)v, data, len);
    return APR_SUCCESS;
}

static apr_status_t r_remove(sd_store_t *st, const sd_key_t *key,
                             const sd_owner_t *owner)
{
    sd_redis_t *rs = (sd_redis_t *)st;
    char k[KEYBUF], id[33], oh[33] = "", nowb[24];
    long long n;
    sd_args_t a;
    sd_rconn_t conn;
    redisReply *r;
    apr_status_t rv;

    session_key(rs, key, k, id);
    if (owner)
        hex(owner->b, SD_OWNER_LEN, oh);
    script_args(rs, &a, k, nowb, 0);
    args(&a, id);
    args(&a, oh);
    cache_forget(rs, key);
    rv = exchange(rs, S_REMOVE, &a, rs->cfg.wait_replicas > 0, &conn, &r);
    if (rv != APR_SUCCESS)
        return rv;
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0 || r->integer > 1)
        return bad_reply(rs, &conn, r, "remove");
    n = r->integer;
    finish(rs, &conn, r);
    return n ? APR_SUCCESS : APR_NOTFOUND;
}

static apr_status_t r_end_owner(sd_store_t *st, const sd_owner_t *owner,
                                apr_uint64_t *ended)
{
    sd_redis_t *rs = (sd_redis_t *)st;
    char k[KEYBUF], oh[33], nowb[24];
    long long n;
    sd_args_t a;
    sd_rconn_t conn;
    redisReply *r;
    apr_status_t rv;

    if (ended)
        *ended = 0;
    if (!owner)
        return APR_EINVAL;
    hex(owner->b, SD_OWNER_LEN, oh);
    apr_snprintf(k, sizeof(k), "%su:%s", rs->cfg.prefix, oh);
    script_args(rs, &a, k, nowb, 0);
    args(&a, oh);
    rv = exchange(rs, S_END_OWNER, &a, rs->cfg.wait_replicas > 0, &conn, &r);
    if (rv != APR_SUCCESS)
        return rv;
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0)
        return bad_reply(rs, &conn, r, "end_owner");
    n = r->integer;
    finish(rs, &conn, r);
    if (ended)
        *ended = (apr_uint64_t)n;
    return APR_SUCCESS;
}

static apr_status_t r_list_owner(sd_store_t *st, const sd_owner_t *owner,
                                 apr_int64_t now, apr_pool_t *pool,
                                 apr_array_header_t **entries)
{
    sd_redis_t *rs = (sd_redis_t *)st;
    char k[KEYBUF], oh[33], nowb[24];
    apr_array_header_t *out;
    sd_args_t a;
    sd_rconn_t conn;
    redisReply *r;
    apr_status_t rv;
    apr_size_t j;

    if (!owner)
        return APR_EINVAL;
    hex(owner->b, SD_OWNER_LEN, oh);
    apr_snprintf(k, sizeof(k), "%su:%s", rs->cfg.prefix, oh);
    script_args(rs, &a, k, nowb, now);
    rv = exchange(rs, S_LIST, &a, 0, &conn, &r);
    if (rv != APR_SUCCESS)
        return rv;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 5)
        return bad_reply(rs, &conn, r, "list_owner");
    out = apr_array_make(pool, (int)(r->elements / 5) + 1,
                         sizeof(sd_store_entry_t));
    for (j = 0; j < r->elements; j += 5) {
        sd_store_entry_t *e = apr_array_push(out);
        const redisReply *m = r->element[j], *d = r->element[j + 4];
        long long c, l, x;
        memset(e, 0, sizeof(*e));
        if (m->type != REDIS_REPLY_STRING || m->len != 2 * SD_REDIS_KEY_BYTES ||
            !unhex(m->str, SD_REDIS_KEY_BYTES, e->key.b) ||
            !int_at(r, j + 1, 0, TIME_MAX, &c) ||
            !int_at(r, j + 2, 0, TIME_MAX, &l) ||
            !int_at(r, j + 3, 0, TIME_MAX, &x) || d->type != REDIS_REPLY_STRING)
            return bad_reply(rs, &conn, r, "list_owner");
        e->created = c;
        e->last_access = l;
        e->expires = x;
        e->len = d->len;
        e->record = apr_pmemdup(pool, d->str, d->len ? d->len : 1);
    }
    finish(rs, &conn, r);
    *entries = out;
    return APR_SUCCESS;
}

/* The throttle key of a name or address: an HMAC under the module's
 * secret, so that Redis (and whoever reads its dumps) never holds the
 * name in clear, and cannot test guesses against it without the secret. */
static void throttle_key(sd_redis_t *rs, const char *key, apr_size_t len,
                         char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char h[33];

    HMAC(EVP_sha256(), rs->secret, SD_REDIS_SECRET_LEN,
         (const unsigned char *)key, len, md, &mdlen);
    hex(md, 16, h);
    apr_snprintf(out, KEYBUF, "%st:%s", rs->cfg.prefix, h);
}

static apr_status_t r_throttle_hit(sd_store_t *st, const char *key,
                                   apr_size_t len, apr_uint32_t limit,
                                   apr_uint32_t window, apr_int64_t now,
                                   apr_int64_t *wait)
{
    sd_redis_t *rs = (sd_redis_t *)st;
    char k[KEYBUF], nowb[24], lim[16], win[16];
    sd_args_t a;
    sd_rconn_t conn;
    redisReply *r;
    apr_status_t rv;
    long long w;

    if (wait)
        *wait = 0;
    throttle_key(rs, key, len, k);
    apr_snprintf(lim, sizeof(lim), "%u", limit);
    apr_snprintf(win, sizeof(win), "%u", window);
    script_args(rs, &a, k, nowb, now);
    args(&a, lim);
    args(&a, win);
    rv = exchange(rs, S_THROTTLE_HIT, &a, 0, &conn, &r);
    if (rv != APR_SUCCESS)
        return rv;
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0 ||
        r->integer > (long long)window)
        return bad_reply(rs, &conn, r, "throttle_hit");
    w = r->integer;
    finish(rs, &conn, r);
    if (wait)
        *wait = w;
    return APR_SUCCESS;
}

static apr_status_t r_throttle_undo(sd_store_t *st, const char *key,
                                    apr_size_t len, int forget)
{
    sd_redis_t *rs = (sd_redis_t *)st;
    char k[KEYBUF], nowb[24];
    sd_args_t a;
    sd_rconn_t conn;
    redisReply *r;
    apr_status_t rv;

    throttle_key(rs, key, len, k);
    script_args(rs, &a, k, nowb, 0);
    args(&a, forget ? "1" : "0");
    rv = exchange(rs, S_THROTTLE_UNDO, &a, 0, &conn, &r);
    if (rv != APR_SUCCESS)
        return rv;
    if (r->type != REDIS_REPLY_INTEGER)
        return bad_reply(rs, &conn, r, "throttle_undo");
    finish(rs, &conn, r);
    return APR_SUCCESS;
}

static apr_status_t r_count(sd_store_t *st, sd_counter_t c)
{
    sd_redis_t *rs = (sd_redis_t *)st;
    static const char *const field[] = {"logins_ok", "logins_failed",
                                        "logins_throttled"};
    char k[KEYBUF];
    sd_args_t a;
    sd_rconn_t conn;
    redisReply *r;
    apr_status_t rv;

    if ((unsigned)c >= sizeof(field) / sizeof(field[0]))
        return APR_EINVAL;
    apr_snprintf(k, sizeof(k), "%sstats", rs->cfg.prefix);
    a.argc = 0;
    args(&a, "HINCRBY");
    args(&a, k);
    args(&a, field[c]);
    args(&a, "1");
    rv = exchange(rs, -1, &a, 0, &conn, &r);
    if (rv != APR_SUCCESS)
        return rv;
    if (r->type != REDIS_REPLY_INTEGER)
        return bad_reply(rs, &conn, r, "HINCRBY");
    finish(rs, &conn, r);
    return APR_SUCCESS;
}

/* The figures: the shared ones from Redis (one round trip), the
 * per-process ones (connection, errors, latency) from here. When Redis
 * cannot answer, the per-process ones are still filled in, so that the
 * status page can say why. stats() gets no clock, so "live" is judged at
 * the latest time a caller passed, or the wall clock if none has yet. */
static apr_status_t r_stats(sd_store_t *st, apr_pool_t *pool,
                            sd_store_stats_t *out)
{
    sd_redis_t *rs = (sd_redis_t *)st;
    char k[KEYBUF], nowb[24], at[300];
    long long f[8];
    apr_int64_t now;
    sd_args_t a;
    sd_rconn_t conn;
    redisReply *r;
    apr_status_t rv;
    int i;

    memset(out, 0, sizeof(*out));
    out->kind = "redis";
    lock(rs);
    now =
        rs->last_now ? rs->last_now : (apr_int64_t)apr_time_sec(apr_time_now());
    unlock(rs);
    apr_snprintf(k, sizeof(k), "%sstats", rs->cfg.prefix);
    script_args(rs, &a, k, nowb, now);
    rv = exchange(rs, S_STATS, &a, 0, &conn, &r);
    if (rv == APR_SUCCESS) {
        for (i = 0; i < 8; i++) {
            if (r->elements != 8 ||
                !int_at(r, (apr_size_t)i, 0, LLONG_MAX, &f[i])) {
                rv = bad_reply(rs, &conn, r, "stats");
                break;
            }
        }
        if (rv == APR_SUCCESS) {
            finish(rs, &conn, r);
            out->sessions = (apr_uint64_t)f[0];
            out->hits = (apr_uint64_t)f[2];
            out->misses = (apr_uint64_t)f[3];
            /* Ended sessions not yet swept are expirations too. */
            out->expirations = (apr_uint64_t)f[4] + (apr_uint64_t)f[1];
            out->logins_ok = (apr_uint64_t)f[5];
            out->logins_failed = (apr_uint64_t)f[6];
            out->logins_throttled = (apr_uint64_t)f[7];
        }
    }
    lock(rs);
    where(rs, at, sizeof(at));
    out->address = apr_pstrdup(pool, at);
    out->connected = rs->connected;
    out->errors = rs->errors;
    out->latency_us = rs->latency_us;
    out->last_error =
        rs->last_error[0] ? apr_pstrdup(pool, rs->last_error) : NULL;
    out->failovers = rs->failovers;
    out->unreplicated = rs->unreplicated;
    out->have = SD_STATS_REPLICATION;
    unlock(rs);
    return rv;
}

static const sd_store_ops_t redis_ops = {
    "redis",         r_create,    r_get,        r_replace,
    r_remove,        r_end_owner, r_list_owner, r_throttle_hit,
    r_throttle_undo, r_count,     r_stats};

/* ---------------------------------------------------------------------
 * Configuration and setup
 * --------------------------------------------------------------------- */

void sd_redis_config_init(sd_redis_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "127.0.0.1";
    cfg->port = 6379;
    cfg->prefix = "sdemo:";
    cfg->connect_timeout = apr_time_from_msec(1000);
    cfg->command_timeout = apr_time_from_msec(500);
    cfg->max_data = 16384;
    cfg->pool_size = 4;
    cfg->breaker_backoff_ms = 250;
    cfg->wait_ms = 100;
    cfg->cache_slots = 64;
}

apr_status_t sd_redis_parse_address(apr_pool_t *pool, const char *spec,
                                    sd_redis_config_t *cfg, const char **why)
{
    char host[SD_REDIS_HOST_MAX + 1];
    int port;

    /* TLS needs hiredis 1.0's hiredis_ssl; the Makefile looks for it
     * (SD_HIREDIS_TLS). Without it, say what to do rather than connect in
     * the clear to an address the admin meant to be encrypted. */
    if (strncmp(spec, "rediss:", 7) == 0 ||
        strncmp(spec, "rediss-sentinel:", 16) == 0) {
        *why = SD_HIREDIS_TLS
                   ? "TLS to Redis is not built into this version of the "
                     "module yet; reach Redis through a TLS tunnel "
                     "(stunnel, spiped or ssh -L) with redis:, as the "
                     "README shows"
                   : "TLS to Redis needs hiredis 1.0 or later with "
                     "hiredis_ssl, and this build found none (Debian 12 "
                     "ships 0.14); reach Redis through a TLS tunnel "
                     "(stunnel, spiped or ssh -L) with redis:, as the "
                     "README shows";
        return APR_EINVAL;
    }

    if (strncmp(spec, "redis:", 6) == 0) {
        const char *s = spec + 6;
        if (split_hostport(s, host, sizeof(host), &port)) {
            cfg->host = apr_pstrdup(pool, host);
            cfg->port = port;
        }
        else if (*s && !strchr(s, ':') && !strchr(s, '[') &&
                 strlen(s) <= SD_REDIS_HOST_MAX) {
            cfg->host = apr_pstrdup(pool, s);
            cfg->port = 6379;
        }
        else {
            *why = "expected redis:HOST or redis:HOST:PORT (an IPv6 host "
                   "in brackets, a port from 1 to 65535)";
            return APR_EINVAL;
        }
        cfg->master_name = NULL;
        cfg->sentinels = NULL;
        return APR_SUCCESS;
    }
    if (strncmp(spec, "redis-sentinel:", 15) == 0) {
        const char *s = spec + 15, *at = strchr(s, '@');
        char *list, *tok, *last;
        apr_array_header_t *arr;
        if (!at || at == s) {
            *why = "expected redis-sentinel:MASTER@HOST:PORT[,HOST:PORT...]";
            return APR_EINVAL;
        }
        arr = apr_array_make(pool, 3, sizeof(const char *));
        list = apr_pstrdup(pool, at + 1);
        for (tok = apr_strtok(list, ",", &last); tok;
             tok = apr_strtok(NULL, ",", &last)) {
            if (!split_hostport(tok, host, sizeof(host), &port)) {
                *why = apr_psprintf(
                    pool, "\"%s\" is not a Sentinel's HOST:PORT", tok);
                return APR_EINVAL;
            }
            APR_ARRAY_PUSH(arr, const char *) = tok;
        }
        if (arr->nelts == 0) {
            *why = "redis-sentinel: names no Sentinel after the @";
            return APR_EINVAL;
        }
        cfg->master_name = apr_pstrmemdup(pool, s, (apr_size_t)(at - s));
        cfg->sentinels = arr;
        return APR_SUCCESS;
    }
    *why = "a Redis store is redis:HOST[:PORT] or "
           "redis-sentinel:MASTER@HOST:PORT[,HOST:PORT...]";
    return APR_EINVAL;
}

apr_status_t sd_redis_config_check(const sd_redis_config_t *cfg,
                                   const char **why)
{
    if (cfg->master_name) {
        int i;
        char host[SD_REDIS_HOST_MAX + 1];
        int port;
        if (!*cfg->master_name || strpbrk(cfg->master_name, " \r\n")) {
            *why = "the Sentinel master name must be one word";
            return APR_EINVAL;
        }
        if (!cfg->sentinels || cfg->sentinels->nelts == 0) {
            *why = "Sentinel needs at least one Sentinel HOST:PORT";
            return APR_EINVAL;
        }
        for (i = 0; i < cfg->sentinels->nelts; i++) {
            if (!split_hostport(APR_ARRAY_IDX(cfg->sentinels, i, const char *),
                                host, sizeof(host), &port)) {
                *why = "each Sentinel must be HOST:PORT";
                return APR_EINVAL;
            }
        }
    }
    else {
        if (!cfg->host || !*cfg->host ||
            strlen(cfg->host) > SD_REDIS_HOST_MAX) {
            *why = "the Redis host must be a name or address";
            return APR_EINVAL;
        }
        if (cfg->port < 1 || cfg->port > 65535) {
            *why = "the Redis port must be between 1 and 65535";
            return APR_EINVAL;
        }
    }
    if (!cfg->prefix || strlen(cfg->prefix) > SD_REDIS_PREFIX_MAX) {
        *why = "the key prefix must be at most 64 characters";
        return APR_EINVAL;
    }
    if (cfg->user && !cfg->password) {
        *why = "a Redis user needs a password";
        return APR_EINVAL;
    }
    if (cfg->db < 0) {
        *why = "the Redis database must be 0 or more";
        return APR_EINVAL;
    }
    if (cfg->connect_timeout <= 0 || cfg->command_timeout <= 0) {
        *why = "Redis timeouts must be more than 0";
        return APR_EINVAL;
    }
    if (cfg->max_data < 1 || cfg->max_data > 16 * 1024 * 1024) {
        *why = "the largest session must be between 1 byte and 16M";
        return APR_EINVAL;
    }
    if (cfg->pool_size < 1 || cfg->pool_size > 1024) {
        *why = "the connection pool must hold 1 to 1024 connections";
        return APR_EINVAL;
    }
    if (cfg->breaker_backoff_ms < 1 || cfg->breaker_backoff_ms > 60000) {
        *why = "the breaker back-off must be 1 ms to 60 s";
        return APR_EINVAL;
    }
    if (cfg->wait_replicas < 0 ||
        (cfg->wait_replicas > 0 && cfg->wait_ms < 1)) {
        *why = "WAIT needs a number of replicas >= 0 and a time > 0";
        return APR_EINVAL;
    }
    if (cfg->cache_slots > 65536) {
        *why = "the record cache must have at most 65536 slots";
        return APR_EINVAL;
    }
    if (!cfg->secret) {
        *why = "the throttle secret (32 bytes) is missing";
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

static const char *dup_or_null(apr_pool_t *p, const char *s)
{
    return s ? apr_pstrdup(p, s) : NULL;
}

static apr_status_t redis_cleanup(void *data)
{
    sd_redis_t *rs = data;
    apr_uint32_t i;

    drop_idle(rs);
    for (i = 0; i < rs->cfg.cache_slots; i++)
        cache_clear(&rs->cache[i]);
    OPENSSL_cleanse(rs->secret, sizeof(rs->secret));
    return APR_SUCCESS;
}

apr_status_t sd_store_redis_open(apr_pool_t *pool, const sd_redis_config_t *cfg,
                                 sd_store_log_fn log, void *baton,
                                 sd_store_t **st)
{
    sd_redis_t *rs;
    const char *why;
    apr_status_t rv;
    int i;

    if (sd_redis_config_check(cfg, &why) != APR_SUCCESS)
        return APR_EINVAL;
    rs = apr_pcalloc(pool, sizeof(*rs));
    rs->base.ops = &redis_ops;
    rs->base.max_data = cfg->max_data;
    rs->base.retry_after = 1;
    rs->base.logs_outages = 1;
    rs->pool = pool;
    rs->cfg = *cfg;
    rs->cfg.host = dup_or_null(pool, cfg->host);
    rs->cfg.user = dup_or_null(pool, cfg->user);
    rs->cfg.password = dup_or_null(pool, cfg->password);
    rs->cfg.prefix = apr_pstrdup(pool, cfg->prefix);
    rs->cfg.master_name = dup_or_null(pool, cfg->master_name);
    rs->cfg.sentinel_user = dup_or_null(pool, cfg->sentinel_user);
    rs->cfg.sentinel_password = dup_or_null(pool, cfg->sentinel_password);
    if (cfg->master_name) {
        rs->cfg.sentinels =
            apr_array_make(pool, cfg->sentinels->nelts, sizeof(const char *));
        for (i = 0; i < cfg->sentinels->nelts; i++)
            APR_ARRAY_PUSH(rs->cfg.sentinels, const char *) = apr_pstrdup(
                pool, APR_ARRAY_IDX(cfg->sentinels, i, const char *));
        /* Made now: messages are written by request threads, which must
         * not allocate from this long-lived pool. */
        rs->sentinel_list = apr_array_pstrcat(pool, rs->cfg.sentinels, ',');
    }
    else {
        rs->cfg.sentinels = NULL;
        apr_cpystrn(rs->host, cfg->host, sizeof(rs->host));
        rs->port = cfg->port;
    }
    memcpy(rs->secret, cfg->secret, SD_REDIS_SECRET_LEN);
    rs->cfg.secret = NULL; /* ours is rs->secret, wiped with the pool */
    rs->log = log;
    rs->log_baton = baton;
    rs->pid = getpid();
    rs->idle = apr_pcalloc(pool, cfg->pool_size * sizeof(sd_rconn_t));
    if (cfg->cache_slots)
        rs->cache = apr_pcalloc(pool, cfg->cache_slots * sizeof(sd_rcache_t));
    for (i = 0; i < S_COUNT; i++) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        rs->script[i] = apr_pstrcat(pool, lua_common, script_body[i], NULL);
        rs->script_len[i] = strlen(rs->script[i]);
        if (!EVP_Digest(rs->script[i], rs->script_len[i], md, &mdlen,
                        EVP_sha1(), NULL) ||
            mdlen != 20)
            return APR_EGENERAL;
        hex(md, 20, rs->sha[i]);
    }
    rv = apr_thread_mutex_create(&rs->lock, APR_THREAD_MUTEX_DEFAULT, pool);
    if (rv != APR_SUCCESS)
        return rv;
    apr_pool_cleanup_register(pool, rs, redis_cleanup, apr_pool_cleanup_null);
    *st = &rs->base;
    return APR_SUCCESS;
}
