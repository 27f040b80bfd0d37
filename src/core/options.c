/*  options.c: flags, environment variables and a configuration file, one
    table per binary (see options.h).

    Order of work: getopt_long reads argv first but only records what each
    flag said; then the configuration file is found (it may be named by a
    flag) and applied, then the environment, then the recorded flags. Each
    step overwrites the one before, which gives flag > env > file >
    default without comparing sources. Every value is checked as it is
    applied, so a bad value in the file is an error even when a flag
    overrides it: a broken file should not wait for the day the flag goes.

    Values from the file are copied and owned by the parser; values from
    argv and the environment are borrowed from the process.                */
#include "shoal/options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/*  Options every binary has, after its own.                               */
#define S_BUILTINS 3
/*  Column where help text starts.                                         */
#define S_HELP_COLUMN 26
/*  Longest string value unless an option says otherwise.                  */
#define S_STRING_MAX 4096
/*  Most values a file may hold: more options than any binary has.         */
#define S_FILE_VALUES_MAX 256

/*  What the parser knows of one option.                                   */
typedef struct {
    const char *flag_value;     /* argument of the last flag, borrowed     */
    bool flag_given;            /* the flag appeared on the command line   */
    bool file_given;            /* the file set it (duplicates are errors) */
    char origin[512];           /* where the value in the target came from */
} s_slot_t;

struct shoal_options {
    const char *program;        /* name in messages, e.g. "shoal-worker"   */
    const char *usage;          /* synopsis after "Usage: PROGRAM "        */
    const char *summary;        /* one line: what the program does         */
    const char *epilog;         /* text after the options, may be NULL     */
    const char *default_config; /* read only if it exists, may be NULL     */
    shoal_option_t *all;        /* the caller's table, then the built-ins  */
    size_t count;               /* entries in `all`                        */
    s_slot_t *slots;            /* one per entry of `all`                  */
    bool help;                  /* --help given                            */
    bool version;               /* --version given                         */
    const char *config;         /* --config / SHOAL_CONFIG value           */
    const char *config_file;    /* the file actually read, or NULL         */
    char *owned[S_FILE_VALUES_MAX]; /* values copied out of the file       */
    size_t owned_count;         /* entries used in `owned`                 */
};

shoal_options_t *
shoal_options_new (const char *program, const char *usage,
                   const char *summary, const char *epilog,
                   const char *default_config, const shoal_option_t *table,
                   size_t count)
{
    shoal_options_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->program = program;
    self->usage = usage;
    self->summary = summary;
    self->epilog = epilog;
    self->default_config = default_config;
    self->count = count + S_BUILTINS;
    self->all = calloc (self->count, sizeof *self->all);
    self->slots = calloc (self->count, sizeof *self->slots);
    if (!self->all || !self->slots) {
        shoal_options_destroy (&self);
        return NULL;
    }
    if (count)
        memcpy (self->all, table, count * sizeof *table);
    self->all[count] = (shoal_option_t) {
        "config", 0, "SHOAL_CONFIG", SHOAL_OPT_STRING, "FILE",
        "read options from FILE (YAML); a file named\n"
        "here must exist", 0, 0, NULL, &self->config, SHOAL_OPT_NO_FILE };
    self->all[count + 1] = (shoal_option_t) {
        "help", 'h', NULL, SHOAL_OPT_BOOL, NULL,
        "print this help and exit", 0, 0, NULL, &self->help,
        SHOAL_OPT_NO_FILE };
    self->all[count + 2] = (shoal_option_t) {
        "version", 'V', NULL, SHOAL_OPT_BOOL, NULL,
        "print the version and exit", 0, 0, NULL, &self->version,
        SHOAL_OPT_NO_FILE };
    for (size_t i = 0; i < self->count; i++)
        snprintf (self->slots[i].origin, sizeof self->slots[i].origin,
                  "--%s", self->all[i].name);
    return self;
}

void
shoal_options_destroy (shoal_options_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shoal_options_t *self = *self_p;
    for (size_t i = 0; i < self->owned_count; i++)
        free (self->owned[i]);
    free (self->all);
    free (self->slots);
    free (self);
    *self_p = NULL;
}

int
shoal_options_usage_error (shoal_options_t *self, FILE *err,
                           const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fprintf (err, "%s: ", self->program);
    vfprintf (err, fmt, args);
    va_end (args);
    fprintf (err, "\nTry '%s --help' for more information.\n", self->program);
    return SHOAL_OPTIONS_USAGE;
}

/*  The index of option `name` in `all`, or -1.                            */
static int
s_find (shoal_options_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->all[i].name, name) == 0)
            return (int) i;
    return -1;
}

const char *
shoal_options_origin (shoal_options_t *self, const char *name)
{
    int i = s_find (self, name);
    return i < 0 ? name : self->slots[i].origin;
}

const char *
shoal_options_config_file (shoal_options_t *self)
{
    return self->config_file;
}

/* ---- values ----------------------------------------------------------- */

/*  Reads a yes/no word; -1 when `text` is neither.                        */
static int
s_parse_bool (const char *text)
{
    static const char *yes[] = { "1", "true", "yes", "on" };
    static const char *no[] = { "0", "false", "no", "off" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp (text, yes[i]) == 0)
            return 1;
        if (strcasecmp (text, no[i]) == 0)
            return 0;
    }
    return -1;
}

/*  Writes "a, b or c" of a choice list into `out`.                        */
static void
s_choices_text (const char *const *choices, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; choices[i] && len < size; i++) {
        const char *sep = i == 0 ? "" : choices[i + 1] ? ", " : " or ";
        int n = snprintf (out + len, size - len, "%s%s", sep, choices[i]);
        if (n < 0)
            break;
        len += (size_t) n;
    }
}

/*  Checks `text` as a value of option `i` and stores it in the target,
    recording `origin`. `text` must outlive the parser (argv, environment
    or an owned copy). Returns 0, or SHOAL_OPTIONS_USAGE after printing
    why to `err`.                                                          */
static int
s_apply (shoal_options_t *self, size_t i, const char *text,
         const char *origin, FILE *err)
{
    const shoal_option_t *opt = &self->all[i];
    switch (opt->type) {
        case SHOAL_OPT_STRING: {
            size_t max = opt->max > 0 ? (size_t) opt->max : S_STRING_MAX;
            size_t len = strlen (text);
            if (len == 0)
                return shoal_options_usage_error (self, err,
                    "%s must not be empty", origin);
            if (len > max)
                return shoal_options_usage_error (self, err,
                    "%s must be at most %zu bytes long", origin, max);
            *(const char **) opt->target = text;
            break;
        }
        case SHOAL_OPT_INT: {
            char *end;
            errno = 0;
            long value = strtol (text, &end, 10);
            if (errno || end == text || *end || value < opt->min
                || value > opt->max)
                return shoal_options_usage_error (self, err,
                    "%s must be an integer from %ld to %ld, not '%s'",
                    origin, opt->min, opt->max, text);
            *(int *) opt->target = (int) value;
            break;
        }
        case SHOAL_OPT_BOOL: {
            int value = s_parse_bool (text);
            if (value < 0)
                return shoal_options_usage_error (self, err,
                    "%s must be true or false (1/0, yes/no), not '%s'",
                    origin, text);
            *(bool *) opt->target = value == 1;
            break;
        }
        case SHOAL_OPT_CHOICE: {
            for (size_t c = 0; opt->choices[c]; c++)
                if (strcmp (text, opt->choices[c]) == 0) {
                    *(const char **) opt->target = opt->choices[c];
                    snprintf (self->slots[i].origin,
                              sizeof self->slots[i].origin, "%s", origin);
                    return 0;
                }
            char list[256];
            s_choices_text (opt->choices, list, sizeof list);
            return shoal_options_usage_error (self, err,
                "%s must be %s, not '%s'", origin, list, text);
        }
    }
    snprintf (self->slots[i].origin, sizeof self->slots[i].origin, "%s",
              origin);
    return 0;
}

/* ---- the configuration file ------------------------------------------ */

/*  What a YAML event is, for "not a ..." messages.                        */
static const char *
s_event_noun (yaml_event_type_t type)
{
    switch (type) {
        case YAML_SEQUENCE_START_EVENT: return "a list";
        case YAML_MAPPING_START_EVENT: return "a mapping";
        case YAML_ALIAS_EVENT: return "an alias";
        default: return "not a value";
    }
}

static const char *
s_type_noun (const shoal_option_t *opt)
{
    switch (opt->type) {
        case SHOAL_OPT_INT: return "an integer";
        case SHOAL_OPT_BOOL: return "true or false";
        default: return "a string";
    }
}

/*  True for a plain scalar YAML reads as null: empty, ~ or null.          */
static bool
s_is_null (const yaml_event_t *event)
{
    const char *text = (const char *) event->data.scalar.value;
    return event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
           && (!*text || !strcmp (text, "~") || !strcasecmp (text, "null"));
}

/*  Prints "PROGRAM: FILE:LINE:COLUMN: message" and the --help hint.       */
static int
s_file_error (shoal_options_t *self, FILE *err, const char *path,
              yaml_mark_t mark, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));

static int
s_file_error (shoal_options_t *self, FILE *err, const char *path,
              yaml_mark_t mark, const char *fmt, ...)
{
    char message[512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (message, sizeof message, fmt, args);
    va_end (args);
    return shoal_options_usage_error (self, err, "%s:%zu:%zu: %s", path,
                                      mark.line + 1, mark.column + 1,
                                      message);
}

/*  Reads the next event; on a syntax error prints it with its position. */
static int
s_next (shoal_options_t *self, yaml_parser_t *parser, yaml_event_t *event,
        const char *path, FILE *err)
{
    if (yaml_parser_parse (parser, event))
        return 0;
    return s_file_error (self, err, path, parser->problem_mark, "%s%s%s",
                         parser->problem ? parser->problem : "bad YAML",
                         parser->context ? " " : "",
                         parser->context ? parser->context : "");
}

/*  One `key: value` pair whose key event is `key`. Returns 0 or
    SHOAL_OPTIONS_USAGE.                                                   */
static int
s_file_pair (shoal_options_t *self, yaml_parser_t *parser,
             const yaml_event_t *key, const char *path, FILE *err)
{
    const char *name = (const char *) key->data.scalar.value;
    int i = s_find (self, name);
    if (i < 0 || (self->all[i].flags & SHOAL_OPT_NO_FILE))
        return s_file_error (self, err, path, key->start_mark,
                             "unknown key '%.100s'%s", name,
                             i < 0 ? "" : " (a command-line flag only)");
    if (self->slots[i].file_given)
        return s_file_error (self, err, path, key->start_mark,
                             "key '%s' given twice", name);
    self->slots[i].file_given = true;
    const shoal_option_t *opt = &self->all[i];

    yaml_event_t value;
    if (s_next (self, parser, &value, path, err))
        return SHOAL_OPTIONS_USAGE;
    int rc = 0;
    if (value.type != YAML_SCALAR_EVENT)
        rc = s_file_error (self, err, path, value.start_mark,
                           "%s must be %s, not %s", name, s_type_noun (opt),
                           s_event_noun (value.type));
    else if (s_is_null (&value))
        rc = s_file_error (self, err, path, value.start_mark,
                           "%s needs a value", name);
    else if (self->owned_count == S_FILE_VALUES_MAX)
        rc = s_file_error (self, err, path, value.start_mark,
                           "more than %d keys", S_FILE_VALUES_MAX);
    else {
        char *copy = strdup ((const char *) value.data.scalar.value);
        if (!copy)
            rc = s_file_error (self, err, path, value.start_mark,
                               "out of memory");
        else {
            self->owned[self->owned_count++] = copy;
            char origin[512];
            snprintf (origin, sizeof origin, "%s:%zu:%zu: %s", path,
                      value.start_mark.line + 1,
                      value.start_mark.column + 1, name);
            rc = s_apply (self, (size_t) i, copy, origin, err);
        }
    }
    yaml_event_delete (&value);
    return rc;
}

/*  The events of the whole file: one document holding one mapping (or
    none: an empty file sets nothing).                                     */
static int
s_file_events (shoal_options_t *self, yaml_parser_t *parser,
               const char *path, FILE *err)
{
    yaml_event_t event;
    int rc = s_next (self, parser, &event, path, err);
    if (rc)
        return rc;
    yaml_event_delete (&event);            /* STREAM-START */
    if ((rc = s_next (self, parser, &event, path, err)))
        return rc;
    if (event.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete (&event);
        return 0;
    }
    yaml_event_delete (&event);            /* DOCUMENT-START */
    if ((rc = s_next (self, parser, &event, path, err)))
        return rc;
    if (event.type == YAML_SCALAR_EVENT && s_is_null (&event))
        yaml_event_delete (&event);        /* a document of comments only */
    else if (event.type != YAML_MAPPING_START_EVENT) {
        rc = s_file_error (self, err, path, event.start_mark,
                           "must be a mapping of option names to values, "
                           "not %s", event.type == YAML_SCALAR_EVENT
                               ? "a string" : s_event_noun (event.type));
        yaml_event_delete (&event);
        return rc;
    }
    else {
        yaml_event_delete (&event);
        while (true) {
            if ((rc = s_next (self, parser, &event, path, err)))
                return rc;
            if (event.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete (&event);
                break;
            }
            if (event.type != YAML_SCALAR_EVENT)
                rc = s_file_error (self, err, path, event.start_mark,
                                   "keys must be option names, not %s",
                                   s_event_noun (event.type));
            else
                rc = s_file_pair (self, parser, &event, path, err);
            yaml_event_delete (&event);
            if (rc)
                return rc;
        }
    }
    if ((rc = s_next (self, parser, &event, path, err)))
        return rc;
    yaml_event_delete (&event);            /* DOCUMENT-END */
    if ((rc = s_next (self, parser, &event, path, err)))
        return rc;
    if (event.type != YAML_STREAM_END_EVENT)
        rc = s_file_error (self, err, path, event.start_mark,
                           "one document only");
    yaml_event_delete (&event);
    return rc;
}

/*  Reads `path` into the targets. `explicit`: the user named it, so a
    missing file is an error; the default file may be absent.             */
static int
s_read_file (shoal_options_t *self, const char *path, bool explicit,
             FILE *err)
{
    FILE *file = fopen (path, "re");
    if (!file) {
        if (!explicit && errno == ENOENT)
            return 0;
        return shoal_options_usage_error (self, err,
            "cannot read configuration file %s: %s", path, strerror (errno));
    }
    self->config_file = path;
    yaml_parser_t parser;
    if (!yaml_parser_initialize (&parser)) {
        fclose (file);
        return shoal_options_usage_error (self, err, "out of memory");
    }
    yaml_parser_set_input_file (&parser, file);
    int rc = s_file_events (self, &parser, path, err);
    yaml_parser_delete (&parser);
    fclose (file);
    return rc;
}

int
shoal_options_read_config (shoal_options_t *self, const char *path,
                           bool required, FILE *err)
{
    for (size_t i = 0; i < self->count; i++)
        self->slots[i].file_given = false;
    self->config_file = NULL;
    return s_read_file (self, path, required, err);
}

/* ---- the command line ------------------------------------------------- */

/*  The entry of a getopt_long result: 256 + index, or a short name.       */
static int
s_index_of (shoal_options_t *self, int c)
{
    if (c >= 256 && (size_t) (c - 256) < self->count)
        return c - 256;
    for (size_t i = 0; i < self->count; i++)
        if (self->all[i].short_name && self->all[i].short_name == c)
            return (int) i;
    return -1;
}

/*  Records the flags of argv in the slots, without applying them.         */
static int
s_read_argv (shoal_options_t *self, int argc, char **argv, FILE *err)
{
    struct option *longs = calloc (self->count + 1, sizeof *longs);
    char shorts[2 + 3 * 64] = ":";  /* ':' first: we print the errors     */
    size_t n = 1;
    if (!longs)
        return shoal_options_usage_error (self, err, "out of memory");
    for (size_t i = 0; i < self->count; i++) {
        const shoal_option_t *opt = &self->all[i];
        bool takes = opt->type != SHOAL_OPT_BOOL;
        longs[i] = (struct option) { opt->name, takes ? required_argument
                                                      : no_argument,
                                     NULL, (int) (256 + i) };
        if (opt->short_name && n + 3 < sizeof shorts) {
            shorts[n++] = opt->short_name;
            if (takes)
                shorts[n++] = ':';
        }
    }
    shorts[n] = '\0';
    int rc = 0;
    int saved_opterr = opterr;
    opterr = 0;
    optind = 0;                 /* 0: glibc starts afresh (tests parse again) */
    int c;
    while (!rc && (c = getopt_long (argc, argv, shorts, longs, NULL)) != -1) {
        const char *arg = argv[optind - 1];
        if (c == '?') {
            if (optopt && optopt < 256)
                rc = shoal_options_usage_error (self, err,
                    "invalid option -- '%c'", optopt);
            else
                rc = shoal_options_usage_error (self, err,
                    "unrecognized option '%s'", arg);
        }
        else if (c == ':') {
            int i = s_index_of (self, optopt);
            if (i >= 0 && optopt < 256)
                rc = shoal_options_usage_error (self, err,
                    "option requires an argument -- '%c'", optopt);
            else
                rc = shoal_options_usage_error (self, err,
                    "option '--%s' requires an argument",
                    i >= 0 ? self->all[i].name : arg);
        }
        else {
            int i = s_index_of (self, c);
            if (i < 0)
                rc = shoal_options_usage_error (self, err,
                                                "unexpected option");
            else {
                self->slots[i].flag_given = true;
                self->slots[i].flag_value = optarg;
            }
        }
    }
    if (!rc && optind < argc)
        rc = shoal_options_usage_error (self, err,
                                        "unexpected argument '%s'",
                                        argv[optind]);
    opterr = saved_opterr;
    free (longs);
    return rc;
}

int
shoal_options_parse (shoal_options_t *self, int argc, char **argv,
                     FILE *out, FILE *err)
{
    for (size_t i = 0; i < self->count; i++) {
        self->slots[i].flag_given = self->slots[i].file_given = false;
        self->slots[i].flag_value = NULL;
        snprintf (self->slots[i].origin, sizeof self->slots[i].origin,
                  "--%s", self->all[i].name);
    }
    self->config_file = NULL;
    int rc = s_read_argv (self, argc, argv, err);
    if (rc)
        return rc;
    /* --help and --version win over any other mistake but a bad flag. */
    int help = s_find (self, "help"), version = s_find (self, "version");
    if (self->slots[help].flag_given) {
        shoal_options_help (self, out);
        return SHOAL_OPTIONS_EXIT;
    }
    if (self->slots[version].flag_given) {
        fprintf (out, "%s %s\n", self->program, SHOAL_VERSION);
        return SHOAL_OPTIONS_EXIT;
    }
    /* The file first: --config, else SHOAL_CONFIG, else the default. */
    int config = s_find (self, "config");
    const char *path = self->slots[config].flag_value;
    const char *env_path = getenv ("SHOAL_CONFIG");
    if (self->slots[config].flag_given)
        rc = s_apply (self, (size_t) config, path, "--config", err);
    else if (env_path && *env_path)
        rc = s_apply (self, (size_t) config, env_path, "SHOAL_CONFIG", err);
    if (rc)
        return rc;
    if (self->config)
        rc = s_read_file (self, self->config, true, err);
    else if (self->default_config)
        rc = s_read_file (self, self->default_config, false, err);
    if (rc)
        return rc;
    /* Then the environment (empty counts as unset), then the flags. */
    for (size_t i = 0; i < self->count && !rc; i++) {
        const char *value = self->all[i].env ? getenv (self->all[i].env)
                                             : NULL;
        if (value && *value && i != (size_t) config)
            rc = s_apply (self, i, value, self->all[i].env, err);
    }
    for (size_t i = 0; i < self->count && !rc; i++) {
        if (!self->slots[i].flag_given || i == (size_t) config)
            continue;
        char origin[128];
        snprintf (origin, sizeof origin, "--%s", self->all[i].name);
        rc = s_apply (self, i, self->all[i].type == SHOAL_OPT_BOOL
                                   ? "true" : self->slots[i].flag_value,
                      origin, err);
    }
    return rc;
}

/* ---- --help ------------------------------------------------------------ */

/*  Prints `text` with every line after the first indented to the help
    column; `used` columns of the first line are taken already.            */
static void
s_help_text (FILE *out, const char *text, size_t used)
{
    if (used + 2 > S_HELP_COLUMN) {
        fprintf (out, "\n");
        used = 0;
    }
    fprintf (out, "%*s", (int) (S_HELP_COLUMN - used), "");
    for (const char *p = text; *p; p++) {
        fputc (*p, out);
        if (*p == '\n' && p[1])
            fprintf (out, "%*s", S_HELP_COLUMN, "");
    }
    fputc ('\n', out);
}

void
shoal_options_help (shoal_options_t *self, FILE *out)
{
    fprintf (out, "Usage: %s %s\n%s\n\n", self->program, self->usage,
             self->summary);
    for (size_t i = 0; i < self->count; i++) {
        const shoal_option_t *opt = &self->all[i];
        char head[128];
        int len = snprintf (head, sizeof head, "  %c%c%s--%s%s%s",
                            opt->short_name ? '-' : ' ',
                            opt->short_name ? opt->short_name : ' ',
                            opt->short_name ? ", " : "  ", opt->name,
                            opt->arg ? " " : "", opt->arg ? opt->arg : "");
        fputs (head, out);
        char help[1024];
        snprintf (help, sizeof help, "%s%s%s%s", opt->help,
                  opt->env ? "\n[env " : "", opt->env ? opt->env : "",
                  opt->env ? "]" : "");
        s_help_text (out, help, len < 0 ? 0 : (size_t) len);
    }
    /* Which options the file cannot set: the actions and the built-ins. */
    fprintf (out, "\nOptions but");
    size_t listed = 0, flag_only = 0;
    for (size_t i = 0; i < self->count; i++)
        flag_only += (self->all[i].flags & SHOAL_OPT_NO_FILE) != 0;
    for (size_t i = 0; i < self->count; i++)
        if (self->all[i].flags & SHOAL_OPT_NO_FILE) {
            listed++;
            fprintf (out, "%s--%s", listed == 1 ? " "
                     : listed == flag_only ? " and " : ", ",
                     self->all[i].name);
        }
    fprintf (out, "\n"
             "may also be set in the configuration file: a YAML mapping of\n"
             "long option names to values (\"data-dir: /srv/shoal\"). A flag\n"
             "overrides its environment variable, which overrides the file.\n"
             "The file is --config FILE, else SHOAL_CONFIG, else\n"
             "%s if it exists.\n",
             self->default_config ? self->default_config : "none");
    if (self->epilog)
        fprintf (out, "\n%s", self->epilog);
}
