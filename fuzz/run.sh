#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ and runs each for SECONDS (default 60)
# from a copy of the seed corpus, so the checked-in seeds stay small and reviewed. Crashes are
# written to build-fuzz/artifacts/ and fail the script.
#   fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
build="${FUZZ_BUILD_DIR:-build-fuzz}"

# fuzz/ configures as a project of its own: Boost headers only, a few sources.
CC=clang CXX=clang++ cmake -S fuzz -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >/dev/null
cmake --build "$build" --target request_fuzz http2_fuzz

work="$build/corpus/request"
mkdir -p "$work" "$build/artifacts"
cp -n fuzz/corpus/request/* "$work"/ 2>/dev/null || true

# -max_len: a request head is bounded by limits (8 KiB in the harness); larger inputs only
# make each run slower. -rss_limit_mb: the harness allocates kilobytes; catch leaks early.
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}" \
"$build/bin/request_fuzz" "$work" fuzz/corpus/request \
  -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$build/artifacts/" -print_final_stats=1

# HTTP/2 frames (fuzz/http2_fuzz.cpp): the engine's inputs are frames of up to 16 KiB.
work="$build/corpus/http2"
mkdir -p "$work"
cp -n fuzz/corpus/http2/* "$work"/ 2>/dev/null || true
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}" \
"$build/bin/http2_fuzz" "$work" fuzz/corpus/http2 \
  -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$build/artifacts/" -print_final_stats=1
