#!/usr/bin/env bash
# Runs the benchmark suite of docs/benchmarks.md in one go: installs the
# build dependencies that are missing (scripts/deps.sh), builds (CMake
# RelWithDebInfo) if needed, runs each scenario against a controller it
# starts itself, prints a table and writes every figure as JSON.
#
#   scripts/bench.sh                       the full suite (about ten minutes)
#   BENCH_SCALE=small scripts/bench.sh     a quick run (about a minute)
#   BENCH_SCALE=tiny scripts/bench.sh      proves the bench works (seconds)
#   scripts/bench.sh --help                this text; the script takes no
#                                          other argument
#
# Environment:
#   BENCH_SCALE     full | small | tiny                       [full]
#   BENCH_OUTPUT    where the JSON goes          [./bench-results.json]
#   SHOAL_BUILD_DIR the build to use                  [<repo>/build-bench]
#   BENCH_BUILD     0: install and build nothing, use the binaries as
#                   they are                                          [1]
#   BENCH_KEEP      1: keep the scratch directory (logs, raw JSON)    [0]
#   BENCH_<SIZE>    any size of the table in this script, e.g.
#                   BENCH_E2E_TASKS=2000
#
# Ratios are measured against their baselines in the same run: xargs for
# the end-to-end run; for the store-off peak and the half-peak latencies
# the same load on `shoal-loadgen --baseline-controller`, the least a
# controller can do; for the REST latency `shoal-loadgen --baseline-http`.
# The machine's own stalls are probed first. Nothing here judges a
# figure: the goals are reported beside the figures.
set -euo pipefail

# The comment block at the top of this script is its usage.
usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; }
case ${1:-} in
  -h | --help) usage; exit 0 ;;
esac
if [ $# -gt 0 ]; then
  echo "bench.sh: unexpected argument '$1': settings are environment" \
       "variables (scripts/bench.sh --help)" >&2
  exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SHOAL_BUILD_DIR:-$root/build-bench}
output=${BENCH_OUTPUT:-$PWD/bench-results.json}
scale=${BENCH_SCALE:-full}
python=${BENCH_PYTHON:-python3}

# ---- sizes ----------------------------------------------------------------
# name                 full      small    tiny
sizes=(
  E2E_TASKS            10000     1000     40
  E2E_SLOTS            2         2        2
  CTL_WORKERS          1000      200      20
  CTL_SLOTS            2         2        2
  CTL_JOBS             10        10       2
  CTL_SPAWN            100000    10000    500
  HALF_JOBS            100       50       5
  HALF_SECONDS         10        4        1
  FAN_ENTRIES          1000000   100000   1000
  IDLE_WORKERS         10000     1000     50
  IDLE_SECONDS         10        3        1
  LIGHT_JOBS           200       50       5
  REST_MAX_JOBS        2000      1000     100
  REST_RATE            1000      200      50
  REST_SECONDS         10        3        1
  LG_THREADS           1         1        1
  LATENCY_RUNS         3         1        2
  PROBE_SECONDS        10        3        1
  IDLE_LG_THREADS      2         2        1
)
case $scale in
  full) column=1 ;;
  small) column=2 ;;
  tiny) column=3 ;;
  *) echo "bench.sh: BENCH_SCALE must be full, small or tiny, not '$scale'" >&2
     exit 2 ;;
esac
for ((i = 0; i < ${#sizes[@]}; i += 4)); do
  name=${sizes[i]}
  override="BENCH_$name"
  value=${!override:-${sizes[i + column]}}
  if ! [[ $value =~ ^[0-9]+$ ]]; then
    echo "bench.sh: $override must be a whole number, not '$value'" >&2
    exit 2
  fi
  printf -v "$name" '%s' "$value"
  export "${name?}"
done

if [ "$LATENCY_RUNS" -lt 1 ]; then
  echo "bench.sh: BENCH_LATENCY_RUNS must be 1 or more, not '$LATENCY_RUNS'" >&2
  exit 2
fi

# ---- build ------------------------------------------------------------------
if [ "${BENCH_BUILD:-1}" != 0 ]; then
  # shellcheck source=scripts/deps.sh
  . "$root/scripts/deps.sh"
  shoal_install_build_deps >&2
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j "$(nproc)" >/dev/null
fi
controller_bin=$build/shoal-controller
worker_bin=$build/shoal-worker
loadgen_bin=$build/shoal-loadgen
for bin in "$controller_bin" "$worker_bin" "$loadgen_bin"; do
  if [ ! -x "$bin" ]; then
    echo "bench.sh: $bin is missing: build first or set SHOAL_BUILD_DIR" >&2
    exit 1
  fi
done

# 10,000 simulated workers need ~10,000 connections on each side. Raise the
# soft limit to the hard one, and the hard one too where we may (root).
wanted_fds=$((IDLE_WORKERS * 2 + 1024))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$wanted_fds" ]; then
  ulimit -Hn "$wanted_fds" 2>/dev/null || true
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_WORKERS + 256)) ]; then
  echo "bench.sh: the controller needs $((IDLE_WORKERS + 256)) file descriptors" \
       "for $IDLE_WORKERS workers and ulimit -n is $(ulimit -n):" \
       "raise it (ulimit -Hn as root) or set BENCH_IDLE_WORKERS" >&2
  exit 1
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "bench.sh: scratch files kept in $scratch" >&2
  else
    rm -rf "$scratch"
  fi
}
trap cleanup EXIT

note() { echo "bench: $*" >&2; }

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The definitions every scenario uses. Simulated workers never run the
# commands of lg-spawn and lg-task; the e2e job runs on real workers.
cat >"$scratch/definitions.yaml" <<EOF
tasks:
  lg-spawn:
    exec_command: lg-spawn
  lg-task:
    exec_command: lg-task
  e2e-spawn:
    description: writes spawn.json with {count} entries
    input:
      count:
        source: parameter
    exec_command: $loadgen_bin
    exec_args: ["--write-spawn", "{count}"]
  e2e-true:
    exec_command: /bin/true
jobs:
  fan:
    stages:
    - name: fan-out
      spawn_task: lg-spawn
      task_class: lg-task
      job_failed_on_error: false
    - name: after
      task_class: lg-task
  single:
    stages:
    - task_class: lg-task
  e2e:
    input:
      count:
        source: parameter
    stages:
    - spawn_task: e2e-spawn
      task_class: e2e-true
EOF

# Starts a controller of our own, with any extra options after the tag
# (the durable store is on unless --ephemeral); sets ctl_pid, ctl_http,
# ctl_zmq, ctl_data.
start_controller() {
  local tag=$1
  shift
  ctl_data=$scratch/$tag-data
  mkdir -p "$ctl_data"
  ctl_http=127.0.0.1:$(free_port)
  ctl_zmq=tcp://127.0.0.1:$(free_port)
  "$controller_bin" --definitions "$scratch/definitions.yaml" \
    --data-dir "$ctl_data" --http "$ctl_http" --bind "$ctl_zmq" \
    --log-level warn "$@" >"$scratch/$tag-controller.log" 2>&1 &
  ctl_pid=$!
  pids+=("$ctl_pid")
  "$python" - "$ctl_http" "$ctl_pid" <<'PY' || { cat "$scratch/$tag-controller.log" >&2; exit 1; }
import os, sys, time, urllib.request
address, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("bench: the controller exited at start")
    try:
        with urllib.request.urlopen("http://%s/readyz" % address, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("bench: the controller did not become ready")
PY
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Runs the load generator with `tag` naming its JSON; fails the bench when
# it fails, showing why.
loadgen() {
  local tag=$1
  shift
  if ! "$loadgen_bin" -q -o "$scratch/$tag.json" "$@" 2>"$scratch/$tag.err"; then
    echo "bench: shoal-loadgen failed in '$tag':" >&2
    cat "$scratch/$tag.err" >&2
    tail -n 20 "$scratch/"*-controller.log >&2 || true
    exit 1
  fi
}

# Runs load generator `tag` ($1) against the baseline controller
# (shoal-loadgen --baseline-controller): the same wire protocol and ZeroMQ
# socket as a controller's, and nothing else a controller does (no REST,
# no store, no scheduler beyond two queues). It starts $2 jobs at $3 a
# second (0: at once) once every simulated worker is there, each of a
# spawn task, $4 spawned tasks and a last task, as the `fan` job; the
# rest of the arguments go to the load generator. What it measures is
# the floor this machine, the load generator and ZeroMQ set for any
# controller under that load.
on_baseline() {
  local tag=$1 jobs=$2 rate=$3 spawn=$4 endpoint base_pid
  shift 4
  endpoint=tcp://127.0.0.1:$(free_port)
  "$loadgen_bin" --baseline-controller "$endpoint" -n "$jobs" \
    --rate "$rate" --await-workers "$CTL_WORKERS" -q \
    -o "$scratch/$tag-controller.json" 2>"$scratch/$tag-controller.log" &
  base_pid=$!
  pids+=("$base_pid")
  loadgen "$tag" -c "$endpoint" -w "$CTL_WORKERS" -s "$CTL_SLOTS" \
    -t "$LG_THREADS" --spawn "$spawn" --tasks $((jobs * (spawn + 2))) \
    --controller-pid "$base_pid" "$@"
  thread_times "$tag" "$base_pid"
  stop_pid "$base_pid"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Waits until the controller's state store has written everything handed
# to it (shoal_store_waiting_rows is 0; at once with --ephemeral).
store_settled() {
  "$python" - "$ctl_http" <<'PY'
import sys, time, urllib.request
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    with urllib.request.urlopen("http://%s/metrics" % sys.argv[1]) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("shoal_store_waiting_rows "):
                if float(line.split()[1]) == 0:
                    sys.exit(0)
    time.sleep(0.2)
sys.exit("bench: the state store never caught up")
PY
}

# The CPU time of each of the controller's threads so far, once its store
# has caught up, as "name<TAB>seconds" lines in $scratch/$1.threads: the
# loop is the main thread ("shoal-controlle"), libzmq's I/O thread
# "ZMQbg/IO/0", the store's writer "shoal-writer".
thread_cpu() {
  store_settled
  thread_times "$1" "$ctl_pid"
}
# The same of any process $2 (the baseline controller's main thread is
# "shoal-loadgen").
thread_times() {
  "$python" - "$2" >"$scratch/$1.threads" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
root = "/proc/%s/task" % sys.argv[1]
for tid in os.listdir(root):
    try:
        with open("%s/%s/comm" % (root, tid)) as f:
            name = f.read().strip()
        with open("%s/%s/stat" % (root, tid)) as f:
            # Fields after the name, which may hold spaces: state is 3rd,
            # utime and stime the 14th and 15th.
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        continue
    print("%s\t%.2f" % (name, (int(fields[11]) + int(fields[12])) / tick))
PY
}
# Memory no other process shares: RSS less the library pages every process
# linking the same libraries maps (kB).
private_kib() {
  awk '/^Private_(Clean|Dirty):/ {sum += $2} END {print sum}' "/proc/$1/smaps_rollup"
}

# The speed of the machine itself: a fixed unit of CPU work (a Python loop),
# timed before each scenario and at the end, the median of 15 repetitions.
# A shared or virtual machine can change speed between scenarios or runs;
# the table reports the spread so a figure is read against it.
probe_cpu() {
  "$python" - >"$scratch/probe-$1" <<'PY'
import statistics, time
def unit():
    total = 0
    for i in range(100000):
        total += i * i % 7
    return total
times = []
for _ in range(15):
    start = time.perf_counter()
    unit()
    times.append(time.perf_counter() - start)
print("%.3f" % (statistics.median(times) * 1000))
PY
}

cat /proc/loadavg >"$scratch/loadavg-start"

# How steady the machine is before anything runs: a fixed unit of CPU
# work every 2 ms, timed by the CPU time charged for it. A virtual machine
# whose host takes its CPUs away charges units for time they did not run;
# a load that needs most of the machine falls behind by a stall's length.
note "0/6 machine: stalls, a unit of work every 2 ms for $PROBE_SECONDS s"
"$loadgen_bin" --probe-machine "$PROBE_SECONDS" -o "$scratch/machine-probe.json"

# ---- 1. end to end: real workers against xargs -P 2 ------------------------
probe_cpu 1
note "1/6 end to end: $E2E_TASKS tasks of /bin/true, $E2E_SLOTS slots, against xargs -P $E2E_SLOTS"
start_time=$EPOCHREALTIME
seq "$E2E_TASKS" | xargs -P "$E2E_SLOTS" -n 1 /bin/true
end_time=$EPOCHREALTIME
echo "$start_time $end_time" >"$scratch/xargs.times"
start_controller e2e
"$worker_bin" --connect "$ctl_zmq" --data-dir "$ctl_data" --slots "$E2E_SLOTS" \
  --name bench-worker --log-level warn >"$scratch/e2e-worker.log" 2>&1 &
worker_pid=$!
pids+=("$worker_pid")
"$python" - "$ctl_http" <<'PY'
import json, sys, time, urllib.request
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    with urllib.request.urlopen("http://%s/api/v1/workers" % sys.argv[1]) as r:
        if json.load(r)["workers"]:
            sys.exit(0)
    time.sleep(0.05)
sys.exit("bench: the worker did not join")
PY
loadgen e2e -H "$ctl_http" -j e2e -p "{\"count\": \"$E2E_TASKS\"}" -n 1 \
  --wait --poll-ms 10 --controller-pid "$ctl_pid"
stop_pid "$worker_pid"
stop_pid "$ctl_pid"

# ---- 2. the controller alone: simulated workers at full speed ---------------
probe_cpu 2
# Each simulated worker has CTL_SLOTS slots, what shoal-worker takes on a
# 2-CPU machine; the store-off run is repeated with one slot, where every
# TASK and RESULT is a TCP segment of its own (docs/benchmarks-history.md).
ctl_tasks=$((CTL_JOBS * (CTL_SPAWN + 2)))
note "2/6 controller alone: $ctl_tasks tasks over $CTL_WORKERS simulated workers x $CTL_SLOTS slots, durable store on"
start_controller ctl
loadgen ctl -c "$ctl_zmq" -H "$ctl_http" -w "$CTL_WORKERS" -s "$CTL_SLOTS" \
  -t "$LG_THREADS" -j fan -n "$CTL_JOBS" --spawn "$CTL_SPAWN" --wait \
  --poll-ms 50 --controller-pid "$ctl_pid"
thread_cpu ctl
stop_pid "$ctl_pid"
note "2/6 controller alone: the same with the store off (--ephemeral)"
start_controller ctloff --ephemeral
loadgen ctloff -c "$ctl_zmq" -H "$ctl_http" -w "$CTL_WORKERS" -s "$CTL_SLOTS" \
  -t "$LG_THREADS" -j fan -n "$CTL_JOBS" --spawn "$CTL_SPAWN" --wait \
  --poll-ms 50 --controller-pid "$ctl_pid"
thread_cpu ctloff
stop_pid "$ctl_pid"
note "2/6 controller alone: store off, workers of one slot"
start_controller ctloff1 --ephemeral
loadgen ctloff1 -c "$ctl_zmq" -H "$ctl_http" -w "$CTL_WORKERS" -s 1 \
  -t "$LG_THREADS" -j fan -n "$CTL_JOBS" --spawn "$CTL_SPAWN" --wait \
  --poll-ms 50 --controller-pid "$ctl_pid"
stop_pid "$ctl_pid"
note "2/6 controller alone: the same jobs on the baseline controller, the least a controller can do"
on_baseline ctlbase "$CTL_JOBS" 0 "$CTL_SPAWN"

# ... and at half that peak (store on), where dispatch latency is not
# queueing: jobs arrive at a steady rate, and task run times vary by
# +/- 50 % around the mean (--delay-jitter), as real ones do. The same
# load with every task finishing in lockstep and all jobs submitted at
# once follows: the worst case of bursts.
read -r half_delay half_spawn half_rate < <("$python" - "$scratch/ctl.json" <<'PY'
import json, os, sys
peak = json.load(open(sys.argv[1]))["tasks"]["per_second"]
workers = int(os.environ["CTL_WORKERS"]) * int(os.environ["CTL_SLOTS"])
jobs = int(os.environ["HALF_JOBS"])
seconds = int(os.environ["HALF_SECONDS"])
# workers x slots, each task held `delay` on average:
# throughput = workers x slots / delay.
delay_ms = 2000.0 * workers / peak
spawn = max(1, int(peak / 2 * seconds / jobs))
print("%.3f %d %.3f" % (delay_ms, spawn, jobs / seconds))
PY
)
# A tail latency from one run says as much about that run's moment as about
# the controller: the half-peak runs, store on and off in turn, are made
# LATENCY_RUNS times, and the table reports the run with the median p99
# beside every run's p99 (run k > 1 is tagged "half.k").
# The tag of run $2 of a repeated scenario $1: "half", "half.2", ...
run_tag() {
  if [ "$2" -gt 1 ]; then echo "$1.$2"; else echo "$1"; fi
}
half_peak() {
  local tag=$1
  shift
  start_controller "$tag" "$@"
  loadgen "$tag" -c "$ctl_zmq" -H "$ctl_http" -w "$CTL_WORKERS" -s "$CTL_SLOTS" \
    -t "$LG_THREADS" -j fan -n "$HALF_JOBS" --spawn "$half_spawn" \
    --rate "$half_rate" --delay-ms "$half_delay" --delay-jitter 0.5 \
    --wait --poll-ms 50 --controller-pid "$ctl_pid"
  thread_cpu "$tag"
  stop_pid "$ctl_pid"
}
# The same load on the baseline controller, in turn with the runs above
# so that the machine's moments fall on all three alike.
half_baseline() {
  on_baseline "$1" "$HALF_JOBS" "$half_rate" "$half_spawn" \
    --delay-ms "$half_delay" --delay-jitter 0.5
}
for ((run = 1; run <= LATENCY_RUNS; run++)); do
  note "2/6 half peak (run $run of $LATENCY_RUNS): $HALF_JOBS jobs x $half_spawn tasks at $half_rate jobs/s, each held $half_delay ms +/- 50 %"
  half_peak "$(run_tag half "$run")"
  note "2/6 half peak, store off (run $run of $LATENCY_RUNS): the same load with --ephemeral"
  half_peak "$(run_tag halfoff "$run")" --ephemeral
  note "2/6 half peak, baseline controller (run $run of $LATENCY_RUNS): the same load on the least a controller can do"
  half_baseline "$(run_tag base "$run")"
done
note "2/6 half peak in lockstep: the same jobs at once, each task held $half_delay ms"
start_controller halflock
loadgen halflock -c "$ctl_zmq" -H "$ctl_http" -w "$CTL_WORKERS" -s "$CTL_SLOTS" \
  -t "$LG_THREADS" -j fan -n "$HALF_JOBS" --spawn "$half_spawn" \
  --delay-ms "$half_delay" --wait --poll-ms 50 --controller-pid "$ctl_pid"
stop_pid "$ctl_pid"

# ---- 3. one big stage: fan-out time and memory per pending task ------------
probe_cpu 3
note "3/6 fan-out: one stage of $FAN_ENTRIES tasks"
start_controller fan
# One worker with one slot holds the first task for an hour: every other
# task of the stage stays pending while the controller is measured.
loadgen fan -c "$ctl_zmq" -H "$ctl_http" -w 1 -j fan -n 1 \
  --spawn "$FAN_ENTRIES" --delay-ms 3600000 --tasks 2 \
  --controller-pid "$ctl_pid"
# Memory once the store's writer has written the stage (the peak, VmHWM,
# includes its copies of the rows).
store_settled
sleep 1
grep -E '^Vm(RSS|HWM):' "/proc/$ctl_pid/status" | awk '{print $2}' | tr '\n' ' ' \
  >"$scratch/fan-settled.kib"
"$python" - "$ctl_http" >"$scratch/fan.stage" <<'PY'
import json, sys, urllib.request
# Only the job view: the stage's task list is a million objects.
with urllib.request.urlopen("http://%s/api/v1/jobs" % sys.argv[1]) as r:
    jobs = json.load(r)["jobs"]
if not jobs:
    sys.exit("bench: the fan-out job is missing")
print(json.dumps(jobs[0]["stages"][0]["tasks"]))
PY
stop_pid "$ctl_pid"

# ---- 4. many idle workers ----------------------------------------------------
probe_cpu 4
# Each simulated worker costs the load generator one descriptor (its TCP
# connection; two with --zmtp libzmq), so the workers are spread over as
# many loadgen processes as the descriptor limit needs. The window is
# measured here, from /proc, once every worker has joined.
note "4/6 idle: $IDLE_WORKERS simulated workers heartbeating for $IDLE_SECONDS s"
start_controller idle
fd_limit=$(ulimit -n)
[ "$fd_limit" = unlimited ] && fd_limit=1048576
per_process=$((fd_limit - 512))
processes=$(((IDLE_WORKERS + per_process - 1) / per_process))
idle_pids=()
for ((p = 0; p < processes; p++)); do
  share=$((IDLE_WORKERS / processes + (p < IDLE_WORKERS % processes ? 1 : 0)))
  "$loadgen_bin" -q -o "$scratch/idle-$p.json" -c "$ctl_zmq" -w "$share" \
    -t "$IDLE_LG_THREADS" --name "idle$p" --connect-timeout 300 \
    --duration $((IDLE_SECONDS + 60)) 2>"$scratch/idle-$p.err" &
  idle_pids+=("$!")
  pids+=("$!")
done
"$python" - "$ctl_http" "$ctl_pid" "$IDLE_WORKERS" "$IDLE_SECONDS" \
  >"$scratch/idle.json" <<'PY'
import json, sys, time, urllib.request
address, pid, workers, seconds = sys.argv[1], int(sys.argv[2]), \
    int(sys.argv[3]), float(sys.argv[4])

def sample():
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open("/proc/%d/status" % pid) as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    import os
    ticks = os.sysconf("SC_CLK_TCK")
    return ((int(fields[11]) + int(fields[12])) / ticks,
            int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0]))

def metrics():
    """The controller's /metrics samples, as (line before the value,
    value) pairs."""
    with urllib.request.urlopen("http://%s/metrics" % address,
                                timeout=30) as r:
        return [line.rsplit(" ", 1) for line in r.read().decode().splitlines()
                if line and not line.startswith("#")]

def heartbeats():
    """Heartbeats received from and sent to workers so far."""
    counts = {"received": 0, "sent": 0}
    for sample, value in metrics():
        if (sample.startswith("shoal_worker_messages_total{")
                and 'command="HEARTBEAT"' in sample):
            direction = sample.split('direction="', 1)[1].split('"', 1)[0]
            counts[direction] = int(value)
    return counts

idle_cpu, idle_rss, _ = sample()
start = time.monotonic()
while True:
    with urllib.request.urlopen("http://%s/api/v1/workers" % address,
                                timeout=30) as r:
        joined = len(json.load(r)["workers"])
    if joined >= workers:
        break
    if time.monotonic() - start > 300:
        sys.exit("bench: only %d of %d workers joined" % (joined, workers))
    time.sleep(0.5)
connect_s = time.monotonic() - start
# The controller sets the heartbeat period for the workers it has at its
# next tick, at most the period in force now after the last join, and
# tells every worker at once (docs/architecture.md): measure after that,
# in the steady state.
period = float(dict(metrics())["shoal_heartbeat_period_seconds"])
time.sleep(period + 2)
beats0 = heartbeats()
cpu0, _, _ = sample()
t0 = time.monotonic()
time.sleep(seconds)
cpu1, rss, hwm = sample()
window = time.monotonic() - t0
beats1 = heartbeats()
json.dump({"workers": workers, "connect_s": connect_s, "window_s": window,
           "controller": {"cpu_s": cpu1 - cpu0,
                          "cpu_share": (cpu1 - cpu0) / window,
                          "rss_kib_idle": idle_rss, "rss_kib": rss,
                          "hwm_kib": hwm,
                          "heartbeats_per_s": {
                              d: (beats1[d] - beats0[d]) / window
                              for d in beats0}},
           "error": "", "timed_out": False}, sys.stdout, indent=2)
PY
for pid in "${idle_pids[@]}"; do
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
stop_pid "$ctl_pid"

# ... and as many workers (one slot each) under a light load: jobs of 50
# tasks at 10 jobs/s, each task held 20 ms +/- 50 %, ~520 tasks/s. Most
# workers are idle at any moment and get the controller's heartbeats, so
# this is where heartbeats sent in a burst would hold up TASKs and
# RESULTs (docs/architecture.md, "Heartbeats"). One loadgen process: the
# workers are capped at what its descriptors allow.
light_workers=$((IDLE_WORKERS < per_process ? IDLE_WORKERS : per_process))
note "4/6 light load: $LIGHT_JOBS jobs x 50 tasks at 10 jobs/s over $light_workers workers, each task held 20 ms +/- 50 %"
start_controller light
loadgen light -c "$ctl_zmq" -H "$ctl_http" -w "$light_workers" \
  -t "$IDLE_LG_THREADS" --connect-timeout 300 -j fan -n "$LIGHT_JOBS" \
  --spawn 50 --rate 10 --delay-ms 20 --delay-jitter 0.5 --wait \
  --poll-ms 50 --controller-pid "$ctl_pid"
stop_pid "$ctl_pid"

# ---- 5. REST ------------------------------------------------------------------
probe_cpu 5
note "5/6 REST: $REST_MAX_JOBS jobs back to back, then $REST_RATE jobs/s for $REST_SECONDS s"
start_controller rest
loadgen restmax -c "$ctl_zmq" -H "$ctl_http" -w 4 -s 4 --name restmax -j single \
  -n "$REST_MAX_JOBS" --connections 4 --controller-pid "$ctl_pid"
# The steady runs alternate with the same run against the baseline REST
# server (shoal-loadgen --baseline-http: one thread answering every
# request at once with 201): the floor of a submission's latency here.
rest_base_address=127.0.0.1:$(free_port)
"$loadgen_bin" --baseline-http "$rest_base_address" -q \
  -o "$scratch/restbase-server.json" 2>"$scratch/restbase-server.log" &
rest_base_pid=$!
pids+=("$rest_base_pid")
for ((run = 1; run <= LATENCY_RUNS; run++)); do
  loadgen "$(run_tag rest "$run")" -c "$ctl_zmq" -H "$ctl_http" -w 4 -s 4 --name rest \
    -j single -n $((REST_RATE * REST_SECONDS)) --rate "$REST_RATE" \
    --connections 8 --controller-pid "$ctl_pid"
  loadgen "$(run_tag restbase "$run")" -H "$rest_base_address" -j single \
    -n $((REST_RATE * REST_SECONDS)) --rate "$REST_RATE" --connections 8 \
    --controller-pid "$rest_base_pid"
done
stop_pid "$rest_base_pid"
# The same two runs with a client that acknowledges every segment at once:
# the difference is the server's Nagle + delayed-ACK stall
# (docs/benchmarks-history.md).
loadgen restmaxq -c "$ctl_zmq" -H "$ctl_http" -w 4 -s 4 --name restmaxq -j single \
  -n "$REST_MAX_JOBS" --connections 4 --tcp-quickack --controller-pid "$ctl_pid"
loadgen restq -c "$ctl_zmq" -H "$ctl_http" -w 4 -s 4 --name restq -j single \
  -n $((REST_RATE * REST_SECONDS)) --rate "$REST_RATE" --connections 8 \
  --tcp-quickack --controller-pid "$ctl_pid"
stop_pid "$ctl_pid"

# ---- 6. idle memory ----------------------------------------------------------
probe_cpu 6
note "6/6 idle memory of a controller and a worker"
start_controller mem
sleep 1
rss_kib "$ctl_pid" >"$scratch/idle-controller.kib"
private_kib "$ctl_pid" >"$scratch/idle-controller-private.kib"
"$worker_bin" --connect "$ctl_zmq" --data-dir "$ctl_data" --slots 2 \
  --name mem-worker --log-level warn >"$scratch/mem-worker.log" 2>&1 &
worker_pid=$!
pids+=("$worker_pid")
sleep 1.5
rss_kib "$worker_pid" >"$scratch/idle-worker.kib"
private_kib "$worker_pid" >"$scratch/idle-worker-private.kib"
stop_pid "$worker_pid"
stop_pid "$ctl_pid"

probe_cpu end
cat /proc/loadavg >"$scratch/loadavg-end"

# ---- the table and the JSON ---------------------------------------------------
command="BENCH_SCALE=$scale scripts/bench.sh"
"$python" - "$scratch" "$output" "$scale" "$command" <<'PY'
import json, os, platform, sys

scratch, output, scale, command = sys.argv[1:5]

def load(name):
    with open(os.path.join(scratch, name + ".json")) as f:
        return json.load(f)

def read(name):
    with open(os.path.join(scratch, name)) as f:
        return f.read().strip()

raw = {name: load(name) for name in
       ("e2e", "ctl", "ctloff", "ctloff1", "ctlbase", "halflock", "fan",
        "idle",
        "light", "restmax", "restmaxq", "restq")}

# The latency scenarios ran LATENCY_RUNS times: each is represented by the
# run with the median p99 (the lower middle one of an even count); every
# run is kept as "NAME.k" too, and its p99 in the figures.
runs = int(os.environ["LATENCY_RUNS"])
repeated = {
    "half": lambda r: r["dispatch_ms"]["p99"],
    "halfoff": lambda r: r["dispatch_ms"]["p99"],
    "base": lambda r: r["dispatch_ms"]["p99"],
    "rest": lambda r: r["rest"]["latency_ms"]["p99"],
    "restbase": lambda r: r["rest"]["latency_ms"]["p99"],
}
p99_runs = {}
for name, p99 in repeated.items():
    all_runs = [load(name if k == 1 else "%s.%d" % (name, k))
                for k in range(1, runs + 1)]
    ranked = sorted(all_runs, key=p99)
    raw[name] = ranked[(len(ranked) - 1) // 2]
    p99_runs[name] = [p99(r) for r in all_runs]
    if runs > 1:
        for k, run in enumerate(all_runs, start=1):
            raw["%s.%d" % (name, k)] = run
env = {k: int(os.environ[k]) for k in (
    "E2E_TASKS", "E2E_SLOTS", "CTL_WORKERS", "CTL_SLOTS", "CTL_JOBS",
    "CTL_SPAWN", "HALF_JOBS", "HALF_SECONDS", "FAN_ENTRIES",
    "IDLE_WORKERS", "IDLE_SECONDS", "LIGHT_JOBS", "REST_MAX_JOBS",
    "REST_RATE",
    "REST_SECONDS", "LATENCY_RUNS", "PROBE_SECONDS")}

xargs_start, xargs_end = map(float, read("xargs.times").split())
xargs_s = xargs_end - xargs_start
e2e_s = raw["e2e"]["jobs"]["wall_s"]
ctl, half, fan, idle = raw["ctl"], raw["half"], raw["fan"], raw["idle"]
fan_ctl = fan["controller"]
# VmHWM and VmRSS, in the order /proc/PID/status lists them.
fan_hwm_kib, fan_rss_kib = map(int, read("fan-settled.kib").split())
idle_ctl = idle["controller"]
MiB = 1024.0

figures = {
    "e2e_shoal_s": e2e_s,
    "e2e_xargs_s": xargs_s,
    "e2e_ratio_vs_xargs": xargs_s / e2e_s if e2e_s else 0,
    "ctl_tasks_per_s": ctl["tasks"]["per_second"],
    "ctl_cpu_us_per_task": ctl["controller"]["cpu_us_per_task"],
    "ctl_dispatch_p99_ms_at_peak": ctl["dispatch_ms"]["p99"],
    "ctl_transition_p99_ms_at_peak": ctl["transition_ms"]["p99"],
    "ctl_peak_rss_mib": ctl["controller"]["hwm_kib"] / MiB,
    "ctl_store_off_tasks_per_s": raw["ctloff"]["tasks"]["per_second"],
    "ctl_store_off_cpu_us_per_task":
        raw["ctloff"]["controller"]["cpu_us_per_task"],
    "ctl_store_off_peak_rss_mib":
        raw["ctloff"]["controller"]["hwm_kib"] / MiB,
    "ctl_store_off_1slot_tasks_per_s": raw["ctloff1"]["tasks"]["per_second"],
    "ctl_store_off_1slot_cpu_us_per_task":
        raw["ctloff1"]["controller"]["cpu_us_per_task"],
    "baseline_peak_tasks_per_s": raw["ctlbase"]["tasks"]["per_second"],
    "baseline_peak_cpu_us_per_task":
        raw["ctlbase"]["controller"]["cpu_us_per_task"],
    "half_tasks_per_s": half["tasks"]["per_second"],
    "half_dispatch_p50_ms": half["dispatch_ms"]["p50"],
    "half_dispatch_p99_ms": half["dispatch_ms"]["p99"],
    "half_dispatch_p99_ms_runs": p99_runs["half"],
    "half_dispatch_max_ms": half["dispatch_ms"]["max"],
    "half_dispatch_after_result_p99_ms":
        half["dispatch_by_cause_ms"]["after_result"]["p99"],
    "half_dispatch_after_spawn_p99_ms":
        half["dispatch_by_cause_ms"]["after_spawn"]["p99"],
    "half_controller_cpu_share": half["controller"]["cpu_share"],
    "half_controller_cpu_us_per_task": half["controller"]["cpu_us_per_task"],
    "half_loadgen_cpu_us_per_task":
        half["loadgen"]["cpu_s"] * 1e6 / half["tasks"]["received"]
        if half["tasks"]["received"] else 0,
    "half_transition_p50_ms": half["transition_ms"]["p50"],
    "half_transition_p99_ms": half["transition_ms"]["p99"],
    "half_transition_max_ms": half["transition_ms"]["max"],
    "half_store_off_tasks_per_s": raw["halfoff"]["tasks"]["per_second"],
    "half_store_off_dispatch_p50_ms": raw["halfoff"]["dispatch_ms"]["p50"],
    "half_store_off_dispatch_p99_ms": raw["halfoff"]["dispatch_ms"]["p99"],
    "half_store_off_dispatch_p99_ms_runs": p99_runs["halfoff"],
    "half_store_off_dispatch_after_result_p99_ms":
        raw["halfoff"]["dispatch_by_cause_ms"]["after_result"]["p99"],
    "half_store_off_transition_p99_ms":
        raw["halfoff"]["transition_ms"]["p99"],
    "lockstep_tasks_per_s": raw["halflock"]["tasks"]["per_second"],
    "lockstep_dispatch_p50_ms": raw["halflock"]["dispatch_ms"]["p50"],
    "lockstep_dispatch_p99_ms": raw["halflock"]["dispatch_ms"]["p99"],
    "lockstep_transition_p99_ms": raw["halflock"]["transition_ms"]["p99"],
    "fanout_s": fan["fanout_ms"]["max"] / 1000.0,
    "fanout_bytes_per_pending_task":
        (fan_rss_kib - fan_ctl["rss_kib_start"]) * 1024.0
        / env["FAN_ENTRIES"],
    "fanout_peak_bytes_per_task":
        (fan_hwm_kib - fan_ctl["rss_kib_start"]) * 1024.0
        / env["FAN_ENTRIES"],
    "idle_workers_cpu_share": idle_ctl["cpu_share"],
    "idle_workers_rss_mib": idle_ctl["rss_kib"] / MiB,
    "idle_workers_bytes_per_worker":
        (idle_ctl["rss_kib"] - idle_ctl["rss_kib_idle"]) * 1024.0
        / env["IDLE_WORKERS"],
    "idle_heartbeats_received_per_s":
        idle_ctl["heartbeats_per_s"]["received"],
    "idle_heartbeats_sent_per_s": idle_ctl["heartbeats_per_s"]["sent"],
    "light_workers": raw["light"]["workers"]["welcomed"],
    "light_tasks_per_s": raw["light"]["tasks"]["per_second"],
    "light_dispatch_p50_ms": raw["light"]["dispatch_ms"]["p50"],
    "light_dispatch_p99_ms": raw["light"]["dispatch_ms"]["p99"],
    "light_dispatch_max_ms": raw["light"]["dispatch_ms"]["max"],
    "light_transition_p99_ms": raw["light"]["transition_ms"]["p99"],
    "light_controller_cpu_share": raw["light"]["controller"]["cpu_share"],
    "rest_max_jobs_per_s": raw["restmax"]["rest"]["per_second"],
    "rest_steady_jobs_per_s": raw["rest"]["rest"]["per_second"],
    "rest_steady_p50_ms": raw["rest"]["rest"]["latency_ms"]["p50"],
    "rest_steady_p99_ms": raw["rest"]["rest"]["latency_ms"]["p99"],
    "rest_steady_p99_ms_runs": p99_runs["rest"],
    "rest_max_jobs_per_s_quickack": raw["restmaxq"]["rest"]["per_second"],
    "rest_steady_p99_ms_quickack": raw["restq"]["rest"]["latency_ms"]["p99"],
    "idle_controller_rss_mib": int(read("idle-controller.kib")) / MiB,
    "idle_worker_rss_mib": int(read("idle-worker.kib")) / MiB,
    "idle_controller_private_mib":
        int(read("idle-controller-private.kib")) / MiB,
    "idle_worker_private_mib": int(read("idle-worker-private.kib")) / MiB,
}

# CPU per task of each of the controller's threads (thread_cpu): the loop,
# libzmq's I/O thread, the store's writer, and the rest (HTTP threads,
# libzmq's reaper). Half peak: the mean over its runs.
THREADS = {"shoal-controlle": "loop", "ZMQbg/IO/0": "io",
           "shoal-writer": "writer", "shoal-loadgen": "loop"}

def thread_us_per_task(tag, tasks):
    spent = {"loop": 0.0, "io": 0.0, "writer": 0.0, "other": 0.0}
    for line in read(tag + ".threads").splitlines():
        name, seconds = line.rsplit("\t", 1)
        spent[THREADS.get(name, "other")] += float(seconds)
    return {k: v * 1e6 / tasks if tasks else 0 for k, v in spent.items()}

figures["ctl_thread_us_per_task"] = thread_us_per_task(
    "ctl", ctl["tasks"]["received"])
figures["ctl_store_off_thread_us_per_task"] = thread_us_per_task(
    "ctloff", raw["ctloff"]["tasks"]["received"])
half_threads = [thread_us_per_task(tag, load(tag)["tasks"]["received"])
                for tag in ("half" if k == 1 else "half.%d" % k
                            for k in range(1, runs + 1))]
figures["half_thread_us_per_task"] = {
    k: sum(t[k] for t in half_threads) / len(half_threads)
    for k in half_threads[0]}

# The baseline controller under the half-peak load: the floor of each
# latency, and how far above it shoal's is (median run against median
# run; 0 when the floor measured 0).
base = raw["base"]
base_threads = [thread_us_per_task(tag, load(tag)["tasks"]["received"])
                for tag in ("base" if k == 1 else "base.%d" % k
                            for k in range(1, runs + 1))]
figures.update({
    "baseline_tasks_per_s": base["tasks"]["per_second"],
    "baseline_dispatch_p50_ms": base["dispatch_ms"]["p50"],
    "baseline_dispatch_p99_ms": base["dispatch_ms"]["p99"],
    "baseline_dispatch_p99_ms_runs": p99_runs["base"],
    "baseline_dispatch_max_ms": base["dispatch_ms"]["max"],
    "baseline_transition_p99_ms": base["transition_ms"]["p99"],
    "baseline_cpu_us_per_task": base["controller"]["cpu_us_per_task"],
    "baseline_thread_us_per_task": {
        k: sum(t[k] for t in base_threads) / len(base_threads)
        for k in ("loop", "io")},
})
def over(value, floor):
    return value / floor if floor else 0
figures["baseline_peak_thread_us_per_task"] = {
    k: v for k, v in thread_us_per_task(
        "ctlbase", raw["ctlbase"]["tasks"]["received"]).items()
    if k in ("loop", "io")}
figures["ctl_store_off_vs_baseline_peak"] = over(
    figures["ctl_store_off_tasks_per_s"], figures["baseline_peak_tasks_per_s"])
figures.update({
    "baseline_rest_p50_ms": raw["restbase"]["rest"]["latency_ms"]["p50"],
    "baseline_rest_p99_ms": raw["restbase"]["rest"]["latency_ms"]["p99"],
    "baseline_rest_p99_ms_runs": p99_runs["restbase"],
})
figures["rest_steady_p99_vs_baseline"] = over(
    figures["rest_steady_p99_ms"], figures["baseline_rest_p99_ms"])
# CPU the server spent per submission in the steady runs (the median run
# by this figure): the lever on the REST tail, as a server that falls
# behind in one of the machine's slowdowns queues what comes meanwhile.
def cpu_us_per_job(name):
    values = sorted(
        1e6 * run["controller"]["cpu_s"] / max(run["rest"]["created"], 1)
        for run in (load(name if k == 1 else "%s.%d" % (name, k))
                    for k in range(1, runs + 1)))
    return values[(len(values) - 1) // 2]
figures["rest_steady_cpu_us_per_job"] = cpu_us_per_job("rest")
figures["baseline_rest_cpu_us_per_job"] = cpu_us_per_job("restbase")
figures["half_dispatch_p99_vs_baseline"] = over(
    figures["half_dispatch_p99_ms"], figures["baseline_dispatch_p99_ms"])
figures["half_store_off_dispatch_p99_vs_baseline"] = over(
    figures["half_store_off_dispatch_p99_ms"],
    figures["baseline_dispatch_p99_ms"])
figures["half_transition_p99_vs_baseline"] = over(
    figures["half_transition_p99_ms"], figures["baseline_transition_p99_ms"])
notes = {
    "durable_store": "every scenario runs with the SQLite store on (the "
                     "default) except ctloff, ctloff1 and halfoff "
                     "(--ephemeral)",
    "fanout_stage_tasks": json.loads(read("fan.stage")),
    "baseline": "the half-peak load against shoal-loadgen "
                "--baseline-controller, the least a controller can do (no "
                "REST, store or scheduler): the floor of its latencies on "
                "this machine",
}

goals = [
    ("end to end vs xargs -P 2", "e2e_ratio_vs_xargs", ">=", 0.95),
    ("controller tasks/s (store off)", "ctl_store_off_tasks_per_s", ">=",
     100000),
    ("stage transition p99 (half peak), ms", "half_transition_p99_ms", "<", 1),
    ("dispatch p99 at half peak, ms", "half_dispatch_p99_ms", "<", 1),
    ("fan-out of one stage, s", "fanout_s", "<", 5),
    ("peak bytes per pending task", "fanout_peak_bytes_per_task", "<=", 256),
    ("idle workers, share of a core", "idle_workers_cpu_share", "<", 0.10),
    ("REST p99 at steady rate, ms", "rest_steady_p99_ms", "<", 10),
    ("idle controller RSS, MiB", "idle_controller_rss_mib", "<", 10),
    ("idle worker RSS, MiB", "idle_worker_rss_mib", "<", 4),
]
checks = []
for label, key, op, bound in goals:
    value = figures[key]
    met = {">=": value >= bound, "<": value < bound, "<=": value <= bound}[op]
    checks.append({"goal": label, "figure": key, "value": value,
                   "want": "%s %g" % (op, bound), "met": met})

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

# Before scenarios 1-6 and at the end: the same work, so max / min is how
# far the machine's own speed moved during the run.
probes = {tag: float(read("probe-" + tag))
          for tag in ("1", "2", "3", "4", "5", "6", "end")}
probe_spread = max(probes.values()) / min(probes.values())
stalls = load("machine-probe")

result = {
    "command": command,
    "scale": scale,
    "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(),
                "kernel": platform.release(),
                "loadavg_start": read("loadavg-start"),
                "loadavg_end": read("loadavg-end"),
                "cpu_probe_ms": probes,
                "cpu_probe_spread": probe_spread,
                "stalls": stalls},
    "sizes": env,
    "figures": figures,
    "goals": checks,
    "notes": notes,
    "raw": raw,
}
with open(output, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")

def runs_text(values):
    """What the table says of a repeated scenario's runs (nothing for one)."""
    if len(values) < 2:
        return ""
    return " (median run of %d; p99s %s)" % (
        len(values), ", ".join("%.2f" % v for v in values))


rows = [
    ("1 end to end, %d tasks" % env["E2E_TASKS"],
     "shoal %.2f s, xargs -P %d %.2f s: %.2fx"
     % (e2e_s, env["E2E_SLOTS"], xargs_s, figures["e2e_ratio_vs_xargs"])),
    ("2 controller, %d tasks, store on" % (env["CTL_JOBS"] * (env["CTL_SPAWN"] + 2)),
     "%.0f tasks/s, %.1f us CPU/task, peak RSS %.0f MiB"
     % (figures["ctl_tasks_per_s"], figures["ctl_cpu_us_per_task"],
        figures["ctl_peak_rss_mib"])),
    ("2 the same, store off (--ephemeral)",
     "%.0f tasks/s, %.1f us CPU/task, peak RSS %.0f MiB"
     % (figures["ctl_store_off_tasks_per_s"],
        figures["ctl_store_off_cpu_us_per_task"],
        figures["ctl_store_off_peak_rss_mib"])),
    ("2 store off, workers of 1 slot",
     "%.0f tasks/s, %.1f us CPU/task"
     % (figures["ctl_store_off_1slot_tasks_per_s"],
        figures["ctl_store_off_1slot_cpu_us_per_task"])),
    ("2 the same jobs, baseline controller",
     "%.0f tasks/s, %.1f us CPU/task (loop / libzmq I/O %.1f / %.1f); "
     "shoal store off %.2fx of it"
     % (figures["baseline_peak_tasks_per_s"],
        figures["baseline_peak_cpu_us_per_task"],
        figures["baseline_peak_thread_us_per_task"]["loop"],
        figures["baseline_peak_thread_us_per_task"]["io"],
        figures["ctl_store_off_vs_baseline_peak"])),
    ("2 at peak: dispatch / transition p99",
     "%.2f ms / %.2f ms (queueing included)"
     % (figures["ctl_dispatch_p99_ms_at_peak"],
        figures["ctl_transition_p99_ms_at_peak"])),
    ("2 half peak (%.0f tasks/s)" % figures["half_tasks_per_s"],
     "dispatch p50 %.3f p99 %.3f max %.1f ms%s"
     % (figures["half_dispatch_p50_ms"], figures["half_dispatch_p99_ms"],
        figures["half_dispatch_max_ms"],
        runs_text(figures["half_dispatch_p99_ms_runs"]))),
    ("2 half peak: dispatch p99 by cause",
     "%.3f ms as a slot freed, %.3f ms in a fan-out's burst"
     % (figures["half_dispatch_after_result_p99_ms"],
        figures["half_dispatch_after_spawn_p99_ms"])),
    ("2 half peak: CPU",
     "controller %.2f of a core (%.1f us/task), load generator %.1f us/task"
     % (figures["half_controller_cpu_share"],
        figures["half_controller_cpu_us_per_task"],
        figures["half_loadgen_cpu_us_per_task"])),
    ("2 CPU per task by thread",
     "loop / libzmq I/O / writer / rest: peak %s us, store off %s us, "
     "half peak %s us" % tuple(
         " / ".join("%.1f" % figures[key][k]
                    for k in ("loop", "io", "writer", "other"))
         for key in ("ctl_thread_us_per_task",
                     "ctl_store_off_thread_us_per_task",
                     "half_thread_us_per_task"))),
    ("2 half peak: stage transition",
     "p50 %.3f p99 %.3f max %.1f ms"
     % (figures["half_transition_p50_ms"], figures["half_transition_p99_ms"],
        figures["half_transition_max_ms"])),
    ("2 half peak, store off (%.0f tasks/s)"
     % figures["half_store_off_tasks_per_s"],
     "dispatch p50 %.3f p99 %.3f ms (%.3f as a slot freed), "
     "transition p99 %.3f ms%s"
     % (figures["half_store_off_dispatch_p50_ms"],
        figures["half_store_off_dispatch_p99_ms"],
        figures["half_store_off_dispatch_after_result_p99_ms"],
        figures["half_store_off_transition_p99_ms"],
        runs_text(figures["half_store_off_dispatch_p99_ms_runs"]))),
    ("2 half peak, baseline controller (%.0f tasks/s)"
     % figures["baseline_tasks_per_s"],
     "dispatch p50 %.3f p99 %.3f ms, transition p99 %.3f ms, "
     "%.1f us CPU/task (loop / libzmq I/O %.1f / %.1f)%s"
     % (figures["baseline_dispatch_p50_ms"],
        figures["baseline_dispatch_p99_ms"],
        figures["baseline_transition_p99_ms"],
        figures["baseline_cpu_us_per_task"],
        figures["baseline_thread_us_per_task"]["loop"],
        figures["baseline_thread_us_per_task"]["io"],
        runs_text(figures["baseline_dispatch_p99_ms_runs"]))),
    ("2 half peak against the baseline",
     "dispatch p99 %.2fx store on, %.2fx store off; transition p99 %.2fx"
     % (figures["half_dispatch_p99_vs_baseline"],
        figures["half_store_off_dispatch_p99_vs_baseline"],
        figures["half_transition_p99_vs_baseline"])),
    ("2 half peak in lockstep (%.0f tasks/s)"
     % figures["lockstep_tasks_per_s"],
     "dispatch p50 %.3f p99 %.3f ms, transition p99 %.3f ms"
     % (figures["lockstep_dispatch_p50_ms"],
        figures["lockstep_dispatch_p99_ms"],
        figures["lockstep_transition_p99_ms"])),
    ("3 fan-out, %d tasks" % env["FAN_ENTRIES"],
     "%.3f s, %.0f B/pending task (peak %.0f B/task)"
     % (figures["fanout_s"], figures["fanout_bytes_per_pending_task"],
        figures["fanout_peak_bytes_per_task"])),
]
rows += [
    ("4 %d idle workers (store on)" % env["IDLE_WORKERS"],
     "%.1f%% of a core, RSS %.1f MiB (%.0f B/worker); heartbeats/s "
     "%.0f in, %.0f out"
     % (100 * figures["idle_workers_cpu_share"],
        figures["idle_workers_rss_mib"],
        figures["idle_workers_bytes_per_worker"],
        figures["idle_heartbeats_received_per_s"],
        figures["idle_heartbeats_sent_per_s"])),
    ("4 light load on %d workers (%.0f tasks/s)"
     % (figures["light_workers"], figures["light_tasks_per_s"]),
     "dispatch p50 %.2f p99 %.2f max %.1f ms, transition p99 %.2f ms, "
     "controller %.1f%% of a core"
     % (figures["light_dispatch_p50_ms"], figures["light_dispatch_p99_ms"],
        figures["light_dispatch_max_ms"], figures["light_transition_p99_ms"],
        100 * figures["light_controller_cpu_share"])),
    ("5 REST back to back (4 conns)",
     "%.0f jobs/s (client with TCP_QUICKACK: %.0f jobs/s)"
     % (figures["rest_max_jobs_per_s"],
        figures["rest_max_jobs_per_s_quickack"])),
    ("5 REST at %d jobs/s" % env["REST_RATE"],
     "%.0f jobs/s, p50 %.2f ms, p99 %.2f ms%s (TCP_QUICKACK: p99 %.2f ms)"
     % (figures["rest_steady_jobs_per_s"], figures["rest_steady_p50_ms"],
        figures["rest_steady_p99_ms"],
        runs_text(figures["rest_steady_p99_ms_runs"]),
        figures["rest_steady_p99_ms_quickack"])),
    ("5 the same on the baseline REST server",
     "p50 %.2f ms, p99 %.2f ms%s; shoal's p99 %.2fx it"
     % (figures["baseline_rest_p50_ms"], figures["baseline_rest_p99_ms"],
        runs_text(figures["baseline_rest_p99_ms_runs"]),
        figures["rest_steady_p99_vs_baseline"])),
    ("5 REST at %d jobs/s: server CPU" % env["REST_RATE"],
     "controller %.0f us/job, baseline REST server %.0f us/job"
     % (figures["rest_steady_cpu_us_per_job"],
        figures["baseline_rest_cpu_us_per_job"])),
    ("6 idle RSS (private)", "controller %.1f MiB (%.1f), worker %.1f MiB (%.1f)"
     % (figures["idle_controller_rss_mib"],
        figures["idle_controller_private_mib"],
        figures["idle_worker_rss_mib"], figures["idle_worker_private_mib"])),
]
width = max(len(r[0]) for r in rows)
print("shoal bench (%s), %d CPUs, %s, loadavg at start %s"
      % (scale, os.cpu_count(), cpu_model(),
         " ".join(result["machine"]["loadavg_start"].split()[:3])))
for name, text in rows:
    print("  %-*s  %s" % (width, name, text))
print("machine speed: a fixed unit of CPU work took %.1f-%.1f ms before the "
      "scenarios (%.2fx apart)%s"
      % (min(probes.values()), max(probes.values()), probe_spread,
         "; figures of this run are uncertain by as much"
         if probe_spread > 1.2 else ""))
print("machine stalls: %d in %.0f s (%.1f a second), the longest %.1f ms, "
      "%.1f%% of the time; a %.0f us unit of work took %.0f us at p99"
      % (stalls["stalls"], stalls["seconds"], stalls["stalls_per_s"],
         stalls["longest_stall_ms"], 100 * stalls["stalled_share"],
         stalls["unit_cpu_us"]["p50"], stalls["unit_cpu_us"]["p99"]))
print("goals:")
for c in checks:
    print("  [%s] %-40s %10.4g  (want %s)"
          % ("met" if c["met"] else "MISSED", c["goal"], c["value"], c["want"]))
print("figures written to %s" % output)
PY
