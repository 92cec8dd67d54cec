/*
 * What the mount commands' command lines share: boolean flags, -h/--help, and the usage
 * answer to a mistake, with the btrfs-progs habits (help on stdout and exit 0, a usage error
 * on stderr and exit 2).
 */
#ifndef COWFS_TOOLS_SHARE_CLI_H
#define COWFS_TOOLS_SHARE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#define CLI_MAX_FLAGS 8

/* An option without an argument (--name, and -c when short_name is set) that sets *value. */
struct cli_flag {
	const char *name;
	bool *value;
	char short_name;     /* 0: none */
};

/*
 * Parse argv's options: `flags` (up to CLI_MAX_FLAGS, ended by a NULL name) and -h/--help;
 * the operands are then argv[optind..argc). Accepts between min_operands and max_operands of
 * them. Returns -1 when the command should go on, else its exit status (help was printed, or
 * a usage error with the usage on stderr).
 */
int cli_parse_flags(int argc, char **argv, const struct cli_flag *flags, int min_operands,
		    int max_operands, void (*usage)(FILE *f));

/*
 * Answer getopt_long's '?' or ':' (optstring starting with ':', opterr 0): "cowfs CMD:
 * unrecognized option '--x'" or "option '--x' needs a value", then the usage on stderr.
 * argv[0] is the command's name. Returns EXIT_USAGE.
 */
int cli_option_error(char **argv, int c, void (*usage)(FILE *f));

#endif
