#!/usr/bin/env bash
# Runs the spec's request-data example end to end on this machine:
# builds shoal, starts a loopback file server, one controller and two
# workers, submits a job over the REST API and follows it to the end.
#
#   scripts/demo.sh                   run it; exits 0 only if the job succeeded
#   SHOAL_DEMO_KEEP=1 scripts/demo.sh keep the temporary directory (data, logs)
#   scripts/demo.sh --help            this text; it takes no other argument
#
# See example/README.md for what happens and how to run the steps by hand.
set -euo pipefail

# The comment block at the top of this script is its usage.
usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; }
case ${1:-} in
  -h | --help) usage; exit 0 ;;
esac
if [ $# -gt 0 ]; then
  echo "demo.sh: unexpected argument '$1' (scripts/demo.sh --help)" >&2
  exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

defs="$root/example/task_job_config.yaml"
data_id=demo
auth_user=demo
auth_password=demo
job_timeout=60      # seconds to wait for the job to end
start_timeout=15    # seconds to wait for each service to come up

heading() { printf '\n== %s\n' "$*"; }
info() { printf '  %s\n' "$*"; }

# ---- processes we start, stopped by PID on exit -------------------------
pids=()
names=()
tmp=""

show_logs() {
  [ -n "$tmp" ] && [ -d "$tmp/logs" ] || return 0
  local f
  for f in "$tmp"/logs/*.log; do
    [ -e "$f" ] || continue
    printf '\n--- %s (last 40 lines)\n' "${f#"$tmp"/}" >&2
    tail -n 40 "$f" >&2 || true
  done
}

fail() {
  printf '\ndemo: error: %s\n' "$*" >&2
  show_logs
  exit 1
}

stop_all() {
  # In reverse order of start: workers, then the controller, then the file
  # server, each given 5 s to exit after SIGTERM before SIGKILL.
  local i pid deadline
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 5))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all
  if [ -n "$tmp" ] && [ -d "$tmp" ]; then
    if [ "${SHOAL_DEMO_KEEP:-0}" = 1 ]; then
      printf '\nKept %s (data/ is the shared volume, logs/ the service logs).\n' "$tmp"
    else
      rm -rf "$tmp"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME LOGFILE COMMAND...: runs COMMAND in the background, output to LOGFILE.
start() {
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  pids+=("$!")
  names+=("$name")
}

check_alive() {
  local i
  for i in "${!pids[@]}"; do
    kill -0 "${pids[i]}" 2>/dev/null || fail "${names[i]} exited unexpectedly"
  done
}

# wait_until DESCRIPTION COMMAND...: polls COMMAND every 0.1 s for $start_timeout s.
wait_until() {
  local what=$1 deadline=$((SECONDS + start_timeout))
  shift
  until "$@" >/dev/null 2>&1; do
    check_alive
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${start_timeout}s waiting for $what"
    sleep 0.1
  done
}

# show WHAT < JSON: the JSON answers of the REST API, as text.
show_py=$(cat <<'EOF'
import json, sys

what = sys.argv[1]
d = json.load(sys.stdin)
COUNTS = ("pending", "running", "succeeded", "failed", "canceled")

if what == "id":
    print(d["id"])
elif what == "worker-count":
    print(len(d["workers"]))
elif what == "workers":
    print(", ".join("%s (%s slots)" % (w["id"], w["slots"]) for w in d["workers"]))
elif what == "progress":
    # first line: what to print; second line: the job state
    parts = []
    for s in d["stages"]:
        t = s["tasks"]
        counts = ", ".join("%d %s" % (t[k], k) for k in COUNTS if t.get(k))
        parts.append("%s: %s%s" % (s["name"], s["state"], " (%s)" % counts if counts else ""))
    print("%-9s | %s" % (d["state"], " | ".join(parts)))
    print(d["state"])
elif what == "stages":
    print("  %-15s %-10s %5s %9s %6s %8s" % ("stage", "state", "total", "succeeded", "failed", "canceled"))
    for s in d["stages"]:
        t = s["tasks"]
        print("  %-15s %-10s %5d %9d %6d %8d" % (s["name"], s["state"], t["total"],
                                                t["succeeded"], t["failed"], t["canceled"]))
    if d.get("error"):
        print("  error: %s" % d["error"])
elif what == "tasks":
    print("  %3s  %-14s %-6s %-10s %4s  %-14s %s" % ("id", "stage", "kind", "state", "exit", "worker", "what"))
    for t in d["tasks"]:
        p = t.get("params") or {}
        if t.get("kind") == "spawn":
            detail = "writes spawn.json"
        elif "url" in p:
            detail = p["url"]
        else:
            detail = " ".join("%s=%s" % kv for kv in sorted(p.items()) if kv[0] != "basic_auth")
        code = "-" if t.get("exit_code") is None else t["exit_code"]
        print("  %3s  %-14s %-6s %-10s %4s  %-14s %s" % (t["id"], t["stage"], t["kind"], t["state"],
                                                       code, t.get("worker") or "-", detail))
        if t.get("error"):
            print("       error: %s" % t["error"])
elif what == "first-task":
    print(d["tasks"][0]["id"] if d["tasks"] else "")
elif what == "failed-tasks":
    print(" ".join(str(t["id"]) for t in d["tasks"] if t["state"] == "failed"))
EOF
)
show() { python3 -c "$show_py" "$@"; }

# ---- build ---------------------------------------------------------------
heading "Build"
# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"
shoal_install_build_deps

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shoal-demo.XXXXXX")
mkdir -p "$tmp/data" "$tmp/logs"

info "cmake -S . -B build && cmake --build build --target shoal-controller shoal-worker"
if ! { cmake -S . -B build \
  && cmake --build build -j "$(nproc)" --target shoal-controller shoal-worker; } >"$tmp/build.log" 2>&1; then
  tail -n 40 "$tmp/build.log" >&2
  fail "the build failed (output above)"
fi
controller_bin="$root/build/shoal-controller"
worker_bin="$root/build/shoal-worker"
if [ ! -x "$controller_bin" ] || [ ! -x "$worker_bin" ]; then
  fail "build/ has no shoal-controller or shoal-worker"
fi
info "built build/shoal-controller and build/shoal-worker"

# ---- start the services --------------------------------------------------
heading "Start"
read -r http_port zmq_port files_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
api="http://127.0.0.1:$http_port"
endpoint="tcp://127.0.0.1:$zmq_port"
files="http://127.0.0.1:$files_port"
data="$tmp/data"

check_log="$tmp/logs/check.log"
if ! "$controller_bin" --definitions "$defs" --check >"$check_log" 2>&1; then
  cat "$check_log" >&2
  fail "example/task_job_config.yaml does not pass shoal-controller --check"
fi
rm -f "$check_log"
info "definitions   example/task_job_config.yaml passes --check"

start file-server "$tmp/logs/file-server.log" \
  python3 "$root/example/bin/file_server.py" --port "$files_port" \
  --root "$root/example/data" --user "$auth_user" --password "$auth_password"
wait_until "the file server on $files" curl -sS -o /dev/null "$files/"
info "file server   $files  (serves example/data)"

start controller "$tmp/logs/controller.log" \
  "$controller_bin" --definitions "$defs" --data-dir "$data" \
  --http "127.0.0.1:$http_port" --bind "$endpoint"
wait_until "the controller at $api/readyz" curl -fsS "$api/readyz"
info "controller    REST $api, workers connect to $endpoint"

for n in 1 2; do
  start "worker demo-worker-$n" "$tmp/logs/worker-$n.log" \
    env PATH="$root/example/bin:$PATH" REST_ENDPOINT="$files" LOG_LEVEL=INFO \
    "$worker_bin" --connect "$endpoint" --data-dir "$data" --slots 2 --name "demo-worker-$n"
done
workers_ready() {
  local n
  n=$(curl -fsS "$api/api/v1/workers" | show worker-count) || return 1
  [ "$n" -ge 2 ]
}
wait_until "2 workers in $api/api/v1/workers" workers_ready
workers=$(curl -fsS "$api/api/v1/workers" | show workers) || fail "GET /api/v1/workers failed"
info "workers       $workers"
info "shared volume $data"

# ---- submit the job ------------------------------------------------------
heading "Submit"
auth="Basic $(printf '%s:%s' "$auth_user" "$auth_password" | base64)"
body="{\"job\": \"request-data\", \"params\": {\"data_id\": \"$data_id\"}}"
info "curl -X POST $api/api/v1/jobs \\"
info "     -H 'Authorization: $auth' -d '$body'"
status=$(curl -sS -o "$tmp/submit.json" -w '%{http_code}' -X POST "$api/api/v1/jobs" \
  -H 'Content-Type: application/json' -H "Authorization: $auth" -d "$body") \
  || fail "cannot reach $api"
if [ "$status" != 201 ]; then
  cat "$tmp/submit.json" >&2
  fail "POST /api/v1/jobs answered $status, expected 201"
fi
job_id=$(show id <"$tmp/submit.json")
info "job id: $job_id"

# ---- follow it -----------------------------------------------------------
heading "Progress"
# One line per change: the job state, then each stage with its task counts.
t0=${EPOCHREALTIME//[!0-9]/}   # microseconds
deadline=$((SECONDS + job_timeout))
last=""
state=""
while :; do
  out=$(curl -fsS "$api/api/v1/jobs/$job_id" | show progress) \
    || fail "GET /api/v1/jobs/$job_id failed"
  line=${out%$'\n'*}
  state=${out##*$'\n'}
  if [ "$line" != "$last" ]; then
    ms=$(((${EPOCHREALTIME//[!0-9]/} - t0) / 1000))
    printf '  %3d.%ds  %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$line"
    last=$line
  fi
  case "$state" in succeeded | failed | canceled) break ;; esac
  [ "$SECONDS" -lt "$deadline" ] || fail "job $job_id still $state after ${job_timeout}s"
  check_alive
  sleep 0.2
done

# ---- results -------------------------------------------------------------
curl -fsS "$api/api/v1/jobs/$job_id" >"$tmp/job.json"
curl -fsS "$api/api/v1/jobs/$job_id/tasks" >"$tmp/tasks.json"

heading "Stages"
show stages <"$tmp/job.json"

heading "Tasks"
show tasks <"$tmp/tasks.json"

# The logs of the failed tasks, or if none failed the log of the first one.
log_tasks=$(show failed-tasks <"$tmp/tasks.json")
[ -n "$log_tasks" ] || log_tasks=$(show first-task <"$tmp/tasks.json")
for id in $log_tasks; do
  heading "Log of task $id (GET /api/v1/jobs/$job_id/tasks/$id/log)"
  curl -sS "$api/api/v1/jobs/$job_id/tasks/$id/log" | tail -n 15 | sed 's/^/  /' || true
done

jobdir="$data/jobs/$job_id"
heading "Job directory: <data-dir>/jobs/$job_id"
(cd "$jobdir" && find . -type f | sort | sed 's|^\./|  |')

heading "Downloaded files (downloads/)"
if [ -d "$jobdir/downloads" ]; then
  # shellcheck disable=SC2012 # the listing is for people to read
  ls -l "$jobdir/downloads" | sed 's/^/  /'
  for f in "$jobdir"/downloads/*; do
    [ -f "$f" ] || continue
    printf '\n  %s:\n' "${f##*/}"
    head -n 5 "$f" | sed 's/^/    | /'
  done
else
  info "(none)"
fi

[ "$state" = succeeded ] || fail "job $job_id ended $state"

heading "Result"
failed=$(show failed-tasks <"$tmp/tasks.json" | wc -w)
if [ "$failed" -gt 0 ]; then
  info "job $job_id succeeded; $failed task(s) failed in stages with job_failed_on_error: false"
else
  info "job $job_id succeeded"
fi
