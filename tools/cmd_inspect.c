/* STUB: replaced by the inspect command. */
#include <stdio.h>
#include "cli.h"
int cmd_inspect(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "vitport inspect: not implemented yet\n"); return VP_EXIT_FAIL; }
