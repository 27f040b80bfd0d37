/*  dashboard.c: serves the compiled-in dashboard files (see dashboard.h).

    The headers are the same for every file: the policy allows this
    origin only, no inline script or style element, no framing, and sends
    no referrer, so a job id in the page never leaks to another site.    */
#include "dashboard.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Sent with every file. connect-src 'self' lets the script call the API
    and read the event stream; nothing else leaves the page.              */
#define S_SECURITY_HEADERS                                                 \
    "Content-Security-Policy: default-src 'self'; script-src 'self'; "     \
    "style-src 'self'; img-src 'self'; connect-src 'self'; "               \
    "object-src 'none'; base-uri 'none'; form-action 'self'; "             \
    "frame-ancestors 'none'\r\n"                                           \
    "X-Content-Type-Options: nosniff\r\n"                                  \
    "X-Frame-Options: DENY\r\n"                                            \
    "Referrer-Policy: no-referrer\r\n"

const shoal_dashboard_asset_t *
shoal_dashboard_find (const char *path)
{
    for (size_t i = 0; path && i < shoal_dashboard_asset_count; i++)
        if (strcmp (shoal_dashboard_assets[i].path, path) == 0)
            return shoal_dashboard_assets + i;
    return NULL;
}

int
shoal_dashboard_serve (struct mg_connection *conn, const char *path)
{
    const shoal_dashboard_asset_t *asset = shoal_dashboard_find (path);
    if (!asset)
        return 404;
    /* no-cache: the browser may keep a copy but asks each time; a new
       controller build has new ETags, so the page and its script never
       come from two different builds. */
    const char *match = mg_get_header (conn, "If-None-Match");
    if (match && strstr (match, asset->etag)) {
        mg_printf (conn,
                   "HTTP/1.1 304 Not Modified\r\n"
                   "ETag: %s\r\n"
                   "Cache-Control: no-cache\r\n"
                   S_SECURITY_HEADERS
                   "\r\n", asset->etag);
        return 304;
    }
    /* Headers and body in one write, like the JSON answers: a split
       write on a keep-alive connection waits for the delayed ACK. */
    char head[1024];
    int head_size = snprintf (head, sizeof head,
                              "HTTP/1.1 200 OK\r\n"
                              "Content-Type: %s\r\n"
                              "Content-Length: %zu\r\n"
                              "ETag: %s\r\n"
                              "Cache-Control: no-cache\r\n"
                              S_SECURITY_HEADERS
                              "\r\n", asset->type, asset->size, asset->etag);
    if (head_size < 0 || (size_t) head_size >= sizeof head)
        return 500;
    char *whole = malloc ((size_t) head_size + asset->size);
    if (!whole) {
        mg_write (conn, head, (size_t) head_size);
        mg_write (conn, asset->data, asset->size);
        return 200;
    }
    memcpy (whole, head, (size_t) head_size);
    memcpy (whole + head_size, asset->data, asset->size);
    mg_write (conn, whole, (size_t) head_size + asset->size);
    free (whole);
    return 200;
}
