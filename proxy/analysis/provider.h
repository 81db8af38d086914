// What one query of an external metric provider (prometheus, web) or one judged webhook gave:
// the value object passed from the provider side (analysis/http_*) to the measurement rules
// (analysis/run.h). Plain data, any thread.
#pragma once

#include <string>

namespace canary::analysis {

struct provider_result {
  enum class status {
    value,  // one finite number
    empty,  // no data: an empty vector, NaN, a missing json_path (Inconclusive)
    error,  // not asked: connection, TLS, timeout, HTTP status, unparsable answer (Error)
  };
  enum status status = status::error;
  double value = 0;
  std::string message;  // for empty / error: what happened ("timeout after 5s", "HTTP 500")
};

}  // namespace canary::analysis
