// Webhooks (docs/webhooks.md): the body a webhook receives, and the dispatcher that POSTs it through
// the http_client with retries and backoff, keeps `event` notifications in order per route and
// webhook in a bounded queue, and counts results for canary_proxy_webhook_calls_total. The rules of
// which type is called when belong to the rollout engine. Control thread only (the http_client's
// deliver must run callbacks there); after the dispatcher is destroyed no `done` runs.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "analysis/http_client.h"
#include "config/analysis_config.h"

namespace canary::analysis {

struct webhook_payload {
  std::string route, phase, stable, canary;
  std::size_t step = 0;
  int weight = 0;
  std::string event, message;
};

// json: {"route","phase","stable","canary","step","weight","event","message","metadata"};
// slack: {"text": "<one readable line>"}.
std::string webhook_body(const config::webhook_config& hook, const webhook_payload& payload);

struct webhook_result {
  bool ok = false;  // a 2xx answer
  int status = 0;   // the last HTTP status, 0 when none came
  std::string detail;  // "HTTP 503", "timeout after 10s", "connect: Connection refused"
};

class webhook_dispatcher {
 public:
  // Event notifications waiting per route and webhook; full -> the oldest waiting one is dropped.
  static constexpr std::size_t max_queued_events = 100;
  // First retry after this, doubling per retry: a receiver restarting gets a moment.
  static constexpr std::chrono::milliseconds first_backoff{200};

  explicit webhook_dispatcher(http_client& client);
  ~webhook_dispatcher();
  webhook_dispatcher(const webhook_dispatcher&) = delete;
  webhook_dispatcher& operator=(const webhook_dispatcher&) = delete;

  // One call (gates, judged webhooks, rollback, post-rollout): up to 1 + hook.retries attempts
  // while the answer is not 2xx; done(result of the last attempt) on the control thread.
  void call(const std::string& route, const config::webhook_config& hook,
            const webhook_payload& payload, std::function<void(webhook_result)> done);

  // `event` webhooks: per route and webhook, in order, one at a time (each with its retries).
  void notify(const std::string& route, const config::webhook_config& hook,
              const webhook_payload& payload);

  // canary_proxy_webhook_calls_total{route,webhook,result}; one count per call() or notify()
  // (after its retries): success | failure (non-2xx) | timeout | error | dropped.
  struct count {
    std::string route, webhook, result;
    std::uint64_t n;
  };
  std::vector<count> counts() const;

  struct state;  // opaque; named here for the implementation's helpers

 private:
  std::shared_ptr<state> state_;
};

}  // namespace canary::analysis
