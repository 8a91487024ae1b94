/*
 * tap.h — a tiny TAP producer for the C unit tests under t/unit.
 *
 * Each test program prints "1..N" at the end (plan_done) or start (plan),
 * one "ok N - name" / "not ok N - name" per check, and exits non-zero when
 * any check failed. automake's tap-driver.sh counts the results.
 */
#ifndef VNAMIG_TAP_H
#define VNAMIG_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static void tap_vresult(int pass, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void tap_vresult(int pass, const char *fmt, va_list ap)
{
	tap_n++;
	if (!pass)
		tap_failed++;
	printf("%sok %d - ", pass ? "" : "not ", tap_n);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
}

/* ok(cond, fmt, ...): one TAP result; returns cond so callers can chain. */
static int ok(int pass, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), unused));
static int ok(int pass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vresult(pass, fmt, ap);
	va_end(ap);
	return pass;
}

/* diag: a comment line the driver shows but does not count. */
static void diag(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), unused));
static void diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

#define is_int(got, want, ...) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	if (!ok(g_ == w_, __VA_ARGS__)) \
		diag("  got %lld, expected %lld", g_, w_); \
} while (0)

#define is_str(got, want, ...) do { \
	const char *g_ = (got), *w_ = (want); \
	int p_ = (g_ == NULL && w_ == NULL) || \
	    (g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0); \
	if (!ok(p_, __VA_ARGS__)) \
		diag("  got \"%s\", expected \"%s\"", g_ ? g_ : "(null)", \
		    w_ ? w_ : "(null)"); \
} while (0)

/* done_testing: print the plan and return the process exit status. */
static int done_testing(void) __attribute__((unused));
static int done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
