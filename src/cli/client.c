/*  client.c: HTTP requests to the controller with libcurl.

    The body is collected into a buffer that doubles as it fills, up to
    CLI_BODY_MAX; the write callback refuses the byte that would cross the
    limit, which makes curl stop the transfer, and the error then says the
    limit rather than curl's "failed writing received data". A
    Content-Length over the limit is refused before anything is read.

    Timeouts: connecting may take 10 s; after that a transfer that moves
    less than one byte a second for 30 s is given up. There is no limit on
    a whole transfer, because a large log on a slow link is not an error.
    Redirects are not followed and only http and https are allowed, so a
    URL from the environment cannot make the client read a file.          */
#include "client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_CONNECT_TIMEOUT_S 10L
#define S_LOW_SPEED_TIME_S 30L
#define S_TOKEN_HEADER "X-Shoal-Token"

/*  The first allocation of a body; it doubles up to CLI_BODY_MAX.        */
#define S_BODY_INITIAL 4096

struct cli_client {
    CURL *curl;                 /* one easy handle: keep-alive reuse       */
    char url[CLI_URL_MAX + 1];  /* base URL, no trailing slash             */
    char *token_header;         /* "X-Shoal-Token: ..." or NULL; owned     */
    char error[CURL_ERROR_SIZE + CLI_URL_MAX + 128];  /* last failure      */
    char curl_error[CURL_ERROR_SIZE];  /* curl's own detail, per request   */
    cli_response_t *response;   /* the response being filled (borrowed)    */
    size_t capacity;            /* bytes allocated in response->body       */
    bool too_big;               /* the body crossed CLI_BODY_MAX           */
    cli_stream_fn *on_data;     /* a stream's reader, NULL for a request   */
    void *stream_arg;           /* its argument                            */
    int streaming;              /* -1: not known yet, 1: the answer is the
                                   stream, 0: an ordinary body            */
    bool stopped;               /* on_data asked to stop                   */
};

void
cli_response_clear (cli_response_t *self)
{
    if (!self)
        return;
    free (self->body);
    memset (self, 0, sizeof *self);
}

bool
cli_response_is_problem (const cli_response_t *self)
{
    return strncasecmp (self->content_type, "application/problem+json",
                        strlen ("application/problem+json")) == 0;
}

/*  A header value may not carry a line break: it would start a header of
    its own (or the body) in the request.                                  */
static bool
s_single_line (const char *text)
{
    return strpbrk (text, "\r\n") == NULL;
}

cli_client_t *
cli_client_new (const char *base_url, const char *token, char *err,
                size_t size)
{
    size_t len = base_url ? strlen (base_url) : 0;
    while (len > 0 && base_url[len - 1] == '/')
        len--;
    bool http = len > strlen ("http://")
                && strncasecmp (base_url, "http://", 7) == 0;
    bool https = len > strlen ("https://")
                 && strncasecmp (base_url, "https://", 8) == 0;
    if (!http && !https) {
        snprintf (err, size, "'%s' is not an http:// or https:// URL",
                  base_url ? base_url : "");
        return NULL;
    }
    if (len > CLI_URL_MAX || !s_single_line (base_url)) {
        snprintf (err, size, "the URL must be one line of at most %d bytes",
                  CLI_URL_MAX);
        return NULL;
    }
    if (token && (!s_single_line (token) || strlen (token) > CLI_HEADER_MAX)) {
        snprintf (err, size, "the API token must be one line of at most %d "
                  "bytes", CLI_HEADER_MAX);
        return NULL;
    }
    cli_client_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, size, "out of memory");
        return NULL;
    }
    memcpy (self->url, base_url, len);
    self->url[len] = '\0';
    if (token && *token) {
        size_t header_len = strlen (S_TOKEN_HEADER ": ") + strlen (token) + 1;
        self->token_header = malloc (header_len);
        if (self->token_header)
            snprintf (self->token_header, header_len, S_TOKEN_HEADER ": %s",
                      token);
    }
    self->curl = curl_easy_init ();
    if (!self->curl || (token && *token && !self->token_header)) {
        snprintf (err, size, "cannot set up an HTTP client (out of memory)");
        cli_client_destroy (&self);
        return NULL;
    }
    return self;
}

void
cli_client_destroy (cli_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cli_client_t *self = *self_p;
    if (self->curl)
        curl_easy_cleanup (self->curl);
    free (self->token_header);
    free (self);
    *self_p = NULL;
}

const char *
cli_client_url (const cli_client_t *self)
{
    return self->url;
}

const char *
cli_client_error (const cli_client_t *self)
{
    return self->error;
}

int
cli_client_escape (const char *text, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t used = 0;
    for (const unsigned char *c = (const unsigned char *) text; *c; c++) {
        bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
                     || (*c >= '0' && *c <= '9') || strchr ("-._~", *c);
        if (used + (plain ? 1 : 3) + 1 > size)
            return -1;
        if (plain)
            out[used++] = (char) *c;
        else {
            out[used++] = '%';
            out[used++] = hex[*c >> 4];
            out[used++] = hex[*c & 15];
        }
    }
    if (used + 1 > size)
        return -1;
    out[used] = '\0';
    return 0;
}

/*  curl's write callback: appends to the body, doubling the buffer, and
    refuses to go past CLI_BODY_MAX (returning less than given stops the
    transfer with CURLE_WRITE_ERROR).                                     */
static size_t
s_on_body (char *data, size_t unit, size_t count, void *arg)
{
    cli_client_t *self = arg;
    cli_response_t *response = self->response;
    size_t bytes = unit * count;
    if (self->on_data && self->streaming < 0) {
        long status = 0;
        curl_easy_getinfo (self->curl, CURLINFO_RESPONSE_CODE, &status);
        self->streaming = status == 200
                          && strncasecmp (response->content_type,
                                          "text/event-stream", 17) == 0;
    }
    if (self->streaming == 1) {
        if (self->on_data (self->stream_arg, data, bytes))
            return bytes;
        self->stopped = true;
        return 0;
    }
    if (bytes > CLI_BODY_MAX - response->size) {
        self->too_big = true;
        return 0;
    }
    size_t need = response->size + bytes + 1;
    if (need > self->capacity) {
        size_t capacity = self->capacity ? self->capacity : S_BODY_INITIAL;
        while (capacity < need)
            capacity *= 2;
        if (capacity > CLI_BODY_MAX + 1)
            capacity = CLI_BODY_MAX + 1;
        char *body = realloc (response->body, capacity);
        if (!body)
            return 0;
        response->body = body;
        self->capacity = capacity;
    }
    memcpy (response->body + response->size, data, bytes);
    response->size += bytes;
    response->body[response->size] = '\0';
    return bytes;
}

/*  Copies the value of header line `line` (`len` bytes, CRLF included)
    into `out` when its name is `name`; true when it matched.             */
static bool
s_header_value (const char *line, size_t len, const char *name, char *out,
                size_t size)
{
    size_t name_len = strlen (name);
    if (len <= name_len || line[name_len] != ':'
        || strncasecmp (line, name, name_len) != 0)
        return false;
    const char *value = line + name_len + 1;
    const char *end = line + len;
    while (value < end && (*value == ' ' || *value == '\t'))
        value++;
    while (end > value && (end[-1] == '\r' || end[-1] == '\n'
                           || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t value_len = (size_t) (end - value);
    if (value_len >= size)
        value_len = size - 1;
    memcpy (out, value, value_len);
    out[value_len] = '\0';
    return true;
}

/*  curl's header callback, one line at a time. A status line starts a new
    response (after a "100 Continue"), so it resets what was seen.        */
static size_t
s_on_header (char *line, size_t unit, size_t count, void *arg)
{
    cli_client_t *self = arg;
    cli_response_t *response = self->response;
    size_t len = unit * count;
    char value[96];
    if (len >= 5 && strncmp (line, "HTTP/", 5) == 0) {
        response->content_type[0] = '\0';
        response->replayed = false;
        response->range_total = -1;
    }
    else if (s_header_value (line, len, "Content-Type", response->content_type,
                             sizeof response->content_type))
        ;
    else if (s_header_value (line, len, "Idempotent-Replayed", value,
                             sizeof value))
        response->replayed = strcasecmp (value, "true") == 0;
    else if (s_header_value (line, len, "Content-Range", value, sizeof value)) {
        /* "bytes FIRST-LAST/TOTAL" or "bytes * /TOTAL" (RFC 9110). */
        const char *slash = strrchr (value, '/');
        char *end;
        long long total = slash ? strtoll (slash + 1, &end, 10) : -1;
        if (slash && end != slash + 1 && *end == '\0' && total >= 0
            && strncasecmp (value, "bytes ", 6) == 0)
            response->range_total = total;
    }
    return len;
}

/*  Sets the options of one request. Returns a CURLcode.                   */
static CURLcode
s_setup (cli_client_t *self, const char *method, const char *url,
         const char *body, struct curl_slist *headers)
{
    CURL *curl = self->curl;
    CURLcode rc = CURLE_OK;
    curl_easy_reset (curl);
#define S_SET(option, value) \
    do { \
        if (rc == CURLE_OK) \
            rc = curl_easy_setopt (curl, option, value); \
    } while (0)
    S_SET (CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    S_SET (CURLOPT_PROTOCOLS_STR, "http,https");
#else
    S_SET (CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    S_SET (CURLOPT_NOSIGNAL, 1L);
    S_SET (CURLOPT_ERRORBUFFER, self->curl_error);
    S_SET (CURLOPT_CONNECTTIMEOUT, S_CONNECT_TIMEOUT_S);
    S_SET (CURLOPT_LOW_SPEED_LIMIT, 1L);
    S_SET (CURLOPT_LOW_SPEED_TIME, S_LOW_SPEED_TIME_S);
    S_SET (CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) CLI_BODY_MAX);
    S_SET (CURLOPT_USERAGENT, "shoal/" SHOAL_VERSION);
    S_SET (CURLOPT_WRITEFUNCTION, s_on_body);
    S_SET (CURLOPT_WRITEDATA, self);
    S_SET (CURLOPT_HEADERFUNCTION, s_on_header);
    S_SET (CURLOPT_HEADERDATA, self);
    S_SET (CURLOPT_HTTPHEADER, headers);
    if (strcmp (method, "GET") == 0) {
        S_SET (CURLOPT_HTTPGET, 1L);
    }
    else {
        S_SET (CURLOPT_CUSTOMREQUEST, method);
        S_SET (CURLOPT_POSTFIELDS, body ? body : "");
        S_SET (CURLOPT_POSTFIELDSIZE_LARGE,
               (curl_off_t) (body ? strlen (body) : 0));
    }
#undef S_SET
    return rc;
}

/*  curl's progress callback while streaming: a tick for the reader, so
    it can act on time passing while the stream is quiet.                 */
static int
s_on_progress (void *arg, curl_off_t dltotal, curl_off_t dlnow,
               curl_off_t ultotal, curl_off_t ulnow)
{
    cli_client_t *self = arg;
    if (self->streaming == 1 && !self->on_data (self->stream_arg, NULL, 0)) {
        self->stopped = true;
        return 1;
    }
    return 0;
}

static int s_perform (cli_client_t *self, const char *method,
                      const char *path, const char *body,
                      const char *const *headers, size_t count,
                      cli_response_t *response);

int
cli_client_request (cli_client_t *self, const char *method, const char *path,
                    const char *body, const char *const *headers,
                    size_t count, cli_response_t *response)
{
    self->on_data = NULL;
    return s_perform (self, method, path, body, headers, count, response);
}

int
cli_client_stream (cli_client_t *self, const char *path,
                   const char *const *headers, size_t count,
                   cli_stream_fn *on_data, void *arg,
                   cli_response_t *response)
{
    self->on_data = on_data;
    self->stream_arg = arg;
    int rc = s_perform (self, "GET", path, NULL, headers, count, response);
    self->on_data = NULL;
    return rc;
}

static int
s_perform (cli_client_t *self, const char *method, const char *path,
           const char *body, const char *const *headers, size_t count,
           cli_response_t *response)
{
    memset (response, 0, sizeof *response);
    response->range_total = -1;
    self->streaming = -1;
    self->stopped = false;
    self->error[0] = '\0';
    self->curl_error[0] = '\0';
    self->response = response;
    self->capacity = 0;
    self->too_big = false;

    char url[CLI_URL_MAX + CLI_PATH_MAX + 1];
    if (strlen (path) > CLI_PATH_MAX) {
        snprintf (self->error, sizeof self->error,
                  "the request path is over %d bytes", CLI_PATH_MAX);
        return -1;
    }
    snprintf (url, sizeof url, "%s%s", self->url, path);

    //  The list is built per request: headers point into borrowed strings
    //  that need not outlive the call.
    struct curl_slist *list = NULL;
    bool ok = true;
    const char *fixed[] = {
        self->on_data ? "Accept: text/event-stream, application/problem+json"
                      : "Accept: application/json, application/problem+json, "
                        "text/plain",
        body ? "Content-Type: application/json" : NULL,
        self->token_header,
    };
    for (size_t i = 0; ok && i < sizeof fixed / sizeof fixed[0]; i++) {
        if (!fixed[i])
            continue;
        struct curl_slist *next = curl_slist_append (list, fixed[i]);
        ok = next != NULL;
        list = next ? next : list;
    }
    for (size_t i = 0; ok && i < count; i++) {
        struct curl_slist *next = curl_slist_append (list, headers[i]);
        ok = next != NULL;
        list = next ? next : list;
    }
    CURLcode rc = ok ? s_setup (self, method, url, body, list)
                     : CURLE_OUT_OF_MEMORY;
    if (rc == CURLE_OK && self->on_data) {
        rc = curl_easy_setopt (self->curl, CURLOPT_XFERINFOFUNCTION,
                               s_on_progress);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt (self->curl, CURLOPT_XFERINFODATA, self);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt (self->curl, CURLOPT_NOPROGRESS, 0L);
    }
    if (rc == CURLE_OK)
        rc = curl_easy_perform (self->curl);
    curl_slist_free_all (list);
    self->response = NULL;
    //  A reader that stopped the stream ended it on purpose.
    if (self->stopped && (rc == CURLE_WRITE_ERROR
                          || rc == CURLE_ABORTED_BY_CALLBACK))
        rc = CURLE_OK;

    if (rc == CURLE_OK && !response->body) {
        //  An empty body: keep the invariant that body is a string.
        response->body = calloc (1, 1);
        if (!response->body)
            rc = CURLE_OUT_OF_MEMORY;
    }
    if (rc == CURLE_OK) {
        curl_easy_getinfo (self->curl, CURLINFO_RESPONSE_CODE,
                           &response->status);
        return 0;
    }
    if (self->too_big || rc == CURLE_FILESIZE_EXCEEDED)
        snprintf (self->error, sizeof self->error,
                  "the answer to %s %s is over %zu MiB, the client's limit",
                  method, path, CLI_BODY_MAX / (1024 * 1024));
    else
        snprintf (self->error, sizeof self->error, "cannot reach %s: %s",
                  self->url,
                  self->curl_error[0] ? self->curl_error
                                      : curl_easy_strerror (rc));
    cli_response_clear (response);
    return -1;
}
