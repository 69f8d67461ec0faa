/*
 * SHA-256 and HMAC-SHA-256 (OpenSSL underneath) against the published
 * vectors (FIPS 180-4 examples, RFC 4231), the incremental interfaces
 * against the one-shot ones at every split point, the constant-time
 * comparison, and wiping.
 */
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "sd_sha256.h"

static const char *hex(const unsigned char *b, size_t n)
{
    static char out[2 * 256 + 1];
    size_t i;
    for (i = 0; i < n && i < 256; i++) {
        sprintf(out + 2 * i, "%02x", b[i]);
    }
    out[2 * i] = '\0';
    return out;
}

static const char *sha_hex(const void *data, size_t len)
{
    unsigned char d[SD_SHA256_LEN];
    sd_sha256(data, len, d);
    return hex(d, sizeof d);
}

static const char *hmac_hex(const void *key, size_t klen, const void *data,
                            size_t dlen)
{
    unsigned char d[SD_SHA256_LEN];
    sd_hmac_sha256(key, klen, data, dlen, d);
    return hex(d, sizeof d);
}

static const char MSG448[] =
    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char MSG896[] =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
    "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";

static void test_fips(void)
{
    is_str(sha_hex("abc", 3),
           "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
           "SHA-256(\"abc\")");
    is_str(sha_hex("", 0),
           "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
           "SHA-256(\"\")");
    is_str(sha_hex(MSG448, strlen(MSG448)),
           "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
           "SHA-256 of the 448-bit message");
    is_str(sha_hex(MSG896, strlen(MSG896)),
           "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
           "SHA-256 of the 896-bit message");
}

static void test_million(void)
{
    sd_sha256_ctx_t c;
    unsigned char chunk[1000], d[SD_SHA256_LEN];
    int i;

    memset(chunk, 'a', sizeof chunk);
    sd_sha256_init(&c);
    for (i = 0; i < 1000; i++) {
        sd_sha256_update(&c, chunk, sizeof chunk);
    }
    sd_sha256_final(&c, d);
    is_str(hex(d, sizeof d),
           "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
           "SHA-256 of one million 'a' (1000 updates of 1000)");

    /* Odd-sized pieces that never line up with a block. */
    sd_sha256_init(&c);
    {
        size_t left = 1000000, step = 1;
        while (left) {
            size_t n = step < left ? step : left;
            if (n > sizeof chunk) {
                n = sizeof chunk;
            }
            sd_sha256_update(&c, chunk, n);
            left -= n;
            step = step * 7 % 997 + 1;
        }
    }
    sd_sha256_final(&c, d);
    is_str(hex(d, sizeof d),
           "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
           "SHA-256 of one million 'a' in ragged pieces");
}

/* Padding edges: lengths around 55/56/64 bytes and their multiples. */
static void test_padding_edges(void)
{
    static const struct {
        size_t n;
        const char *h;
    } v[] = {
        {55,
         "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56,
         "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {57,
         "f13b2d724659eb3bf47f2dd6af1accc87b81f09f59f2b75e5c0bed6589dfe8c6"},
        {63,
         "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64,
         "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65,
         "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
        {119,
         "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120,
         "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
        {127,
         "c57e9278af78fa3cab38667bef4ce29d783787a2f731d4e12200270f0c32320a"},
        {128,
         "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e"},
        {1000,
         "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"},
    };
    char a[1000];
    size_t i;

    memset(a, 'a', sizeof a);
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        is_str(sha_hex(a, v[i].n), v[i].h, "SHA-256 of %u 'a'",
               (unsigned)v[i].n);
    }
}

/* Splitting the input anywhere, into two or three updates (with empty ones
 * too), must give the one-shot digest. */
static void test_splits(void)
{
    unsigned char msg[200], want[SD_SHA256_LEN], got[SD_SHA256_LEN];
    sd_sha256_ctx_t c;
    size_t i, j, bad2 = 0, bad3 = 0, first2 = 0, first3 = 0;

    for (i = 0; i < sizeof msg; i++) {
        msg[i] = (unsigned char)(i * 31 + 7);
    }
    sd_sha256(msg, sizeof msg, want);
    for (i = 0; i <= sizeof msg; i++) {
        sd_sha256_init(&c);
        sd_sha256_update(&c, msg, i);
        sd_sha256_update(&c, msg + i, sizeof msg - i);
        sd_sha256_final(&c, got);
        if (memcmp(got, want, sizeof want) != 0 && bad2++ == 0) {
            first2 = i;
        }
    }
    ok(bad2 == 0,
       "two updates split at every byte (0..200) match one-shot"
       " (%u bad, first at %u)",
       (unsigned)bad2, (unsigned)first2);

    for (i = 0; i <= 130; i++) {
        for (j = i; j <= 130; j++) {
            sd_sha256_init(&c);
            sd_sha256_update(&c, msg, i);
            sd_sha256_update(&c, msg + i, 0);
            sd_sha256_update(&c, msg + i, j - i);
            sd_sha256_update(&c, msg + j, sizeof msg - j);
            sd_sha256_final(&c, got);
            if (memcmp(got, want, sizeof want) != 0 && bad3++ == 0) {
                first3 = i * 1000 + j;
            }
        }
    }
    ok(bad3 == 0,
       "three updates split at every i<=j<=130 match one-shot"
       " (%u bad, first at %u)",
       (unsigned)bad3, (unsigned)first3);

    sd_sha256_init(&c);
    for (i = 0; i < strlen(MSG448); i++) {
        sd_sha256_update(&c, MSG448 + i, 1);
    }
    sd_sha256_final(&c, got);
    is_str(hex(got, sizeof got),
           "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
           "448-bit message one byte at a time");

    /* A context is reusable after init. */
    sd_sha256_init(&c);
    sd_sha256_update(&c, "abc", 3);
    sd_sha256_final(&c, got);
    sd_sha256_init(&c);
    sd_sha256_update(&c, "abc", 3);
    sd_sha256_final(&c, got);
    is_str(hex(got, sizeof got),
           "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
           "re-initialised context hashes afresh");
}

static void test_hmac(void)
{
    unsigned char k[131], d[50];
    static const char tc6[] =
        "Test Using Larger Than Block-Size Key - Hash Key First";
    static const char tc7[] =
        "This is a test using a larger than block-size key and a larger "
        "than block-size data. The key needs to be hashed before being "
        "used by the HMAC algorithm.";
    int i;

    memset(k, 0x0b, 20);
    is_str(hmac_hex(k, 20, "Hi There", 8),
           "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
           "RFC 4231 test case 1");
    is_str(hmac_hex("Jefe", 4, "what do ya want for nothing?", 28),
           "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
           "RFC 4231 test case 2");
    memset(k, 0xaa, 20);
    memset(d, 0xdd, 50);
    is_str(hmac_hex(k, 20, d, 50),
           "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
           "RFC 4231 test case 3");
    for (i = 0; i < 25; i++) {
        k[i] = (unsigned char)(i + 1);
    }
    memset(d, 0xcd, 50);
    is_str(hmac_hex(k, 25, d, 50),
           "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
           "RFC 4231 test case 4");
    memset(k, 0xaa, 131);
    is_str(hmac_hex(k, 131, tc6, strlen(tc6)),
           "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
           "RFC 4231 test case 6 (key longer than a block)");
    is_str(hmac_hex(k, 131, tc7, strlen(tc7)),
           "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
           "RFC 4231 test case 7 (key and data longer than a block)");
    memset(k, 'k', 64);
    is_str(hmac_hex(k, 64, "", 0),
           "83026a325aaee70e36cfe607536aa1054104ad1077c36134810d4ccded1ccd3b",
           "HMAC with a key of exactly one block and empty data");
}

static void test_ct_equal(void)
{
    unsigned char a[64], b[64];
    size_t i;
    int all = 1;

    for (i = 0; i < sizeof a; i++) {
        a[i] = b[i] = (unsigned char)(i * 5);
    }
    ok(sd_ct_equal(a, b, sizeof a) != 0, "ct_equal: equal buffers");
    ok(sd_ct_equal(a, b, 0) != 0, "ct_equal: zero length is equal");
    for (i = 0; i < sizeof a; i++) {
        b[i] ^= 0x80;
        if (sd_ct_equal(a, b, sizeof a) != 0) {
            all = 0;
        }
        b[i] ^= 0x80;
        b[i] ^= 0x01;
        if (sd_ct_equal(a, b, sizeof a) != 0) {
            all = 0;
        }
        b[i] ^= 0x01;
    }
    ok(all, "ct_equal: a flipped high or low bit at any position differs");
    b[63] ^= 1;
    ok(sd_ct_equal(a, b, 63) != 0, "ct_equal: compares only len bytes");
}

/* The incremental HMAC gives the one-shot MAC (itself checked against RFC
 * 4231 above) for every split of the data and for keys of every length
 * around the block size, an empty key included. */
static void test_hmac_stream(void)
{
    unsigned char key[140], msg[150], want[SD_SHA256_LEN], got[SD_SHA256_LEN];
    sd_hmac_sha256_ctx_t c;
    size_t i, kl, bad = 0, badkey = 0, badrv = 0;

    for (i = 0; i < sizeof key; i++) {
        key[i] = (unsigned char)(i * 13 + 1);
    }
    for (i = 0; i < sizeof msg; i++) {
        msg[i] = (unsigned char)(i * 29 + 3);
    }
    sd_hmac_sha256(key, 32, msg, sizeof msg, want);
    for (i = 0; i <= sizeof msg; i++) {
        badrv += sd_hmac_sha256_init(&c, key, 32) != APR_SUCCESS;
        badrv += sd_hmac_sha256_update(&c, msg, i) != APR_SUCCESS;
        badrv +=
            sd_hmac_sha256_update(&c, msg + i, sizeof msg - i) != APR_SUCCESS;
        badrv += sd_hmac_sha256_final(&c, got) != APR_SUCCESS;
        bad += memcmp(got, want, sizeof want) != 0;
    }
    ok(bad == 0 && badrv == 0,
       "incremental HMAC split at every byte (0..150) matches one-shot "
       "(%u bad, %u errors)",
       (unsigned)bad, (unsigned)badrv);

    for (kl = 0; kl <= sizeof key; kl++) {
        sd_hmac_sha256(kl ? key : NULL, kl, msg, 40, want);
        sd_hmac_sha256_init(&c, kl ? key : NULL, kl);
        sd_hmac_sha256_update(&c, msg, 40);
        sd_hmac_sha256_final(&c, got);
        badkey += memcmp(got, want, sizeof want) != 0;
    }
    is_int((long long)badkey, 0,
           "incremental and one-shot HMAC agree for keys of 0..140 bytes");

    memset(key, 0x0b, 20);
    sd_hmac_sha256_init(&c, key, 20);
    sd_hmac_sha256_update(&c, "Hi ", 3);
    sd_hmac_sha256_update(&c, NULL, 0);
    sd_hmac_sha256_update(&c, "There", 5);
    sd_hmac_sha256_final(&c, got);
    is_str(hex(got, sizeof got),
           "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
           "incremental HMAC: RFC 4231 test case 1 in pieces");

    /* Abandoned half way (out NULL): the state is freed (LeakSanitizer
     * would tell), and a finished context refuses more data. */
    sd_hmac_sha256_init(&c, key, 20);
    sd_hmac_sha256_update(&c, "abc", 3);
    is_int(sd_hmac_sha256_final(&c, NULL), APR_SUCCESS,
           "an HMAC abandoned half way is released");
    is_int(sd_hmac_sha256_update(&c, "abc", 3), APR_EINVAL,
           "... and a finished context takes no more data");
}

static void test_wipe(void)
{
    unsigned char b[48];
    size_t i, left = 0;

    memset(b, 0xa5, sizeof b);
    sd_wipe(b + 8, 32);
    for (i = 0; i < sizeof b; i++) {
        left += (i >= 8 && i < 40) ? b[i] != 0 : b[i] != 0xa5;
    }
    is_int((long long)left, 0, "sd_wipe zeroes exactly the bytes it is given");
    sd_wipe(NULL, 0); /* must not crash: callers wipe what may be unset */
}

int main(void)
{
    plan(38);
    test_fips();
    test_million();
    test_padding_edges();
    test_splits();
    test_hmac();
    test_ct_equal();
    test_hmac_stream();
    test_wipe();
    return done_testing();
}
