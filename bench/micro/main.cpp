// micro_bench: Google Benchmark micro benchmarks of canary-proxy's per-request hot paths
// (routing decision, header rules, metric cells, request parse + validation).
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
