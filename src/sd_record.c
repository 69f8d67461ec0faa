/*
 * The session record codec.
 *
 * Records live in shared memory, in Redis, and in snapshot files, so
 * they must be position-independent bytes that another httpd build,
 * possibly on another host, reads the same way. Every integer is
 * therefore big-endian and of fixed width, and there are no pointers or
 * padding. The layout:
 *
 *     +-------+---------+-----------+------+-----------+------+
 *     | magic | version | user len  | user | role len  | role |
 *     |  u8   |   u8    |   u32     | ...  |   u32     | ...  |
 *     +-------+---------+-----------+------+-----------+------+
 *     | csrf (SD_CSRF_LEN bytes) | cred_stamp u64 | ua_hash u64 |
 *     +--------------------------+----------------+-------------+
 *     | device len u32 | device | visits u64 | note count u32 | ...
 *     +----------------+--------+------------+----------------+
 *     ... { note len u32, note } ... |
 *
 * Version 1 records (written by earlier builds, which a restart keeps in
 * the store) have no device field; they are still read, with an empty
 * device, and written back as version 2.
 *
 * Decoding trusts nothing: a snapshot file can be edited and a Redis
 * backend shared with other software, so every length is checked against
 * what is left of the buffer before it is used, and anything the encoder
 * would not have produced (trailing bytes, NULs inside strings, over-long
 * fields, a non-base64url token) makes the whole record invalid.
 */
#include <limits.h>
#include <string.h>

#include <apr_strings.h>

#include "sd_record.h"
#include "sd_sha256.h"

#define SD_RECORD_MAGIC 0xD5 /* "SD", and not a printable character */

/* --------------------------------------------------------------------- */
/* Encoding                                                               */
/* --------------------------------------------------------------------- */

static unsigned char *put_u32(unsigned char *p, apr_uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

static unsigned char *put_u64(unsigned char *p, apr_uint64_t v)
{
    p = put_u32(p, (apr_uint32_t)(v >> 32));
    return put_u32(p, (apr_uint32_t)v);
}

static unsigned char *put_str(unsigned char *p, const char *s, apr_size_t len)
{
    p = put_u32(p, (apr_uint32_t)len);
    memcpy(p, s, len);
    return p + len;
}

sd_session_t *sd_session_make(apr_pool_t *pool, const char *user,
                              const char *role)
{
    sd_session_t *s = apr_pcalloc(pool, sizeof(*s));

    /* A session without an unguessable CSRF token must not exist; the
     * caller treats NULL as a failed login (503/500), never a weaker
     * session. */
    if (sd_id_new(s->csrf) != APR_SUCCESS) {
        return NULL;
    }
    s->user = apr_pstrdup(pool, user ? user : "");
    s->role = apr_pstrdup(pool, role ? role : "");
    s->notes = apr_array_make(pool, 4, sizeof(const char *));
    return s;
}

apr_size_t sd_record_encode(apr_pool_t *pool, const sd_session_t *s, char **buf)
{
    const char *user = s->user ? s->user : "";
    const char *role = s->role ? s->role : "";
    const char *device = s->device ? s->device : "";
    apr_size_t ulen = strlen(user), rlen = strlen(role);
    apr_size_t dlen = strlen(device);
    apr_size_t csrflen = strnlen(s->csrf, SD_CSRF_LEN);
    int nnotes = s->notes ? s->notes->nelts : 0;
    apr_size_t total;
    unsigned char *p, *start;
    int i;

    /* Size first, so the record is one exact allocation. Fields that are
     * too long are still encoded as they are; sd_record_decode() refuses
     * them, and the glue checks limits before it stores anything. */
    total = 2 + 4 + ulen + 4 + rlen + SD_CSRF_LEN + 3 * 8 + 4 + dlen + 4;
    for (i = 0; i < nnotes; i++) {
        const char *n = APR_ARRAY_IDX(s->notes, i, const char *);
        total += 4 + (n ? strlen(n) : 0);
    }

    start = p = apr_palloc(pool, total);
    *p++ = SD_RECORD_MAGIC;
    *p++ = SD_RECORD_VERSION;
    p = put_str(p, user, ulen);
    p = put_str(p, role, rlen);
    /* The token field is fixed-width; a short token is zero-filled, which
     * decoding refuses rather than accepting a guessable token. */
    memcpy(p, s->csrf, csrflen);
    memset(p + csrflen, 0, SD_CSRF_LEN - csrflen);
    p += SD_CSRF_LEN;
    p = put_u64(p, s->cred_stamp);
    p = put_u64(p, s->ua_hash);
    p = put_str(p, device, dlen);
    p = put_u64(p, s->visits);
    p = put_u32(p, (apr_uint32_t)nnotes);
    for (i = 0; i < nnotes; i++) {
        const char *n = APR_ARRAY_IDX(s->notes, i, const char *);
        if (n == NULL) {
            n = "";
        }
        p = put_str(p, n, strlen(n));
    }

    *buf = (char *)start;
    return total;
}

/* --------------------------------------------------------------------- */
/* Decoding                                                               */
/* --------------------------------------------------------------------- */

/* A read cursor: every get_* checks the remaining length first and turns
 * the cursor invalid for good on a short read, so the caller can check
 * once at the end of a group of reads. */
typedef struct {
    const unsigned char *p; /* next byte */
    apr_size_t left;        /* bytes after p */
    int bad;                /* a read failed */
} cursor_t;

static const unsigned char *take(cursor_t *c, apr_size_t n)
{
    const unsigned char *r;

    if (c->bad || c->left < n) {
        c->bad = 1;
        return NULL;
    }
    r = c->p;
    c->p += n;
    c->left -= n;
    return r;
}

static apr_uint32_t get_u32(cursor_t *c)
{
    const unsigned char *p = take(c, 4);

    if (p == NULL) {
        return 0;
    }
    return ((apr_uint32_t)p[0] << 24) | ((apr_uint32_t)p[1] << 16) |
           ((apr_uint32_t)p[2] << 8) | (apr_uint32_t)p[3];
}

static apr_uint64_t get_u64(cursor_t *c)
{
    apr_uint64_t hi = get_u32(c);

    return (hi << 32) | get_u32(c);
}

/* A length-prefixed string of at most @a max bytes and no NUL, copied into
 * the pool with a terminator. NULs are refused because the rest of the
 * module handles these as C strings: "admin\0x" must not become "admin". */
static const char *get_str(cursor_t *c, apr_pool_t *pool, apr_size_t max)
{
    apr_uint32_t len = get_u32(c);
    const unsigned char *p;

    if (c->bad || len > max) {
        c->bad = 1;
        return NULL;
    }
    p = take(c, len);
    if (p == NULL || memchr(p, '\0', len) != NULL) {
        c->bad = 1;
        return NULL;
    }
    return apr_pstrmemdup(pool, (const char *)p, len);
}

static int is_b64url(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

apr_status_t sd_record_decode(apr_pool_t *pool, const char *buf, apr_size_t len,
                              sd_session_t **out)
{
    cursor_t c;
    sd_session_t *s;
    const unsigned char *p;
    apr_uint32_t nnotes, i;
    int version;

    *out = NULL;
    if (buf == NULL) {
        return APR_EINVAL;
    }
    c.p = (const unsigned char *)buf;
    c.left = len;
    c.bad = 0;

    p = take(&c, 2);
    if (p == NULL || p[0] != SD_RECORD_MAGIC ||
        (p[1] != SD_RECORD_VERSION && p[1] != 1)) {
        return APR_EINVAL;
    }
    version = p[1];

    s = apr_pcalloc(pool, sizeof(*s));
    s->user = get_str(&c, pool, SD_USER_MAX);
    s->role = get_str(&c, pool, SD_ROLE_MAX);
    p = take(&c, SD_CSRF_LEN);
    if (c.bad) {
        return APR_EINVAL;
    }
    for (i = 0; i < SD_CSRF_LEN; i++) {
        if (!is_b64url(p[i])) {
            return APR_EINVAL;
        }
    }
    memcpy(s->csrf, p, SD_CSRF_LEN);
    s->csrf[SD_CSRF_LEN] = '\0';
    s->cred_stamp = get_u64(&c);
    s->ua_hash = get_u64(&c);
    s->device = version >= 2 ? get_str(&c, pool, SD_DEVICE_MAX) : "";
    s->visits = get_u64(&c);
    nnotes = get_u32(&c);
    if (c.bad) {
        return APR_EINVAL;
    }

    /* Each note takes at least its 4-byte length, so a count the rest of
     * the buffer cannot hold is refused before it sizes an allocation. */
    if (nnotes > c.left / 4 || nnotes > INT_MAX) {
        return APR_EINVAL;
    }
    s->notes =
        apr_array_make(pool, nnotes ? (int)nnotes : 1, sizeof(const char *));
    for (i = 0; i < nnotes; i++) {
        const char *n = get_str(&c, pool, SD_NOTE_MAX);
        if (n == NULL) {
            return APR_EINVAL;
        }
        APR_ARRAY_PUSH(s->notes, const char *) = n;
    }

    /* Trailing bytes mean the record is not what we wrote. */
    if (c.left != 0) {
        return APR_EINVAL;
    }
    *out = s;
    return APR_SUCCESS;
}

apr_uint64_t sd_hash64(const char *s, apr_size_t len)
{
    unsigned char d[SD_SHA256_LEN];
    apr_uint64_t v = 0;
    int i;

    sd_sha256(s, len, d);
    for (i = 0; i < 8; i++) {
        v = (v << 8) | d[i];
    }
    return v;
}

/* Where the user field of a record starts and how long it is, reading no
 * further than @a len: 0 when the record does not start like one. */
static int peek_user(const char *buf, apr_size_t len, const char **user,
                     apr_size_t *ulen)
{
    const unsigned char *p = (const unsigned char *)buf;
    apr_uint32_t n;

    if (!buf || len < 6 || p[0] != SD_RECORD_MAGIC ||
        (p[1] != SD_RECORD_VERSION && p[1] != 1))
        return 0;
    n = ((apr_uint32_t)p[2] << 24) | ((apr_uint32_t)p[3] << 16) |
        ((apr_uint32_t)p[4] << 8) | p[5];
    if (n > SD_USER_MAX || len - 6 < n)
        return 0;
    *user = buf + 6;
    *ulen = n;
    return 1;
}

int sd_record_is_user(const char *buf, apr_size_t len, const char *user)
{
    const char *u;
    apr_size_t ulen;
    return peek_user(buf, len, &u, &ulen) && ulen == strlen(user) &&
           memcmp(u, user, ulen) == 0;
}

const char *sd_record_user(apr_pool_t *pool, const char *buf, apr_size_t len)
{
    const char *u;
    apr_size_t ulen;
    if (!peek_user(buf, len, &u, &ulen) || memchr(u, '\0', ulen))
        return NULL;
    return apr_pstrmemdup(pool, u, ulen);
}
