/* The vitport program's subcommands. Each takes argv after the command
 * name (argv[0] is the command) and returns the exit status:
 * 0 ok, 1 bad input or a failed check, 2 usage error. */
#ifndef VP_CLI_H
#define VP_CLI_H

#define VP_EXIT_OK 0
#define VP_EXIT_FAIL 1
#define VP_EXIT_USAGE 2

int cmd_inspect(int argc, char **argv);   /* tools/cmd_inspect.c */
int cmd_convert(int argc, char **argv);   /* tools/cmd_convert.c */

/* Human-readable byte count ("1.5 GB") into buf. */
const char *vp_cli_bytes(double n, char *buf, unsigned len);

#endif
