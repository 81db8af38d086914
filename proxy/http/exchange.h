// What one request needs beyond its client connection: the parsers, the head being built, the
// access-log line. A session takes one from its worker when a request starts and gives it back
// when the connection goes idle (core::worker::take_exchange / give_exchange), so an idle
// keep-alive connection holds none of it. Worker thread only.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "http/request_rules.h"
#include "log/access_log.h"

namespace canary::http {

struct exchange {
  std::optional<request_parser_type> req;
  std::optional<response_parser_type> res;
  std::string head;
  std::string cookie_join;
  std::string req_storage;  // the parsers' field storage between messages
  std::string res_storage;
  log::access_record entry;  // the current request's access-log line, filled as it goes
  std::chrono::steady_clock::time_point entry_start;

  void start_request() {
    req.emplace(std::move(req_storage));
    entry = {};
  }
  void start_response() {
    if (res) res_storage = res->take_storage();
    res.emplace(std::move(res_storage));
  }
  void end() {
    if (req) req_storage = req->take_storage();
    if (res) res_storage = res->take_storage();
    req.reset();
    res.reset();
    head.clear();
  }
  // Worth keeping for the next request: a huge head grew buffers that should go back instead.
  bool reusable() const noexcept {
    constexpr std::size_t keep_up_to = 4096;
    return head.capacity() <= keep_up_to && cookie_join.capacity() <= keep_up_to &&
           req_storage.capacity() <= keep_up_to && res_storage.capacity() <= keep_up_to;
  }
};

}  // namespace canary::http
