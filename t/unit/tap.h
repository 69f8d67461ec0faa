/*
 * A tiny TAP producer for the unit tests of src/, so that prove runs them
 * beside the Apache::Test suite.
 *
 * Header-only, static inline (so -Wall says nothing of the helpers a test
 * does not use): each test_*.c is one program. Give the plan up front with
 * plan(N), or let done_testing() print it at the end when the count depends
 * on loops. done_testing() returns the exit status: non-zero when a test
 * failed or the count does not match the plan.
 *
 * Tests that fork must call tap_flush() first and end children with _exit(),
 * so that no child repeats buffered output or prints TAP of its own.
 */
#ifndef SD_TAP_H
#define SD_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Let the compiler check each test's format strings. */
#define TAP_PRINTF(f, a) __attribute__((format(printf, f, a)))
static inline void diag(const char *fmt, ...) TAP_PRINTF(1, 2);
static inline int ok(int cond, const char *fmt, ...) TAP_PRINTF(2, 3);
static inline int is_int(long long got, long long want, const char *fmt, ...)
    TAP_PRINTF(3, 4);
static inline int is_str(const char *got, const char *want, const char *fmt,
                         ...) TAP_PRINTF(3, 4);

static int tap_planned = -1; /* the plan, or -1 until given */
static int tap_run;          /* tests run so far */
static int tap_failed;       /* of which failed */

static inline void tap_flush(void)
{
    fflush(stdout);
    fflush(stderr);
}

static inline void plan(int n)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    tap_planned = n;
    printf("1..%d\n", n);
}

/* A diagnostic line, shown by prove -v and on failures. */
static inline void diag(const char *fmt, ...)
{
    va_list ap;
    tap_flush();
    fputs("# ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    tap_flush();
}

static inline int tap_vok(int cond, const char *fmt, va_list ap)
{
    ++tap_run;
    if (!cond) {
        ++tap_failed;
    }
    printf("%sok %d - ", cond ? "" : "not ", tap_run);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    tap_flush();
    return cond;
}

static inline int ok(int cond, const char *fmt, ...)
{
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = tap_vok(cond, fmt, ap);
    va_end(ap);
    return r;
}

static inline int is_int(long long got, long long want, const char *fmt, ...)
{
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = tap_vok(got == want, fmt, ap);
    va_end(ap);
    if (!r) {
        diag("     got: %lld", got);
        diag("expected: %lld", want);
    }
    return r;
}

static inline int is_str(const char *got, const char *want, const char *fmt,
                         ...)
{
    va_list ap;
    int r;
    int same = (got == NULL && want == NULL) ||
               (got != NULL && want != NULL && strcmp(got, want) == 0);
    va_start(ap, fmt);
    r = tap_vok(same, fmt, ap);
    va_end(ap);
    if (!r) {
        diag("     got: %s%s%s", got ? "'" : "", got ? got : "NULL",
             got ? "'" : "");
        diag("expected: %s%s%s", want ? "'" : "", want ? want : "NULL",
             want ? "'" : "");
    }
    return r;
}

/* Skip @a n tests with a reason (keeps the plan right). */
static inline void skip(int n, const char *why)
{
    while (n-- > 0) {
        printf("ok %d # skip %s\n", ++tap_run, why);
    }
    tap_flush();
}

static inline int done_testing(void)
{
    if (tap_planned < 0) {
        printf("1..%d\n", tap_run);
        tap_planned = tap_run;
    }
    else if (tap_run != tap_planned) {
        diag("planned %d tests but ran %d", tap_planned, tap_run);
        tap_flush();
        return 255;
    }
    if (tap_failed) {
        diag("failed %d of %d tests", tap_failed, tap_run);
    }
    tap_flush();
    return tap_failed ? (tap_failed > 254 ? 254 : tap_failed) : 0;
}


/* A watchdog for tests of locking: after alarm(N), a process that is still
 * waiting (for a lock a killed process left behind, say) prints a failing
 * TAP line saying @a what and exits instead of hanging the suite. */
#include <signal.h>
#include <unistd.h>

static const char *tap_hang_what __attribute__((unused)) = "a hang";

static inline void tap_on_alarm(int sig)
{
    static const char pre[] = "not ok - hang: ";
    (void)sig;
    if (write(1, pre, sizeof pre - 1) < 0 ||
        write(1, tap_hang_what, strlen(tap_hang_what)) < 0 ||
        write(1, "\n", 1) < 0) {
        _exit(98);
    }
    _exit(97);
}

static inline void tap_watchdog(const char *what)
{
    struct sigaction sa;
    tap_hang_what = what;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = tap_on_alarm;
    sigaction(SIGALRM, &sa, NULL);
}

#endif
