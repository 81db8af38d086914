// Frees the lazily made blocks of a worker's cells (only once no reader can run: at shutdown).
#include "metrics/cells.h"

namespace canary::metrics {

worker_cells::~worker_cells() {
  for (auto& s : series_) delete s.load();
  for (auto& r : routes_) delete r.load();
  for (auto& u : upstreams_) delete u.load();
}

}  // namespace canary::metrics
