// Per-worker idle connection pool; see pool.h. LIFO: the most recently used connection is the
// one least likely to have been closed by the backend's keep-alive timeout.
#include "upstream/pool.h"

namespace canary::upstream {

std::unique_ptr<connection> pool::take(const endpoint& ep) {
  auto it = idle_.find(ep.id);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  auto c = std::move(it->second.back());
  it->second.pop_back();
  c->reused = true;
  return c;
}

void pool::put(std::unique_ptr<connection> c, steady::time_point now) {
  auto& list = idle_[c->target->id];
  if (list.size() >= max_idle_per_endpoint) return;  // closes c
  c->idle_since = now;
  list.push_back(std::move(c));
}

void pool::sweep(steady::time_point now, std::chrono::milliseconds max_idle) {
  for (auto& [id, list] : idle_) {
    std::erase_if(list, [&](const std::unique_ptr<connection>& c) {
      return now - c->idle_since > max_idle;
    });
  }
}

void pool::clear() { idle_.clear(); }

std::size_t pool::idle_count() const {
  std::size_t n = 0;
  for (const auto& [id, list] : idle_) n += list.size();
  return n;
}

}  // namespace canary::upstream
