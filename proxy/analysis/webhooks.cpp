// Webhook bodies and the dispatcher; see webhooks.h. Every callback holds the dispatcher's state
// weakly: a webhook answering after a reload tore the dispatcher down is ignored.
#include "analysis/webhooks.h"

#include <deque>
#include <map>
#include <tuple>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace canary::analysis {

namespace json = boost::json;

std::string webhook_body(const config::webhook_config& hook, const webhook_payload& p) {
  if (hook.format == config::webhook_config::body_format::slack) {
    // One line a person reads in a channel: what happened first, then where the rollout stands.
    std::string text = p.route + ": ";
    text += p.event.empty() ? p.phase : p.event;
    if (!p.message.empty()) text += " - " + p.message;
    text += " (phase " + p.phase + ", step " + std::to_string(p.step) + ", weight " +
            std::to_string(p.weight) + "%, stable " + p.stable + ", canary " +
            (p.canary.empty() ? std::string("none") : p.canary) + ")";
    return json::serialize(json::object{{"text", text}});
  }
  json::object metadata;
  for (const auto& [k, v] : hook.metadata) metadata[k] = v;
  return json::serialize(json::object{
      {"route", p.route},
      {"phase", p.phase},
      {"stable", p.stable},
      {"canary", p.canary},
      {"step", p.step},
      {"weight", p.weight},
      {"event", p.event},
      {"message", p.message},
      {"metadata", std::move(metadata)},
  });
}

struct webhook_dispatcher::state {
  explicit state(http_client& c) : client(c) {}

  struct queued {
    config::webhook_config hook;
    webhook_payload payload;
  };
  struct event_queue {
    std::deque<queued> waiting;
    bool busy = false;  // one call (with its retries) in flight
  };

  http_client& client;
  std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> counts;
  std::map<std::pair<std::string, std::string>, event_queue> queues;

  void count(const std::string& route, const std::string& hook, const char* result) {
    ++counts[{route, hook, result}];
  }
};

namespace {

using state_ptr = std::weak_ptr<webhook_dispatcher::state>;

bool is_2xx(const http_response& r) {
  return r.result == http_response::outcome::ok && r.status >= 200 && r.status <= 299;
}

http_request webhook_request(const config::webhook_config& hook, const webhook_payload& p) {
  http_request r;
  r.method = "POST";
  r.url = hook.target.url;
  r.headers = hook.target.headers;
  r.headers.emplace("Content-Type", "application/json");
  r.body = webhook_body(hook, p);
  r.timeout = hook.target.timeout;
  r.ca_file = hook.target.ca_file;
  return r;
}

webhook_result to_result(const http_response& r) {
  webhook_result out;
  out.status = r.status;
  out.ok = is_2xx(r);
  out.detail = r.result == http_response::outcome::ok ? "HTTP " + std::to_string(r.status) : r.error;
  return out;
}

const char* result_label(const http_response& r) {
  switch (r.result) {
    case http_response::outcome::ok:
      return is_2xx(r) ? "success" : "failure";
    case http_response::outcome::timeout:
      return "timeout";
    case http_response::outcome::error:
      break;
  }
  return "error";
}

}  // namespace

// Attempts until a 2xx or `retries_left` is spent; `done` gets the last answer. Nothing runs
// once the dispatcher is gone.
template <class Done>
void send_with_retries(const std::shared_ptr<webhook_dispatcher::state>& st, http_request request,
                       int retries_left, std::chrono::milliseconds delay, Done done) {
  auto& client = st->client;
  client.send(
      request,
      [weak = state_ptr(st), request, retries_left, delay,
       done = std::move(done)](http_response r) mutable {
        auto st = weak.lock();
        if (!st) return;
        if (!is_2xx(r) && retries_left > 0) {
          const auto next = delay.count() == 0 ? webhook_dispatcher::first_backoff : delay * 2;
          send_with_retries(st, std::move(request), retries_left - 1, next, std::move(done));
          return;
        }
        done(st, std::move(r));
      },
      delay);
}

webhook_dispatcher::webhook_dispatcher(http_client& client)
    : state_(std::make_shared<state>(client)) {}

webhook_dispatcher::~webhook_dispatcher() = default;

void webhook_dispatcher::call(const std::string& route, const config::webhook_config& hook,
                              const webhook_payload& payload,
                              std::function<void(webhook_result)> done) {
  send_with_retries(state_, webhook_request(hook, payload), std::max(hook.retries, 0),
                    std::chrono::milliseconds(0),
                    [route, name = hook.name, done = std::move(done)](const std::shared_ptr<state>& st,
                                                                      http_response r) {
                      st->count(route, name, result_label(r));
                      if (done) done(to_result(r));
                    });
}

namespace {

void pump(const std::shared_ptr<webhook_dispatcher::state>& st, const std::string& route,
          const std::string& name) {
  auto& q = st->queues[{route, name}];
  if (q.busy || q.waiting.empty()) return;
  q.busy = true;
  auto next = std::move(q.waiting.front());
  q.waiting.pop_front();
  send_with_retries(st, webhook_request(next.hook, next.payload), std::max(next.hook.retries, 0),
                    std::chrono::milliseconds(0),
                    [route, name](const std::shared_ptr<webhook_dispatcher::state>& s,
                                  http_response r) {
                      s->count(route, name, result_label(r));
                      s->queues[{route, name}].busy = false;
                      pump(s, route, name);
                    });
}

}  // namespace

void webhook_dispatcher::notify(const std::string& route, const config::webhook_config& hook,
                                const webhook_payload& payload) {
  auto& q = state_->queues[{route, hook.name}];
  q.waiting.push_back({hook, payload});
  if (q.waiting.size() > max_queued_events) {
    q.waiting.pop_front();
    state_->count(route, hook.name, "dropped");
  }
  pump(state_, route, hook.name);
}

std::vector<webhook_dispatcher::count> webhook_dispatcher::counts() const {
  std::vector<count> out;
  for (const auto& [key, n] : state_->counts)
    out.push_back({std::get<0>(key), std::get<1>(key), std::get<2>(key), n});
  return out;
}

}  // namespace canary::analysis
