/*
 * sd_id_wellformed, sd_b64url_encode, sd_b64url_decode, sd_id_key,
 * sd_key_prefix.
 *
 * Input: the candidate ID (an exact-size copy, no terminator).
 *
 * Properties:
 *  - sd_id_wellformed implies length 43, and holds exactly when the input
 *    is 43 base64url characters that decode to 32 bytes which
 *    sd_b64url_encode writes back as the very same text (one issued ID, one
 *    accepted spelling);
 *  - sd_b64url_encode of the input's bytes has (n*4+2)/3 base64url
 *    characters, decodes back to the input, and for 32 bytes is well-formed;
 *  - sd_b64url_decode of the input succeeds exactly when the reference
 *    decodes it and re-encoding gives the input back (strict: no padding,
 *    no '+' or '/', canonical last character), gives the reference's
 *    bytes into a buffer of exactly that size, and with one byte less
 *    says APR_ENOSPC;
 *  - sd_id_key is SHA-256 of the text; sd_key_prefix is the first 4 bytes
 *    of the key in lowercase hex.
 */
#include "fuzz_common.h"
#include "sd_id.h"
#include "sd_sha256.h"

static int val(unsigned char c)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *p = c ? memchr(a, c, 64) : NULL;
    return p ? (int)(p - a) : -1;
}

/* Decode unpadded base64url; -1 on a bad character or a bad length. */
static long ref_decode(const char *s, size_t len, unsigned char *out)
{
    size_t i, o = 0;
    unsigned long acc = 0;
    int bits = 0;

    if (len % 4 == 1) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        int v = val((unsigned char)s[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1UL << bits) - 1;
        }
    }
    return (long)o;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_apr_init();
    FUZZ_CHECK(!sd_id_wellformed(NULL, SD_ID_LEN), "NULL is well-formed");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_dup(data, size, 0);
    unsigned char *raw = malloc(size + 1);
    char *enc = malloc((size * 4 + 2) / 3 + 1);
    int wf = sd_id_wellformed(in, size);
    long n = ref_decode(in, size, raw);
    int ref_wf = 0;
    size_t i;
    sd_key_t key;
    unsigned char d[SD_SHA256_LEN];
    char pfx[SD_KEY_PREFIX_LEN + 1], want[SD_KEY_PREFIX_LEN + 1];

    FUZZ_CHECK(!wf || size == SD_ID_LEN,
               "well-formed with length %zu", size);
    if (size == SD_ID_LEN && n == SD_ID_BYTES) {
        char again[SD_ID_LEN + 1];
        sd_b64url_encode(raw, SD_ID_BYTES, again);
        ref_wf = memcmp(again, in, SD_ID_LEN) == 0;
    }
    FUZZ_CHECK(!!wf == ref_wf, "sd_id_wellformed = %d, the reference %d",
               wf, ref_wf);

    /* Encoding the input's bytes. */
    sd_b64url_encode(data, size, enc);
    FUZZ_CHECK(strlen(enc) == (size * 4 + 2) / 3, "encoded %zu bytes to %zu",
               size, strlen(enc));
    for (i = 0; enc[i]; i++) {
        FUZZ_CHECK(val((unsigned char)enc[i]) >= 0, "bad character 0x%02x",
                   (unsigned char)enc[i]);
    }
    n = ref_decode(enc, strlen(enc), raw);
    FUZZ_CHECK(n == (long)size && (size == 0 || memcmp(raw, data, size) == 0),
               "encoding does not decode back");
    if (size == SD_ID_BYTES) {
        FUZZ_CHECK(sd_id_wellformed(enc, strlen(enc)),
                   "encoded 32 bytes are not well-formed: %s", enc);
    }

    /* Strict decoding of the input. */
    {
        int canonical = 0;
        apr_size_t got = 99;
        unsigned char *exact;
        apr_status_t rv;

        n = ref_decode(in, size, raw);
        if (n >= 0) {
            char *again = malloc(((size_t)n * 4 + 2) / 3 + 1);
            sd_b64url_encode(raw, (apr_size_t)n, again);
            canonical = strlen(again) == size && memcmp(again, in, size) == 0;
            free(again);
        }
        exact = malloc(n > 0 ? (size_t)n : 1);
        rv = sd_b64url_decode(in, size, exact, n > 0 ? (apr_size_t)n : 0, &got);
        FUZZ_CHECK((rv == APR_SUCCESS) == canonical,
                   "sd_b64url_decode %d, the reference %s", (int)rv,
                   canonical ? "accepts" : "refuses");
        if (rv == APR_SUCCESS) {
            FUZZ_CHECK(got == (apr_size_t)n &&
                           (n == 0 || memcmp(exact, raw, (size_t)n) == 0),
                       "decoded %zu bytes, the reference %ld", (size_t)got, n);
            if (n > 0) {
                rv = sd_b64url_decode(in, size, exact, (apr_size_t)n - 1, &got);
                FUZZ_CHECK(rv == APR_ENOSPC && got == 0,
                           "%ld bytes into %ld: %d", n, n - 1, (int)rv);
            }
        }
        else {
            FUZZ_CHECK(got == 0, "refused, but %zu bytes reported",
                       (size_t)got);
        }
        free(exact);
    }

    sd_id_key(in, size, &key);
    sd_sha256(data, size, d);
    FUZZ_CHECK(memcmp(key.b, d, SD_KEY_LEN) == 0, "key is not SHA-256");
    sd_key_prefix(&key, pfx);
    fuzz_hex(key.b, SD_KEY_PREFIX_LEN / 2, want, sizeof(want));
    FUZZ_CHECK(strcmp(pfx, want) == 0, "prefix %s, want %s", pfx, want);

    free(enc);
    free(raw);
    free(in);
    return 0;
}
