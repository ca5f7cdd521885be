/* test.h's counters and report: one pair per test program. */
#include <stdio.h>

#include "../test.h"

int t_pass, t_fail;

int tu_report(const char *file)
{
    printf("%s: %d passed, %d failed\n", file, t_pass, t_fail);
    return t_fail ? 1 : 0;
}
