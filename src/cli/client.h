/*  client.h: the HTTP side of the `shoal` command line, over libcurl.

    One client holds one curl easy handle, so the requests of a command
    (a --wait loop polls many times) reuse one keep-alive connection. The
    client knows the controller's base URL and the API token; it knows
    nothing of jobs or tables. Every response body is bounded: a body over
    the client's limit is an error that names the limit, never a larger
    allocation.

    curl_global_init () must have run (main owns it): the client never
    calls it, because it is not thread-safe and is the program's to own.  */
#ifndef SHOAL_CLI_CLIENT_H
#define SHOAL_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

/*  Largest response body the client keeps, in bytes. A task log is the
    biggest thing the API sends; one over this is refused.                 */
#define CLI_BODY_MAX ((size_t) 64 * 1024 * 1024)

/*  Longest base URL, API path and extra header line we accept.            */
#define CLI_URL_MAX 2048
#define CLI_PATH_MAX 2048
#define CLI_HEADER_MAX 8192

typedef struct cli_client cli_client_t;

/*  One HTTP response. Invariant: after a successful request `body` is a
    NUL-terminated buffer of `size` bytes (the NUL not counted), owned by
    the response until cli_response_clear ().                              */
typedef struct {
    long status;                /* HTTP status code                        */
    char *body;                 /* the body, NUL-terminated; owned         */
    size_t size;                /* body bytes, without the NUL             */
    char content_type[128];     /* Content-Type, "" when absent            */
    bool replayed;              /* "Idempotent-Replayed: true" was sent    */
    long long range_total;      /* complete length from Content-Range (a
                                   206 or 416 answer); -1 when absent      */
} cli_response_t;

/*  Frees the body and zeroes the response; accepts a zeroed response.     */
void cli_response_clear (cli_response_t *self);

/*  True when the response is an application/problem+json object.          */
bool cli_response_is_problem (const cli_response_t *self);

/*  Makes a client for `base_url` (http:// or https://, trailing slashes
    dropped, at most CLI_URL_MAX bytes). `token` (may be NULL) is sent as
    X-Shoal-Token on every request; both are copied. Returns NULL with
    `err` filled when the URL or token is unusable or memory runs out.     */
cli_client_t *cli_client_new (const char *base_url, const char *token,
                              char *err, size_t size);

/*  Frees the client; accepts NULL and a NULL *self_p; nulls *self_p.      */
void cli_client_destroy (cli_client_t **self_p);

/*  The base URL as given (without trailing slashes); borrowed.            */
const char *cli_client_url (const cli_client_t *self);

/*  Sends `method` `path` (starts with '/', relative to the base URL) with
    `body` (a JSON text, or NULL for none) and `headers` ("Name: value"
    lines, `count` of them, borrowed). Fills `response` (which the caller
    clears) with whatever status came back, errors included, and returns
    0; returns -1 when no complete response arrived (connection refused,
    timeout, a body over CLI_BODY_MAX), with the reason, naming the URL,
    in cli_client_error ().                                                */
int cli_client_request (cli_client_t *self, const char *method,
                        const char *path, const char *body,
                        const char *const *headers, size_t count,
                        cli_response_t *response);

/*  Receives an event stream's bytes as they arrive (`data`, `size`), and
    is also called about once a second with data NULL while the stream is
    quiet. Returns false to stop reading (the request then ends as
    complete).                                                             */
typedef bool (cli_stream_fn) (void *arg, const char *data, size_t size);

/*  GET `path` as a stream (text/event-stream): a 200 answer with that
    content type goes to `on_data` as it arrives and never into
    `response->body`; any other answer fills `response` as
    cli_client_request does. Returns 0 when the answer ended (the server
    ended the stream, or `on_data` stopped it), -1 when none came or the
    connection broke midway (reason in cli_client_error ()).             */
int cli_client_stream (cli_client_t *self, const char *path,
                       const char *const *headers, size_t count,
                       cli_stream_fn *on_data, void *arg,
                       cli_response_t *response);

/*  Why the last request failed; "" after a success. Borrowed, valid until
    the next request.                                                      */
const char *cli_client_error (const cli_client_t *self);

/*  Writes `text` into `out` (`size` bytes) percent-encoded as one path
    segment. Returns 0, or -1 when it does not fit.                        */
int cli_client_escape (const char *text, char *out, size_t size);

#endif
