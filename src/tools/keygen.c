/*  keygen.c: shoal-keygen, CURVE key pairs for controllers and workers.

    Writes NAME.key (the public key, to hand out: the controller's goes to
    every worker, each worker's into the controller's authorized
    directory) and NAME.key_secret (the key pair, mode 0600, stays with its
    owner), in czmq's certificate format.                                  */
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: shoal-keygen [--dir DIR] NAME\n"
        "Make a CURVE key pair for a shoal controller or worker.\n"
        "\n"
        "Writes DIR/NAME.key (public: give the controller's to every worker\n"
        "with --curve-server, put each worker's in the controller's\n"
        "--curve-clients directory) and DIR/NAME.key_secret (private, mode\n"
        "0600: pass it to its owner's --curve-secret as DIR/NAME.key).\n"
        "\n"
        "  -d, --dir DIR   where to write the files [default: .]\n"
        "  -f, --force     replace existing files\n"
        "  -h, --help      show this help and exit\n"
        "  -V, --version   show the version and exit\n");
}

int
main (int argc, char *argv[])
{
    const char *dir = ".";
    bool force = false;
    static const struct option options[] = {
        { "dir", required_argument, NULL, 'd' },
        { "force", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long (argc, argv, "d:fhV", options, NULL)) != -1) {
        switch (c) {
            case 'd': dir = optarg; break;
            case 'f': force = true; break;
            case 'h': s_usage (stdout); return 0;
            case 'V': printf ("shoal-keygen %s\n", SHOAL_VERSION); return 0;
            default:
                fprintf (stderr, "Try 'shoal-keygen --help'.\n");
                return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf (stderr, "shoal-keygen: give exactly one NAME\n"
                 "Try 'shoal-keygen --help'.\n");
        return 2;
    }
    const char *name = argv[optind];
    if (!*name || strchr (name, '/')) {
        fprintf (stderr, "shoal-keygen: NAME must be a file name, not '%s'\n",
                 name);
        return 2;
    }
    char path[4096];
    char secret[4200];
    snprintf (path, sizeof path, "%s/%s.key", dir, name);
    snprintf (secret, sizeof secret, "%s_secret", path);
    struct stat st;
    if (!force && (stat (path, &st) == 0 || stat (secret, &st) == 0)) {
        fprintf (stderr, "shoal-keygen: %s exists (use --force to replace "
                 "it)\n", path);
        return 1;
    }
    if (mkdir (dir, 0755) && errno != EEXIST) {
        fprintf (stderr, "shoal-keygen: cannot make %s: %s\n", dir,
                 strerror (errno));
        return 1;
    }
    zsys_handler_set (NULL);
    zcert_t *cert = zcert_new ();
    if (!cert) {
        fprintf (stderr, "shoal-keygen: cannot make a key pair\n");
        return 1;
    }
    zcert_set_meta (cert, "name", "%s", name);
    /* zcert_save writes the secret file with mode 0600 itself. */
    int rc = zcert_save (cert, path);
    if (rc == 0)
        printf ("public key  %s\nsecret key  %s\n%s\n", path, secret,
                zcert_public_txt (cert));
    else
        fprintf (stderr, "shoal-keygen: cannot write %s: %s\n", path,
                 strerror (errno));
    zcert_destroy (&cert);
    return rc == 0 ? 0 : 1;
}
