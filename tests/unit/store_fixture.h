/*  store_fixture.h: what the store's tests and the writer's share: a
    scheduler over their definitions, and the path of a SQLite file in a
    temp directory of its own, removed with the file's WAL and index.
    Included by one test file each (its functions are static).           */
#ifndef SHOAL_TESTS_STORE_FIXTURE_H
#define SHOAL_TESTS_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shoal/defs.h"
#include "shoal/scheduler.h"

typedef struct {
    char dir[64];
    char path[96];
    shoal_defs_t *defs;
    shoal_scheduler_t *sched;
} s_fixture_t;

/*  A fixture over the definitions `yaml`; `name` names the directory
    (/tmp/shoal-test-NAME- and six characters mkdtemp picks) and the
    definitions' file in errors.                                          */
static s_fixture_t *
s_fixture_new (const char *yaml, const char *name)
{
    s_fixture_t *fx = calloc (1, sizeof *fx);
    assert_non_null (fx);
    /* mkdtemp replaces the template's last six characters. */
    snprintf (fx->dir, sizeof fx->dir, "/tmp/shoal-test-%s-XXXXXX", name);
    assert_non_null (mkdtemp (fx->dir));
    snprintf (fx->path, sizeof fx->path, "%s/shoal.db", fx->dir);
    char file[64];
    snprintf (file, sizeof file, "%s.yaml", name);
    shoal_error_t err = { 0 };
    fx->defs = shoal_defs_parse (yaml, strlen (yaml), file, &err);
    if (!fx->defs)
        fail_msg ("%s", err.message);
    fx->sched = shoal_scheduler_new (fx->defs);
    return fx;
}

static void
s_fixture_destroy (s_fixture_t *fx)
{
    shoal_scheduler_destroy (&fx->sched);
    shoal_defs_destroy (&fx->defs);
    char path[128];
    const char *suffixes[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s%s", fx->path, suffixes[i]);
        unlink (path);
    }
    rmdir (fx->dir);
    free (fx);
}

#endif
