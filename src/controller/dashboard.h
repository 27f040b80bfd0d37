/*  dashboard.h: the web dashboard at `/`, a static page and one script
    compiled into the controller (src/controller/dashboard/, embedded by
    CMake through dashboard.c.in).

    The page is public; the API calls its script makes carry the token
    like any client's. Every answer has a strict Content-Security-Policy
    (only this origin's script, style and connections, no inline script),
    and an ETag so a browser revalidates instead of downloading again.   */
#ifndef SHOAL_CONTROLLER_DASHBOARD_H
#define SHOAL_CONTROLLER_DASHBOARD_H

#include <stddef.h>

struct mg_connection;

/*  One compiled-in file.                                                 */
typedef struct {
    const char *path;            /* URL path it is served at               */
    const char *type;            /* Content-Type                           */
    const unsigned char *data;   /* the file's bytes                       */
    size_t size;                 /* their count                            */
    const char *etag;            /* quoted SHA-256 of the content          */
} shoal_dashboard_asset_t;

/*  The table, in dashboard_assets.c (generated).                         */
extern const shoal_dashboard_asset_t shoal_dashboard_assets[];
extern const size_t shoal_dashboard_asset_count;

/*  The asset served at `path`, or NULL when there is none.               */
const shoal_dashboard_asset_t *shoal_dashboard_find (const char *path);

/*  Answers a GET of `path` on `conn`: 200 with the file, or 304 when the
    request's If-None-Match names its ETag. Returns the status sent, or
    404 (no asset has that path) or 500 with nothing sent, for the
    caller's problem answer.                                              */
int shoal_dashboard_serve (struct mg_connection *conn, const char *path);

#endif
