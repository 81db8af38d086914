// What `canaryctl wait` does with each phase it sees. Pure function, any thread.
#pragma once

#include <string_view>

#include "ctl/args.h"

namespace canary::ctl {

enum class wait_decision { keep_waiting, reached, degraded };
wait_decision decide_wait(wait_target target, std::string_view phase);

}  // namespace canary::ctl
