/*
 * Make a session snapshot for the httpd benchmark: N logged-in sessions,
 * as if N guests had logged in (SessionDemoGuestPassword password), without
 * paying a bcrypt per login over HTTP.
 *
 * Each session is what sdemo_session_start() in mod_session_demo.c makes:
 * a random ID from sd_id_new(), stored under sd_id_key() of it, a record
 * from sd_session_make() + sd_record_encode() for user "bench<i>", role
 * "guest" (the fixed role of guests), cred_stamp = sd_hash64("guest:password") (cred_stamp() of what
 * sdemo_check_credentials() answers for a guest), and two short notes.
 * The store is written with sd_snapshot_save(), under the key in
 * SNAPSHOT.key (made by sd_snapshot_key() when absent, where the module
 * looks for it), so httpd loads it at start through SessionDemoSnapshot;
 * run mkstore as the user httpd starts as, since both files must be that
 * user's. The IDs go to a text file, one a line, for the cookies the load
 * generator sends.
 *
 * usage: mkstore N CAPACITY MEMORY_BYTES SNAPSHOT IDS
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
#include "bench_record.h"

#define IDLE 1800     /* SessionDemoIdleTimeout default */
#define MAX_AGE 28800 /* SessionDemoMaxAge default */

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

int main(int argc, char **argv)
{
    sd_shm_params_t p;
    sd_shm_t *st;
    apr_pool_t *pool, *tp;
    apr_uint64_t n, i, saved = 0;
    apr_int64_t now;
    apr_size_t size;
    apr_status_t rv;
    FILE *ids;
    void *base;
    char buf[256];

    if (argc == 2 && strcmp(argv[1], "port") == 0)
        return free_port();
    if (argc != 6) {
        fprintf(stderr,
                "usage: mkstore N CAPACITY MEMORY_BYTES SNAPSHOT IDS\n"
                "       mkstore port\n");
        return 2;
    }
    n = strtoull(argv[1], NULL, 10);
    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&pool, NULL);
    apr_pool_create(&tp, pool);

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
    if ((rv = sd_shm_format(pool, base, size, &p, &st)) != APR_SUCCESS) {
        fprintf(stderr, "mkstore: sd_shm_format: %s\n",
                apr_strerror(rv, buf, sizeof(buf)));
        return 1;
    }
    ids = fopen(argv[5], "w");
    if (!ids) {
        perror(argv[5]);
        return 1;
    }
    now = (apr_int64_t)time(NULL);
    for (i = 0; i < n;) {
        char id[SD_ID_LEN + 1], *rec;
        sd_key_t key;
        apr_size_t len;

        apr_pool_clear(tp);
        if ((rv = sd_id_new(id)) != APR_SUCCESS) {
            fprintf(stderr, "mkstore: sd_id_new failed\n");
            return 1;
        }
        sd_id_key(id, SD_ID_LEN, &key);
        len = bench_record(tp, (unsigned long)i, &rec);
        rv = sd_shm_create(st, &key, rec, len, now, IDLE, MAX_AGE);
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
        unsigned char key[SD_SNAPSHOT_KEY_LEN];
        const char *why = NULL;
        const char *kp = apr_pstrcat(pool, argv[4], ".key", NULL);
        rv = sd_snapshot_key(kp, pool, key, &why);
        if (rv != APR_SUCCESS) {
            fprintf(stderr, "mkstore: %s: %s\n", kp,
                    why ? why : apr_strerror(rv, buf, sizeof(buf)));
            return 1;
        }
        rv = sd_snapshot_save(st, argv[4], key, pool, &saved);
        sd_wipe(key, sizeof(key));
    }
    if (rv != APR_SUCCESS || saved != n) {
        fprintf(stderr, "mkstore: sd_snapshot_save %s: %s (%lu saved)\n",
                argv[4], apr_strerror(rv, buf, sizeof(buf)),
                (unsigned long)saved);
        return 1;
    }
    return 0;
}
