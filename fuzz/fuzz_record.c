/*
 * sd_record_decode / sd_record_encode / sd_session_make.
 *
 * Each input is used twice:
 *  A. as a record: decode it; when it decodes, its fields respect every
 *     limit, encode(decode(x)) is x byte for byte for a version 2 record
 *     (the format has one spelling per record, so anything else accepted
 *     would be a second reading) and, for a version 1 record (no device
 *     field), x rewritten as version 2: the version byte 2 and an empty
 *     device field after ua_hash; decode(encode(decode(x))) gives the same
 *     fields;
 *  B. as a session: NUL-separated pieces are user, role, CSRF token,
 *     device and notes; encode it, and decoding must succeed exactly when
 *     every field is within its limit (user, role <= 128 bytes, token 43
 *     base64url characters, device <= 64 bytes, notes <= 1000 bytes),
 *     giving back the same fields; the encoded length is the documented
 *     (version 2) layout's; the same record in version 1 form (its device
 *     field cut out) decodes to the same fields with an empty device.
 * Also: sd_session_make gives a well-formed token and empty notes;
 * sd_record_user / sd_record_is_user agree with the decoder on records it
 * accepts, need only the user field (a prefix), and on any input give a
 * name that sd_record_is_user confirms.
 */
#include <apr_strings.h>
#include <apr_tables.h>

#include "fuzz_common.h"
#include "sd_id.h"
#include "sd_record.h"

#define MAX_NOTES 64
/* magic, version, user len; then (after user) role len; then (after role)
 * csrf, cred_stamp, ua_hash: where a version 1 record's device field would
 * be is 2 + 4 + user + 4 + role + SD_CSRF_LEN + 16. */
#define DEVICE_AT(ul, rl) (2 + 4 + (ul) + 4 + (rl) + SD_CSRF_LEN + 16)

static int b64c(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static void same_session(const sd_session_t *a, const sd_session_t *b,
                         const char *what)
{
    int i;

    FUZZ_CHECK(strcmp(a->user, b->user) == 0, "%s: user differs", what);
    FUZZ_CHECK(strcmp(a->role, b->role) == 0, "%s: role differs", what);
    FUZZ_CHECK(memcmp(a->csrf, b->csrf, SD_CSRF_LEN + 1) == 0,
               "%s: csrf differs", what);
    FUZZ_CHECK(a->cred_stamp == b->cred_stamp && a->ua_hash == b->ua_hash &&
                   a->visits == b->visits,
               "%s: counters differ", what);
    FUZZ_CHECK(strcmp(a->device ? a->device : "",
                      b->device ? b->device : "") == 0,
               "%s: device differs", what);
    FUZZ_CHECK(a->notes->nelts == b->notes->nelts, "%s: %d notes vs %d",
               what, a->notes->nelts, b->notes->nelts);
    for (i = 0; i < a->notes->nelts; i++) {
        FUZZ_CHECK(strcmp(APR_ARRAY_IDX(a->notes, i, const char *),
                          APR_ARRAY_IDX(b->notes, i, const char *)) == 0,
                   "%s: note %d differs", what, i);
    }
}

static void check_limits(const sd_session_t *s)
{
    int i;

    FUZZ_CHECK(s->user && strlen(s->user) <= SD_USER_MAX, "user too long");
    FUZZ_CHECK(s->role && strlen(s->role) <= SD_ROLE_MAX, "role too long");
    FUZZ_CHECK(s->device && strlen(s->device) <= SD_DEVICE_MAX,
               "device missing or too long");
    FUZZ_CHECK(strlen(s->csrf) == SD_CSRF_LEN, "csrf of %zu characters",
               strlen(s->csrf));
    for (i = 0; i < SD_CSRF_LEN; i++) {
        FUZZ_CHECK(b64c((unsigned char)s->csrf[i]), "csrf has 0x%02x",
                   (unsigned char)s->csrf[i]);
    }
    FUZZ_CHECK(s->notes != NULL, "decoded notes array is NULL");
    for (i = 0; i < s->notes->nelts; i++) {
        const char *n = APR_ARRAY_IDX(s->notes, i, const char *);
        FUZZ_CHECK(n && strlen(n) <= SD_NOTE_MAX, "note %d too long", i);
    }
}

static apr_uint64_t get64(const uint8_t *p, size_t size, size_t at)
{
    apr_uint64_t v = 0;
    size_t i;

    for (i = 0; i < 8; i++) {
        v = (v << 8) | (size ? p[(at + i) % size] : 0);
    }
    return v;
}

static void part_a(apr_pool_t *pool, const uint8_t *data, size_t size)
{
    char *in = fuzz_dup(data, size, 0);
    sd_session_t *s = (sd_session_t *)(void *)"unset", *s2 = NULL;
    char *enc = NULL;
    apr_size_t elen;
    apr_status_t rv;
    const char *peeked;

    /* sd_record_user / sd_record_is_user read the user field only. */
    peeked = sd_record_user(pool, in, size);
    if (peeked != NULL) {
        FUZZ_CHECK(strlen(peeked) <= SD_USER_MAX && size >= 6 + strlen(peeked),
                   "sd_record_user gave %zu bytes", strlen(peeked));
        FUZZ_CHECK(sd_record_is_user(in, size, peeked),
                   "sd_record_is_user(\"%s\") is false", peeked);
    }
    rv = sd_record_decode(pool, in, size, &s);
    FUZZ_CHECK(rv == APR_SUCCESS || rv == APR_EINVAL, "status %d", (int)rv);
    if (rv != APR_SUCCESS) {
        FUZZ_CHECK(s == NULL, "failure but *s is set");
        free(in);
        return;
    }
    FUZZ_CHECK(s != NULL, "success with NULL session");
    check_limits(s);
    {
        size_t ul = strlen(s->user);
        const char *u;
        FUZZ_CHECK(peeked != NULL && strcmp(peeked, s->user) == 0,
                   "sd_record_user is not the decoded user");
        FUZZ_CHECK(sd_record_is_user(in, size, s->user),
                   "sd_record_is_user(decoded user) is false");
        FUZZ_CHECK(!sd_record_is_user(in, size,
                                      apr_pstrcat(pool, s->user, "x", NULL)),
                   "sd_record_is_user(user + \"x\") is true");
        /* The user field is all it needs: a prefix that holds it is
         * enough, one byte less is not. */
        u = sd_record_user(pool, in, 6 + ul);
        FUZZ_CHECK(u != NULL && strcmp(u, s->user) == 0,
                   "sd_record_user of the %zu-byte prefix", 6 + ul);
        FUZZ_CHECK(sd_record_user(pool, in, 5 + ul) == NULL,
                   "sd_record_user of a prefix without the whole user");
    }
    elen = sd_record_encode(pool, s, &enc);
    if ((unsigned char)in[1] == 1) {
        /* Version 1: written back as version 2 with an empty device. */
        size_t at = DEVICE_AT(strlen(s->user), strlen(s->role));
        FUZZ_CHECK(s->device[0] == '\0', "version 1 record with a device");
        FUZZ_CHECK(at <= size && elen == size + 4 &&
                       (unsigned char)enc[0] == (unsigned char)in[0] &&
                       enc[1] == 2 && memcmp(enc + 2, in + 2, at - 2) == 0 &&
                       memcmp(enc + at, "\0\0\0\0", 4) == 0 &&
                       memcmp(enc + at + 4, in + at, size - at) == 0,
                   "encode(decode(v1 x)) is not x as version 2 (%zu vs %zu "
                   "bytes)",
                   (size_t)elen, size);
    }
    else {
        FUZZ_CHECK(in[1] == 2, "version %u decodes", (unsigned char)in[1]);
        FUZZ_CHECK(elen == size && memcmp(enc, in, size) == 0,
                   "encode(decode(x)) != x (%zu vs %zu bytes)", (size_t)elen,
                   size);
    }
    rv = sd_record_decode(pool, enc, elen, &s2);
    FUZZ_CHECK(rv == APR_SUCCESS, "re-encoded record does not decode");
    same_session(s, s2, "decode(encode(decode(x)))");
    free(in);
}

static void part_b(apr_pool_t *pool, const uint8_t *data, size_t size)
{
    char *buf = fuzz_dup(data, size, 1);
    const char *piece[4 + MAX_NOTES];
    int np = 0, i, expect_ok;
    size_t at = 0, expect_len;
    sd_session_t s, *d = NULL;
    char *enc = NULL;
    apr_size_t elen;
    apr_status_t rv;

    /* Pieces: NUL-separated C strings of the input. */
    while (np < 4 + MAX_NOTES && at <= size) {
        piece[np++] = buf + at;
        at += strlen(buf + at) + 1;
    }
    memset(&s, 0, sizeof(s));
    s.user = np > 0 ? piece[0] : NULL;
    s.role = np > 1 ? piece[1] : NULL;
    if (np > 2) {
        strncpy(s.csrf, piece[2], SD_CSRF_LEN);
    }
    s.csrf[SD_CSRF_LEN] = '\0';
    s.cred_stamp = get64(data, size, 0);
    s.ua_hash = sd_hash64((const char *)data, size);
    s.device = np > 3 ? piece[3] : NULL;
    s.visits = get64(data, size, 8);
    s.notes = apr_array_make(pool, 4, sizeof(const char *));
    for (i = 4; i < np; i++) {
        APR_ARRAY_PUSH(s.notes, const char *) = piece[i];
    }

    expect_ok = strlen(s.user ? s.user : "") <= SD_USER_MAX &&
                strlen(s.role ? s.role : "") <= SD_ROLE_MAX &&
                strlen(s.device ? s.device : "") <= SD_DEVICE_MAX &&
                strlen(s.csrf) == SD_CSRF_LEN;
    for (i = 0; i < SD_CSRF_LEN && expect_ok; i++) {
        expect_ok = b64c((unsigned char)s.csrf[i]);
    }
    expect_len = 2 + 4 + strlen(s.user ? s.user : "") + 4 +
                 strlen(s.role ? s.role : "") + SD_CSRF_LEN + 16 + 4 +
                 strlen(s.device ? s.device : "") + 8 + 4;
    for (i = 0; i < s.notes->nelts; i++) {
        const char *n = APR_ARRAY_IDX(s.notes, i, const char *);
        expect_len += 4 + strlen(n);
        if (strlen(n) > SD_NOTE_MAX) {
            expect_ok = 0;
        }
    }

    elen = sd_record_encode(pool, &s, &enc);
    FUZZ_CHECK(elen == expect_len, "encoded %zu bytes, layout says %zu",
               (size_t)elen, expect_len);
    rv = sd_record_decode(pool, enc, elen, &d);
    FUZZ_CHECK((rv == APR_SUCCESS) == expect_ok,
               "decode(encode(s)) %s, expected %s",
               rv == APR_SUCCESS ? "succeeded" : "failed",
               expect_ok ? "success" : "failure");
    if (rv == APR_SUCCESS) {
        if (s.user == NULL) {
            s.user = "";
        }
        if (s.role == NULL) {
            s.role = "";
        }
        same_session(&s, d, "decode(encode(s))");
        /* Any strict prefix, or one trailing byte, is refused. */
        FUZZ_CHECK(sd_record_decode(pool, enc, elen - 1 - (size % elen),
                                    &d) == APR_EINVAL,
                   "a truncated record decodes");
        {
            char *longer = malloc(elen + 1);
            memcpy(longer, enc, elen);
            longer[elen] = (char)(size & 0xff);
            FUZZ_CHECK(sd_record_decode(pool, longer, elen + 1, &d) ==
                           APR_EINVAL,
                       "a record with a trailing byte decodes");
            free(longer);
        }
        /* The same session as a version 1 record (no device field, as
         * earlier builds wrote it) still decodes, to the same fields with
         * an empty device. */
        {
            size_t at = DEVICE_AT(strlen(s.user), strlen(s.role));
            size_t cut = 4 + strlen(s.device ? s.device : "");
            char *v1 = malloc(elen - cut);
            memcpy(v1, enc, at);
            v1[1] = 1;
            memcpy(v1 + at, enc + at + cut, elen - at - cut);
            rv = sd_record_decode(pool, v1, elen - cut, &d);
            FUZZ_CHECK(rv == APR_SUCCESS, "the version 1 form does not decode");
            FUZZ_CHECK(d->device && d->device[0] == '\0',
                       "a version 1 record has a device");
            s.device = "";
            same_session(&s, d, "decode(v1 of s)");
            free(v1);
        }
    }
    free(buf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return fuzz_apr_init();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *pool = fuzz_pool();
    sd_session_t *m;

    part_a(pool, data, size);
    part_b(pool, data, size);

    /* sd_session_make: a fresh, well-formed token, empty notes. Only
     * sometimes: it reads the random source. */
    if (size > 0 && data[0] == 0xD5 && size % 8 == 0) {
        char *user = apr_pstrndup(pool, (const char *)data + 1,
                                  size > 16 ? 15 : size - 1);
        m = sd_session_make(pool, user, NULL);
        FUZZ_CHECK(m != NULL, "sd_session_make failed");
        FUZZ_CHECK(sd_id_wellformed(m->csrf, strlen(m->csrf)),
                   "sd_session_make token \"%s\" not well-formed", m->csrf);
        FUZZ_CHECK(strcmp(m->user, user) == 0 && strcmp(m->role, "") == 0 &&
                       m->notes && m->notes->nelts == 0 && m->visits == 0,
                   "sd_session_make fields");
    }

    apr_pool_destroy(pool);
    return 0;
}
