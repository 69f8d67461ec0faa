/*
 * Snapshot files of the session store, and the key that authenticates
 * them.
 *
 * Format (all integers big-endian):
 *
 *   "SDSNAP03"            8 bytes, magic and format version
 *   record * count:
 *     key                 16 bytes (what the store keys by)
 *     owner               16 bytes (whose session it is; see sd_store.h)
 *     created             i64
 *     last_access         i64
 *     idle, max_age       u32, u32
 *     len                 u32, then len bytes of record data
 *   count                 u64, number of records
 *   tag                   32 bytes: HMAC-SHA-256, under the snapshot key,
 *                         of every byte before it
 *
 * The count comes after the records so that the file is written, and its
 * tag computed, in one pass: it is only known at the end. The tag is
 * checked before any record is read, so a torn, damaged or altered file
 * loads nothing rather than half, and nobody without the key (root's, in
 * a 0600 file) can make a file that loads. Version 1 ("SDSNAP01") had the
 * count in the header and an unkeyed SHA-256: anyone able to write the
 * file could put an admin session in it. It is refused, not converted.
 * Version 2 ("SDSNAP02") is version 3 without the owner: it is still
 * loaded, and its sessions then belong to nobody (they cannot be listed
 * or ended with "log out everywhere", and end by their timeouts).
 *
 * Files are opened with O_NOFOLLOW and checked on the descriptor (fstat),
 * never by name first, so nothing can be swapped between check and use;
 * the temporary file of a save has a random name and is created with
 * O_EXCL, so a link planted at a guessed name catches nothing.
 */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_mmap.h>
#include <apr_portable.h>
#include <apr_strings.h>

#include "sd_sha256.h"
#include "sd_snapshot.h"

#define MAGIC "SDSNAP03"
#define MAGIC_V2 "SDSNAP02"
#define MAGIC_V1 "SDSNAP01"
#define MAGIC_LEN 8
#define COUNT_LEN 8
#define TAG_LEN SD_SHA256_LEN
#define KEY_LEN 16
#define OWNER_LEN SD_OWNER_LEN
/* A record's fixed part, after the key (and, in version 3, the owner). */
#define REC_TIMES (8 + 8 + 4 + 4 + 4)
#define MIN_LEN (MAGIC_LEN + COUNT_LEN + TAG_LEN)

static void put32(unsigned char *p, apr_uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put64(unsigned char *p, apr_uint64_t v)
{
    put32(p, (apr_uint32_t)(v >> 32));
    put32(p + 4, (apr_uint32_t)v);
}

static apr_uint32_t get32(const unsigned char *p)
{
    return ((apr_uint32_t)p[0] << 24) | ((apr_uint32_t)p[1] << 16) |
           ((apr_uint32_t)p[2] << 8) | p[3];
}

static apr_uint64_t get64(const unsigned char *p)
{
    return ((apr_uint64_t)get32(p) << 32) | get32(p + 4);
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

/* An OS error as an APR status, never APR_SUCCESS. */
static apr_status_t os_error(void)
{
    int e = errno;
    return e ? APR_FROM_OS_ERROR(e) : APR_EGENERAL;
}

/*
 * Check an open file the way both the snapshot and its key must be: a
 * regular file, owned by @a owner, with no permission bits for group or
 * others. Done on the descriptor, so the file checked is the file read.
 * *why gets the reason (from @a p) when it is refused.
 */
static apr_status_t check_fd(int fd, apr_uid_t owner, const char *what,
                             apr_pool_t *p, struct stat *sb, const char **why)
{
    if (fstat(fd, sb) != 0) {
        *why = apr_psprintf(p, "the %s cannot be examined", what);
        return os_error();
    }
    if (!S_ISREG(sb->st_mode)) {
        *why = apr_psprintf(p, "the %s is not a regular file", what);
        return APR_EINVAL;
    }
    if (sb->st_uid != owner) {
        *why = apr_psprintf(p,
                            "the %s belongs to uid %ld, not %ld: it may "
                            "have been planted by another user",
                            what, (long)sb->st_uid, (long)owner);
        return APR_EINVAL;
    }
    if ((sb->st_mode & 077) != 0) {
        *why = apr_psprintf(p,
                            "the %s has mode %04o: group and others must "
                            "have no access (0600 or stricter)",
                            what, (unsigned)(sb->st_mode & 07777));
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

/* Open @a path to read, without following a symbolic link, and without
 * blocking on a FIFO someone left there (fstat then refuses it). */
static apr_status_t open_read(const char *path, const char *what, apr_pool_t *p,
                              int *fd, const char **why)
{
    *fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (*fd >= 0) {
        return APR_SUCCESS;
    }
    if (errno == ENOENT) {
        return APR_ENOENT;
    }
    if (errno == ELOOP) {
        *why = apr_psprintf(p,
                            "the %s is a symbolic link, which is not "
                            "followed",
                            what);
        return APR_EINVAL;
    }
    *why = apr_psprintf(p, "the %s cannot be opened", what);
    return os_error();
}

/* Make the directory entry of a rename or a new file durable. Best
 * effort: some file systems refuse fsync on a directory, and the data
 * itself is already synced. */
static void sync_dir(const char *path, apr_pool_t *p)
{
    const char *slash = strrchr(path, '/');
    const char *dir = slash == NULL ? "."
                      : slash == path
                          ? "/"
                          : apr_pstrndup(p, path, (apr_size_t)(slash - path));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Write all @a len bytes at @a buf to @a fd. */
static apr_status_t write_all(int fd, const unsigned char *buf, apr_size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return os_error();
        }
        buf += n;
        len -= (apr_size_t)n;
    }
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* The key                                                             */
/* ------------------------------------------------------------------ */

static apr_status_t read_key(int fd, apr_pool_t *p,
                             unsigned char key[SD_SNAPSHOT_KEY_LEN],
                             const char **why)
{
    struct stat sb;
    apr_size_t got = 0;
    apr_status_t rv;

    rv = check_fd(fd, (apr_uid_t)geteuid(), "snapshot key file", p, &sb, why);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (sb.st_size != SD_SNAPSHOT_KEY_LEN) {
        *why = apr_psprintf(p,
                            "the snapshot key file has %ld bytes, not %d "
                            "(remove it to make a new key; the current "
                            "snapshot is then lost)",
                            (long)sb.st_size, SD_SNAPSHOT_KEY_LEN);
        return APR_EINVAL;
    }
    while (got < SD_SNAPSHOT_KEY_LEN) {
        ssize_t n = read(fd, key + got, SD_SNAPSHOT_KEY_LEN - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            sd_wipe(key, SD_SNAPSHOT_KEY_LEN);
            *why = "the snapshot key file cannot be read";
            return n < 0 ? os_error() : APR_EOF;
        }
        got += (apr_size_t)n;
    }
    return APR_SUCCESS;
}

apr_status_t sd_snapshot_key(const char *path, apr_pool_t *p,
                             unsigned char key[SD_SNAPSHOT_KEY_LEN],
                             const char **why)
{
    apr_status_t rv;
    int fd, attempt;

    *why = NULL;
    /* Two rounds: if another process creates the file between our failed
     * open and our O_EXCL, read what it made. */
    for (attempt = 0; attempt < 2; attempt++) {
        rv = open_read(path, "snapshot key file", p, &fd, why);
        if (rv == APR_SUCCESS) {
            rv = read_key(fd, p, key, why);
            close(fd);
            return rv;
        }
        if (!APR_STATUS_IS_ENOENT(rv)) {
            return rv;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
        if (fd < 0) {
            if (errno == EEXIST) {
                continue;
            }
            *why = "the snapshot key file cannot be created";
            return os_error();
        }
        /* The umask may only have taken bits away; be exact anyway. */
        rv = fchmod(fd, 0600) == 0 ? APR_SUCCESS : os_error();
        if (rv == APR_SUCCESS) {
            rv = apr_generate_random_bytes(key, SD_SNAPSHOT_KEY_LEN);
        }
        if (rv == APR_SUCCESS) {
            rv = write_all(fd, key, SD_SNAPSHOT_KEY_LEN);
        }
        if (rv == APR_SUCCESS && fsync(fd) != 0) {
            rv = os_error();
        }
        if (close(fd) != 0 && rv == APR_SUCCESS) {
            rv = os_error();
        }
        if (rv != APR_SUCCESS) {
            /* The file is ours (O_EXCL): leave no short key behind. */
            unlink(path);
            sd_wipe(key, SD_SNAPSHOT_KEY_LEN);
            *why = "the snapshot key file cannot be written";
            return rv;
        }
        sync_dir(path, p);
        return APR_SUCCESS;
    }
    *why = "the snapshot key file keeps appearing and vanishing";
    return APR_EGENERAL;
}

/* ------------------------------------------------------------------ */
/* Saving                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    apr_file_t *f;
    sd_hmac_sha256_ctx_t mac;
    apr_uint64_t count;
    apr_status_t rv;
} writer_t;

/* Write and authenticate @a len bytes; after an error, do nothing. */
static void emit(writer_t *w, const void *data, apr_size_t len)
{
    if (w->rv != APR_SUCCESS) {
        return;
    }
    w->rv = sd_hmac_sha256_update(&w->mac, data, len);
    if (w->rv == APR_SUCCESS) {
        w->rv = apr_file_write_full(w->f, data, len, NULL);
    }
}

static int save_one(void *baton, const sd_key_t *key,
                    const sd_owner_t *owner, const void *data,
                    apr_size_t len, apr_int64_t created,
                    apr_int64_t last_access, apr_uint32_t idle,
                    apr_uint32_t max_age)
{
    writer_t *w = baton;
    unsigned char h[KEY_LEN + OWNER_LEN + REC_TIMES], *t = h + KEY_LEN;

    memcpy(h, key->b, KEY_LEN);
    if (owner)
        memcpy(t, owner->b, OWNER_LEN);
    else
        memset(t, 0, OWNER_LEN);
    t += OWNER_LEN;
    put64(t, (apr_uint64_t)created);
    put64(t + 8, (apr_uint64_t)last_access);
    put32(t + 16, idle);
    put32(t + 20, max_age);
    put32(t + 24, (apr_uint32_t)len);
    emit(w, h, sizeof(h));
    emit(w, data, len);
    w->count++;
    return w->rv != APR_SUCCESS;
}

/* Create the temporary file beside @a path: a random name (a planted link
 * or file cannot be at a name nobody can guess), O_EXCL (and so never
 * through a link even if one were), mode 0600. */
static apr_status_t create_temp(const char *path, apr_pool_t *pool,
                                const char **tmp, int *fd)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[8];
    char name[2 * sizeof(r) + 1];
    apr_status_t rv;
    int attempt;
    apr_size_t i;

    for (attempt = 0; attempt < 4; attempt++) {
        if ((rv = apr_generate_random_bytes(r, sizeof(r))) != APR_SUCCESS) {
            return rv;
        }
        for (i = 0; i < sizeof(r); i++) {
            name[2 * i] = hex[r[i] >> 4];
            name[2 * i + 1] = hex[r[i] & 15];
        }
        name[2 * sizeof(r)] = '\0';
        *tmp = apr_pstrcat(pool, path, ".tmp.", name, NULL);
        *fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   0600);
        if (*fd >= 0) {
            if (fchmod(*fd, 0600) != 0) {
                rv = os_error();
                close(*fd);
                unlink(*tmp);
                return rv;
            }
            return APR_SUCCESS;
        }
        if (errno != EEXIST) {
            return os_error();
        }
    }
    return APR_EEXIST;
}

apr_status_t sd_snapshot_save(sd_shm_t *st, const char *path,
                              const unsigned char key[SD_SNAPSHOT_KEY_LEN],
                              apr_pool_t *pool, apr_uint64_t *count)
{
    unsigned char tail[COUNT_LEN + TAG_LEN];
    const char *tmp = NULL;
    apr_status_t rv;
    writer_t w;
    int fd = -1;

    memset(&w, 0, sizeof(w));
    if (count) {
        *count = 0;
    }
    if ((rv = create_temp(path, pool, &tmp, &fd)) != APR_SUCCESS) {
        return rv;
    }
    w.rv =
        apr_os_file_put(&w.f, &fd, APR_FOPEN_WRITE | APR_FOPEN_BUFFERED, pool);
    if (w.rv != APR_SUCCESS) {
        close(fd);
        unlink(tmp);
        return w.rv;
    }
    w.rv = sd_hmac_sha256_init(&w.mac, key, SD_SNAPSHOT_KEY_LEN);
    if (w.rv == APR_SUCCESS) {
        emit(&w, MAGIC, MAGIC_LEN);
        if (w.rv == APR_SUCCESS) {
            sd_shm_foreach_owned(st, save_one, &w);
        }
        put64(tail, w.count);
        emit(&w, tail, COUNT_LEN);
        if (w.rv == APR_SUCCESS) {
            w.rv = sd_hmac_sha256_final(&w.mac, tail + COUNT_LEN);
        }
        else {
            sd_hmac_sha256_final(&w.mac, NULL);
        }
    }
    if (w.rv == APR_SUCCESS) {
        w.rv = apr_file_write_full(w.f, tail + COUNT_LEN, TAG_LEN, NULL);
    }
    if (w.rv == APR_SUCCESS) {
        w.rv = apr_file_flush(w.f);
    }
    if (w.rv == APR_SUCCESS) {
        w.rv = apr_file_sync(w.f);
    }
    /* Closing flushes what is buffered, and can fail (a full disk). */
    rv = apr_file_close(w.f);
    if (w.rv == APR_SUCCESS) {
        w.rv = rv;
    }
    /* rename() replaces a link at the target itself, never what it
     * points to. */
    if (w.rv == APR_SUCCESS && rename(tmp, path) != 0) {
        w.rv = os_error();
    }
    if (w.rv != APR_SUCCESS) {
        unlink(tmp);
        return w.rv;
    }
    sync_dir(path, pool);
    if (count) {
        *count = w.count;
    }
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

apr_status_t sd_snapshot_parse(sd_shm_t *st,
                               const unsigned char key[SD_SNAPSHOT_KEY_LEN],
                               const unsigned char *buf, apr_size_t len,
                               apr_int64_t now, apr_uint64_t *loaded,
                               const char **why)
{
    const unsigned char *p, *end;
    unsigned char tag[TAG_LEN];
    sd_shm_params_t params;
    apr_uint64_t count, i;
    sd_shm_stats_t before, after;
    apr_size_t own, hdr;

    *loaded = 0;
    if (len < MIN_LEN) {
        *why = "the file is too short to be a snapshot";
        return APR_EINVAL;
    }
    if (memcmp(buf, "SDSNAP", 6) != 0) {
        *why = "the file is not a session snapshot";
        return APR_EINVAL;
    }
    if (memcmp(buf, MAGIC_V1, MAGIC_LEN) == 0) {
        *why = "the snapshot is of format version 1, from before snapshots "
               "were authenticated: it is not loaded (the next stop writes "
               "version 2)";
        return APR_EINVAL;
    }
    if (memcmp(buf, MAGIC, MAGIC_LEN) == 0)
        own = OWNER_LEN;
    else if (memcmp(buf, MAGIC_V2, MAGIC_LEN) == 0)
        own = 0;
    else {
        *why = "the snapshot is of another format version";
        return APR_EINVAL;
    }
    hdr = KEY_LEN + own + REC_TIMES;
    /* Records end where the count begins; the tag covers everything. */
    end = buf + len - TAG_LEN - COUNT_LEN;
    sd_hmac_sha256(key, SD_SNAPSHOT_KEY_LEN, buf, len - TAG_LEN, tag);
    if (!sd_ct_equal(tag, buf + len - TAG_LEN, TAG_LEN)) {
        *why = "the snapshot's authentication tag does not match (the "
               "file is truncated, damaged or altered, or was written "
               "under another key)";
        return APR_EINVAL;
    }
    count = get64(end);
    sd_shm_params(st, &params);

    /* First pass: structure only, so a bad file loads nothing. */
    p = buf + MAGIC_LEN;
    for (i = 0; i < count; i++) {
        apr_uint32_t rlen;
        if ((apr_size_t)(end - p) < hdr) {
            *why = "the snapshot's records run past its end";
            return APR_EINVAL;
        }
        rlen = get32(p + hdr - 4);
        if (rlen > (apr_size_t)(end - p) - hdr) {
            *why = "a snapshot record runs past the end";
            return APR_EINVAL;
        }
        p += hdr + rlen;
    }
    if (p != end) {
        *why = "the snapshot has bytes after its last record";
        return APR_EINVAL;
    }

    /* Second pass: restore. A store smaller than the one that wrote the
     * file keeps what fits (under "evict", the most recently used, which
     * come last); *loaded is what is in the store afterwards. */
    sd_shm_stats(st, &before);
    p = buf + MAGIC_LEN;
    for (i = 0; i < count; i++) {
        sd_key_t k;
        sd_owner_t o;
        const unsigned char *t = p + KEY_LEN + own;
        apr_uint32_t rlen = get32(p + hdr - 4);
        static const sd_owner_t nobody;
        memset(&k, 0, sizeof(k));
        memcpy(k.b, p, KEY_LEN);
        if (own)
            memcpy(o.b, p + KEY_LEN, OWNER_LEN);
        if (rlen <= params.max_data)
            sd_shm_restore_owned(
                st, &k,
                own && memcmp(o.b, nobody.b, OWNER_LEN) != 0 ? &o : NULL,
                p + hdr, rlen, (apr_int64_t)get64(t),
                (apr_int64_t)get64(t + 8), get32(t + 16), get32(t + 20), now);
        p += hdr + rlen;
    }
    sd_shm_stats(st, &after);
    *loaded = after.sessions > before.sessions
                  ? after.sessions - before.sessions
                  : 0;
    return APR_SUCCESS;
}

apr_status_t sd_snapshot_load(sd_shm_t *st, const char *path,
                              const unsigned char key[SD_SNAPSHOT_KEY_LEN],
                              apr_uid_t owner, apr_pool_t *pool,
                              apr_int64_t now, apr_uint64_t *loaded,
                              const char **why)
{
    struct stat sb;
    apr_file_t *f = NULL;
    apr_mmap_t *mm;
    apr_status_t rv;
    int fd;

    *loaded = 0;
    *why = NULL;
    rv = open_read(path, "snapshot", pool, &fd, why);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = check_fd(fd, owner, "snapshot", pool, &sb, why);
    if (rv == APR_SUCCESS && sb.st_size < MIN_LEN) {
        *why = "the file is too short to be a snapshot";
        rv = APR_EINVAL;
    }
    if (rv == APR_SUCCESS && (apr_uint64_t)sb.st_size > APR_SIZE_MAX) {
        *why = "the snapshot is too large to map";
        rv = APR_EINVAL;
    }
    if (rv == APR_SUCCESS) {
        rv = apr_os_file_put(&f, &fd, APR_FOPEN_READ, pool);
    }
    if (rv != APR_SUCCESS) {
        if (*why == NULL) {
            *why = "the snapshot cannot be opened";
        }
        close(fd);
        return rv;
    }
    /* Mapped, not read: a snapshot of millions of sessions costs no copy,
     * and pages are only touched once. */
    rv =
        apr_mmap_create(&mm, f, 0, (apr_size_t)sb.st_size, APR_MMAP_READ, pool);
    if (rv == APR_SUCCESS) {
        rv = sd_snapshot_parse(st, key, mm->mm, mm->size, now, loaded, why);
        apr_mmap_delete(mm);
    }
    else {
        *why = "the snapshot cannot be mapped";
    }
    apr_file_close(f);
    return rv;
}
