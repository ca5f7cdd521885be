/* A bounded walk over a pickle value tree that calls every accessor on every
 * value it reaches, so that damaged trees meet them all. Shared by the C
 * tests (tests/test_badinput.c) and the fuzz targets (fuzz/fuzz_common.c):
 * compiled into both, from tests/util/value_walk.c. It checks nothing
 * itself; a crash or a sanitizer report is the finding. */
#ifndef VP_VALUE_WALK_H
#define VP_VALUE_WALK_H

#include "vitport/vitport.h"

/* Visit v and what it holds (dict keys and values, items, an object's
 * state and args) down to max_depth levels and at most `budget` values in
 * all: pickles share values through the memo, and a value may contain
 * itself. */
void tu_walk_values(const vp_value *v, int max_depth, long budget);

#endif
