/* The mount commands' boolean flags, help and usage errors (cli.h). */
#include "tools/share/cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tools/prog.h"

int cli_option_error(char **argv, int c, void (*usage)(FILE *f))
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		fprintf(stderr, PROG " %s: option '%s' needs a value\n", argv[0], arg);
	else if (optopt && arg[0] == '-' && arg[1] != '-')
		fprintf(stderr, PROG " %s: unrecognized option '-%c'\n", argv[0], optopt);
	else
		fprintf(stderr, PROG " %s: unrecognized option '%s'\n", argv[0], arg);
	usage(stderr);
	return EXIT_USAGE;
}

int cli_parse_flags(int argc, char **argv, const struct cli_flag *flags, int min_operands,
		    int max_operands, void (*usage)(FILE *f))
{
	struct option longopts[CLI_MAX_FLAGS + 2] = { { "help", no_argument, NULL, 'h' } };
	char shorts[CLI_MAX_FLAGS + 3] = ":h";
	int n = 0, c, operands;

	while (flags[n].name) {
		/* The table is the caller's code, not input: a longer one is a bug. */
		if (n == CLI_MAX_FLAGS)
			abort();
		longopts[n + 1] = (struct option){ flags[n].name, no_argument, NULL, n + 1 };
		if (flags[n].short_name)
			strncat(shorts, &flags[n].short_name, 1);
		n++;
	}
	/* 0, not 1: glibc's full reset, so that a second parse in one process (a test running
	 * several commands) does not inherit the last one's permutation state. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
		for (int i = 0; i < n && c > n; i++) {
			if (flags[i].short_name == c)
				c = i + 1;
		}
		if (c >= 1 && c <= n) {
			*flags[c - 1].value = true;
		} else if (c == 'h') {
			usage(stdout);
			return finish_output(stdout);
		} else {
			return cli_option_error(argv, c, usage);
		}
	}
	operands = argc - optind;
	if (operands < min_operands || operands > max_operands) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return -1;
}
