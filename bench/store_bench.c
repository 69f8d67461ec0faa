/*
 * Benchmark of the session store alone (src/sd_shm.c), no httpd.
 *
 * For each store size (10 thousand and 1 million live sessions) it fills a
 * freshly formatted store in anonymous shared memory with realistic
 * records (sd_record_encode of a session with a user name, the role "guest"
 * and two short notes, about 200 bytes), each session of its own owner (as
 * many users as sessions: the most owners the owner chains can meet), then
 * measures, with 1 and with 2 processes (fork) working on the same
 * segment:
 *
 *   lookup          sd_shm_get of a random live session
 *   lookup+update   sd_shm_get, then sd_shm_replace with its version
 *                   (retried from the get on APR_EAGAIN)
 *   insert+delete   sd_shm_create_owned of a new key for a new owner with
 *                   a cap of 5, then sd_shm_remove_owned
 *   list own        sd_shm_list_owner of a random live session's owner,
 *                   into a pool cleared each time (what the dashboard's
 *                   "your sessions" does)
 *
 * and prints operations per second (the sum over the processes), the
 * memory the store takes per session, the time sd_shm_format takes for
 * a million-session store, and whether a store of capacity N really holds
 * N random sessions.
 *
 * Figures only: nothing here passes or fails.
 *
 * usage: store_bench [seconds per measurement] [sizes...]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "sd_id.h"
#include "sd_record.h"
#include "sd_sha256.h"
#include "sd_shm.h"
#include "bench_record.h"

#define SPARE 65536 /* fresh keys for insert+delete */
#define IDLE 1800
#define MAX_AGE 28800
#define MAX_DATA (16 * 1024)
#define PER_USER 5 /* SessionDemoMaxSessionsPerUser of the inserts */

static apr_pool_t *pool;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static apr_uint64_t xorshift(apr_uint64_t *s)
{
    apr_uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void die(const char *what, apr_status_t rv)
{
    char buf[256];
    fprintf(stderr, "store_bench: %s: %s\n", what,
            apr_strerror(rv, buf, sizeof(buf)));
    exit(1);
}

/* One realistic record: what a logged-in demo user with two notes has. */
static apr_size_t make_record(apr_pool_t *p, unsigned n, char **out)
{
    return bench_record(p, n, out);
}

/* Keys as the module makes them: SHA-256 of a fresh random ID. Each with
 * an owner of its own, a digest like the glue's sd_owner(), whose stripe
 * bits are then set to the key's: the glue draws IDs until the key fits
 * the owner (64 draws on average), which at a million sessions would be
 * the bench's slowest part and tells nothing about the store. */
static void make_keys(const sd_shm_t *st, sd_key_t *k, sd_owner_t *o,
                      apr_size_t n, const char *tag)
{
    apr_size_t i;
    char id[SD_ID_LEN + 1];
    for (i = 0; i < n; i++) {
        unsigned char d[SD_SHA256_LEN];
        char u[64];
        int l = snprintf(u, sizeof(u), "%s-user-%lu", tag, (unsigned long)i);
        apr_status_t rv = sd_id_new(id);
        if (rv != APR_SUCCESS)
            die("sd_id_new", rv);
        sd_id_key(id, SD_ID_LEN, &k[i]);
        sd_sha256(u, (apr_size_t)l, d);
        memcpy(o[i].b, d, sizeof(o[i].b));
        o[i].b[3] = (unsigned char)((o[i].b[3] & ~63) | (k[i].b[3] & 63));
        if (!sd_shm_key_fits(st, &k[i], &o[i]))
            die("sd_shm_key_fits", APR_EGENERAL);
    }
}

typedef struct {
    volatile int ready;
    volatile int go;
    struct {
        double ops;
        double secs;
        double retries;
        double listed;
    } res[8];
} shared_ctl_t;

enum { OP_GET, OP_UPDATE, OP_INSDEL, OP_LIST, NOPS };

typedef struct {
    sd_shm_t *st;
    const sd_key_t *live;
    const sd_owner_t *owners;
    apr_size_t nlive;
    const sd_key_t *spare;
    const sd_owner_t *spare_owners;
    apr_size_t nspare;
    const char *rec;
    apr_size_t reclen;
    apr_int64_t now;
} ctx_t;

static void worker(const ctx_t *c, int op, int me, int nprocs, double secs,
                   shared_ctl_t *ctl)
{
    apr_uint64_t rng = 0x9E3779B97F4A7C15ULL * (apr_uint64_t)(me + 1) + 12345;
    apr_uint64_t ops = 0, retries = 0, listed = 0;
    sd_store_limits_t lim;
    apr_pool_t *lp;
    apr_size_t spare_lo = c->nspare / nprocs * me;
    apr_size_t spare_n = c->nspare / nprocs, j = 0;
    char buf[1024];
    double t0, t1;
    int k;

    lim.idle = IDLE;
    lim.max_age = MAX_AGE;
    lim.per_user = PER_USER;
    apr_pool_create(&lp, NULL);
    __atomic_add_fetch(&ctl->ready, 1, __ATOMIC_SEQ_CST);
    while (!ctl->go)
        ;
    t0 = now_s();
    for (;;) {
        for (k = 0; k < 256; k++) {
            apr_size_t at = xorshift(&rng) % c->nlive;
            const sd_key_t *key = &c->live[at];
            apr_array_header_t *list;
            apr_size_t len;
            sd_shm_meta_t meta;
            apr_status_t rv;
            switch (op) {
            case OP_GET:
                rv = sd_shm_get(c->st, key, c->now, buf, sizeof(buf), &len,
                                  &meta);
                if (rv != APR_SUCCESS)
                    die("sd_shm_get", rv);
                break;
            case OP_UPDATE:
                for (;;) {
                    rv = sd_shm_get(c->st, key, c->now, buf, sizeof(buf),
                                      &len, &meta);
                    if (rv != APR_SUCCESS)
                        die("sd_shm_get", rv);
                    buf[len - 1] ^= 1; /* a visit counted, say */
                    rv = sd_shm_replace(c->st, key, meta.version, buf, len,
                                          c->now);
                    if (rv != APR_EAGAIN)
                        break;
                    retries++;
                }
                if (rv != APR_SUCCESS)
                    die("sd_shm_replace", rv);
                break;
            case OP_INSDEL:
                key = &c->spare[spare_lo + j];
                rv = sd_shm_create_owned(c->st, key,
                                         &c->spare_owners[spare_lo + j],
                                         c->rec, c->reclen, c->now, &lim,
                                         NULL);
                if (rv != APR_SUCCESS)
                    die("sd_shm_create_owned", rv);
                rv = sd_shm_remove_owned(c->st, key,
                                         &c->spare_owners[spare_lo + j]);
                if (rv != APR_SUCCESS)
                    die("sd_shm_remove_owned", rv);
                if (++j == spare_n)
                    j = 0;
                break;
            default:
                apr_pool_clear(lp);
                rv = sd_shm_list_owner(c->st, &c->owners[at], c->now, lp,
                                       &list);
                if (rv != APR_SUCCESS || list->nelts != 1)
                    die("sd_shm_list_owner", rv);
                listed += (apr_uint64_t)list->nelts;
                break;
            }
        }
        ops += 256;
        t1 = now_s();
        if (t1 - t0 >= secs)
            break;
    }
    ctl->res[me].ops = (double)ops;
    ctl->res[me].secs = t1 - t0;
    ctl->res[me].retries = (double)retries;
    ctl->res[me].listed = (double)listed;
    apr_pool_destroy(lp);
}

/* Operations per second of @a op with @a nprocs processes, summed. */
static double run(const ctx_t *c, int op, int nprocs, double secs,
                  shared_ctl_t *ctl, double *retries)
{
    pid_t pids[8];
    double total = 0;
    int i;

    memset(ctl, 0, sizeof(*ctl));
    for (i = 0; i < nprocs; i++) {
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("fork");
            exit(1);
        }
        if (pids[i] == 0) {
            worker(c, op, i, nprocs, secs, ctl);
            _exit(0);
        }
    }
    while (__atomic_load_n(&ctl->ready, __ATOMIC_SEQ_CST) < nprocs)
        usleep(1000);
    ctl->go = 1;
    for (i = 0; i < nprocs; i++) {
        int status;
        waitpid(pids[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "store_bench: a worker failed\n");
            exit(1);
        }
    }
    *retries = 0;
    for (i = 0; i < nprocs; i++) {
        total += ctl->res[i].ops / ctl->res[i].secs;
        *retries += ctl->res[i].retries;
    }
    return total;
}

static void *shared_map(apr_size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

typedef struct {
    apr_uint64_t n;
    double fill_rate;
    double ops[2][NOPS];
    double retries[2];
    sd_shm_stats_t stats;
    double rec_avg;
    apr_size_t size;
} result_t;

static void bench_size(apr_uint64_t n, double secs, shared_ctl_t *ctl,
                       result_t *r)
{
    sd_shm_params_t p;
    sd_shm_t *st;
    apr_pool_t *sp, *tp;
    sd_key_t *live, *spare;
    sd_owner_t *owners, *spare_owners;
    ctx_t c;
    void *base;
    apr_size_t size, i;
    apr_uint64_t data_bytes = 0;
    double t0;
    char *rec;
    apr_status_t rv;
    int np, op;

    apr_pool_create(&sp, pool);
    apr_pool_create(&tp, sp);
    /* Headroom, as a site would configure: the store decides "full" per
     * stripe, so capacity N does not quite hold N random sessions (see
     * capacity_check); small stores need relatively more. */
    p.capacity = n + (n < 100000 ? n / 4 : n / 10);
    p.memory = p.capacity * 256;
    p.max_data = MAX_DATA;
    p.when_full = SD_SHM_FULL_REFUSE;
    size = sd_shm_size(&p);
    base = shared_map(size);
    if ((rv = sd_shm_format(sp, base, size, &p, &st)) != APR_SUCCESS)
        die("sd_shm_format", rv);

    live = malloc(sizeof(*live) * n);
    spare = malloc(sizeof(*spare) * SPARE);
    owners = malloc(sizeof(*owners) * n);
    spare_owners = malloc(sizeof(*spare_owners) * SPARE);
    if (!live || !spare || !owners || !spare_owners)
        die("malloc", APR_ENOMEM);
    make_keys(st, live, owners, n, "live");
    make_keys(st, spare, spare_owners, SPARE, "spare");

    c.now = (apr_int64_t)time(NULL);
    t0 = now_s();
    for (i = 0; i < n; i++) {
        apr_size_t len;
        apr_pool_clear(tp);
        len = make_record(tp, (unsigned)i, &rec);
        data_bytes += len;
        {
            sd_store_limits_t lim;
            lim.idle = IDLE;
            lim.max_age = MAX_AGE;
            lim.per_user = PER_USER;
            rv = sd_shm_create_owned(st, &live[i], &owners[i], rec, len,
                                     c.now, &lim, NULL);
        }
        if (rv != APR_SUCCESS)
            die("filling the store", rv);
    }
    r->fill_rate = n / (now_s() - t0);
    sd_shm_stats(st, &r->stats);
    r->rec_avg = (double)data_bytes / n;
    r->size = size;
    r->n = n;

    c.st = st;
    c.live = live;
    c.owners = owners;
    c.nlive = n;
    c.spare = spare;
    c.spare_owners = spare_owners;
    c.nspare = SPARE;
    c.reclen = make_record(sp, 0, &rec);
    c.rec = rec;
    for (np = 1; np <= 2; np++) {
        for (op = 0; op < NOPS; op++) {
            double retries;
            r->ops[np - 1][op] = run(&c, op, np, secs, ctl, &retries);
            if (op == OP_UPDATE)
                r->retries[np - 1] = retries;
        }
    }
    munmap(base, size);
    free(live);
    free(spare);
    free(owners);
    free(spare_owners);
    apr_pool_destroy(sp);
}

/* Does a store of capacity @a n (and memory for n records) hold n random
 * sessions? Returns the number that went in before the first refusal,
 * and the number that went in in all. */
static void capacity_check(apr_uint64_t n, apr_uint64_t *first_refusal,
                           apr_uint64_t *in)
{
    sd_shm_params_t p;
    sd_shm_t *st;
    apr_pool_t *sp;
    sd_key_t *k;
    void *base;
    apr_size_t size, i;
    apr_int64_t now = (apr_int64_t)time(NULL);
    char *rec;
    apr_size_t len;

    apr_pool_create(&sp, pool);
    len = make_record(sp, 123456, &rec);
    p.capacity = n;
    p.memory = n * ((len + 63) / 64 * 64);
    p.max_data = 4096;
    p.when_full = SD_SHM_FULL_REFUSE;
    size = sd_shm_size(&p);
    base = shared_map(size);
    if (sd_shm_format(sp, base, size, &p, &st) != APR_SUCCESS)
        die("sd_shm_format", APR_EGENERAL);
    k = malloc(sizeof(*k) * n);
    /* Keys are uniform either way; SHA-256 of a counter is quicker than
     * the random source and distributes the same. */
    for (i = 0; i < n; i++) {
        char s[32];
        int l = snprintf(s, sizeof(s), "cap-%lu", (unsigned long)i);
        sd_sha256(s, (apr_size_t)l, k[i].b);
    }
    *first_refusal = 0;
    *in = 0;
    for (i = 0; i < n; i++) {
        if (sd_shm_create(st, &k[i], rec, len, now, IDLE, MAX_AGE) ==
            APR_SUCCESS)
            ++*in;
        else if (!*first_refusal)
            *first_refusal = i + 1;
    }
    free(k);
    munmap(base, size);
    apr_pool_destroy(sp);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    apr_uint64_t sizes[8] = {10000, 1000000};
    int nsizes = 2, i;
    shared_ctl_t *ctl;
    result_t res[8];
    sd_shm_params_t p;
    sd_shm_t *st;
    double fmt_best = 1e9;

    if (argc > 2) {
        nsizes = 0;
        for (i = 2; i < argc && nsizes < 8; i++)
            sizes[nsizes++] = strtoull(argv[i], NULL, 10);
    }
    if (secs <= 0)
        secs = 1.0;
    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&pool, NULL);
    ctl = shared_map(sizeof(*ctl));

    /* sd_shm_format of a million-session store (as the bench httpd is
     * configured: 1,100,000 entries and 512M of data), best of 5 on fresh
     * mappings: what a start of httpd pays before any session exists. */
    p.capacity = 1000000;
    p.memory = 512 * 1024 * 1024;
    p.max_data = MAX_DATA;
    p.when_full = SD_SHM_FULL_EVICT;
    for (i = 0; i < 5; i++) {
        apr_size_t size = sd_shm_size(&p);
        void *base = shared_map(size);
        double t0 = now_s(), t;
        if (sd_shm_format(pool, base, size, &p, &st) != APR_SUCCESS)
            die("sd_shm_format", APR_EGENERAL);
        t = now_s() - t0;
        if (t < fmt_best)
            fmt_best = t;
        munmap(base, size);
    }

    for (i = 0; i < nsizes; i++)
        bench_size(sizes[i], secs, ctl, &res[i]);

    printf("Store alone (src/sd_shm.c, no httpd): operations per second, "
           "%.1f s each,\nrandom sessions, records from sd_record_encode "
           "(user, role, 2 notes). Two\nprocesses share the CPUs with "
           "nothing else; the sum over the processes is shown.\n\n",
           secs);
    printf("%10s %6s %12s %16s %16s %12s %8s\n", "sessions", "procs",
           "lookup/s", "lookup+update/s", "insert+delete/s", "list own/s",
           "EAGAIN");
    for (i = 0; i < nsizes; i++) {
        int np;
        for (np = 1; np <= 2; np++)
            printf("%10lu %6d %12.0f %16.0f %16.0f %12.0f %8.0f\n",
                   (unsigned long)res[i].n, np, res[i].ops[np - 1][OP_GET],
                   res[i].ops[np - 1][OP_UPDATE],
                   res[i].ops[np - 1][OP_INSDEL], res[i].ops[np - 1][OP_LIST],
                   res[i].retries[np - 1]);
    }
    printf("\n(insert+delete counts one owned create (cap %d) and one "
           "remove as one operation;\nlist own lists the one session of a "
           "random owner into a pool; EAGAIN = replaces\nretried because "
           "the other process changed the session in between.)\n",
           PER_USER);
    printf("First fill (one process, fresh memory, sd_session_make + "
           "sd_record_encode\nper record included):");
    for (i = 0; i < nsizes; i++)
        printf(" %lu sessions %.0f inserts/s%s", (unsigned long)res[i].n,
               res[i].fill_rate, i + 1 < nsizes ? ";" : "\n");

    printf("\nShared memory per session (capacity = sessions + 25%% "
           "(10k) or 10%% (1M),\nmemory = capacity x 256 B):\n\n");
    printf("%9s %9s %8s %8s %8s %8s %8s %8s %8s %8s\n", "sessions",
           "capacity", "segment", "seg/cap", "idx/cap", "record", "chunks",
           "idx/live", "rounding", "overhead");
    for (i = 0; i < nsizes; i++) {
        const sd_shm_stats_t *s = &res[i].stats;
        double tables = (double)(s->segment_size - s->memory_total);
        double chunks = (double)s->memory_used / s->sessions;
        double idx_live = tables / s->sessions;
        double rounding = chunks - res[i].rec_avg;
        printf("%9lu %9lu %6.1fMB %8.0f %8.1f %8.1f %8.1f %8.1f %8.1f "
               "%8.1f\n",
               (unsigned long)s->sessions, (unsigned long)s->capacity,
               res[i].size / 1048576.0, (double)res[i].size / s->capacity,
               tables / s->capacity, res[i].rec_avg, chunks, idx_live,
               rounding, idx_live + rounding);
    }
    printf("\n  segment   sd_shm_size() of those parameters\n"
           "  seg/cap   segment / capacity: bytes per session slot, data "
           "memory included\n"
           "  idx/cap   (segment - data memory) / capacity: index bytes per "
           "slot (header,\n"
           "            stripes, key and owner buckets, 80-byte entries, "
           "4-byte chunk links)\n"
           "  record    average record length from sd_record_encode\n"
           "  chunks    data memory used per live session (64-byte chunks)\n"
           "  idx/live  (segment - data memory) / live sessions\n"
           "  rounding  chunks - record: what chunk rounding wastes\n"
           "  overhead  idx/live + rounding: store bytes per live session "
           "beyond its own\n"
           "            data (goal: at most 128)\n");
    {
        sd_shm_params_t d;
        d.capacity = 10000;
        d.memory = 64 * 1024 * 1024;
        d.max_data = MAX_DATA;
        d.when_full = SD_SHM_FULL_EVICT;
        printf("  For comparison, the default configuration (capacity "
               "10000, 64M): segment\n  %.1f MB, of which %.1f MB index "
               "(%.0f bytes per slot; the chunk links\n  are sized by "
               "the memory, 4 bytes per 64 bytes of it).\n",
               sd_shm_size(&d) / 1048576.0,
               (sd_shm_size(&d) - (double)d.memory) / 1048576.0,
               (sd_shm_size(&d) - (double)d.memory) / d.capacity);
    }

    printf("\nsd_shm_format of a 1,000,000-session store (512M of data, "
           "%.0f MB segment): %.3f ms\n",
           sd_shm_size(&p) / 1048576.0, fmt_best * 1000);

    printf("\nDoes capacity N hold N random sessions (memory for N records, "
           "SessionDemoWhenFull refuse)?\n");
    for (i = 0; i < nsizes; i++) {
        apr_uint64_t first, in;
        capacity_check(sizes[i], &first, &in);
        printf("  N = %lu: %lu stored, %lu refused; first refusal at "
               "session %lu (%.1f%% full)\n",
               (unsigned long)sizes[i], (unsigned long)in,
               (unsigned long)(sizes[i] - in), (unsigned long)first,
               first ? 100.0 * (double)first / (double)sizes[i] : 100.0);
    }
    return 0;
}
