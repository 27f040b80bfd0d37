/*  main.c: shoal, the command-line client of the controller's REST API.

    Thin on purpose: read the command line, set up libcurl and a session,
    run the command from the table, tear down in reverse order. What each
    command does is in commands.c (and logs.c, watch.c); how argv is read
    is in options.c.

    stdout is checked at the end, as GNU tools do: output lost to a full
    disk or a closed pipe is an error, not a silent success.               */
#include "cli.h"

#include <curl/curl.h>
#include <stdio.h>

/*  Flushes and closes stdout; returns `rc`, or CLI_EXIT_API when output
    could not be written.                                                  */
static int
s_close_stdout (int rc)
{
    if (ferror (stdout) | (fclose (stdout) != 0)) {
        fprintf (stderr, CLI_PROGRAM ": write error on standard output\n");
        return rc ? rc : CLI_EXIT_API;
    }
    return rc;
}

int
main (int argc, char **argv)
{
    cli_options_t options;
    const cli_command_t *command;
    int rc = cli_options_parse (argc, argv, &options, &command);
    if (rc >= 0) {
        cli_options_release (&options);
        return s_close_stdout (rc);
    }

    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf (stderr, CLI_PROGRAM ": cannot initialise libcurl\n");
        return CLI_EXIT_API;
    }
    cli_session_t session;
    rc = cli_session_open (&session, &options);
    if (rc == 0)
        rc = command->run (&session, &options);
    cli_session_close (&session);
    curl_global_cleanup ();
    cli_options_release (&options);
    return s_close_stdout (rc);
}
