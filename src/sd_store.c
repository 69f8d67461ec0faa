/*
 * What every store shares: the owner digest. The store operations
 * themselves are inline wrappers in sd_store.h that call through the
 * store's table of functions.
 */

#include <string.h>

#include "sd_sha256.h"
#include "sd_store.h"

/* HMAC keyed with the realm: the same name under two user files gives two
 * unrelated owners, and no concatenation of realm and name can collide
 * with another pair. */
void sd_owner(const char *realm, const char *user, sd_owner_t *out)
{
    unsigned char d[SD_SHA256_LEN];

    sd_hmac_sha256(realm, strlen(realm), user, strlen(user), d);
    memcpy(out->b, d, SD_OWNER_LEN);
}
