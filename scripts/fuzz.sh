#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang and runs them for a
# bounded time over their checked-in corpus. See tests/fuzz/README.md.
#
#   scripts/fuzz.sh <target|all> [seconds] [libFuzzer options...]
#   scripts/fuzz.sh build
#
# target: defs, protocol, template, spawn or params (fuzz_defs, ... work
# too). seconds: per target, default 20; 0 replays the corpus once.
#
# Environment:
#   SHOAL_FUZZ_BUILD_DIR   objects, binaries, logs, artifacts
#                          (default: <repo>/build-fuzz)
#   SHOAL_FUZZ_CC          the compiler (default: clang)
#   SHOAL_FUZZ_CFLAGS      more compiler flags, e.g. -fno-sanitize=... to
#                          get past a known finding (use another build dir)
#   SHOAL_FUZZ_CORPUS_DIR  keep new corpus entries in <dir>/<target>
#                          (default: a temporary directory, removed)
#
# Exit status: 0 clean; 1 a crash, leak, timeout, out-of-memory, sanitizer
# report or build failure; 2 usage; 125 no clang or no libFuzzer runtime
# (ctest reports the test as skipped).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fuzz_src="$root/tests/fuzz"
build="${SHOAL_FUZZ_BUILD_DIR:-$root/build-fuzz}"
cc="${SHOAL_FUZZ_CC:-clang}"

all_targets=(defs protocol template spawn params)

# The libshoal sources each target links: only what it calls, so neither
# czmq nor the scheduler is needed.
core_sources() {
  case "$1" in
    defs)     echo "error defs template" ;;
    protocol) echo "error protocol spawn" ;;
    template) echo "error template" ;;
    spawn)    echo "error protocol spawn" ;;
    params)   echo "error params defs template" ;;
  esac
}

usage() {
  sed -n '5,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ------------------------------------------------------------------ build

warnings=(-Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter)
# shellcheck disable=SC2054  # the commas belong to the flag
sanitize=(-fsanitize=address,undefined -fno-sanitize-recover=all)
cflags=(-std=c11 -D_GNU_SOURCE -DSHOAL_VERSION=\"fuzz\" -g -O1
        -fno-omit-frame-pointer "${warnings[@]}" -I"$root/include")
# Last on the command line, so that they can turn a sanitizer check off.
read -r -a extra_cflags <<<"${SHOAL_FUZZ_CFLAGS:-}"

check_toolchain() {
  if ! command -v "$cc" >/dev/null 2>&1; then
    echo "fuzz.sh: '$cc' not found; install clang and libclang-rt-14-dev" \
         "(scripts/deps.sh) or set SHOAL_FUZZ_CC" >&2
    exit 125
  fi
  local probe="$build/.probe"
  if [ ! -x "$probe" ]; then
    printf 'int LLVMFuzzerTestOneInput (const char *d, unsigned long n)\n{ return 0; }\n' \
      > "$build/.probe.c"
    if ! "$cc" -fsanitize=fuzzer,address,undefined "$build/.probe.c" \
         -o "$probe" 2>"$build/.probe.log"; then
      cat "$build/.probe.log" >&2
      echo "fuzz.sh: '$cc' cannot link -fsanitize=fuzzer; install" \
           "libclang-rt-14-dev (scripts/deps.sh)" >&2
      exit 125
    fi
  fi
}

# True when $1 is missing or older than any of the files after it.
stale() {
  local out="$1"
  shift
  [ -e "$out" ] || return 0
  local dep
  for dep in "$@"; do
    [ "$dep" -nt "$out" ] && return 0
  done
  return 1
}

compile() {  # compile <object> <source> <extra flags...>
  local obj="$1" src="$2"
  shift 2
  echo "  CC  ${src#"$root"/}"
  "$cc" "${cflags[@]}" "${pkg_cflags[@]}" "$@" "${extra_cflags[@]}" \
    -c "$src" -o "$obj"
}

build_target() {
  local t="$1" name core objs=()
  name="fuzz_$t"
  # A changed header, compiler or flag set (.flags) rebuilds everything.
  local headers=("$root"/include/shoal/*.h "$fuzz_src/fuzz_check.h"
                 "$build/.flags")
  for core in $(core_sources "$t"); do
    local src="$root/src/core/$core.c" obj="$build/obj/$core.o"
    if stale "$obj" "$src" "${headers[@]}"; then
      compile "$obj" "$src" "${sanitize[@]}" -fsanitize=fuzzer-no-link
    fi
    objs+=("$obj")
  done
  local src="$fuzz_src/$name.c" obj="$build/obj/$name.o"
  if stale "$obj" "$src" "${headers[@]}"; then
    compile "$obj" "$src" "${sanitize[@]}" -fsanitize=fuzzer
  fi
  if stale "$build/$name" "$obj" "${objs[@]}"; then
    echo "  LD  $name"
    "$cc" "${sanitize[@]}" -fsanitize=fuzzer "$obj" "${objs[@]}" \
      "${pkg_libs[@]}" -o "$build/$name"
  fi
}

build_targets() {
  mkdir -p "$build/obj"
  check_toolchain
  local pkgs=(yaml-0.1 jansson)
  if ! pkg-config --exists "${pkgs[@]}"; then
    echo "fuzz.sh: pkg-config cannot find ${pkgs[*]} (scripts/deps.sh)" >&2
    exit 1
  fi
  read -r -a pkg_cflags <<<"$(pkg-config --cflags "${pkgs[@]}")"
  read -r -a pkg_libs <<<"$(pkg-config --libs "${pkgs[@]}")"
  local flags="$cc ${cflags[*]} ${sanitize[*]} ${extra_cflags[*]}"
  flags+=" ${pkg_cflags[*]} ${pkg_libs[*]}"
  if [ ! -f "$build/.flags" ] || [ "$(cat "$build/.flags")" != "$flags" ]; then
    echo "$flags" > "$build/.flags"
  fi
  local t
  for t in "$@"; do
    build_target "$t"
  done
}

# -------------------------------------------------------------------- run

# Prints the last coverage line and the final stats of a run's log.
summary() {
  local log="$1" cov execs rate
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" \
        | tail -n 1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: //p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: //p' "$log" | tail -n 1)
  echo "${cov:-cov: ?}, ${execs:-?} runs, ${rate:-?} exec/s"
}

run_target() {
  local t="$1" seconds="$2"
  shift 2
  local name="fuzz_$t"
  local bin="$build/$name" corpus="$fuzz_src/corpus/$name"
  local dict="$fuzz_src/dict/$name.dict" crashes="$fuzz_src/crashes/$name"
  local artifacts="$build/artifacts/$name" log="$build/logs/$name.log"
  mkdir -p "$artifacts" "$build/logs"

  # New corpus entries go to the first directory: never the checked-in one.
  local new
  if [ -n "${SHOAL_FUZZ_CORPUS_DIR:-}" ]; then
    new="$SHOAL_FUZZ_CORPUS_DIR/$name"
    mkdir -p "$new"
  else
    new=$(mktemp -d "${TMPDIR:-/tmp}/shoal-$name.XXXXXX")
    temp_dirs+=("$new")
  fi
  local dirs=("$new" "$corpus")
  # Saved crash inputs replay first: once fixed, they guard the fix.
  [ -d "$crashes" ] && dirs+=("$crashes")

  local args=(-timeout=5 -rss_limit_mb=2048 -print_final_stats=1
              -artifact_prefix="$artifacts/")
  if [ "$seconds" -eq 0 ]; then
    args+=(-runs=0)
  else
    args+=(-max_total_time="$seconds")
  fi
  [ -f "$dict" ] && args+=(-dict="$dict")

  # Symbolized stack traces: Debian's llvm package links the symbolizer
  # into PATH, llvm-14 alone does not.
  if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && ! command -v llvm-symbolizer >/dev/null; then
    local sym
    for sym in /usr/lib/llvm-*/bin/llvm-symbolizer; do
      [ -x "$sym" ] && export ASAN_SYMBOLIZER_PATH="$sym"
    done
  fi

  echo "== $name: ${seconds}s over ${corpus#"$root"/}"
  local marker="$build/.run-$name" rc=0
  touch "$marker"
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$bin" "${args[@]}" "$@" "${dirs[@]}" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    cat "$log"
    echo "== $name FAILED (libFuzzer exit $rc); log: $log"
    local found
    found=$(find "$artifacts" -type f -newer "$marker" 2>/dev/null || true)
    if [ -n "$found" ]; then
      echo "   input(s) kept; reproduce with:"
      local input
      while IFS= read -r input; do
        echo "     $bin $input"
      done <<<"$found"
    fi
    rm -f "$marker"
    return 1
  fi
  rm -f "$marker"
  echo "== $name ok: $(summary "$log")"
}

# ------------------------------------------------------------------- main

[ $# -ge 1 ] || usage
what="${1#fuzz_}"
shift
seconds="${1:-20}"
[ $# -ge 1 ] && shift
case "$seconds" in
  ''|*[!0-9]*) echo "fuzz.sh: seconds must be a whole number" >&2; usage ;;
esac

targets=()
case "$what" in
  all|build) targets=("${all_targets[@]}") ;;
  *)
    for t in "${all_targets[@]}"; do
      [ "$t" = "$what" ] && targets=("$t")
    done
    [ ${#targets[@]} -eq 1 ] || { echo "fuzz.sh: no target '$what'" >&2; usage; }
    ;;
esac

temp_dirs=()
cleanup() {
  local d
  for d in "${temp_dirs[@]}"; do
    rm -rf "$d"
  done
}
trap cleanup EXIT

# Several runs (ctest -j) may build at once: one builds, the others wait.
mkdir -p "$build"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$build/.lock"
  flock 9
fi
build_targets "${targets[@]}"
if command -v flock >/dev/null 2>&1; then
  flock -u 9
  exec 9>&-
fi
[ "$what" = build ] && exit 0

failed=()
for t in "${targets[@]}"; do
  run_target "$t" "$seconds" "$@" || failed+=("$t")
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: failed: ${failed[*]}" >&2
  exit 1
fi
