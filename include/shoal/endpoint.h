/*  endpoint.h: what a ZeroMQ endpoint says about who can reach it.       */
#ifndef SHOAL_ENDPOINT_H
#define SHOAL_ENDPOINT_H

#include <stdbool.h>

/*  True when only this machine can use `endpoint`: inproc:// and ipc://,
    or tcp:// on a loopback address (127.0.0.0/8, localhost, [::1]).
    Everything else (a wildcard, a host name, another address) may be
    reached over a network, where shoal wants CURVE or an explicit
    --plaintext.                                                          */
bool shoal_endpoint_is_local (const char *endpoint);

#endif
