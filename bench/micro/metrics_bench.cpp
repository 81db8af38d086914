// Metric recording of every request (see docs/architecture.md): per-worker single-writer cells, no
// lock, no label lookup: requests by code, the latency histogram and the routing-decision counter.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>

#include "metrics/cells.h"

namespace {

using namespace canary;

void BM_series_by_code_add(benchmark::State& state) {
  auto cells = std::make_unique<metrics::worker_cells>();
  for (auto _ : state) cells->series(7).by_code[200].add();
  benchmark::DoNotOptimize(cells->find_series(7)->by_code[200].get());
}
BENCHMARK(BM_series_by_code_add);

void BM_observe_latency(benchmark::State& state) {
  auto cells = std::make_unique<metrics::worker_cells>();
  auto& s = cells->series(7);
  std::uint64_t micros = 850;
  for (auto _ : state) {
    s.observe_latency(micros);
    micros = (micros * 7 + 13) % 40000;  // spread over the buckets (0-40 ms)
  }
  benchmark::DoNotOptimize(s.latency_sum_us.get());
}
BENCHMARK(BM_observe_latency);

// Everything one proxied request records: decision counter, code counter, latency.
void BM_record_request(benchmark::State& state) {
  auto cells = std::make_unique<metrics::worker_cells>();
  std::uint64_t micros = 850;
  for (auto _ : state) {
    cells->route(3).decisions[1][2].add();
    auto& s = cells->series(7);
    s.by_code[200].add();
    s.observe_latency(micros);
    micros = (micros * 7 + 13) % 40000;
  }
  benchmark::DoNotOptimize(cells->find_series(7)->latency_sum_us.get());
}
BENCHMARK(BM_record_request);

}  // namespace
