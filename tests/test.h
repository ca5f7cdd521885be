/* A tiny test harness: CHECK records failures and continues; main returns
 * non-zero if any check failed. Each test program prints "N passed, N failed".
 * The counters and the report are in tests/util/check.c (linked into every
 * test program through vp_testutil). */
#ifndef VP_TEST_H
#define VP_TEST_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* This program's checks so far. */
extern int t_pass, t_fail;
/* Print "FILE: N passed, N failed"; 1 if any check failed, else 0. */
int tu_report(const char *file);

#define CHECK(cond) do { if (cond) t_pass++; else { t_fail++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECKF(cond, ...) do { if (cond) t_pass++; else { t_fail++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
    CHECKF(_a == _b, "%s = %lld, expected %lld", #a, _a, _b); } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); \
    CHECKF(_a && _b && !strcmp(_a, _b), "%s = \"%s\", expected \"%s\"", #a, _a ? _a : "(null)", _b ? _b : "(null)"); } while (0)

#define TEST_MAIN_END() return tu_report(__FILE__)

#endif
