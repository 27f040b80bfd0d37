/*  options.h: the options of a binary, from flags, environment variables
    and a configuration file, in that order of precedence.

    A main describes its options once, as a table: long name (also the key
    in the configuration file), one-letter name, environment variable,
    type, help text and where the value goes. shoal_options_parse reads
    the command line, finds the configuration file (--config, else
    SHOAL_CONFIG, else a default path read only if it exists), then
    applies the file, the environment and the flags over the defaults a
    main has put in the targets beforehand. Each value is checked where it
    is read, and an error names where it came from: "--slots",
    "SHOAL_SLOTS" or "worker.yaml:3:8: slots".

    --help, --version and --config are added to every table; --help text
    is generated from the table (GNU style, to stdout, exit 0); usage
    errors go to stderr with "Try 'PROGRAM --help'." and exit status 2.

    The configuration file is a YAML mapping whose keys are long option
    names (`http: 0.0.0.0:8080`, `slots: 4`, `plaintext: true`); an
    unknown key, a value of the wrong type (a list, a mapping, a word
    where a number goes) or a bad value is an error at file:line:column. */
#ifndef SHOAL_OPTIONS_H
#define SHOAL_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/*  What an option holds, and the type of its target.                      */
typedef enum {
    SHOAL_OPT_STRING,       /* const char ** ; non-empty, <= max bytes     */
    SHOAL_OPT_INT,          /* int * ; an integer from min to max          */
    SHOAL_OPT_BOOL,         /* bool * ; a flag without an argument         */
    SHOAL_OPT_CHOICE,       /* const char ** ; one of `choices`            */
} shoal_opt_type_t;

/*  Bits of shoal_option_t.flags.                                          */
enum {
    SHOAL_OPT_NO_FILE = 1u << 0,    /* not a configuration key (an action) */
};

/*  One option. The table is copied; its strings, choices and targets are
    borrowed and must outlive the parser.                                  */
typedef struct {
    const char *name;           /* long name without "--"; the file key    */
    char short_name;            /* one-letter name, 0 for none             */
    const char *env;            /* environment variable, NULL for none     */
    shoal_opt_type_t type;      /* what the value is                       */
    const char *arg;            /* argument name in --help ("FILE")        */
    const char *help;           /* help text, '\n' between lines           */
    long min;                   /* SHOAL_OPT_INT: smallest value           */
    long max;                   /* INT: largest; STRING: most bytes (0: 4096) */
    const char *const *choices; /* SHOAL_OPT_CHOICE: NULL-terminated list  */
    void *target;               /* where the value goes (see the type)     */
    unsigned flags;             /* SHOAL_OPT_* bits                        */
} shoal_option_t;

/*  What shoal_options_parse tells a main to do.                           */
enum {
    SHOAL_OPTIONS_RUN = 0,      /* go on with the values in the targets    */
    SHOAL_OPTIONS_EXIT = 1,     /* --help or --version printed: exit 0     */
    SHOAL_OPTIONS_USAGE = 2,    /* a usage error was printed: exit 2       */
};

typedef struct shoal_options shoal_options_t;

/*  Creates a parser for `program` (borrowed, e.g. "shoal-worker").
    `usage` is the synopsis after "Usage: PROGRAM " and `summary` one line
    saying what the program does; `epilog` (may be NULL) is printed after
    the options. `default_config` (may be NULL) is the file read when
    neither --config nor SHOAL_CONFIG names one, and only if it exists.
    The strings are borrowed; the table is copied. Returns NULL when out
    of memory.                                                             */
shoal_options_t *shoal_options_new (const char *program, const char *usage,
                                    const char *summary, const char *epilog,
                                    const char *default_config,
                                    const shoal_option_t *table,
                                    size_t count);

/*  Frees the parser and the values read from the file (targets that
    point into them dangle afterwards). Accepts NULL; nulls *self_p.       */
void shoal_options_destroy (shoal_options_t **self_p);

/*  Reads argv, the configuration file and the environment into the
    targets: flag > environment > file > the value the target held. Help
    and version go to `out`, errors to `err`. Returns SHOAL_OPTIONS_*.    */
int shoal_options_parse (shoal_options_t *self, int argc, char **argv,
                         FILE *out, FILE *err);

/*  Reads configuration file `path` alone into the targets, checked as
    shoal_options_parse checks it, for a program that reads its own
    command line (the `shoal` client, whose options depend on the
    command). `required`: a missing file is an error; otherwise it is
    skipped. Returns SHOAL_OPTIONS_RUN or SHOAL_OPTIONS_USAGE.            */
int shoal_options_read_config (shoal_options_t *self, const char *path,
                               bool required, FILE *err);

/*  Prints the generated --help text.                                      */
void shoal_options_help (shoal_options_t *self, FILE *out);

/*  Where option `name`'s value came from: "--name", "SHOAL_X", or
    "FILE:LINE:COLUMN: name"; "--name" when it kept its default. The
    string lives as long as the parser.                                    */
const char *shoal_options_origin (shoal_options_t *self, const char *name);

/*  The configuration file read, or NULL when none was.                    */
const char *shoal_options_config_file (shoal_options_t *self);

/*  Prints "PROGRAM: MESSAGE" and the "Try 'PROGRAM --help'." line to
    `err`; returns SHOAL_OPTIONS_USAGE.                                    */
int shoal_options_usage_error (shoal_options_t *self, FILE *err,
                               const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#endif
