// Header rules applied to every forwarded field: the hop-by-hop test and the Connection token
// list (RFC 9110 §7.6.1).
#include <benchmark/benchmark.h>

#include <string_view>

#include "http/header_rules.h"

namespace {

using namespace canary;

// The field names of a typical browser request plus the ones a proxy strips.
constexpr std::string_view names[] = {
    "Host",        "User-Agent",      "Accept",         "Accept-Language", "Accept-Encoding",
    "Referer",     "Cookie",          "Connection",     "Upgrade-Insecure-Requests",
    "Keep-Alive",  "X-Forwarded-For", "Content-Length", "Transfer-Encoding", "TE",
    "Cache-Control", "X-Canary"};

void BM_is_hop_by_hop(benchmark::State& state) {
  for (auto _ : state)
    for (auto n : names) benchmark::DoNotOptimize(http::is_hop_by_hop(n));
  state.SetItemsProcessed(state.iterations() * std::size(names));
  state.SetLabel("per field name");
}
BENCHMARK(BM_is_hop_by_hop);

void BM_connection_tokens_keep_alive(benchmark::State& state) {
  for (auto _ : state) {
    http::connection_tokens t;
    t.add_list("keep-alive");
    benchmark::DoNotOptimize(t.contains("close"));
  }
}
BENCHMARK(BM_connection_tokens_keep_alive);

// A Connection header naming extra hop-by-hop fields, then each forwarded field checked
// against it (what header rewriting does when Connection lists field names).
void BM_connection_tokens_list(benchmark::State& state) {
  for (auto _ : state) {
    http::connection_tokens t;
    t.add_list("Keep-Alive, X-Internal-Trace, Upgrade");
    for (auto n : names) benchmark::DoNotOptimize(t.contains(n));
  }
}
BENCHMARK(BM_connection_tokens_list);

}  // namespace
