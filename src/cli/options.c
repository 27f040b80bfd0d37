/*  options.c: reads the command line of `shoal`.

    `shoal [GLOBAL OPTION]... COMMAND [OPERAND|OPTION]...`. One table
    lists every option: its names, its argument, its help line and the bit
    a command must accept it by. argv is read twice with getopt_long: up
    to the command (options before it), then the command's own words
    (options and operands in any order, GNU style). Any option may appear
    in either place; once the command is known, an option it does not take
    is a usage error that names both. Values are checked here, so a
    command only ever sees a well-formed command line.

    The controller's URL and token come from a flag, else the environment
    (SHOAL_URL, SHOAL_TOKEN), else the configuration file (--config,
    SHOAL_CLI_CONFIG or ~/.config/shoal/cli.yaml; read with the core's
    options module), else the default. getopt's own messages are off (opterr = 0): ours say "shoal:",
    not argv[0], and point at --help, as GNU tools do.                     */
#include "cli.h"

#include "shoal/options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SHOAL_VERSION
#define SHOAL_VERSION "unknown"
#endif

/*  Bits of the options every command takes.                               */
#define S_GLOBAL 0u

/*  Ids of the options (getopt_long's `val`), beyond any character.        */
enum {
    S_URL = 256,
    S_TOKEN,
    S_TOKEN_FILE,
    S_JSON,
    S_HELP,
    S_VERSION,
    S_PARAM,
    S_HEADER,
    S_NO_START,
    S_WAIT,
    S_IDEMPOTENCY_KEY,
    S_STATE,
    S_LIMIT,
    S_FOLLOW,
    S_CONFIG,
};

/*  One option of the table.                                               */
typedef struct {
    int id;                     /* S_* value getopt_long returns           */
    const char *name;           /* long name, without "--"                 */
    char short_name;            /* one-letter name, 0 for none             */
    const char *arg;            /* argument name in help, NULL: no arg     */
    unsigned bit;               /* CLI_OPT_* a command needs, S_GLOBAL     */
    const char *help;           /* one line for --help                     */
} s_option_t;

static const s_option_t s_options[] = {
    { S_PARAM, "param", 'p', "KEY=VALUE", CLI_OPT_PARAM,
      "a job parameter (repeat for more)" },
    { S_HEADER, "header", 'H', "'NAME: VALUE'", CLI_OPT_HEADER,
      "a request header, for http-header inputs\n(repeat for more)" },
    { S_NO_START, "no-start", 0, NULL, CLI_OPT_NO_START,
      "create the job in state 'created'\n(start it with 'shoal start')" },
    { S_WAIT, "wait", 0, NULL, CLI_OPT_WAIT,
      "follow the job until it ends; the exit\nstatus says how it ended" },
    { S_IDEMPOTENCY_KEY, "idempotency-key", 0, "KEY", CLI_OPT_IDEMPOTENCY_KEY,
      "submit at most once per KEY (safe to\nrepeat after a timeout)" },
    { S_STATE, "state", 0, "STATE", CLI_OPT_STATE,
      "only jobs in STATE: created, running,\nsucceeded, failed or canceled" },
    { S_LIMIT, "limit", 0, "N", CLI_OPT_LIMIT,
      "at most N jobs, newest first (default 50)" },
    { S_FOLLOW, "follow", 'f', NULL, CLI_OPT_FOLLOW,
      "print new output as it comes, until the\ntask (without TASK: the job) has ended" },
    { S_JSON, "json", 0, NULL, S_GLOBAL,
      "print the API's JSON instead of tables" },
    { S_URL, "url", 0, "URL", S_GLOBAL,
      "controller URL (env SHOAL_URL,\ndefault " CLI_DEFAULT_URL ")" },
    { S_TOKEN, "token", 0, "TOKEN", S_GLOBAL,
      "API token, sent as X-Shoal-Token\n(env SHOAL_TOKEN)" },
    { S_TOKEN_FILE, "token-file", 0, "FILE", S_GLOBAL,
      "read the API token from the first line\nof FILE" },
    { S_CONFIG, "config", 0, "FILE", S_GLOBAL,
      "read url, token or token-file from FILE\n(YAML; env SHOAL_CLI_CONFIG, "
      "default\n~/.config/shoal/cli.yaml if it exists)" },
    { S_HELP, "help", 0, NULL, S_GLOBAL, "print this help and exit" },
    { S_VERSION, "version", 0, NULL, S_GLOBAL,
      "print the version and exit" },
};

#define S_OPTION_COUNT (sizeof s_options / sizeof s_options[0])

/*  What the two passes over argv found, beyond cli_options_t.            */
typedef struct {
    unsigned seen;              /* CLI_OPT_* bits given                    */
    const char *spelled[16];    /* long name of each bit given             */
    bool help;                  /* --help given                            */
    bool version;               /* --version given                         */
} s_parse_t;

int
cli_usage_error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, CLI_PROGRAM ": ");
    vfprintf (stderr, format, args);
    va_end (args);
    fprintf (stderr, "\nTry '" CLI_PROGRAM " --help' for more information.\n");
    return CLI_EXIT_USAGE;
}

/*  The table entry of an option getopt_long returned (its id or its
    letter), or NULL.                                                      */
static const s_option_t *
s_option_by_id (int id)
{
    for (size_t i = 0; i < S_OPTION_COUNT; i++)
        if (s_options[i].id == id || (s_options[i].short_name
                                      && s_options[i].short_name == id))
            return &s_options[i];
    return NULL;
}

/*  The position of the lowest set bit of a CLI_OPT_* value.              */
static int
s_bit_index (unsigned bit)
{
    int index = 0;
    while (bit > 1) {
        bit >>= 1;
        index++;
    }
    return index;
}

/*  "  -p, --param KEY=VALUE    help", the help's lines indented alike.   */
static void
s_print_option (FILE *out, const s_option_t *option)
{
    char names[64];
    if (option->short_name)
        snprintf (names, sizeof names, "-%c, --%s%s%s", option->short_name,
                  option->name, option->arg ? " " : "",
                  option->arg ? option->arg : "");
    else
        snprintf (names, sizeof names, "    --%s%s%s", option->name,
                  option->arg ? " " : "", option->arg ? option->arg : "");
    if (strlen (names) > 26)
        fprintf (out, "  %s\n  %-26s  ", names, "");
    else
        fprintf (out, "  %-26s  ", names);
    for (const char *help = option->help; *help; ) {
        size_t len = strcspn (help, "\n");
        fprintf (out, "%.*s\n", (int) len, help);
        help += len;
        if (*help == '\n' && *++help)
            fprintf (out, "  %-26s  ", "");
    }
}

/*  The options every command takes, for the help texts.                  */
static void
s_print_global_options (FILE *out)
{
    for (size_t i = 0; i < S_OPTION_COUNT; i++)
        if (s_options[i].bit == S_GLOBAL)
            s_print_option (out, &s_options[i]);
}

/*  The exit statuses, the same words as docs/cli.md.                      */
static void
s_print_exit_codes (FILE *out)
{
    fprintf (out,
             "\nExit status: 0 done (a waited-for job succeeded), 1 the job "
             "failed,\n2 usage error, 3 the job was canceled, 4 the API "
             "refused or could\nnot be reached.\n");
}

/*  `shoal --help`.                                                        */
static void
s_usage (FILE *out)
{
    fprintf (out,
             "Usage: " CLI_PROGRAM " [OPTION]... COMMAND [ARG]...\n"
             "Talk to a shoal controller's REST API: submit and follow jobs,\n"
             "list jobs, tasks and workers, read task logs.\n"
             "\nCommands:\n");
    cli_commands_print (out);
    fprintf (out, "\nOptions (before or after the command):\n");
    s_print_global_options (out);
    fprintf (out,
             "\n'" CLI_PROGRAM " COMMAND --help' shows a command's options.\n"
             "Colours are off when stdout is not a terminal or NO_COLOR is "
             "set.\n");
    s_print_exit_codes (out);
}

/*  `shoal COMMAND --help`: the synopsis, the details, the options the
    command takes, then the global ones.                                   */
static void
s_command_usage (FILE *out, const cli_command_t *command)
{
    fprintf (out, "Usage: " CLI_PROGRAM " %s%s%s [OPTION]...\n%s\n",
             command->name, *command->operands ? " " : "",
             command->operands, command->summary);
    if (command->details)
        fprintf (out, "\n%s", command->details);
    fprintf (out, "\nOptions:\n");
    for (size_t i = 0; i < S_OPTION_COUNT; i++)
        if (s_options[i].bit != S_GLOBAL
            && (s_options[i].bit & command->accepts))
            s_print_option (out, &s_options[i]);
    s_print_global_options (out);
    s_print_exit_codes (out);
}

/*  Records one option. Returns -1 to go on or an exit code.               */
static int
s_take (int id, const char *arg, cli_options_t *options, s_parse_t *parse)
{
    const s_option_t *option = s_option_by_id (id);
    if (option && option->bit != S_GLOBAL) {
        parse->seen |= option->bit;
        if (!parse->spelled[s_bit_index (option->bit)])
            parse->spelled[s_bit_index (option->bit)] = option->name;
    }
    switch (option ? option->id : 0) {
        case S_URL:
            options->url = arg;
            break;
        case S_TOKEN:
            options->token = arg;
            options->token_file = NULL;
            break;
        case S_TOKEN_FILE:
            options->token_file = arg;
            options->token = NULL;
            break;
        case S_CONFIG:
            options->config_path = arg;
            break;
        case S_JSON:
            options->json = true;
            break;
        case S_HELP:
            parse->help = true;
            break;
        case S_VERSION:
            parse->version = true;
            break;
        case S_PARAM:
            if (options->param_count == CLI_PARAMS_MAX)
                return cli_usage_error ("at most %d params", CLI_PARAMS_MAX);
            options->params[options->param_count++] = arg;
            break;
        case S_HEADER:
            if (options->header_count == CLI_HEADERS_MAX)
                return cli_usage_error ("at most %d headers",
                                        CLI_HEADERS_MAX);
            options->headers[options->header_count++] = arg;
            break;
        case S_NO_START:
            options->no_start = true;
            break;
        case S_WAIT:
            options->wait = true;
            break;
        case S_IDEMPOTENCY_KEY:
            options->idempotency_key = arg;
            break;
        case S_STATE:
            options->state = arg;
            break;
        case S_LIMIT: {
            char *end;
            errno = 0;
            long limit = strtol (arg, &end, 10);
            if (errno || end == arg || *end || limit < 1)
                return cli_usage_error ("--limit wants a positive number, "
                                        "not '%s'", arg);
            options->limit = limit;
            break;
        }
        case S_FOLLOW:
            options->follow = true;
            break;
        default:
            return cli_usage_error ("internal error: option %d", id);
    }
    return -1;
}

/*  One getopt_long pass over argv[0..argc), from argv[1]. `stop_early`
    stops at the first operand (the command). Returns -1 to go on or an
    exit code.                                                             */
static int
s_pass (int argc, char **argv, bool stop_early, cli_options_t *options,
        s_parse_t *parse)
{
    struct option long_options[S_OPTION_COUNT + 1];
    char short_options[3 + 2 * S_OPTION_COUNT + 1];
    size_t used = 0;
    if (stop_early)
        short_options[used++] = '+';
    short_options[used++] = ':';
    for (size_t i = 0; i < S_OPTION_COUNT; i++) {
        long_options[i] = (struct option) {
            s_options[i].name,
            s_options[i].arg ? required_argument : no_argument, NULL,
            s_options[i].id
        };
        if (s_options[i].short_name) {
            short_options[used++] = s_options[i].short_name;
            if (s_options[i].arg)
                short_options[used++] = ':';
        }
    }
    long_options[S_OPTION_COUNT] = (struct option) { NULL, 0, NULL, 0 };
    short_options[used] = '\0';

    opterr = 0;
    optind = 0;                 /* GNU: start afresh, argv[0] skipped      */
    int opt;
    while ((opt = getopt_long (argc, argv, short_options, long_options,
                               NULL)) != -1) {
        if (opt == '?') {
            if (optopt && optopt < 256)
                return cli_usage_error ("invalid option -- '%c'", optopt);
            return cli_usage_error ("unrecognized option '%s'",
                                    argv[optind - 1]);
        }
        if (opt == ':') {
            const s_option_t *option = s_option_by_id (optopt);
            if (option && optopt < 256)
                return cli_usage_error ("option requires an argument -- "
                                        "'%c'", optopt);
            return cli_usage_error ("option '--%s' requires an argument",
                                    option ? option->name : "?");
        }
        int rc = s_take (opt, optarg, options, parse);
        if (rc >= 0)
            return rc;
    }
    return -1;
}

/*  Checks the values of options that have a form. Returns -1 or an exit
    code.                                                                  */
static int
s_check_values (const cli_options_t *options)
{
    for (size_t i = 0; i < options->param_count; i++) {
        const char *param = options->params[i];
        const char *equals = strchr (param, '=');
        if (!equals || equals == param)
            return cli_usage_error ("-p wants KEY=VALUE, not '%s'", param);
        size_t key_len = (size_t) (equals - param);
        for (size_t j = 0; j < i; j++)
            if (strncmp (options->params[j], param, key_len + 1) == 0)
                return cli_usage_error ("param '%.*s' given twice",
                                        (int) key_len, param);
    }
    for (size_t i = 0; i < options->header_count; i++) {
        const char *header = options->headers[i];
        const char *colon = strchr (header, ':');
        bool ok = colon && colon != header
                  && strpbrk (header, "\r\n") == NULL
                  && strlen (header) <= CLI_HEADER_MAX;
        for (const char *c = header; ok && c < colon; c++)
            ok = *c > 0x20 && *c < 0x7f;
        if (!ok)
            return cli_usage_error ("-H wants 'Name: value' on one line, "
                                    "not '%s'", header);
    }
    const char *key = options->idempotency_key;
    if (key && (strlen (key) > CLI_HEADER_MAX || strpbrk (key, "\r\n")))
        return cli_usage_error ("--idempotency-key must be one line");
    if (options->wait && options->no_start)
        return cli_usage_error ("--wait and --no-start do not go together: "
                                "a job that is not started never ends");
    for (size_t i = 0; i < options->arg_count; i++)
        if (strlen (options->args[i]) > CLI_ID_MAX)
            return cli_usage_error ("'%.40s...' is too long (at most %d "
                                    "bytes)", options->args[i], CLI_ID_MAX);
    return -1;
}

void
cli_options_release (cli_options_t *options)
{
    shoal_options_destroy (&options->config);
}

/*  Fills what no flag gave of the URL and the token: the environment,
    then the configuration file, then the default. The token counts as one
    setting, whether given itself or as a file: a --token-file flag hides
    SHOAL_TOKEN and both of the file's. Returns -1 or an exit code.        */
static int
s_resolve (cli_options_t *options)
{
    const char *url = NULL, *token = NULL, *token_file = NULL;
    const shoal_option_t table[] = {
        { "url", 0, NULL, SHOAL_OPT_STRING, "URL", "", 0, 0, NULL, &url, 0 },
        { "token", 0, NULL, SHOAL_OPT_STRING, "TOKEN", "", 0, 0, NULL,
          &token, 0 },
        { "token-file", 0, NULL, SHOAL_OPT_STRING, "FILE", "", 0, 0, NULL,
          &token_file, 0 },
    };
    options->config = shoal_options_new (CLI_PROGRAM, "", "", NULL, NULL,
                                         table, 3);
    if (!options->config)
        return cli_usage_error ("out of memory");
    /* A file the user named must exist; the default one may not. */
    const char *path = options->config_path;
    const char *env_path = getenv ("SHOAL_CLI_CONFIG");
    char home_path[4096];
    bool required = true;
    if (!path && env_path && *env_path)
        path = env_path;
    if (!path) {
        const char *xdg = getenv ("XDG_CONFIG_HOME");
        const char *home = getenv ("HOME");
        if (xdg && *xdg == '/')
            snprintf (home_path, sizeof home_path, "%s/shoal/cli.yaml", xdg);
        else if (home && *home)
            snprintf (home_path, sizeof home_path,
                      "%s/.config/shoal/cli.yaml", home);
        else
            home_path[0] = '\0';
        path = *home_path ? home_path : NULL;
        required = false;
    }
    if (path && shoal_options_read_config (options->config, path, required,
                                           stderr))
        return CLI_EXIT_USAGE;

    const char *env_url = getenv ("SHOAL_URL");
    if (!options->url)
        options->url = env_url && *env_url ? env_url
                       : url ? url : CLI_DEFAULT_URL;
    const char *env_token = getenv ("SHOAL_TOKEN");
    if (!options->token && !options->token_file) {
        if (env_token && *env_token)
            options->token = env_token;
        else if (token_file)
            options->token_file = token_file;
        else
            options->token = token;
    }
    return -1;
}

int
cli_options_parse (int argc, char **argv, cli_options_t *options,
                   const cli_command_t **command)
{
    memset (options, 0, sizeof *options);
    *command = NULL;

    s_parse_t parse = { 0 };
    int rc = s_pass (argc, argv, true, options, &parse);
    if (rc >= 0)
        return rc;
    if (parse.version) {
        printf (CLI_PROGRAM " " SHOAL_VERSION "\n");
        return CLI_EXIT_OK;
    }
    int first = optind;
    if (first >= argc) {
        if (parse.help) {
            s_usage (stdout);
            return CLI_EXIT_OK;
        }
        return cli_usage_error ("no command given");
    }
    const cli_command_t *found = cli_command_find (argv[first]);
    if (!found)
        return cli_usage_error ("unknown command '%s'", argv[first]);

    //  The command's own words: argv[first] plays argv[0].
    rc = s_pass (argc - first, argv + first, false, options, &parse);
    if (rc >= 0)
        return rc;
    if (parse.version) {
        printf (CLI_PROGRAM " " SHOAL_VERSION "\n");
        return CLI_EXIT_OK;
    }
    char **operands = argv + first + optind;
    size_t count = (size_t) (argc - first - optind);

    if (!found->run) {
        //  `shoal help [COMMAND]`.
        const cli_command_t *topic = count ? cli_command_find (operands[0])
                                           : NULL;
        if (count > 1 || (count && !topic))
            return cli_usage_error ("'help' takes one command name");
        if (topic && topic->run)
            s_command_usage (stdout, topic);
        else
            s_usage (stdout);
        return CLI_EXIT_OK;
    }
    if (parse.help) {
        s_command_usage (stdout, found);
        return CLI_EXIT_OK;
    }
    unsigned refused = parse.seen & ~found->accepts;
    if (refused) {
        const char *name = parse.spelled[s_bit_index (refused & -refused)];
        return cli_usage_error ("option '--%s' does not apply to '%s'",
                                name ? name : "?", found->name);
    }
    if (count < found->min_args)
        return cli_usage_error ("'%s' needs %s", found->name,
                                found->operands);
    if (count > found->max_args)
        return cli_usage_error ("'%s' takes %s%s, not '%s'", found->name,
                                found->max_args ? "only " : "no operands",
                                found->max_args ? found->operands : "",
                                operands[found->max_args]);
    for (size_t i = 0; i < count; i++)
        options->args[i] = operands[i];
    options->arg_count = count;
    rc = s_check_values (options);
    if (rc >= 0)
        return rc;
    rc = s_resolve (options);
    if (rc >= 0)
        return rc;
    *command = found;
    return -1;
}
