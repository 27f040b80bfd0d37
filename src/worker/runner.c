/*  runner.c: starting tasks, their process table, reaping and cancel.

    Modelled on libuv's src/unix/process.c and glibc's posix_spawn.
    Everything the child needs (argv, envp, paths, open descriptors) is
    prepared in the parent, because between clone and exec the child may
    only call async-signal-safe functions: libzmq's threads may hold the
    malloc or stdio locks at that moment and only the calling thread lives
    on in the child.

    The child is cloned with CLONE_VM | CLONE_VFORK, on a stack of its
    own: it shares the worker's memory instead of copying its page tables
    (fork of the worker, with libzmq and its libraries mapped, cost more
    CPU than /bin/true itself), and the worker sleeps until the child has
    exec'd or exited. So the child reports a failed exec by writing errno
    into the parent's memory before it exits: nonzero means exec failed
    and the task is answered with that reason, as libuv's status pipe
    would. Where clone is emulated as fork (valgrind does so) the child's
    writes never reach us: a probe at start finds that out, and the
    runner then uses libuv's close-on-exec status pipe instead.
    Signals are blocked across the clone so that no handler of the
    worker runs in the child (on the worker's memory) before the child
    has reset them to default.

    There is no shell anywhere: each filled argument is one argv entry.    */
#include "runner.h"

#include "shoal/log.h"
#include "shoal/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/*  One running task. Invariant: pid > 0 exactly when the entry is in use,
    and pid is also the id of the task's process group.                    */
typedef struct {
    pid_t pid;                        /* child and group id; 0: entry free */
    char job[SHOAL_JOB_ID_MAX + 1];   /* job id                            */
    json_int_t task;                  /* task id                           */
    json_int_t attempt;               /* attempt number                    */
    bool spawn;                       /* read spawn.json after exit 0      */
    bool canceled;                    /* CANCEL asked: report "canceled"   */
    bool stopped;                     /* stopped by shutdown: no result    */
    bool signalled;                   /* SIGTERM sent, kill_at is set      */
    bool killed;                      /* SIGKILL sent: nothing left to do  */
    bool timed_out;                   /* ran past deadline: "timeout"      */
    int64_t started;                  /* start time, monotonic ms          */
    int64_t deadline;                 /* timeout, monotonic ms; 0: none    */
    int64_t kill_at;                  /* when SIGKILL is due               */
    char command[64];                 /* for log lines only, truncated     */
} s_proc_t;

/*  The child's stack. Reserved once (MAP_NORESERVE, pages are only
    resident once touched) with a guard page below it; execvpe keeps a
    copy of PATH and, for scripts, of argv on it.                          */
#define S_STACK_SIZE (512 * 1024)

/*  The table has a fixed size chosen at start: a task either gets an entry
    or is refused, so nothing grows with what the network sends.           */
struct shoal_runner {
    char *data_dir;                   /* absolute path, no trailing slash  */
    s_proc_t *procs;                  /* `slots` entries                   */
    size_t slots;                     /* table size: most tasks at once    */
    size_t running;                   /* entries in use                    */
    int null_fd;                      /* /dev/null, every task's stdin     */
    char *stack;                      /* S_STACK_SIZE + guard page, mmap'd */
    size_t stack_size;                /* the whole mapping, for munmap     */
    char logs_job[SHOAL_JOB_ID_MAX + 1];  /* job whose logs/ exists, so a
                                         task's start skips mkdir -p      */
    bool signals_known;               /* `reset` has been taken            */
    bool piped;                       /* the child does not share our
                                         memory (clone emulated as fork,
                                         as under valgrind): exec errors
                                         come back through a pipe         */
    sigset_t reset;                   /* signals not SIG_DFL in the worker:
                                         the child resets just these      */
};

static void s_probe_shared (shoal_runner_t *self);

/*  Formats a path into `buf`; -1 when it does not fit.                    */
static int
s_path (char *buf, size_t size, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_path (char *buf, size_t size, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    int len = vsnprintf (buf, size, fmt, args);
    va_end (args);
    return len < 0 || (size_t) len >= size ? -1 : 0;
}

/*  mkdir -p. Sets errno and returns -1 on failure.                        */
static int
s_mkdir_p (const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen (path);
    if (len == 0 || len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy (buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir (buf, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir (buf, 0755) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

shoal_runner_t *
shoal_runner_new (const char *data_dir, size_t slots, shoal_error_t *err)
{
    if (s_mkdir_p (data_dir) < 0) {
        shoal_error_set (err, SHOAL_EIO, "data-dir", "cannot create '%s': %s",
                         data_dir, strerror (errno));
        return NULL;
    }
    shoal_runner_t *self = calloc (1, sizeof *self);
    if (!self) {
        shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    self->data_dir = realpath (data_dir, NULL);
    if (!self->data_dir) {
        shoal_error_set (err, SHOAL_EIO, "data-dir", "cannot resolve '%s': %s",
                         data_dir, strerror (errno));
        free (self);
        return NULL;
    }
    self->slots = slots;
    self->null_fd = -1;
    self->procs = calloc (slots, sizeof *self->procs);
    if (!self->procs) {
        shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        shoal_runner_destroy (&self);
        return NULL;
    }
    self->null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
    if (self->null_fd < 0) {
        shoal_error_set (err, SHOAL_EIO, NULL, "cannot open /dev/null: %s",
                         strerror (errno));
        shoal_runner_destroy (&self);
        return NULL;
    }
    size_t page = (size_t) sysconf (_SC_PAGESIZE);
    self->stack_size = S_STACK_SIZE + page;
    void *stack = mmap (NULL, self->stack_size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
                            | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        shoal_error_set (err, SHOAL_ENOMEM, NULL,
                         "cannot map a stack for tasks: %s", strerror (errno));
        shoal_runner_destroy (&self);
        return NULL;
    }
    self->stack = stack;
    s_probe_shared (self);
    //  The stack grows down: an overflow hits the guard page, not the heap.
    mprotect (self->stack, page, PROT_NONE);
    return self;
}

void
shoal_runner_destroy (shoal_runner_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shoal_runner_t *self = *self_p;
    //  Normally empty by now; anything left would outlive the worker
    //  unseen, so it is killed and reaped rather than abandoned.
    for (size_t i = 0; i < self->slots; i++) {
        s_proc_t *proc = &self->procs[i];
        if (proc->pid <= 0)
            continue;
        shoal_log_task (SHOAL_LOG_WARN, proc->job, proc->task,
                        "killing pid %d at exit", (int) proc->pid);
        kill (-proc->pid, SIGKILL);
        while (waitpid (proc->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (self->null_fd >= 0)
        close (self->null_fd);
    if (self->stack)
        munmap (self->stack, self->stack_size);
    free (self->procs);
    free (self->data_dir);
    free (self);
    *self_p = NULL;
}

const char *
shoal_runner_data_dir (const shoal_runner_t *self)
{
    return self->data_dir;
}

size_t
shoal_runner_running (const shoal_runner_t *self)
{
    return self->running;
}

json_t *
shoal_runner_attempts (const shoal_runner_t *self)
{
    json_t *list = json_array ();
    for (size_t i = 0; list && i < self->slots; i++) {
        const s_proc_t *proc = &self->procs[i];
        if (proc->pid > 0 && !proc->stopped)
            json_array_append_new (list, json_pack (
                "{s:s, s:I, s:I}", "job", proc->job, "task", proc->task,
                "attempt", proc->attempt));
    }
    return list;
}

bool
shoal_runner_job_id_ok (const char *job)
{
    size_t len = 0;
    for (; job[len]; len++) {
        char c = job[len];
        if (len >= SHOAL_JOB_ID_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return len > 0;
}

/*  True for the variables the runner sets itself: a value inherited from
    the worker's own environment must not shadow them.                     */
static bool
s_env_is_ours (const char *entry)
{
    static const char *const ours[] = { "SHOAL_JOB_ID=", "SHOAL_TASK_ID=",
                                        "SHOAL_JOB_DIR=" };
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (strncmp (entry, ours[i], strlen (ours[i])) == 0)
            return true;
    return false;
}

/*  What the child needs, prepared by the parent; the child writes
    `error` (shared memory) when exec fails.                               */
typedef struct {
    const char *dir;                  /* working directory: the job's      */
    int null_fd;                      /* stdin                             */
    int log_fd;                       /* stdout and stderr                 */
    const char *file;                 /* argv[0], looked up in PATH        */
    char *const *argv;                /* NULL-terminated                   */
    char *const *envp;                /* NULL-terminated                   */
    const sigset_t *reset;            /* signals to set back to SIG_DFL    */
    pid_t worker;                     /* our pid, for the orphan check     */
    int status_fd;                    /* pipe for `error` when `piped`, or
                                         -1                               */
    int error;                        /* errno of the failed step, or 0    */
    int ran;                          /* set by the child: memory shared   */
} s_child_t;

/*  The child between clone and exec, on its own stack in the worker's
    memory: async-signal-safe calls only, no allocation, no stdio, no
    logging, and nothing written but `error`.                              */
static int
s_child (void *arg)
{
    s_child_t *child = arg;
    child->ran = 1;
    if (!child->file)
        _exit (0);              // the probe of s_probe_shared
    //  Its own group, so cancel can signal everything the task starts.
    setpgid (0, 0);
    //  A task must not outlive a worker that was killed: the controller
    //  runs it again elsewhere, and an orphan would run it twice at once.
    //  If the worker died before this line, getppid has changed already.
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    if (getppid () != child->worker)
        _exit (127);
    //  Handlers of the worker make no sense in the task (exec resets them,
    //  but one could run between the unblock below and exec), and an
    //  ignored signal would be inherited across exec. Only the signals
    //  the worker changed need resetting, not all 64.
    struct sigaction dfl;
    memset (&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember (child->reset, sig) == 1)
            sigaction (sig, &dfl, NULL);
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);

    //  main keeps 0, 1 and 2 open, so the fds here are all above 2 and
    //  dup2 never lands on itself (which would keep close-on-exec).
    if (chdir (child->dir) == 0 && dup2 (child->null_fd, STDIN_FILENO) >= 0
        && dup2 (child->log_fd, STDOUT_FILENO) >= 0
        && dup2 (child->log_fd, STDERR_FILENO) >= 0)
        execvpe (child->file, child->argv, child->envp);
    child->error = errno ? errno : ENOEXEC;
    if (child->status_fd >= 0) {
        ssize_t written;
        do
            written = write (child->status_fd, &child->error,
                             sizeof child->error);
        while (written < 0 && errno == EINTR);
    }
    _exit (127);
}

/*  AddressSanitizer cannot follow a child running on a stack of ours (it
    warns about the unknown stack at every start, on the worker's stderr),
    so sanitizer builds start children with fork and take the status-pipe
    path, as under valgrind.                                               */
#if defined(__SANITIZE_ADDRESS__)
#   define S_START_WITH_FORK 1
#elif defined(__has_feature)
#   if __has_feature(address_sanitizer)
#       define S_START_WITH_FORK 1
#   endif
#endif

/*  Starts `child` in a new process running s_child, which never returns.
    Returns its pid, or -1 with errno set.                                 */
static pid_t
s_clone (shoal_runner_t *self, s_child_t *child)
{
#ifdef S_START_WITH_FORK
    (void) self;
    pid_t pid = fork ();
    if (pid == 0)
        s_child (child);
    return pid;
#else
    return clone (s_child, self->stack + self->stack_size,
                  CLONE_VM | CLONE_VFORK | SIGCHLD, child);
#endif
}

/*  Clones a child that only marks `ran` and exits, to learn whether
    children share our memory. They do, unless clone is emulated as fork
    (valgrind does so); then the runner falls back to libuv's
    close-on-exec status pipe, so exec errors are still reported.         */
static void
s_probe_shared (shoal_runner_t *self)
{
    s_child_t probe = { .status_fd = -1 };
    sigset_t all, old;
    sigfillset (&all);
    pthread_sigmask (SIG_SETMASK, &all, &old);
    pid_t pid = s_clone (self, &probe);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (pid > 0)
        while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
            ;
    self->piped = pid > 0 && !probe.ran;
    if (self->piped)
        shoal_info ("children do not share memory: exec errors come back "
                    "through a pipe");
}

/*  The signals whose disposition is not SIG_DFL now: the worker sets its
    handlers (and ignores SIGPIPE) before it starts any task, so this is
    taken once, at the first start, instead of in every child.            */
static void
s_take_signals (shoal_runner_t *self)
{
    sigemptyset (&self->reset);
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction old;
        if (sig == SIGKILL || sig == SIGSTOP
            || sigaction (sig, NULL, &old) < 0)
            continue;           // libc's own (SIGCANCEL, SIGSETXID) fail
        bool custom = (old.sa_flags & SA_SIGINFO)
                      || old.sa_handler != SIG_DFL;
        if (custom)
            sigaddset (&self->reset, sig);
    }
    self->signals_known = true;
}

/*  mkdir -p of the job's logs/ directory, skipped when it was made for
    the same job just before (a stage's tasks all start in one job);
    `again` makes it all the same (the job directory was removed since).
    Sets errno and returns -1 on failure.                                  */
static int
s_make_logs (shoal_runner_t *self, const char *job, const char *logs,
             bool again)
{
    if (!again && strcmp (self->logs_job, job) == 0)
        return 0;
    self->logs_job[0] = '\0';
    if (s_mkdir_p (logs) < 0)
        return -1;
    snprintf (self->logs_job, sizeof self->logs_job, "%s", job);
    return 0;
}

static s_proc_t *
s_free_entry (shoal_runner_t *self)
{
    for (size_t i = 0; i < self->slots; i++)
        if (self->procs[i].pid == 0)
            return &self->procs[i];
    return NULL;
}

int
shoal_runner_start (shoal_runner_t *self, const shoal_runner_task_t *task,
                    int64_t now, shoal_error_t *err)
{
    s_proc_t *proc = s_free_entry (self);
    if (!proc)
        return shoal_error_set (err, SHOAL_ELIMIT, NULL, "no free slot");
    if (!shoal_runner_job_id_ok (task->job))
        return shoal_error_set (err, SHOAL_EINVAL, "job", "invalid job id");

    char dir[PATH_MAX], logs[PATH_MAX], log_path[PATH_MAX];
    if (s_path (dir, sizeof dir, "%s/jobs/%s", self->data_dir, task->job)
        || s_path (logs, sizeof logs, "%s/logs", dir)
        || s_path (log_path, sizeof log_path, "%s/%lld.log", logs,
                   (long long) task->task))
        return shoal_error_set (err, SHOAL_EIO, NULL,
                                "job directory path is too long");
    if (s_make_logs (self, task->job, logs, false) < 0)
        return shoal_error_set (err, SHOAL_EIO, NULL,
                                "cannot create job directory: %s",
                                strerror (errno));
    if (task->spawn) {
        //  A spawn.json left by an earlier attempt must never be taken
        //  for this attempt's output.
        char spawn_path[PATH_MAX];
        if (s_path (spawn_path, sizeof spawn_path, "%s/%s", dir,
                    SHOAL_SPAWN_FILE))
            return shoal_error_set (err, SHOAL_EIO, NULL,
                                    "job directory path is too long");
        if (unlink (spawn_path) < 0 && errno != ENOENT)
            return shoal_error_set (err, SHOAL_EIO, NULL,
                                    "cannot remove stale %s: %s",
                                    SHOAL_SPAWN_FILE, strerror (errno));
    }

    int rc = 0;
    int log_fd = -1;
    int status[2] = { -1, -1 };
    char *own_env[3] = { NULL, NULL, NULL };
    char **envp = NULL;
    char **argv = calloc (task->argc + 2, sizeof *argv);
    if (!argv) {
        rc = shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        goto done;
    }
    argv[0] = (char *) task->command;
    for (size_t i = 0; i < task->argc; i++)
        argv[i + 1] = task->args[i];

    size_t env_count = 0;
    while (environ && environ[env_count])
        env_count++;
    envp = calloc (env_count + 4, sizeof *envp);
    if (!envp
        || asprintf (&own_env[0], "SHOAL_JOB_ID=%s", task->job) < 0
        || asprintf (&own_env[1], "SHOAL_TASK_ID=%lld",
                     (long long) task->task) < 0
        || asprintf (&own_env[2], "SHOAL_JOB_DIR=%s", dir) < 0) {
        //  asprintf leaves its pointer undefined on failure.
        for (size_t i = 0; i < 3; i++)
            own_env[i] = NULL;
        rc = shoal_error_set (err, SHOAL_ENOMEM, NULL, "out of memory");
        goto done;
    }
    size_t env_used = 0;
    for (size_t i = 0; i < env_count; i++)
        if (!s_env_is_ours (environ[i]))
            envp[env_used++] = environ[i];
    for (size_t i = 0; i < 3; i++)
        envp[env_used++] = own_env[i];

    const int log_flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
    log_fd = open (log_path, log_flags, 0644);
    if (log_fd < 0 && errno == ENOENT
        && s_make_logs (self, task->job, logs, true) == 0)
        log_fd = open (log_path, log_flags, 0644);
    if (log_fd < 0) {
        rc = shoal_error_set (err, SHOAL_EIO, NULL,
                              "cannot open log file: %s", strerror (errno));
        goto done;
    }

    if (!self->signals_known)
        s_take_signals (self);
    if (self->piped && pipe2 (status, O_CLOEXEC) < 0) {
        rc = shoal_error_set (err, SHOAL_EIO, NULL, "cannot create pipe: %s",
                              strerror (errno));
        goto done;
    }
    s_child_t child = {
        .dir = dir, .null_fd = self->null_fd, .log_fd = log_fd,
        .file = task->command, .argv = argv, .envp = envp,
        .reset = &self->reset, .worker = getpid (), .status_fd = status[1],
        .error = 0,
    };
    sigset_t all, old;
    sigfillset (&all);
    pthread_sigmask (SIG_SETMASK, &all, &old);
    //  CLONE_VFORK: we go on once the child has exec'd or exited, so
    //  `child` (on our stack) and the child's stack are free again then.
    pid_t pid = s_clone (self, &child);
    int clone_errno = errno;
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        rc = shoal_error_set (err, SHOAL_EIO, NULL, "cannot run '%.200s': %s",
                              task->command, strerror (clone_errno));
        goto done;
    }
    if (self->piped) {
        //  End of file: exec worked; an errno: it did not.
        close (status[1]);
        status[1] = -1;
        ssize_t got;
        do
            got = read (status[0], &child.error, sizeof child.error);
        while (got < 0 && errno == EINTR);
        if (got != (ssize_t) sizeof child.error)
            child.error = 0;
    }
    if (child.error) {
        //  The child is exiting with 127: reap it here, so the SIGCHLD
        //  loop never sees a pid that is not in the table.
        while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
            ;
        rc = shoal_error_set (err, SHOAL_EIO, NULL, "cannot run '%.200s': %s",
                              task->command, strerror (child.error));
        goto done;
    }
    //  Set from both sides, so the group exists whichever runs first; the
    //  child has exec'd by now (EACCES) or died (ESRCH).
    if (setpgid (pid, pid) < 0 && errno != EACCES && errno != ESRCH)
        shoal_warn ("setpgid %d: %s", (int) pid, strerror (errno));

    memset (proc, 0, sizeof *proc);
    proc->pid = pid;
    snprintf (proc->job, sizeof proc->job, "%s", task->job);
    proc->task = task->task;
    proc->attempt = task->attempt;
    proc->spawn = task->spawn;
    proc->started = now;
    proc->deadline = task->timeout_ms > 0 ? now + task->timeout_ms : 0;
    snprintf (proc->command, sizeof proc->command, "%s", task->command);
    self->running++;
    shoal_log_task (SHOAL_LOG_INFO, proc->job, proc->task,
                    "attempt %lld: started %s '%s' as pid %d",
                    (long long) proc->attempt,
                    proc->spawn ? SHOAL_KIND_SPAWN : SHOAL_KIND_TASK,
                    proc->command, (int) pid);

done:
    for (size_t i = 0; i < 2; i++)
        if (status[i] >= 0)
            close (status[i]);
    if (log_fd >= 0)
        close (log_fd);
    for (size_t i = 0; i < 3; i++)
        free (own_env[i]);
    free (envp);
    free (argv);
    return rc;
}

static s_proc_t *
s_find_task (shoal_runner_t *self, const char *job, json_int_t task,
             json_int_t attempt)
{
    for (size_t i = 0; i < self->slots; i++) {
        s_proc_t *proc = &self->procs[i];
        if (proc->pid > 0 && proc->task == task && proc->attempt == attempt
            && strcmp (proc->job, job) == 0)
            return proc;
    }
    return NULL;
}

static s_proc_t *
s_find_pid (shoal_runner_t *self, pid_t pid)
{
    for (size_t i = 0; i < self->slots; i++)
        if (self->procs[i].pid == pid)
            return &self->procs[i];
    return NULL;
}

/*  Signals the task's whole process group. ESRCH is expected: the group
    may be gone while its leader waits to be reaped.                       */
static void
s_signal_group (s_proc_t *proc, int sig)
{
    if (kill (-proc->pid, sig) < 0 && errno != ESRCH)
        shoal_log_task (SHOAL_LOG_WARN, proc->job, proc->task,
                        "cannot signal group %d: %s", (int) proc->pid,
                        strerror (errno));
}

static void
s_terminate (s_proc_t *proc, int64_t now)
{
    if (proc->signalled)
        return;
    s_signal_group (proc, SIGTERM);
    proc->signalled = true;
    proc->kill_at = now + SHOAL_RUNNER_KILL_AFTER_MS;
}

int
shoal_runner_cancel (shoal_runner_t *self, const char *job, json_int_t task,
                     json_int_t attempt, int64_t now)
{
    s_proc_t *proc = s_find_task (self, job, task, attempt);
    if (!proc)
        return SHOAL_ENOTFOUND;
    proc->canceled = true;
    s_terminate (proc, now);
    return 0;
}

void
shoal_runner_stop_all (shoal_runner_t *self, int64_t now)
{
    for (size_t i = 0; i < self->slots; i++) {
        s_proc_t *proc = &self->procs[i];
        if (proc->pid <= 0)
            continue;
        proc->stopped = true;
        s_terminate (proc, now);
    }
}

void
shoal_runner_tick (shoal_runner_t *self, int64_t now)
{
    for (size_t i = 0; i < self->slots; i++) {
        s_proc_t *proc = &self->procs[i];
        if (proc->pid > 0 && proc->deadline && !proc->signalled
            && now >= proc->deadline) {
            shoal_log_task (SHOAL_LOG_INFO, proc->job, proc->task,
                            "attempt %lld: timed out after %lld ms, "
                            "stopping it", (long long) proc->attempt,
                            (long long) (now - proc->started));
            proc->timed_out = true;
            s_terminate (proc, now);
            continue;
        }
        if (proc->pid <= 0 || !proc->signalled || proc->killed
            || now < proc->kill_at)
            continue;
        shoal_log_task (SHOAL_LOG_WARN, proc->job, proc->task,
                        "attempt %lld: still running %d ms after SIGTERM, "
                        "sending SIGKILL", (long long) proc->attempt,
                        SHOAL_RUNNER_KILL_AFTER_MS);
        s_signal_group (proc, SIGKILL);
        proc->killed = true;
    }
}

int64_t
shoal_runner_next_deadline (const shoal_runner_t *self)
{
    int64_t next = -1;
    for (size_t i = 0; i < self->slots; i++) {
        const s_proc_t *proc = &self->procs[i];
        if (proc->pid > 0 && proc->signalled && !proc->killed
            && (next < 0 || proc->kill_at < next))
            next = proc->kill_at;
        if (proc->pid > 0 && proc->deadline && !proc->signalled
            && (next < 0 || proc->deadline < next))
            next = proc->deadline;
    }
    return next;
}

/*  Reads and checks <dir>/spawn.json. Returns the list (new reference),
    or NULL with `msg` saying what is wrong, starting with "spawn.json".
    The size is checked before anything is read, and again while reading
    in case the file grows: this is the one place where a task's output
    becomes controller memory.                                             */
static json_t *
s_read_spawn (const char *dir, char *msg, size_t size)
{
    char path[PATH_MAX];
    if (s_path (path, sizeof path, "%s/%s", dir, SHOAL_SPAWN_FILE)) {
        snprintf (msg, size, "%s: path is too long", SHOAL_SPAWN_FILE);
        return NULL;
    }
    //  O_NONBLOCK: a FIFO in its place must not hang the worker.
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf (msg, size, "%s: cannot open: %s", SHOAL_SPAWN_FILE,
                  strerror (errno));
        return NULL;
    }
    json_t *list = NULL;
    char *text = NULL;
    struct stat st;
    if (fstat (fd, &st) < 0) {
        snprintf (msg, size, "%s: cannot stat: %s", SHOAL_SPAWN_FILE,
                  strerror (errno));
        goto done;
    }
    if (!S_ISREG (st.st_mode)) {
        snprintf (msg, size, "%s: not a regular file", SHOAL_SPAWN_FILE);
        goto done;
    }
    const size_t limit = SHOAL_RUNNER_SPAWN_MAX_SIZE;
    if ((uintmax_t) st.st_size > limit) {
        snprintf (msg, size, "%s: %jd bytes is over the limit of %zu bytes",
                  SHOAL_SPAWN_FILE, (intmax_t) st.st_size, limit);
        goto done;
    }
    size_t cap = (size_t) st.st_size + 1;
    size_t len = 0;
    text = malloc (cap);
    if (!text) {
        snprintf (msg, size, "%s: out of memory", SHOAL_SPAWN_FILE);
        goto done;
    }
    for (;;) {
        if (len == cap) {
            if (cap > limit) {
                snprintf (msg, size,
                          "%s: grew over the limit of %zu bytes while read",
                          SHOAL_SPAWN_FILE, limit);
                goto done;
            }
            size_t grown = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
            char *bigger = realloc (text, grown);
            if (!bigger) {
                snprintf (msg, size, "%s: out of memory", SHOAL_SPAWN_FILE);
                goto done;
            }
            text = bigger;
            cap = grown;
        }
        ssize_t got = read (fd, text + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf (msg, size, "%s: cannot read: %s", SHOAL_SPAWN_FILE,
                      strerror (errno));
            goto done;
        }
        if (got == 0)
            break;
        len += (size_t) got;
    }
    shoal_error_t err;
    shoal_error_clear (&err);
    list = shoal_spawn_parse (text, len, SHOAL_SPAWN_MAX_ENTRIES, &err);
    if (!list)
        //  spawn.c's messages already start with "spawn.json".
        snprintf (msg, size, "%s", err.message);
done:
    free (text);
    close (fd);
    return list;
}

/*  The RESULT body of an ended task. NULL only when out of memory.       */
static json_t *
s_result (shoal_runner_t *self, const s_proc_t *proc, int wait_status,
          int64_t now)
{
    json_t *result = json_object ();
    if (!result)
        return NULL;
    json_object_set_new (result, "job", json_string (proc->job));
    json_object_set_new (result, "task", json_integer (proc->task));
    json_object_set_new (result, "attempt", json_integer (proc->attempt));
    int64_t duration = now - proc->started;
    json_object_set_new (result, "duration_ms",
                         json_integer (duration > 0 ? duration : 0));

    const char *status = SHOAL_STATUS_EXITED;
    if (WIFEXITED (wait_status))
        json_object_set_new (result, "exit_code",
                             json_integer (WEXITSTATUS (wait_status)));
    else {
        status = SHOAL_STATUS_SIGNALED;
        json_object_set_new (result, "signal",
                             json_integer (WTERMSIG (wait_status)));
    }
    if (proc->canceled)
        status = SHOAL_STATUS_CANCELED;
    else if (proc->timed_out) {
        status = SHOAL_STATUS_TIMEOUT;
        json_object_set_new (result, "error", json_sprintf (
            "timed out after %lld ms", (long long) (proc->deadline
                                                    - proc->started)));
    }
    else if (proc->spawn && WIFEXITED (wait_status)
             && WEXITSTATUS (wait_status) == 0) {
        char dir[PATH_MAX];
        char msg[sizeof ((shoal_error_t *) 0)->message + 64];
        json_t *list = NULL;
        if (s_path (dir, sizeof dir, "%s/jobs/%s", self->data_dir, proc->job))
            snprintf (msg, sizeof msg, "%s: path is too long",
                      SHOAL_SPAWN_FILE);
        else
            list = s_read_spawn (dir, msg, sizeof msg);
        if (list)
            json_object_set_new (result, "spawn", list);
        else {
            status = SHOAL_STATUS_ERROR;
            json_object_set_new (result, "error", json_string (msg));
        }
    }
    json_object_set_new (result, "status", json_string (status));
    return result;
}

void
shoal_runner_reap (shoal_runner_t *self, int64_t now,
                   shoal_runner_result_fn fn, void *arg)
{
    for (;;) {
        int wait_status;
        pid_t pid = waitpid (-1, &wait_status, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            break;              // 0: none ended yet; ECHILD: no children
        s_proc_t *proc = s_find_pid (self, pid);
        if (!proc) {
            shoal_debug ("reaped pid %d, which is not a task", (int) pid);
            continue;
        }
        json_t *result = NULL;
        if (proc->stopped)
            shoal_log_task (SHOAL_LOG_INFO, proc->job, proc->task,
                            "attempt %lld: stopped by shutdown",
                            (long long) proc->attempt);
        else {
            result = s_result (self, proc, wait_status, now);
            if (!result)
                shoal_log_task (SHOAL_LOG_ERROR, proc->job, proc->task,
                                "out of memory for its result");
        }
        if (result) {
            json_t *code = json_object_get (result, "exit_code");
            json_t *sig = json_object_get (result, "signal");
            shoal_log_task (SHOAL_LOG_INFO, proc->job, proc->task,
                            "attempt %lld: %s (%s %lld) after %lld ms",
                            (long long) proc->attempt,
                            json_string_value (json_object_get (result,
                                                                "status")),
                            code ? "exit code" : "signal",
                            (long long) json_integer_value (code ? code
                                                                 : sig),
                            (long long) (now - proc->started));
        }
        memset (proc, 0, sizeof *proc);
        self->running--;
        if (result)
            fn (result, arg);
    }
}
