/*  agent.c: the DEALER socket, heartbeats, reconnection and dispatch.

    The connection is a small state machine:

      state         event                  next          action
      ------------  ---------------------  ------------  -------------------
      CONNECTING    WELCOME                READY         reset backoff, flush
      READY         RECONNECT              CONNECTING    HELLO on same socket
      CONNECTING    RECONNECT              CONNECTING    HELLO on same socket
      any socket    silent for LIVENESS    DISCONNECTED  drop socket, backoff
      DISCONNECTED  backoff over           CONNECTING    new socket, HELLO

    A new socket rather than libzmq's own reconnection: a controller that
    restarted has forgotten us, and a fresh DEALER also drops whatever was
    queued for the old peer. Heartbeats go out from the loop on every
    socket whatever the state, and any message from the controller counts
    as a sign of life.

    Results go through one bounded outbox. They leave it only in READY, so
    a result that ends while the controller is away (or before it has
    welcomed us) is sent after the next WELCOME. Whatever is lost past the
    bound, the controller re-queues: tasks may run twice, never zero times.

    Incoming commands are dispatched through a table. A TASK is checked
    before anything runs: the job id, because it becomes a path; the
    declared inputs; every argument filled. Any problem becomes a RESULT
    with status "error" and nothing is started. Parameter values are never
    logged: they may be secrets.                                           */
#include "agent.h"

#include "shoal/log.h"
#include "shoal/protocol.h"
#include "shoal/random.h"
#include "shoal/template.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*  Messages read per loop turn, so a flood cannot starve the timers.      */
#define S_RECV_BATCH 64

/*  How long a BYE may wait in libzmq when the worker exits.               */
#define S_BYE_LINGER_MS 2000

/*  Accepted range for WELCOME's heartbeat_ms.                             */
#define S_HEARTBEAT_MIN_MS 100
#define S_HEARTBEAT_MAX_MS 60000

/*  Retry period when libzmq refuses a result because its queue is full.   */
#define S_FLUSH_RETRY_MS 100

typedef enum {
    S_CONNECTING,       /* HELLO sent, no WELCOME yet                      */
    S_READY,            /* welcomed: results may be sent                   */
    S_DISCONNECTED,     /* no socket, waiting for the backoff to pass      */
} s_state_t;

/*  One encoded RESULT body waiting to be sent.                            */
typedef struct s_pending {
    struct s_pending *next;     /* younger entry, NULL for the youngest    */
    char *body;                 /* encoded JSON, owned                     */
    size_t size;                /* bytes in body                           */
} s_pending_t;

/*  Invariant: sock is NULL exactly in S_DISCONNECTED; the outbox holds at
    most SHOAL_AGENT_OUTBOX_MAX entries and SHOAL_AGENT_OUTBOX_MAX_BYTES.  */
struct shoal_agent {
    char *endpoint;             /* where the controller listens            */
    char *name;                 /* our worker name                         */
    char *host;                 /* our host name                           */
    zcert_t *cert;              /* our CURVE key pair, NULL: plain text    */
    char *health_file;          /* touched while welcomed, or NULL         */
    zlistx_t *queued;           /* TASK bodies waiting for a slot, oldest
                                   first; at most `slots` of them          */
    char instance[17];          /* random id of this process: a controller
                                   tells our reconnects from a new worker */
    char controller[65];        /* id of the controller run that welcomed
                                   us last, "" before the first WELCOME   */
    char server_key[41];        /* the controller's public key (Z85)       */
    int slots;                  /* advertised in HELLO                     */
    shoal_runner_t *runner;     /* borrowed                                */
    zsock_t *sock;              /* DEALER to the controller, or NULL       */
    s_state_t state;            /* see the table above                     */
    bool stopping;              /* SIGTERM seen: no new tasks              */
    bool killing;               /* drain over: running tasks were stopped  */
    int64_t drain_timeout_ms;   /* how long a drain may last               */
    int64_t drain_until;        /* when the drain ends                     */
    int64_t heartbeat_ms;       /* interval, from WELCOME when given       */
    int64_t heartbeat_at;       /* next HEARTBEAT of our own clock         */
    int64_t heartbeat_sent;     /* when the last one went out; 0: none     */
    int64_t expire_at;          /* controller lost if silent until then    */
    int64_t reconnect_at;       /* when S_DISCONNECTED makes a new socket  */
    int64_t backoff_ms;         /* the next backoff                        */
    s_pending_t *head;          /* oldest pending result                   */
    s_pending_t *tail;          /* youngest pending result                 */
    size_t pending;             /* entries in the outbox                   */
    size_t pending_bytes;       /* body bytes in the outbox                */
};

static int64_t
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- sending -------------------------------------------------------- */

/*  Sends one encoded message without blocking. Returns 0, or -1 when
    libzmq would block or failed.                                          */
static int
s_send_raw (shoal_agent_t *self, shoal_msg_type_t type, const char *body,
            size_t size)
{
    void *handle = zsock_resolve (self->sock);
    const char *command = shoal_msg_name (type);
    //  Parts of a multipart message are queued together or not at all,
    //  so a refused first part means nothing was sent.
    if (zmq_send (handle, command, strlen (command),
                  ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    if (zmq_send (handle, body, size, ZMQ_DONTWAIT) < 0)
        return -1;
    return 0;
}

/*  Encodes and sends a control message (HELLO, HEARTBEAT, BYE); takes
    `body`. These are not worth keeping when they cannot go out now: the
    next heartbeat or HELLO replaces them.                                 */
static void
s_send (shoal_agent_t *self, shoal_msg_type_t type, json_t *body)
{
    shoal_error_t err;
    shoal_error_clear (&err);
    size_t size = 0;
    char *text = body ? shoal_msg_encode (type, body, &size, &err) : NULL;
    if (!text)
        shoal_error ("cannot encode %s: %s", shoal_msg_name (type),
                     body ? err.message : "out of memory");
    else if (self->sock && s_send_raw (self, type, text, size) < 0)
        shoal_warn ("cannot send %s: %s", shoal_msg_name (type),
                    zmq_strerror (errno));
    free (text);
    json_decref (body);
}

/*  Marks the worker healthy: a probe (shoal-worker --healthcheck) reads
    the file's age. Creating it is enough; its content does not matter.   */
static void
s_touch_health (const char *path)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        shoal_warn ("cannot touch health file %s: %s", path, strerror (errno));
        return;
    }
    futimens (fd, NULL);
    close (fd);
}

/*  Sends our HEARTBEAT, whether it answers the controller's or our clock
    asked for it, and starts our clock over.                               */
static void
s_send_heartbeat (shoal_agent_t *self, int64_t now)
{
    json_t *body = self->stopping ? json_pack ("{s:b}", "draining", 1)
                                  : json_object ();
    s_send (self, SHOAL_MSG_HEARTBEAT, body);
    self->heartbeat_sent = now;
    self->heartbeat_at = now + shoal_heartbeat_own_after (self->heartbeat_ms);
    if (self->health_file && self->state == S_READY)
        s_touch_health (self->health_file);
}

static void
s_send_hello (shoal_agent_t *self)
{
    //  `running` tells a controller that lost track of us how many slots
    //  are still taken by tasks it may no longer know about; `tasks` names
    //  them, and the ones whose results wait in the outbox, so a restarted
    //  controller adopts them instead of running them again.
    json_t *tasks = shoal_runner_attempts (self->runner);
    for (json_t *queued = zlistx_first (self->queued); tasks && queued;
         queued = zlistx_next (self->queued))
        json_array_append_new (tasks, json_pack (
            "{s:O, s:O, s:O}", "job", json_object_get (queued, "job"),
            "task", json_object_get (queued, "task"), "attempt",
            json_object_get (queued, "attempt")));
    for (s_pending_t *entry = self->head; tasks && entry; entry = entry->next) {
        json_t *result = json_loadb (entry->body, entry->size, 0, NULL);
        json_t *ref = json_pack ("{s:O, s:O, s:O}", "job",
                                 json_object_get (result, "job"), "task",
                                 json_object_get (result, "task"), "attempt",
                                 json_object_get (result, "attempt"));
        if (ref)
            json_array_append_new (tasks, ref);
        json_decref (result);
    }
    json_t *body = json_pack ("{s:i, s:s, s:s, s:i, s:i, s:I, s:o, s:s}",
                              "protocol", SHOAL_PROTOCOL_VERSION, "worker",
                              self->name, "host", self->host, "slots",
                              self->slots, "queue", self->slots, "running",
                              (json_int_t) (shoal_runner_running (self->runner)
                                            + zlistx_size (self->queued)),
                              "tasks", tasks ? tasks : json_array (),
                              "instance", self->instance);
    s_send (self, SHOAL_MSG_HELLO, body);
}

/*  Sends pending results in order while we are welcomed and libzmq takes
    them.                                                                  */
static void
s_flush (shoal_agent_t *self)
{
    while (self->head && self->state == S_READY) {
        s_pending_t *entry = self->head;
        if (s_send_raw (self, SHOAL_MSG_RESULT, entry->body, entry->size) < 0) {
            if (errno != EAGAIN)
                shoal_warn ("cannot send RESULT: %s", zmq_strerror (errno));
            return;
        }
        self->head = entry->next;
        if (!self->head)
            self->tail = NULL;
        self->pending--;
        self->pending_bytes -= entry->size;
        free (entry->body);
        free (entry);
    }
}

static void
s_drop_oldest (shoal_agent_t *self)
{
    s_pending_t *entry = self->head;
    self->head = entry->next;
    if (!self->head)
        self->tail = NULL;
    self->pending--;
    self->pending_bytes -= entry->size;
    shoal_warn ("outbox full (%d results, %d bytes): dropped the oldest "
                "result", SHOAL_AGENT_OUTBOX_MAX,
                SHOAL_AGENT_OUTBOX_MAX_BYTES);
    free (entry->body);
    free (entry);
}

/*  Queues an encoded RESULT (takes `text`) and sends what can be sent.    */
static void
s_push (shoal_agent_t *self, char *text, size_t size)
{
    s_pending_t *entry = malloc (sizeof *entry);
    if (!entry) {
        shoal_error ("out of memory: dropped a result");
        free (text);
        return;
    }
    entry->next = NULL;
    entry->body = text;
    entry->size = size;
    while (self->head
           && (self->pending >= SHOAL_AGENT_OUTBOX_MAX
               || self->pending_bytes + size > SHOAL_AGENT_OUTBOX_MAX_BYTES))
        s_drop_oldest (self);
    if (self->tail)
        self->tail->next = entry;
    else
        self->head = entry;
    self->tail = entry;
    self->pending++;
    self->pending_bytes += size;
    s_flush (self);
}

/*  A RESULT body for a task that never ran (or whose result could not be
    sent): status "error" and why. `task_body` is borrowed.                */
static json_t *
s_status_result (json_t *task_body, const char *status, const char *why)
{
    return json_pack ("{s:O, s:O, s:O, s:s, s:s}", "job",
                      json_object_get (task_body, "job"), "task",
                      json_object_get (task_body, "task"), "attempt",
                      json_object_get (task_body, "attempt"), "status",
                      status, "error", why);
}

static json_t *
s_error_result (json_t *task_body, const char *why)
{
    return s_status_result (task_body, SHOAL_STATUS_ERROR, why);
}

/*  Encodes a RESULT body (takes it) and queues it. The controller refuses
    frames over SHOAL_MSG_MAX_SIZE and would drop us with it, so an
    oversized result is replaced by an error result saying so.             */
static void
s_on_result (json_t *result, void *arg)
{
    shoal_agent_t *self = arg;
    shoal_error_t err;
    shoal_error_clear (&err);
    size_t size = 0;
    char *text = shoal_msg_encode (SHOAL_MSG_RESULT, result, &size, &err);
    if (text && size > SHOAL_MSG_MAX_SIZE) {
        char why[128];
        snprintf (why, sizeof why,
                  "result of %zu bytes is over the %d byte message limit",
                  size, SHOAL_MSG_MAX_SIZE);
        free (text);
        json_t *small = s_error_result (result, why);
        text = small ? shoal_msg_encode (SHOAL_MSG_RESULT, small, &size, &err)
                     : NULL;
        json_decref (small);
    }
    if (text)
        s_push (self, text, size);
    else
        shoal_error ("cannot encode RESULT: %s", err.message);
    json_decref (result);
}

/*  Refuses a TASK: logs why and answers with an error RESULT.             */
static void
s_reject (shoal_agent_t *self, json_t *task_body, const char *status,
          const char *why)
{
    shoal_log_task (SHOAL_LOG_WARN,
                    json_string_value (json_object_get (task_body, "job")),
                    (long long) json_integer_value (
                        json_object_get (task_body, "task")),
                    "attempt %lld: not run: %s",
                    (long long) json_integer_value (
                        json_object_get (task_body, "attempt")),
                    why);
    json_t *result = s_status_result (task_body, status, why);
    if (result)
        s_on_result (result, self);
    else
        shoal_error ("out of memory: dropped a result");
}

static void
s_json_destructor (void **item)
{
    json_decref ((json_t *) *item);
    *item = NULL;
}

/* ---- the connection ------------------------------------------------- */

/*  Makes a new socket and connects it. Returns 0 or -1 with `err` set.    */
static int
s_open (shoal_agent_t *self, int64_t now, shoal_error_t *err)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock)
        return shoal_error_set (err, SHOAL_EIO, NULL,
                                "cannot create a socket: %s",
                                zmq_strerror (errno));
    zsock_set_linger (sock, 0);
    zsock_set_maxmsgsize (sock, SHOAL_MSG_MAX_SIZE);
    if (self->cert) {
        zcert_apply (self->cert, sock);
        zsock_set_curve_serverkey (sock, self->server_key);
    }
    if (zsock_connect (sock, "%s", self->endpoint) < 0) {
        int rc = shoal_error_set (err, SHOAL_EINVAL, "connect",
                                  "cannot connect to '%s': %s",
                                  self->endpoint, zmq_strerror (errno));
        zsock_destroy (&sock);
        return rc;
    }
    self->sock = sock;
    self->state = S_CONNECTING;
    self->heartbeat_at = now + shoal_heartbeat_own_after (self->heartbeat_ms);
    self->expire_at = now + self->heartbeat_ms * SHOAL_HEARTBEAT_LIVENESS;
    return 0;
}

static void
s_lose (shoal_agent_t *self, int64_t now)
{
    shoal_warn ("controller at %s silent for %d heartbeats: reconnecting "
                "in %lld ms", self->endpoint, SHOAL_HEARTBEAT_LIVENESS,
                (long long) self->backoff_ms);
    zsock_destroy (&self->sock);
    self->state = S_DISCONNECTED;
    self->reconnect_at = now + self->backoff_ms;
    self->backoff_ms *= 2;
    if (self->backoff_ms > SHOAL_RECONNECT_MAX_MS)
        self->backoff_ms = SHOAL_RECONNECT_MAX_MS;
}

static void
s_reconnect (shoal_agent_t *self, int64_t now)
{
    shoal_error_t err;
    shoal_error_clear (&err);
    if (s_open (self, now, &err) < 0) {
        shoal_error ("%s", err.message);
        self->reconnect_at = now + self->backoff_ms;
        return;
    }
    shoal_info ("connecting to controller at %s", self->endpoint);
    s_send_hello (self);
}

/* ---- incoming commands ---------------------------------------------- */

/*  Keeps the heartbeat period the controller tells (in WELCOME, and in
    its HEARTBEATs as it adapts the period to the size of the cluster):
    ours follow it and the controller is lost after
    SHOAL_HEARTBEAT_LIVENESS of them.                                      */
static json_int_t
s_adopt_period (shoal_agent_t *self, json_int_t interval, int64_t now)
{
    if (interval < S_HEARTBEAT_MIN_MS)
        interval = S_HEARTBEAT_MIN_MS;
    if (interval > S_HEARTBEAT_MAX_MS)
        interval = S_HEARTBEAT_MAX_MS;
    self->heartbeat_ms = interval;
    self->expire_at = now + self->heartbeat_ms * SHOAL_HEARTBEAT_LIVENESS;
    int64_t own = now + shoal_heartbeat_own_after (self->heartbeat_ms);
    if (self->heartbeat_at > own)
        self->heartbeat_at = own;
    return interval;
}

static void
s_on_welcome (shoal_agent_t *self, json_t *body, int64_t now)
{
    json_int_t interval = s_adopt_period (
        self, json_integer_value (json_object_get (body, "heartbeat_ms")), now);
    self->backoff_ms = SHOAL_RECONNECT_MIN_MS;
    const char *controller = json_string_value (json_object_get (body,
                                                                 "controller"));
    if (controller && *self->controller && strcmp (controller, self->controller))
        shoal_info ("the controller restarted (run %.64s, was %s): it adopts "
                    "the tasks we hold", controller, self->controller);
    if (controller)
        snprintf (self->controller, sizeof self->controller, "%.64s",
                  controller);
    if (self->state != S_READY)
        shoal_info ("welcomed by controller '%.64s' (heartbeat %lld ms, "
                    "%zu results to send)",
                    json_string_value (json_object_get (body, "controller")),
                    (long long) interval, self->pending);
    self->state = S_READY;
    s_flush (self);
}

static void
s_on_heartbeat (shoal_agent_t *self, json_t *body, int64_t now)
{
    //  Receiving it already proved the controller alive; a period in it
    //  is the one to keep from now on (absent: keep ours).
    json_int_t interval = json_integer_value (
        json_object_get (body, "heartbeat_ms"));
    if (interval > 0 && interval != self->heartbeat_ms)
        s_adopt_period (self, interval, now);
    //  Answered at once, together with every other idle worker's answer
    //  (see shoal_heartbeat_answer_due).
    if (self->heartbeat_sent == 0
        || shoal_heartbeat_answer_due (now - self->heartbeat_sent,
                                       self->heartbeat_ms))
        s_send_heartbeat (self, now);
}

static void
s_on_reconnect (shoal_agent_t *self, json_t *body, int64_t now)
{
    if (self->stopping)
        return;                 // a BYE is coming anyway
    shoal_info ("controller does not know us: saying HELLO again");
    self->state = S_CONNECTING;
    s_send_hello (self);
}

static void s_start_task (shoal_agent_t *self, json_t *body, int64_t now);

static void
s_on_cancel (shoal_agent_t *self, json_t *body, int64_t now)
{
    const char *job = json_string_value (json_object_get (body, "job"));
    json_int_t task = json_integer_value (json_object_get (body, "task"));
    json_int_t attempt = json_integer_value (json_object_get (body, "attempt"));
    if (shoal_runner_cancel (self->runner, job, task, attempt, now) == 0) {
        shoal_log_task (SHOAL_LOG_INFO, job, task, "attempt %lld: canceling",
                        (long long) attempt);
        return;
    }
    for (json_t *queued = zlistx_first (self->queued); job && queued;
         queued = zlistx_next (self->queued)) {
        if (!streq (json_string_value (json_object_get (queued, "job")), job)
            || json_integer_value (json_object_get (queued, "task")) != task
            || json_integer_value (json_object_get (queued, "attempt"))
                   != attempt)
            continue;
        json_incref (queued);
        zlistx_delete (self->queued, zlistx_cursor (self->queued));
        s_reject (self, queued, SHOAL_STATUS_CANCELED,
                  "canceled before it started");
        json_decref (queued);
        return;
    }
    shoal_log_task (SHOAL_LOG_DEBUG, job, task, "attempt %lld: cancel of a "
                    "task that does not run here", (long long) attempt);
}

/*  True when `value` is a string without NUL bytes: C strings would
    silently cut it at the first one.                                      */
static bool
s_is_c_string (json_t *value)
{
    return json_is_string (value)
        && strlen (json_string_value (value)) == json_string_length (value);
}

/*  Checks the declared inputs of a TASK; fills `why` and returns -1 when
    one is malformed.                                                      */
static int
s_check_inputs (json_t *inputs, char *why, size_t size)
{
    size_t index;
    json_t *input;
    json_array_foreach (inputs, index, input) {
        if (!json_is_object (input)) {
            snprintf (why, size, "inputs[%zu] is not an object", index);
            return -1;
        }
        json_t *name = json_object_get (input, "name");
        if (!s_is_c_string (name) || json_string_length (name) == 0) {
            snprintf (why, size, "inputs[%zu] has no valid 'name'", index);
            return -1;
        }
        const char *source = json_string_value (
            json_object_get (input, "source"));
        if (!source
            || (strcmp (source, "parameter") && strcmp (source, "environment")
                && strcmp (source, "http-header"))) {
            snprintf (why, size,
                      "inputs[%zu] 'source' is not parameter, environment "
                      "or http-header", index);
            return -1;
        }
        json_t *fallback = json_object_get (input, "default");
        if (fallback && !json_is_null (fallback) && !s_is_c_string (fallback)) {
            snprintf (why, size, "inputs[%zu] 'default' is not a string",
                      index);
            return -1;
        }
    }
    return 0;
}

/*  Where placeholder values come from, for s_lookup.                      */
typedef struct {
    json_t *inputs;             /* the TASK's declared inputs (checked)    */
    json_t *params;             /* the TASK's params                       */
} s_lookup_t;

/*  A placeholder's value: the declared input of that name, from params
    (parameter, http-header) or the worker's environment, else its
    default. Undeclared names have no value, whatever params hold.         */
static const char *
s_lookup (const char *name, void *arg)
{
    s_lookup_t *lookup = arg;
    size_t index;
    json_t *input;
    json_array_foreach (lookup->inputs, index, input) {
        if (strcmp (json_string_value (json_object_get (input, "name")), name))
            continue;
        const char *source = json_string_value (
            json_object_get (input, "source"));
        const char *value = NULL;
        if (strcmp (source, "environment") == 0)
            value = getenv (name);
        else {
            json_t *param = json_object_get (lookup->params, name);
            if (s_is_c_string (param))
                value = json_string_value (param);
        }
        if (!value)
            value = json_string_value (json_object_get (input, "default"));
        return value;
    }
    return NULL;
}

static void
s_free_args (char **args, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free (args[i]);
    free (args);
}

/*  Checks everything about a TASK that does not need its values. Returns
    0, -1 with `why` fit for the RESULT error, or -2 when the task is fine
    but this worker cannot take it now (the controller runs it elsewhere). */
static int
s_check_task (shoal_agent_t *self, json_t *body, char *why, size_t size)
{
    json_t *job = json_object_get (body, "job");
    const char *kind = json_string_value (json_object_get (body, "kind"));
    json_t *command = json_object_get (body, "command");
    json_t *templates = json_object_get (body, "args");
    const char *problem = NULL;
    if (self->stopping) {
        snprintf (why, size, "worker is stopping");
        return -2;
    }
    if (!s_is_c_string (job)
             || !shoal_runner_job_id_ok (json_string_value (job)))
        problem = "invalid job id (expected [A-Za-z0-9_-]{1,64})";
    else if (strcmp (kind, SHOAL_KIND_SPAWN) && strcmp (kind, SHOAL_KIND_TASK))
        problem = "kind is not 'task' or 'spawn'";
    else if (!s_is_c_string (command) || json_string_length (command) == 0)
        problem = "command is empty or holds a NUL byte";
    if (problem) {
        snprintf (why, size, "%s", problem);
        return -1;
    }
    if (json_array_size (templates) > SHOAL_AGENT_ARGS_MAX) {
        snprintf (why, size, "%zu arguments, over the limit of %d",
                  json_array_size (templates), SHOAL_AGENT_ARGS_MAX);
        return -1;
    }
    size_t index;
    json_t *tmpl;
    json_array_foreach (templates, index, tmpl) {
        if (!s_is_c_string (tmpl)) {
            snprintf (why, size, "args[%zu] is not a string", index);
            return -1;
        }
    }
    if (s_check_inputs (json_object_get (body, "inputs"), why, size))
        return -1;
    //  The controller counts credits and should never get here; after a
    //  reconnect it may not know what still runs from before.
    if (shoal_runner_running (self->runner) >= (size_t) self->slots
        && zlistx_size (self->queued) >= (size_t) self->slots) {
        snprintf (why, size, "no free slot");
        return -2;
    }
    return 0;
}

/*  Fills every argument template of a checked TASK. Returns the new
    argument array (the caller's, NULL-terminated), or NULL with `why`
    saying which input or template is wrong.                               */
static char **
s_fill_args (json_t *body, char *why, size_t size)
{
    json_t *templates = json_object_get (body, "args");
    s_lookup_t lookup = { json_object_get (body, "inputs"),
                          json_object_get (body, "params") };
    size_t argc = json_array_size (templates);
    char **args = calloc (argc + 1, sizeof *args);
    if (!args) {
        snprintf (why, size, "out of memory");
        return NULL;
    }
    size_t total = 0;
    for (size_t i = 0; i < argc; i++) {
        shoal_error_t err;
        shoal_error_clear (&err);
        args[i] = shoal_template_fill (
            json_string_value (json_array_get (templates, i)), s_lookup,
            &lookup, &err);
        if (!args[i]) {
            //  A missing value's message already names the input.
            if (err.code == SHOAL_ENOTFOUND)
                snprintf (why, size, "%s", err.message);
            else
                snprintf (why, size, "args[%zu]: %s", i, err.message);
            s_free_args (args, i);
            return NULL;
        }
        total += strlen (args[i]) + 1;
        if (total > SHOAL_AGENT_ARGV_MAX_BYTES) {
            snprintf (why, size,
                      "filled arguments are over the limit of %d bytes",
                      SHOAL_AGENT_ARGV_MAX_BYTES);
            s_free_args (args, i + 1);
            return NULL;
        }
    }
    return args;
}

static void
s_on_task (shoal_agent_t *self, json_t *body, int64_t now)
{
    char why[sizeof ((shoal_error_t *) 0)->message + 64];
    int checked = s_check_task (self, body, why, sizeof why);
    if (checked) {
        s_reject (self, body,
                  checked == -2 ? SHOAL_STATUS_REFUSED : SHOAL_STATUS_ERROR,
                  why);
        return;
    }
    bool full = shoal_runner_running (self->runner) >= (size_t) self->slots;
    shoal_log_task (SHOAL_LOG_DEBUG,
                    json_string_value (json_object_get (body, "job")),
                    (long long) json_integer_value (json_object_get (body,
                                                                     "task")),
                    "attempt %lld received%s",
                    (long long) json_integer_value (json_object_get (
                        body, "attempt")),
                    full ? ": queued until a slot is free" : "");
    if (full) {
        zlistx_add_end (self->queued, json_incref (body));
        return;
    }
    s_start_task (self, body, now);
}

/*  Starts the queued tasks that fit in the free slots.                   */
static void
s_start_queued (shoal_agent_t *self, int64_t now)
{
    while (shoal_runner_running (self->runner) < (size_t) self->slots
           && zlistx_size (self->queued)) {
        json_t *body = zlistx_detach (self->queued, NULL);
        s_start_task (self, body, now);
        json_decref (body);
    }
}

/*  Hands every queued task back (refused: it runs elsewhere).            */
static void
s_refuse_queued (shoal_agent_t *self, const char *why)
{
    json_t *body;
    while ((body = zlistx_detach (self->queued, NULL))) {
        s_reject (self, body, SHOAL_STATUS_REFUSED, why);
        json_decref (body);
    }
}

/*  Fills the arguments of a checked TASK and starts it.                  */
static void
s_start_task (shoal_agent_t *self, json_t *body, int64_t now)
{
    char why[sizeof ((shoal_error_t *) 0)->message + 64];
    char **args = s_fill_args (body, why, sizeof why);
    if (!args) {
        s_reject (self, body, SHOAL_STATUS_ERROR, why);
        return;
    }
    size_t argc = json_array_size (json_object_get (body, "args"));
    shoal_runner_task_t task = {
        .job = json_string_value (json_object_get (body, "job")),
        .task = json_integer_value (json_object_get (body, "task")),
        .attempt = json_integer_value (json_object_get (body, "attempt")),
        .spawn = strcmp (json_string_value (json_object_get (body, "kind")),
                         SHOAL_KIND_SPAWN) == 0,
        .command = json_string_value (json_object_get (body, "command")),
        .args = args,
        .argc = argc,
        .timeout_ms = json_integer_value (json_object_get (body,
                                                           "timeout_ms")),
    };
    shoal_error_t err;
    shoal_error_clear (&err);
    if (shoal_runner_start (self->runner, &task, now, &err))
        s_reject (self, body,
                  err.code == SHOAL_ELIMIT ? SHOAL_STATUS_REFUSED
                                           : SHOAL_STATUS_ERROR,
                  err.message);
    s_free_args (args, argc);
}

typedef void (s_handler_fn) (shoal_agent_t *self, json_t *body, int64_t now);

/*  What the worker does with each command; NULL: not for a worker.        */
static s_handler_fn *const s_handlers[SHOAL_MSG_COUNT] = {
    [SHOAL_MSG_WELCOME] = s_on_welcome,
    [SHOAL_MSG_HEARTBEAT] = s_on_heartbeat,
    [SHOAL_MSG_TASK] = s_on_task,
    [SHOAL_MSG_CANCEL] = s_on_cancel,
    [SHOAL_MSG_RECONNECT] = s_on_reconnect,
};

/*  Reads one multipart message; returns its part count, 0 when there is
    none. Only the first two parts are kept: [command][body].              */
static int
s_recv_parts (void *handle, zmq_msg_t *command, zmq_msg_t *body)
{
    if (zmq_msg_recv (command, handle, ZMQ_DONTWAIT) < 0)
        return 0;
    int parts = 1;
    bool more = zmq_msg_more (command);
    if (more) {
        zmq_msg_recv (body, handle, 0);
        parts++;
        more = zmq_msg_more (body);
    }
    while (more) {
        zmq_msg_t extra;
        zmq_msg_init (&extra);
        zmq_msg_recv (&extra, handle, 0);
        parts++;
        more = zmq_msg_more (&extra);
        zmq_msg_close (&extra);
    }
    return parts;
}

static void
s_receive (shoal_agent_t *self, int64_t now)
{
    for (int i = 0; i < S_RECV_BATCH && self->sock; i++) {
        zmq_msg_t command, body;
        zmq_msg_init (&command);
        zmq_msg_init (&body);
        int parts = s_recv_parts (zsock_resolve (self->sock), &command, &body);
        if (parts == 0) {
            zmq_msg_close (&command);
            zmq_msg_close (&body);
            break;
        }
        self->expire_at = now + self->heartbeat_ms * SHOAL_HEARTBEAT_LIVENESS;
        shoal_msg_type_t type;
        json_t *decoded = NULL;
        shoal_error_t err;
        shoal_error_clear (&err);
        if (parts != 2)
            shoal_warn ("dropped a message of %d parts (expected 2)", parts);
        else if (shoal_msg_decode (zmq_msg_data (&command),
                                   zmq_msg_size (&command),
                                   zmq_msg_data (&body), zmq_msg_size (&body),
                                   &type, &decoded, &err))
            shoal_warn ("dropped a message: %s", err.message);
        else if (!s_handlers[type])
            shoal_warn ("dropped %s: not a command for a worker",
                        shoal_msg_name (type));
        else
            s_handlers[type](self, decoded, now);
        json_decref (decoded);
        zmq_msg_close (&command);
        zmq_msg_close (&body);
    }
}

/* ---- the loop ------------------------------------------------------- */

/*  Stops the tasks still running; the controller re-queues them when it
    gets our BYE.                                                          */
static void
s_end_drain (shoal_agent_t *self, int64_t now)
{
    if (self->killing)
        return;
    self->killing = true;
    s_refuse_queued (self, "worker is stopping");
    if (shoal_runner_running (self->runner))
        shoal_info ("stopping %zu running tasks: they will run elsewhere",
                    shoal_runner_running (self->runner));
    shoal_runner_stop_all (self->runner, now);
}

/*  First stop: drain. Second stop, or no drain time: stop at once.        */
static void
s_begin_stop (shoal_agent_t *self, int64_t now)
{
    if (self->stopping || self->drain_timeout_ms <= 0) {
        self->stopping = true;
        s_end_drain (self, now);
        return;
    }
    self->stopping = true;
    self->drain_until = now + self->drain_timeout_ms;
    s_refuse_queued (self, "worker is stopping");
    shoal_info ("draining: no new tasks; %zu running get up to %lld ms",
                shoal_runner_running (self->runner),
                (long long) self->drain_timeout_ms);
    //  Tell the controller at once, so it sends nothing more.
    if (self->sock)
        s_send_heartbeat (self, now);
}

static void
s_wake (shoal_agent_t *self, int wake_fd, int64_t now)
{
    char bytes[256];
    ssize_t got;
    bool stop = false;
    while ((got = read (wake_fd, bytes, sizeof bytes)) > 0)
        for (ssize_t i = 0; i < got; i++)
            if (bytes[i] == SHOAL_AGENT_WAKE_STOP)
                stop = true;
    if (got < 0 && errno != EAGAIN && errno != EINTR)
        shoal_warn ("wake pipe: %s", strerror (errno));
    if (stop)
        s_begin_stop (self, now);
    //  Reaping is cheap and catches a SIGCHLD byte lost to a full pipe.
    shoal_runner_reap (self->runner, now, s_on_result, self);
    if (!self->stopping)
        s_start_queued (self, now);
}

static void
s_timers (shoal_agent_t *self, int64_t now)
{
    if (self->sock && now >= self->heartbeat_at)
        s_send_heartbeat (self, now);
    if (self->stopping && !self->killing && now >= self->drain_until)
        s_end_drain (self, now);
    if (self->sock && !self->stopping && now >= self->expire_at)
        s_lose (self, now);
    if (!self->sock && !self->stopping && now >= self->reconnect_at)
        s_reconnect (self, now);
    shoal_runner_tick (self->runner, now);
    s_flush (self);
}

/*  Milliseconds until the next timer, for zmq_poll; -1 for none.          */
static long
s_timeout (const shoal_agent_t *self, int64_t now)
{
    int64_t next = shoal_runner_next_deadline (self->runner);
    int64_t candidates[5] = { -1, -1, -1, -1, -1 };
    if (self->stopping && !self->killing)
        candidates[4] = self->drain_until;
    if (self->sock)
        candidates[0] = self->heartbeat_at;
    if (self->sock && !self->stopping)
        candidates[1] = self->expire_at;
    if (!self->sock && !self->stopping)
        candidates[2] = self->reconnect_at;
    if (self->head && self->state == S_READY)
        candidates[3] = now + S_FLUSH_RETRY_MS;
    for (size_t i = 0; i < 5; i++)
        if (candidates[i] >= 0 && (next < 0 || candidates[i] < next))
            next = candidates[i];
    if (next < 0)
        return -1;
    return next > now ? (long) (next - now) : 0;
}

int
shoal_agent_run (shoal_agent_t *self, int wake_fd)
{
    int rc = 0;
    int64_t now = s_now ();
    shoal_info ("worker '%s' with %d slots connecting to %s", self->name,
                self->slots, self->endpoint);
    if (self->sock)
        s_send_hello (self);
    while (!self->stopping || shoal_runner_running (self->runner) > 0) {
        zmq_pollitem_t items[2] = {
            { NULL, wake_fd, ZMQ_POLLIN, 0 },
            { self->sock ? zsock_resolve (self->sock) : NULL, 0, ZMQ_POLLIN,
              0 },
        };
        int ready = zmq_poll (items, self->sock ? 2 : 1, s_timeout (self, now));
        if (ready < 0 && errno != EINTR) {
            shoal_error ("poll: %s", zmq_strerror (errno));
            rc = -1;
            break;
        }
        now = s_now ();
        if (ready > 0 && (items[0].revents & ZMQ_POLLIN))
            s_wake (self, wake_fd, now);
        if (ready > 0 && self->sock && (items[1].revents & ZMQ_POLLIN))
            s_receive (self, now);
        s_timers (self, now);
    }
    if (self->sock) {
        s_flush (self);
        s_send (self, SHOAL_MSG_BYE, json_object ());
        //  Long enough for the BYE to leave when the context terminates.
        zsock_set_linger (self->sock, S_BYE_LINGER_MS);
        zsock_destroy (&self->sock);
    }
    if (self->pending)
        shoal_warn ("%zu results were not delivered", self->pending);
    shoal_info ("stopped");
    return rc;
}

/* ---- life cycle ----------------------------------------------------- */

shoal_agent_t *
shoal_agent_new (const shoal_agent_config_t *config, shoal_runner_t *runner,
                 shoal_error_t *err)
{
    shoal_agent_t *self = calloc (1, sizeof *self);
    if (!self) {
        shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    self->endpoint = strdup (config->endpoint);
    self->name = strdup (config->name);
    self->host = strdup (config->host);
    self->slots = config->slots;
    self->drain_timeout_ms = config->drain_timeout_ms;
    shoal_random_hex (self->instance, (sizeof self->instance - 1) / 2);
    /* One task queued per slot: the next one is here when a slot frees,
       instead of a round trip to the controller away. */
    self->queued = zlistx_new ();
    if (self->queued)
        zlistx_set_destructor (self->queued,
                               (zlistx_destructor_fn *) s_json_destructor);
    self->health_file = config->health_file ? strdup (config->health_file)
                                            : NULL;
    self->runner = runner;
    self->heartbeat_ms = SHOAL_HEARTBEAT_MS;
    self->backoff_ms = SHOAL_RECONNECT_MIN_MS;
    if (!self->endpoint || !self->name || !self->host) {
        shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        shoal_agent_destroy (&self);
        return NULL;
    }
    if (config->curve_secret) {
        self->cert = zcert_load (config->curve_secret);
        zcert_t *server = zcert_load (config->curve_server);
        const char *zero = "0000000000000000000000000000000000000000";
        if (!self->cert || streq (zcert_secret_txt (self->cert), zero))
            shoal_error_set (err, SHOAL_EINVAL, "curve-secret",
                             "cannot load the key pair %s (and %s_secret)",
                             config->curve_secret, config->curve_secret);
        else if (!server)
            shoal_error_set (err, SHOAL_EINVAL, "curve-server",
                             "cannot load the controller's public key %s",
                             config->curve_server);
        else
            snprintf (self->server_key, sizeof self->server_key, "%s",
                      zcert_public_txt (server));
        zcert_destroy (&server);
        if (!*self->server_key) {
            shoal_agent_destroy (&self);
            return NULL;
        }
    }
    if (s_open (self, s_now (), err) < 0)
        shoal_agent_destroy (&self);
    return self;
}

void
shoal_agent_destroy (shoal_agent_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shoal_agent_t *self = *self_p;
    zsock_destroy (&self->sock);
    while (self->head) {
        s_pending_t *entry = self->head;
        self->head = entry->next;
        free (entry->body);
        free (entry);
    }
    free (self->endpoint);
    free (self->name);
    free (self->host);
    zcert_destroy (&self->cert);
    zlistx_destroy (&self->queued);
    free (self->health_file);
    free (self);
    *self_p = NULL;
}
