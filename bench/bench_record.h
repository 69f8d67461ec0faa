/*
 * The session record the benchmarks store: what a logged-in demo guest
 * looks like after a few visits, with two short notes (about 190 bytes
 * encoded). Shared by store_bench.c and mkstore.c so that the store alone
 * and the store inside httpd are measured with the same data.
 */
#ifndef BENCH_RECORD_H
#define BENCH_RECORD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include "sd_record.h"

/* What src/sdemo_users.c's cred_stamp() gives a guest login (demo mode,
 * SessionDemoGuestPassword password): sd_hash64 of "guest:" + password. */
#define BENCH_GUEST_STAMP_TEXT "guest:password"

/* A guest's session is valid only with role "guest" (SDEMO_GUEST_ROLE in
 * src/sdemo_users.h) and this stamp. */
#define BENCH_GUEST_ROLE "guest"

/* sdemo_realm() of the bench httpd (no user file, ServerName 127.0.0.1):
 * what the owner digest of a guest is keyed with. */
#define BENCH_REALM "guests@127.0.0.1"

/* Encode the session of guest "bench<n>"; returns its length, or exits
 * when the random source fails. */
static apr_size_t bench_record(apr_pool_t *p, unsigned long n, char **out)
{
    sd_session_t *s =
        sd_session_make(p, apr_psprintf(p, "bench%lu", n), BENCH_GUEST_ROLE);
    if (!s) {
        fprintf(stderr, "sd_session_make failed (random source)\n");
        exit(1);
    }
    s->cred_stamp = sd_hash64(BENCH_GUEST_STAMP_TEXT,
                              strlen(BENCH_GUEST_STAMP_TEXT));
    s->ua_hash = sd_hash64("", 0);
    s->visits = n % 100;
    APR_ARRAY_PUSH(s->notes, const char *) =
        "Call Alice about the Q3 report before Friday";
    APR_ARRAY_PUSH(s->notes, const char *) =
        "Buy milk, eggs and coffee on the way home";
    return sd_record_encode(p, s, out);
}

#endif
