// Resolving the host names of one load, concurrently and within one deadline. Internal to the
// loader (config/*.cpp); the resolver itself (load_options::resolve) is public in load.h.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "config/load.h"

namespace canary::config {

// At most this many names of one load are resolved at the same time: a config naming thousands
// of hosts must not start thousands of threads.
inline constexpr std::size_t max_resolver_threads = 32;

// Resolves every name of `hosts` (distinct names, none numeric) with `resolve`, each on a
// detached thread, and returns when all are done or `timeout` has passed since the call, so N
// slow names cost one timeout, not N. result[i] is nullopt for a name not resolved in time (or
// never started because the deadline passed first). A thread still inside `resolve` at the
// deadline cannot be cancelled (getaddrinfo has no cancellation): it is left to finish on its
// own, holding shared ownership of everything it touches, and its answer is dropped.
std::vector<std::optional<resolved_name>> resolve_all(const std::vector<std::string>& hosts,
                                                      const resolve_function& resolve,
                                                      std::chrono::milliseconds timeout);

}  // namespace canary::config
