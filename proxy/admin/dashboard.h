// The dashboard page served at GET / on the admin listener: self-contained HTML (no CDN) that
// follows /api/v1/watch and drives the rollout operations.
#pragma once

#include <string_view>

namespace canary::admin {

std::string_view dashboard_html();

}  // namespace canary::admin
