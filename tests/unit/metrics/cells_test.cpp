// Unit tests of the per-worker metric cells and the label-set registry (proxy/metrics): ids far
// past any fixed table size keep their own cells, the registry hands out ids for any number of
// routes, upstreams and series, and a reader scraping while the writer grows the table sees
// either nothing or whole cells with the value written.
#include "metrics/cells.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "metrics/registry.h"

namespace canary::metrics {
namespace {

TEST(WorkerCells, IdsPastAnyTableSizeKeepTheirOwnCells) {
  worker_cells w;
  // Ids that a table of 1,024 or 4,096 slots indexed modulo its size would fold onto id 5.
  for (std::uint32_t id : {5u, 1024u + 5, 4096u + 5, 3u * 4096 + 5, 1'000'005u}) {
    w.route(id).decisions[0][0].add(id);
    w.series(id).by_code[200].add(id);
    w.upstream(id).ejections.add(id);
  }
  for (std::uint32_t id : {5u, 1024u + 5, 4096u + 5, 3u * 4096 + 5, 1'000'005u}) {
    ASSERT_NE(w.find_route(id), nullptr) << id;
    EXPECT_EQ(w.find_route(id)->decisions[0][0].get(), id);
    ASSERT_NE(w.find_series(id), nullptr) << id;
    EXPECT_EQ(w.find_series(id)->by_code[200].get(), id);
    ASSERT_NE(w.find_upstream(id), nullptr) << id;
    EXPECT_EQ(w.find_upstream(id)->ejections.get(), id);
  }
  // Never written: no cells, also next to written ids and on the same leaf.
  EXPECT_EQ(w.find_route(6), nullptr);
  EXPECT_EQ(w.find_route(4096u + 6), nullptr);
  EXPECT_EQ(w.find_series(1024u + 6), nullptr);
  EXPECT_EQ(w.find_upstream(2'000'000u), nullptr);
}

TEST(WorkerCells, TheWholeIdRange) {
  worker_cells w;
  const std::uint32_t ids[] = {0u, 1023u, 1024u, (1u << 20) - 1, 1u << 20, 0x7fffffffu,
                               0xfffffffeu, 0xffffffffu};
  for (auto id : ids) w.route(id).decisions[1][2].add(id % 1000 + 1);
  for (auto id : ids) {
    ASSERT_NE(w.find_route(id), nullptr) << id;
    EXPECT_EQ(w.find_route(id)->decisions[1][2].get(), id % 1000 + 1) << id;
  }
  EXPECT_EQ(w.find_route(1u), nullptr);
  EXPECT_EQ(w.find_route(0xfffffffdu), nullptr);
}

TEST(WorkerCells, ConnectionsActiveIsOpenedMinusClosed) {
  worker_cells w;
  w.connection_opened();
  w.connection_opened();
  w.connection_opened();
  w.connection_closed();
  EXPECT_EQ(w.connections_total(), 3u);
  EXPECT_EQ(w.connections_active(), 2u);
}

// The worker writes ids it has never written before (making leaves and nodes as it goes) while
// another thread reads them, as /metrics does during traffic. Bounded: the writer writes a fixed
// set once; the reader stops when the writer is done (after one more full pass).
TEST(WorkerCells, ReaderWhileTheWriterGrows) {
  constexpr std::uint32_t n = 20'000;
  // Consecutive ids across ~720 leaves of one node, then ids one node apart.
  auto id_of = [](std::uint32_t k) -> std::uint32_t {
    return k < n - 64 ? k * 37 : (k - (n - 64)) * ((1u << 20) + 1) + 7;
  };
  worker_cells w;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (std::uint32_t k = 0; k < n; ++k) w.route(id_of(k)).decisions[0][3].add(k + 1);
    done.store(true, std::memory_order_release);
  });
  std::uint64_t seen = 0;
  std::uint64_t bad = 0;
  for (int pass = 0; pass < 1'000'000; ++pass) {
    const bool last = done.load(std::memory_order_acquire);
    for (std::uint32_t k = 0; k < n; ++k) {
      const auto* c = w.find_route(id_of(k));
      if (!c) continue;
      const auto v = c->decisions[0][3].get();
      ++seen;
      // 0 when the cell is published before its add lands; never another id's value.
      if (v != 0 && v != k + 1) ++bad;
    }
    if (last) break;
  }
  writer.join();
  EXPECT_EQ(bad, 0u);
  EXPECT_GT(seen, 0u);
  for (std::uint32_t k = 0; k < n; ++k) {
    const auto* c = w.find_route(id_of(k));
    ASSERT_NE(c, nullptr) << k;
    ASSERT_EQ(c->decisions[0][3].get(), k + 1) << k;
  }
}

TEST(SeriesRegistry, IdsForMoreRoutesUpstreamsAndSeriesThanAnyFixedTable) {
  series_registry reg;
  constexpr std::uint32_t routes = 6'000;
  for (std::uint32_t i = 0; i < routes; ++i) {
    const auto r = "route-" + std::to_string(i);
    const auto u = "upstream-" + std::to_string(i);
    EXPECT_EQ(reg.route_id(r), i);
    EXPECT_EQ(reg.upstream_id(u), i);
    EXPECT_EQ(reg.series_id(r, "stable", u), 2 * i);
    EXPECT_EQ(reg.series_id(r, "canary", u), 2 * i + 1);
  }
  EXPECT_EQ(reg.routes().size(), routes);
  EXPECT_EQ(reg.upstreams().size(), routes);
  EXPECT_EQ(reg.series().size(), 2 * routes);
  // Asking again gives the same id.
  EXPECT_EQ(reg.route_id("route-5999"), 5999u);
  EXPECT_EQ(reg.series_id("route-0", "canary", "upstream-0"), 1u);
}

}  // namespace
}  // namespace canary::metrics
