/*  endpoint.c: telling loopback endpoints from network ones.             */
#include "shoal/endpoint.h"

#include <string.h>
#include <strings.h>

static bool
s_starts (const char *text, const char *prefix)
{
    return strncasecmp (text, prefix, strlen (prefix)) == 0;
}

bool
shoal_endpoint_is_local (const char *endpoint)
{
    if (!endpoint)
        return false;
    if (s_starts (endpoint, "inproc://") || s_starts (endpoint, "ipc://"))
        return true;
    if (!s_starts (endpoint, "tcp://"))
        return false;
    const char *host = endpoint + strlen ("tcp://");
    /* "tcp://src;dst" names a source interface: judge the destination. */
    const char *semicolon = strchr (host, ';');
    if (semicolon)
        host = semicolon + 1;
    if (s_starts (host, "127.") || s_starts (host, "localhost:")
        || s_starts (host, "[::1]:"))
        return true;
    return false;
}
