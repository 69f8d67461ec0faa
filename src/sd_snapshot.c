/*
 * Snapshot files of the session store.
 *
 * Format (all integers big-endian):
 *
 *   "SDSNAP01"            8 bytes, magic and format version
 *   count                 u64, number of records
 *   record * count:
 *     key                 16 bytes (what the store keys by)
 *     created             i64
 *     last_access         i64
 *     idle, max_age       u32, u32
 *     len                 u32, then len bytes of record data
 *   digest                32 bytes: SHA-256(magic || count || R), where R
 *                         is SHA-256 of all the records; the records are
 *                         hashed as they are written, and the count is
 *                         only known (and patched in) at the end
 *
 * The digest is checked before any record is restored, so a torn or
 * damaged file loads nothing rather than half.
 */

#include <string.h>
#include <unistd.h>

#include <apr_file_io.h>
#include <apr_mmap.h>
#include <apr_strings.h>

#include "sd_sha256.h"
#include "sd_snapshot.h"

#define MAGIC "SDSNAP01"
#define MAGIC_LEN 8
#define KEY_LEN 16
#define REC_HDR (KEY_LEN + 8 + 8 + 4 + 4 + 4)

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

typedef struct {
    apr_file_t *f;
    sd_sha256_ctx_t sha;
    apr_uint64_t count;
    apr_status_t rv;
} writer_t;

static void emit(writer_t *w, const void *data, apr_size_t len)
{
    if (w->rv != APR_SUCCESS)
        return;
    sd_sha256_update(&w->sha, data, len);
    w->rv = apr_file_write_full(w->f, data, len, NULL);
}

static int save_one(void *baton, const sd_key_t *key, const void *data,
                    apr_size_t len, apr_int64_t created,
                    apr_int64_t last_access, apr_uint32_t idle,
                    apr_uint32_t max_age)
{
    writer_t *w = baton;
    unsigned char h[REC_HDR];

    memcpy(h, key->b, KEY_LEN);
    put64(h + KEY_LEN, (apr_uint64_t)created);
    put64(h + KEY_LEN + 8, (apr_uint64_t)last_access);
    put32(h + KEY_LEN + 16, idle);
    put32(h + KEY_LEN + 20, max_age);
    put32(h + KEY_LEN + 24, (apr_uint32_t)len);
    emit(w, h, sizeof(h));
    emit(w, data, len);
    w->count++;
    return w->rv != APR_SUCCESS;
}

apr_status_t sd_snapshot_save(sd_shm_t *st, const char *path,
                              apr_pool_t *pool, apr_uint64_t *count)
{
    const char *tmp = apr_psprintf(pool, "%s.tmp.%ld", path, (long)getpid());
    unsigned char head[MAGIC_LEN + 8], digest[SD_SHA256_LEN];
    apr_off_t at = MAGIC_LEN;
    writer_t w;

    memset(&w, 0, sizeof(w));
    w.rv = apr_file_open(&w.f, tmp,
                         APR_FOPEN_WRITE | APR_FOPEN_CREATE |
                             APR_FOPEN_TRUNCATE | APR_FOPEN_BUFFERED,
                         APR_FPROT_UREAD | APR_FPROT_UWRITE, pool);
    if (w.rv != APR_SUCCESS)
        return w.rv;
    /* The count is not known until the end: write a placeholder, then
     * patch it and hash the final header. */
    memcpy(head, MAGIC, MAGIC_LEN);
    put64(head + MAGIC_LEN, 0);
    w.rv = apr_file_write_full(w.f, head, sizeof(head), NULL);
    sd_sha256_init(&w.sha);
    if (w.rv == APR_SUCCESS)
        sd_shm_foreach(st, save_one, &w);
    if (w.rv == APR_SUCCESS) {
        /* Digest = SHA-256(header with count || records). */
        sd_sha256_ctx_t full;
        unsigned char rec_digest[SD_SHA256_LEN];
        put64(head + MAGIC_LEN, w.count);
        sd_sha256_init(&full);
        sd_sha256_update(&full, head, sizeof(head));
        /* Records were hashed into w.sha as they went; chain the two so
         * the file need not be read back. */
        sd_sha256_final(&w.sha, rec_digest);
        sd_sha256_update(&full, rec_digest, sizeof(rec_digest));
        sd_sha256_final(&full, digest);
        w.rv = apr_file_write_full(w.f, digest, sizeof(digest), NULL);
    }
    if (w.rv == APR_SUCCESS)
        w.rv = apr_file_seek(w.f, APR_SET, &at);
    if (w.rv == APR_SUCCESS)
        w.rv = apr_file_write_full(w.f, head + MAGIC_LEN, 8, NULL);
    if (w.rv == APR_SUCCESS)
        w.rv = apr_file_flush(w.f);
    if (w.rv == APR_SUCCESS)
        w.rv = apr_file_sync(w.f);
    apr_file_close(w.f);
    if (w.rv == APR_SUCCESS)
        w.rv = apr_file_rename(tmp, path, pool);
    if (w.rv != APR_SUCCESS)
        apr_file_remove(tmp, pool);
    if (count)
        *count = w.count;
    return w.rv;
}

apr_status_t sd_snapshot_parse(sd_shm_t *st, const unsigned char *buf,
                               apr_size_t len, apr_int64_t now,
                               apr_uint64_t *loaded, const char **why)
{
    const unsigned char *p, *end;
    unsigned char digest[SD_SHA256_LEN], rec_digest[SD_SHA256_LEN];
    sd_sha256_ctx_t c;
    sd_shm_params_t params;
    apr_uint64_t count, i;
    sd_shm_stats_t before, after;

    *loaded = 0;
    if (len < MAGIC_LEN + 8 + SD_SHA256_LEN) {
        *why = "the file is too short to be a snapshot";
        return APR_EINVAL;
    }
    if (memcmp(buf, "SDSNAP", 6) != 0) {
        *why = "the file is not a session snapshot";
        return APR_EINVAL;
    }
    if (memcmp(buf, MAGIC, MAGIC_LEN) != 0) {
        *why = "the snapshot is of another format version";
        return APR_EINVAL;
    }
    end = buf + len - SD_SHA256_LEN;
    sd_sha256(buf + MAGIC_LEN + 8, (apr_size_t)(end - buf - MAGIC_LEN - 8),
              rec_digest);
    sd_sha256_init(&c);
    sd_sha256_update(&c, buf, MAGIC_LEN + 8);
    sd_sha256_update(&c, rec_digest, sizeof(rec_digest));
    sd_sha256_final(&c, digest);
    if (!sd_ct_equal(digest, end, SD_SHA256_LEN)) {
        *why = "the snapshot's checksum does not match (truncated or "
               "damaged)";
        return APR_EINVAL;
    }
    count = get64(buf + MAGIC_LEN);
    sd_shm_params(st, &params);

    /* First pass: structure only, so a bad file loads nothing. */
    p = buf + MAGIC_LEN + 8;
    for (i = 0; i < count; i++) {
        apr_uint32_t rlen;
        if ((apr_size_t)(end - p) < REC_HDR) {
            *why = "the snapshot's records run past its end";
            return APR_EINVAL;
        }
        rlen = get32(p + KEY_LEN + 24);
        if (rlen > (apr_size_t)(end - p) - REC_HDR) {
            *why = "a snapshot record runs past the end";
            return APR_EINVAL;
        }
        p += REC_HDR + rlen;
    }
    if (p != end) {
        *why = "the snapshot has bytes after its last record";
        return APR_EINVAL;
    }

    /* Second pass: restore. A store smaller than the one that wrote the
     * file keeps what fits (under "evict", the most recently used, which
     * come last); *loaded is what is in the store afterwards. */
    sd_shm_stats(st, &before);
    p = buf + MAGIC_LEN + 8;
    for (i = 0; i < count; i++) {
        sd_key_t key;
        apr_uint32_t rlen = get32(p + KEY_LEN + 24);
        memset(&key, 0, sizeof(key));
        memcpy(key.b, p, KEY_LEN);
        if (rlen <= params.max_data)
            sd_shm_restore(st, &key, p + REC_HDR, rlen,
                             (apr_int64_t)get64(p + KEY_LEN),
                             (apr_int64_t)get64(p + KEY_LEN + 8),
                             get32(p + KEY_LEN + 16), get32(p + KEY_LEN + 20),
                             now);
        p += REC_HDR + rlen;
    }
    sd_shm_stats(st, &after);
    *loaded = after.sessions > before.sessions
                  ? after.sessions - before.sessions
                  : 0;
    return APR_SUCCESS;
}

apr_status_t sd_snapshot_load(sd_shm_t *st, const char *path,
                              apr_pool_t *pool, apr_int64_t now,
                              apr_uint64_t *loaded, const char **why)
{
    apr_finfo_t fi;
    apr_file_t *f;
    apr_mmap_t *mm;
    apr_status_t rv;

    *loaded = 0;
    *why = NULL;
    rv = apr_stat(&fi, path, APR_FINFO_SIZE | APR_FINFO_TYPE, pool);
    if (APR_STATUS_IS_ENOENT(rv))
        return APR_ENOENT;
    if (rv != APR_SUCCESS) {
        *why = "the snapshot cannot be read";
        return rv;
    }
    if (fi.filetype != APR_REG) {
        *why = "the snapshot is not a regular file";
        return APR_EINVAL;
    }
    if (fi.size < MAGIC_LEN + 8 + SD_SHA256_LEN) {
        *why = "the file is too short to be a snapshot";
        return APR_EINVAL;
    }
    /* Mapped, not read: a snapshot of millions of sessions costs no copy,
     * and pages are only touched once. */
    rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, pool);
    if (rv == APR_SUCCESS) {
        rv = apr_mmap_create(&mm, f, 0, (apr_size_t)fi.size, APR_MMAP_READ,
                             pool);
        if (rv == APR_SUCCESS) {
            rv = sd_snapshot_parse(st, mm->mm, mm->size, now, loaded, why);
            apr_mmap_delete(mm);
        }
        else {
            *why = "the snapshot cannot be mapped";
        }
        apr_file_close(f);
    }
    else {
        *why = "the snapshot cannot be opened";
    }
    return rv;
}
