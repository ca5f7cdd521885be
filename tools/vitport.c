/* STUB CLI */
#include <stdio.h>
#include <string.h>
#include "vitport/vitport.h"
int main(int argc, char **argv) { if (argc > 1 && !strcmp(argv[1], "--version")) { printf("vitport %s\n", vp_version()); return 0; } fprintf(stderr, "usage: vitport COMMAND\n"); return 2; }
