/* STUB: replaced by the convert command. */
#include <stdio.h>
#include "cli.h"
int cmd_convert(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "vitport convert: not implemented yet\n"); return VP_EXIT_FAIL; }
