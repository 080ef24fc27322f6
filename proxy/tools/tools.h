/* tools.h - the subcommands of the nearcache binary: `nearcache <tool> ...`.
 *
 * main() hands over when its first argument does not start with '-'. Each
 * tool is a row {name, function, summary} of one table in tools.c, and runs
 * with its own arguments (argv[0] is its name). Exit status of every tool:
 * 0 done, 1 a runtime failure (Redis unreachable, refused, ...), 2 bad usage
 * or input, each with a one-line message on stderr.
 */
#ifndef NEARCACHE_TOOLS_H
#define NEARCACHE_TOOLS_H

/* A tool's entry point: argv[0] is the tool's name. Returns the exit status. */
typedef int (*tools_main_fn)(int argc, char **argv);

/* Runs the tool argv[0] with its arguments; `help` (or `--help`) lists the
 * tools on stdout (0), an unknown name lists them on stderr (2). Returns the
 * exit status. */
int tools_main(int argc, char **argv);

#endif
