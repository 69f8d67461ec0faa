/*
 * Make the logged-in sessions the httpd benchmark drives: N guests'
 * sessions, as if N guests had logged in (SessionDemoGuestPassword
 * password), without paying a bcrypt per login over HTTP (cost 12 when
 * there is no user file: about a quarter of a second of CPU per login).
 *
 * Each session is what session_start() in src/sdemo_session.c makes at a
 * guest login: a random ID from sd_id_new(), stored under sd_id_key() of
 * it; a record from sd_session_make() + sd_record_encode() for user
 * "bench<i>", role "guest", cred_stamp = sd_hash64("guest:password") (what
 * sdemo_check_credentials() gives a guest), UA hash of no User-Agent (wrk
 * sends none), and two short notes (bench_record.h); the owner
 * sd_owner("guests@127.0.0.1", user) (sdemo_realm() for ServerName
 * 127.0.0.1, no user file), the key one that fits that owner
 * (sd_store_key_fits(); see fitting_id()); the default timeouts and
 * per-user cap.
 *
 *   shm:   the sessions go into a store laid out as httpd's and saved
 *          with sd_snapshot_save(); httpd loads it at start through
 *          SessionDemoSnapshot.
 *   redis: the sessions are created in a running Redis by the Redis
 *          store's own create (src/sd_store_redis.c, the script a login
 *          runs), so their hashes, TTLs and indexes are exactly a login's.
 *
 * The IDs go to a text file, one a line, for the cookies the load
 * generator sends.
 *
 * usage: mkstore N CAPACITY MEMORY_BYTES SNAPSHOT IDS
 *        mkstore redis HOST PORT N IDS
 *        mkstore key ID      (print the hex Redis names session ID by)
 *        mkstore port        (print a free TCP port on 127.0.0.1)
 *
 * CAPACITY and MEMORY should be what the httpd is configured with, so that
 * every session that goes in here also fits there.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "sd_id.h"
#include "sd_record.h"
#include "sd_sha256.h"
#include "sd_snapshot.h"
#include "sd_shm.h"
#include "sd_store.h"
#include "sd_store_redis.h"
#include "bench_record.h"

#define IDLE 1800     /* SessionDemoIdleTimeout default */
#define MAX_AGE 28800 /* SessionDemoMaxAge default */
#define PER_USER 10   /* SessionDemoMaxSessionsPerUser default */

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        perror("mkstore port");
        return 1;
    }
    printf("%d\n", ntohs(a.sin_port));
    close(fd);
    return 0;
}

static void die(const char *what, apr_status_t rv)
{
    char buf[256];
    fprintf(stderr, "mkstore: %s: %s\n", what,
            apr_strerror(rv, buf, sizeof(buf)));
    exit(1);
}

/* Session i's owner: guest "bench<i>" under the bench httpd's realm. */
static void owner_of(apr_pool_t *p, unsigned long i, sd_owner_t *owner)
{
    sd_owner(BENCH_REALM, apr_psprintf(p, "bench%lu", i), owner);
}

static void new_id(char *id, sd_key_t *key)
{
    if (sd_id_new(id) != APR_SUCCESS)
        die("sd_id_new", APR_EGENERAL);
    sd_id_key(id, SD_ID_LEN, key);
}

/*
 * IDs for owners in the shared-memory store, where a key must fit its
 * owner's stripe (sd_shm_key_fits(): the low 6 bits of the first
 * big-endian word of key and owner agree). session_start() draws IDs until
 * one fits, 64 draws on average: 64 million SHA-256s and random reads for
 * a million sessions, minutes of CPU. Here every draw is kept for the
 * owner it fits: IDs that fit another stripe wait in that stripe's bin
 * for the next owner that needs one. Each ID is still drawn at random and
 * only paired by its stripe, so an owner gets a uniformly random ID among
 * those that fit it, as with the module's draws. sd_shm_key_fits() checks
 * every pair, so a change of the rule stops this tool rather than making
 * sessions the store would refuse.
 */
#define BIN_CAP 4096
typedef struct {
    char id[SD_ID_LEN + 1];
    sd_key_t key;
} spare_id_t;

static spare_id_t *spare[64];
static unsigned spare_n[64];

static void fitting_id(const sd_shm_t *table, const sd_owner_t *owner,
                       char *id, sd_key_t *key)
{
    unsigned want = owner->b[3] & 63, got;

    if (!spare[0]) {
        for (got = 0; got < 64; got++)
            if (!(spare[got] = malloc(BIN_CAP * sizeof(spare_id_t))))
                die("malloc", APR_ENOMEM);
    }
    if (spare_n[want]) {
        spare_id_t *e = &spare[want][--spare_n[want]];
        memcpy(id, e->id, sizeof(e->id));
        *key = e->key;
    }
    else {
        for (;;) {
            new_id(id, key);
            got = key->b[3] & 63;
            if (got == want)
                break;
            if (spare_n[got] < BIN_CAP) {
                spare_id_t *e = &spare[got][spare_n[got]++];
                memcpy(e->id, id, sizeof(e->id));
                e->key = *key;
            }
        }
    }
    if (!sd_shm_key_fits(table, key, owner)) {
        fprintf(stderr, "mkstore: sd_shm_key_fits() no longer takes the "
                        "low 6 bits of the first word: update mkstore.c\n");
        exit(1);
    }
}

static int make_shm(int argc, char **argv, apr_pool_t *pool, apr_pool_t *tp)
{
    sd_shm_params_t p;
    sd_shm_t *st;
    sd_store_limits_t lim = {IDLE, MAX_AGE, PER_USER};
    apr_uint64_t n, i, saved = 0;
    apr_int64_t now;
    apr_size_t size;
    apr_status_t rv;
    FILE *ids;
    void *base;
    char buf[256];

    if (argc != 6) {
        fprintf(stderr, "usage: mkstore N CAPACITY MEMORY_BYTES SNAPSHOT IDS\n");
        return 2;
    }
    n = strtoull(argv[1], NULL, 10);
    memset(&p, 0, sizeof(p));
    p.capacity = strtoull(argv[2], NULL, 10);
    p.memory = strtoull(argv[3], NULL, 10);
    p.max_data = 16 * 1024; /* SessionDemoMaxDataSize default */
    p.when_full = SD_SHM_FULL_REFUSE;
    size = sd_shm_size(&p);
    base = mmap(NULL, size, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        perror("mkstore: mmap");
        return 1;
    }
    if ((rv = sd_shm_format(pool, base, size, &p, &st)) != APR_SUCCESS)
        die("sd_shm_format", rv);
    ids = fopen(argv[5], "w");
    if (!ids) {
        perror(argv[5]);
        return 1;
    }
    now = (apr_int64_t)time(NULL);
    for (i = 0; i < n;) {
        char id[SD_ID_LEN + 1], *rec;
        sd_key_t key;
        sd_owner_t owner;
        apr_size_t len;

        apr_pool_clear(tp);
        owner_of(tp, (unsigned long)i, &owner);
        fitting_id(st, &owner, id, &key);
        len = bench_record(tp, (unsigned long)i, &rec);
        rv = sd_shm_create_owned(st, &key, &owner, rec, len, now, &lim, NULL);
        if (rv == APR_EEXIST)
            continue;
        if (rv != APR_SUCCESS) {
            fprintf(stderr,
                    "mkstore: session %lu does not fit (%s): raise the "
                    "capacity or the memory\n",
                    (unsigned long)i, apr_strerror(rv, buf, sizeof(buf)));
            return 1;
        }
        fprintf(ids, "%s\n", id);
        i++;
    }
    if (fclose(ids) != 0) {
        perror(argv[5]);
        return 1;
    }
    {
        /* Under the key the module will look for: SNAPSHOT.key, made
         * here when there is none (run as the user httpd starts as). */
        unsigned char skey[SD_SNAPSHOT_KEY_LEN];
        const char *why = NULL;
        rv = sd_snapshot_key(apr_pstrcat(pool, argv[4], ".key", NULL), pool,
                             skey, &why);
        if (rv != APR_SUCCESS) {
            fprintf(stderr, "mkstore: the snapshot key %s.key: %s\n",
                    argv[4], why ? why : apr_strerror(rv, buf, sizeof(buf)));
            return 1;
        }
        rv = sd_snapshot_save(st, argv[4], skey, pool, &saved);
        sd_wipe(skey, sizeof(skey));
    }
    if (rv != APR_SUCCESS || saved != n) {
        fprintf(stderr, "mkstore: sd_snapshot_save %s: %s (%lu saved)\n",
                argv[4], apr_strerror(rv, buf, sizeof(buf)),
                (unsigned long)saved);
        return 1;
    }
    return 0;
}

static int make_redis(int argc, char **argv, apr_pool_t *pool,
                      apr_pool_t *tp)
{
    sd_redis_config_t cfg;
    sd_store_t *st;
    sd_store_limits_t lim = {IDLE, MAX_AGE, PER_USER};
    unsigned char secret[SD_REDIS_SECRET_LEN];
    apr_uint64_t n, i;
    apr_status_t rv;
    const char *why;
    FILE *ids;

    if (argc != 6) {
        fprintf(stderr, "usage: mkstore redis HOST PORT N IDS\n");
        return 2;
    }
    sd_redis_config_init(&cfg);
    cfg.host = argv[2];
    cfg.port = atoi(argv[3]);
    /* Only the throttle keys use the secret; none is made here. */
    if (apr_generate_random_bytes(secret, sizeof(secret)) != APR_SUCCESS)
        die("apr_generate_random_bytes", APR_EGENERAL);
    cfg.secret = secret;
    if (sd_redis_config_check(&cfg, &why) != APR_SUCCESS) {
        fprintf(stderr, "mkstore: Redis configuration: %s\n", why);
        return 1;
    }
    if ((rv = sd_store_redis_open(pool, &cfg, NULL, NULL, &st)) !=
        APR_SUCCESS)
        die("sd_store_redis_open", rv);
    n = strtoull(argv[4], NULL, 10);
    ids = fopen(argv[5], "w");
    if (!ids) {
        perror(argv[5]);
        return 1;
    }
    for (i = 0; i < n;) {
        char id[SD_ID_LEN + 1], *rec;
        sd_key_t key;
        sd_owner_t owner;
        apr_size_t len;

        apr_pool_clear(tp);
        owner_of(tp, (unsigned long)i, &owner);
        do
            new_id(id, &key);
        while (!sd_store_key_fits(st, &key, &owner)); /* Redis: any fits */
        len = bench_record(tp, (unsigned long)i, &rec);
        rv = sd_store_create(st, &key, &owner, rec, len,
                             (apr_int64_t)time(NULL), &lim, NULL);
        if (rv == APR_EEXIST)
            continue;
        if (rv != APR_SUCCESS)
            die(apr_psprintf(tp, "creating session %lu in Redis at %s:%d",
                             (unsigned long)i, cfg.host, cfg.port),
                rv);
        fprintf(ids, "%s\n", id);
        i++;
    }
    if (fclose(ids) != 0) {
        perror(argv[5]);
        return 1;
    }
    return 0;
}

/* The hex a session's Redis hash is named by: P "s:" + this. */
static int print_key(const char *id)
{
    sd_key_t key;
    int i;

    if (strlen(id) != SD_ID_LEN) {
        fprintf(stderr, "mkstore key: not a session ID\n");
        return 2;
    }
    sd_id_key(id, SD_ID_LEN, &key);
    for (i = 0; i < 16; i++)
        printf("%02x", key.b[i]);
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    apr_pool_t *pool, *tp;

    if (argc == 2 && strcmp(argv[1], "port") == 0)
        return free_port();
    if (argc == 3 && strcmp(argv[1], "key") == 0)
        return print_key(argv[2]);
    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&pool, NULL);
    apr_pool_create(&tp, pool);
    if (argc >= 2 && strcmp(argv[1], "redis") == 0)
        return make_redis(argc, argv, pool, tp);
    if (argc == 6)
        return make_shm(argc, argv, pool, tp);
    fprintf(stderr, "usage: mkstore N CAPACITY MEMORY_BYTES SNAPSHOT IDS\n"
                    "       mkstore redis HOST PORT N IDS\n"
                    "       mkstore key ID\n"
                    "       mkstore port\n");
    return 2;
}
