#!/usr/bin/env bash
# Builds a sanitizer preset (CMakePresets.json) and runs its tests:
#   scripts/sanitize.sh asan   ASan + UBSan (g++: clang 14 cannot assemble our coroutines under
#                              ASan, "Cannot represent a difference across sections"): unit,
#                              integration, e2e and hardening suites
#   scripts/sanitize.sh tsan   TSan (clang 14): the integration, e2e and hardening suites, which
#                              drive the proxy's threads (workers, control thread) through
#                              reloads, drains and concurrent connections; the unit tests are
#                              single-threaded
# Only the targets the tests run are built (canary-proxy, demo-backend, canaryctl,
# integration_tests, and unit_tests for asan).
# Every report a sanitized process writes (the proxy and backends the Python tests start
# included, whose stderr the tests may never show) goes to a log directory; any report fails
# the run and is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-}"
case "$kind" in
  asan | tsan) ;;
  *)
    echo "usage: $0 asan|tsan" >&2
    exit 2
    ;;
esac
build="build-$kind"
logs="$build/sanitizer-logs"

t0=$(date +%s)
cmake --preset "$kind" >/dev/null
cmake --build --preset "$kind"
t1=$(date +%s)

rm -rf "$logs"
mkdir -p "$logs"
logs_abs="$(cd "$logs" && pwd)"
# halt_on_error: the first error stops the process (a test sees it die); log_path: the report
# survives however the test ends the process. Leaks are checked where a process exits by
# itself (unit tests, servers stopped with SIGTERM); SIGKILLed ones are not checked.
export CANARY_SANITIZER="$kind"  # the hardening tests relax RSS bounds and deadlines
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_init_order=1:log_path=$logs_abs/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs_abs/ubsan"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$logs_abs/tsan${TSAN_EXTRA_OPTIONS:+:$TSAN_EXTRA_OPTIONS}"
if [ "$kind" = tsan ] && [ -f scripts/tsan.supp ]; then
  TSAN_OPTIONS="$TSAN_OPTIONS:suppressions=$(pwd)/scripts/tsan.supp"
fi

status=0
ctest --preset "$kind" || status=$?
t2=$(date +%s)

reports=$(find "$logs" -type f | sort)
if [ -n "$reports" ]; then
  echo "==== sanitizer reports ($kind) ===="
  for f in $reports; do
    echo "--- $f"
    cat "$f"
  done
  status=1
fi
echo "sanitize $kind: build $((t1 - t0)) s, tests $((t2 - t1)) s, $(echo "$reports" | grep -c . || true) report(s)"
exit "$status"
