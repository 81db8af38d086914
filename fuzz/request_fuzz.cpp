// libFuzzer target over the request path's pure parts: Beast's request parser fed the way the
// session feeds it (parse_request_head over a bounded flat_buffer, then the body), our
// validators, and the forwarded heads the session sends (http/forward_head.h, the shipped
// functions themselves). Also feeds the same bytes to a response parser and validate_response.
//
// Invariants (a violation aborts, which libFuzzer reports as a crash):
//   - nothing throws (Beast's basic_fields throws std::length_error on a > 64 KiB field when
//     its buffer is unbounded; ours is bounded);
//   - an accepted request's forwarded head re-parses with Beast, passes validate_request again,
//     keeps the method, the target (in origin-form), Host and the framing (one numeric
//     Content-Length or chunked, never both) and carries no hop-by-hop field and no Expect;
//   - an accepted response's forwarded head (interim or final) re-parses with the same status,
//     the framing the session chose and no hop-by-hop field but that framing;
//   - the body is either read whole or refused with an error, never beyond body_limit.
//
// Built with clang -fsanitize=fuzzer,address,undefined (fuzz/CMakeLists.txt); the same file is
// compiled into unit_tests (tests/unit/http/fuzz_corpus_test.cpp) to replay the seed corpus.
#include <boost/asio/buffer.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "http/forward_head.h"
#include "http/header_rules.h"
#include "http/request_rules.h"
#include "http/request_target.h"
#include "http/response_plan.h"

namespace {

namespace bhttp = boost::beast::http;
using canary::http::request_parser_type;
using canary::http::response_parser_type;

[[noreturn]] void violated(const char* what, std::string_view input) {
  std::fprintf(stderr, "request_fuzz invariant violated: %s\ninput (%zu bytes)\n", what,
               input.size());
  std::abort();
}

#define FUZZ_CHECK(cond, input)          \
  do {                                   \
    if (!(cond)) violated(#cond, input); \
  } while (0)

constexpr std::size_t buffer_max = 64 * 1024;  // the session's flat_buffer bound

canary::config::limits_config fuzz_limits() {
  canary::config::limits_config l;
  l.max_request_header_bytes = 8192;
  l.max_header_fields = 100;
  l.max_request_body_bytes = 4096;
  return l;
}

void check_forwarded(const request_parser_type& original, std::string_view input) {
  std::string head;
  canary::http::build_request_head(head, original, "192.0.2.1");
  request_parser_type again;
  again.header_limit(static_cast<std::uint32_t>(head.size() + 1));
  again.body_limit(boost::none);
  boost::system::error_code ec;
  const auto n = again.put(boost::asio::buffer(head), ec);
  FUZZ_CHECK(!ec, input);
  FUZZ_CHECK(again.is_header_done() && n == head.size(), input);
  FUZZ_CHECK(canary::http::scan_request_head(head).code == 0, input);
  auto limits = fuzz_limits();
  limits.max_header_fields = 1000;
  const auto v = canary::http::validate_request(again, limits);
  // The forwarded request is HTTP/1.1: a 1.0 request without Host becomes one. That is the only
  // verdict allowed to change.
  FUZZ_CHECK(v.code == 0 || (original.get().version() < 11 && v.message == "missing Host header"),
             input);
  const auto& a = original.get();
  const auto& b = again.get();
  FUZZ_CHECK(a.method_string() == b.method_string(), input);
  const auto target = canary::http::split_target(a.target());
  FUZZ_CHECK(b.target() == (target.needs_slash ? "/" : "") + std::string(target.path_and_query),
             input);
  FUZZ_CHECK(b[bhttp::field::host] == (a.count(bhttp::field::host) || !target.absolute
                                           ? a[bhttp::field::host]
                                           : target.authority),
             input);
  FUZZ_CHECK(b.count(bhttp::field::expect) == 0, input);
  FUZZ_CHECK(original.chunked() == again.chunked(), input);
  FUZZ_CHECK(original.content_length() == again.content_length(), input);
  std::size_t framing = 0;
  for (const auto& f : b) {
    const auto name = f.name_string();
    if (f.name() == bhttp::field::content_length || f.name() == bhttp::field::transfer_encoding)
      ++framing;
    else
      FUZZ_CHECK(!canary::http::is_hop_by_hop(name), input);
  }
  FUZZ_CHECK(framing <= 1, input);
}

void fuzz_request(std::string_view input) {
  // A first byte below 0x20 is no request byte: it says how the bytes arrive (1..16 per read,
  // like a client writing in pieces); otherwise they arrive at once.
  std::size_t piece = input.size();
  if (!input.empty() && static_cast<unsigned char>(input[0]) < 0x20) {
    piece = static_cast<unsigned char>(input[0]) % 16 + 1;
    input.remove_prefix(1);
  }
  const auto limits = fuzz_limits();
  boost::beast::flat_buffer buf(buffer_max);
  request_parser_type p;
  p.header_limit(static_cast<std::uint32_t>(limits.max_request_header_bytes));
  p.body_limit(limits.max_request_body_bytes);
  std::string_view in = input;
  auto feed = [&] {
    const auto n = std::min({piece, in.size(), buf.max_size() - buf.size()});
    if (n == 0) return false;
    auto b = buf.prepare(n);
    std::memcpy(b.data(), in.data(), n);
    buf.commit(n);
    in.remove_prefix(n);
    return true;
  };
  for (;;) {
    const auto step = canary::http::parse_request_head(p, buf);
    if (step.what == canary::http::head_step::state::error) return;
    if (step.what == canary::http::head_step::state::done) break;
    if (!feed()) return;  // incomplete or over the buffer: the session answers 408 / 431
  }
  FUZZ_CHECK(p.is_header_done(), input);
  if (canary::http::validate_request(p, limits).code != 0) return;

  // Body, read as the session reads it.
  char chunk[512];
  std::uint64_t body = 0;
  while (!p.is_done()) {
    p.get().body().data = chunk;
    p.get().body().size = sizeof chunk;
    boost::system::error_code ec;
    const auto n = p.put(buf.data(), ec);
    buf.consume(n);
    body += sizeof chunk - p.get().body().size;
    if (ec == bhttp::error::need_buffer || ec == bhttp::error::need_more) ec = {};
    if (ec) break;
    if (n == 0 && !feed()) break;
  }
  // After the body: the buffer may have moved (ASan sees a head view left pointing into it).
  check_forwarded(p, input);
  FUZZ_CHECK(body <= limits.max_request_body_bytes, input);
  if (p.is_done() && p.content_length()) FUZZ_CHECK(body == *p.content_length(), input);
}

// The response head the session sends for `original` (1.1 and 1.0 clients), re-parsed.
void check_forwarded_response(const response_parser_type& original, bool head_request,
                              std::string_view input) {
  const unsigned status = original.result_int();
  for (unsigned client_version : {11u, 10u}) {
    std::string head;
    auto f = canary::http::framing::none;
    if (status < 200) {
      canary::http::build_interim_head(head, original);
    } else {
      f = canary::http::choose_framing(head_request, status,
                                       original.content_length().has_value(), client_version);
      canary::http::build_response_head(head, original, f, client_version >= 11,
                                        client_version, "");
    }
    response_parser_type again;
    again.header_limit(static_cast<std::uint32_t>(head.size() + 1));
    again.body_limit(boost::none);
    if (head_request) again.skip(true);
    boost::system::error_code ec;
    const auto n = again.put(boost::asio::buffer(head), ec);
    FUZZ_CHECK(!ec, input);
    FUZZ_CHECK(again.is_header_done() && n == head.size(), input);
    FUZZ_CHECK(again.result_int() == status, input);
    FUZZ_CHECK(canary::http::validate_response(again).code == 0, input);
    if (f == canary::http::framing::length)
      FUZZ_CHECK(again.content_length() == original.content_length(), input);
    FUZZ_CHECK(again.chunked() == (f == canary::http::framing::chunked), input);
    std::size_t framing = 0;
    for (const auto& field : again) {
      if (field.name() == bhttp::field::content_length ||
          field.name() == bhttp::field::transfer_encoding)
        ++framing;
      else if (field.name() != bhttp::field::connection)  // ours: close / keep-alive
        FUZZ_CHECK(!canary::http::is_hop_by_hop(field.name_string()), input);
    }
    FUZZ_CHECK(framing <= 1, input);
  }
}

void fuzz_response(std::string_view input) {
  for (bool head_request : {false, true}) {
    response_parser_type p;
    p.header_limit(8192);
    p.body_limit(4096);
    if (head_request) p.skip(true);
    boost::beast::flat_buffer buf(buffer_max);
    const auto n = std::min(input.size(), buf.max_size());
    if (n == 0) return;
    auto b = buf.prepare(n);
    std::memcpy(b.data(), input.data(), n);
    buf.commit(n);
    boost::system::error_code ec;
    buf.consume(p.put(buf.data(), ec));
    if (ec || !p.is_header_done()) continue;
    // The forwarded field lines: each CRLF-terminated, no obs-fold, one per field, same values.
    std::string lines;
    p.append_fields(lines, [](const auto&) { return true; });
    FUZZ_CHECK(lines == p.head_bytes(), input);
    std::size_t line_count = 0;
    for (std::size_t at = 0; at < lines.size();) {
      const auto eol = lines.find("\r\n", at);
      FUZZ_CHECK(eol != std::string::npos, input);
      FUZZ_CHECK(lines[at] != ' ' && lines[at] != '\t', input);
      FUZZ_CHECK(lines.find('\n', at) == eol + 1, input);
      ++line_count;
      at = eol + 2;
    }
    FUZZ_CHECK(line_count == p.field_count(), input);
    for (const auto& f : p) {
      FUZZ_CHECK(
          f.name_string().data() >= p.head_bytes().data() &&
              f.value().data() + f.value().size() <= p.head_bytes().data() + p.head_bytes().size(),
          input);
    }
    const auto v = canary::http::validate_response(p);
    FUZZ_CHECK(v.code == 0 || v.code == 502, input);
    const unsigned status = p.get().result_int();
    if (v.code == 0 && !head_request && status >= 200 && status != 204 && status != 304) {
      // An accepted response with a body has one framing: chunked or one Content-Length.
      // (HEAD and 304 responses may describe the GET's framing; nothing of it is used.)
      std::size_t framing = 0;
      for (const auto& f : p.get())
        if (f.name() == bhttp::field::content_length || f.name() == bhttp::field::transfer_encoding)
          ++framing;
      FUZZ_CHECK(framing <= 1, input);
    }
    if (v.code == 0 && status != 101) check_forwarded_response(p, head_request, input);
  }
}

// The response fast path against Beast: the same bytes whole (the fast path may take the head)
// and one byte at a time (the fast path never sees a complete head: Beast parses). When the fast
// path took a head, Beast must accept it with the same meaning, and the body bytes must agree.
struct response_view {
  std::string how;  // "error" or the parsed meaning
  std::string body;
};

response_view parse_response(std::string_view input, bool head_request, bool bytewise, bool* fast) {
  response_parser_type p;
  p.header_limit(8192);
  p.body_limit(boost::none);
  if (head_request) p.skip(true);
  const std::string in(input);
  std::size_t at = 0;
  std::size_t end = bytewise ? std::min<std::size_t>(1, in.size()) : in.size();
  boost::system::error_code ec;
  while (!p.is_header_done()) {
    const auto n = p.put(boost::asio::buffer(in.data() + at, end - at), ec);
    at += n;
    if (ec == bhttp::error::need_more) {
      ec = {};
      if (end >= in.size()) return {"incomplete", ""};
      end = std::max(at, end + 1);
      continue;
    }
    if (ec) return {"error", ""};
  }
  if (fast) *fast = p.fast();
  std::string how = std::to_string(p.result_int()) + "|" + std::string(p.reason()) + "|" +
                    std::to_string(p.version()) + "|" + std::to_string(p.keep_alive()) + "|" +
                    std::to_string(p.need_eof()) + "|" + std::to_string(p.chunked()) + "|" +
                    (p.content_length() ? std::to_string(*p.content_length()) : "-") + "|" +
                    std::to_string(p.is_done()) + "|" + std::to_string(at) + "|";
  for (const auto& f : p)
    how += std::to_string(static_cast<int>(f.name())) + ":" + std::string(f.name_string()) + "=" +
           std::string(f.value()) + ";";
  std::string lines;
  p.append_fields(lines, [](const auto&) { return true; });
  how += lines;
  std::string body;
  char chunk[64];
  while (!p.is_done() && at < in.size() && !p.chunked() && !p.need_eof()) {
    p.body().data = chunk;
    p.body().size = sizeof chunk;
    const auto n = p.put(boost::asio::buffer(in.data() + at, in.size() - at), ec);
    if (ec == bhttp::error::need_buffer) ec = {};
    body.append(chunk, sizeof chunk - p.body().size);
    if (ec) return {"body-error", ""};
    at += n;
    if (n == 0) break;
  }
  how += "|" + std::to_string(p.is_done()) + "|" + std::to_string(at);
  return {how, body};
}

// The same for requests: whole (the fast path may take the head) against byte by byte through
// parse_request_head (Beast's), with the session's limits; the verdicts must agree too.
std::string parse_request_meaning(std::string_view input, bool bytewise, bool* fast) {
  const auto limits = fuzz_limits();
  request_parser_type p;
  p.header_limit(static_cast<std::uint32_t>(limits.max_request_header_bytes));
  p.body_limit(limits.max_request_body_bytes);
  boost::beast::flat_buffer buf(buffer_max);
  std::string_view in = input;
  canary::http::head_step step;
  for (;;) {
    step = canary::http::parse_request_head(p, buf);
    if (step.what != canary::http::head_step::state::need_more) break;
    const auto n =
        std::min({bytewise ? std::size_t{1} : in.size(), in.size(), buf.max_size() - buf.size()});
    if (n == 0) return "incomplete";
    auto b = buf.prepare(n);
    std::memcpy(b.data(), in.data(), n);
    buf.commit(n);
    in.remove_prefix(n);
  }
  if (fast) *fast = p.fast();
  if (step.what == canary::http::head_step::state::error)
    return "error:" + step.ec.message() + ":" + std::to_string(step.bad.code);
  const auto v = canary::http::validate_request(p, limits);
  std::string how = std::to_string(v.code) + "|" + std::string(p.method_string()) + "|" +
                    std::to_string(static_cast<int>(p.method())) + "|" + std::string(p.target()) +
                    "|" + std::to_string(p.version()) + "|" + std::to_string(p.keep_alive()) + "|" +
                    std::to_string(p.chunked()) + "|" +
                    (p.content_length() ? std::to_string(*p.content_length()) : "-") + "|" +
                    std::to_string(p.is_done()) + "|" + std::to_string(p.field_count()) + "|" +
                    std::to_string(buf.size() + in.size()) + "|";
  for (const auto& f : p)
    how += std::to_string(static_cast<int>(f.name())) + ":" + std::string(f.name_string()) + "=" +
           std::string(f.value()) + ";";
  std::string lines;
  p.append_fields(lines, [](const auto&) { return true; });
  return how + lines;
}

void fuzz_request_fast_path(std::string_view input) {
  bool fast = false;
  const auto whole = parse_request_meaning(input, false, &fast);
  if (!fast) return;
  const auto beast = parse_request_meaning(input, true, nullptr);
  if (whole != beast) {
    std::fprintf(stderr, "fast: %s\nbeast: %s\n", whole.c_str(), beast.c_str());
    violated("request fast path and Beast disagree", input);
  }
}

void fuzz_response_fast_path(std::string_view input) {
  for (bool head_request : {false, true}) {
    bool fast = false;
    const auto whole = parse_response(input, head_request, false, &fast);
    if (!fast) continue;
    const auto beast = parse_response(input, head_request, true, nullptr);
    if (whole.how != beast.how || whole.body != beast.body) {
      std::fprintf(stderr, "fast: %s\nbeast: %s\n", whole.how.c_str(), beast.how.c_str());
      violated("fast path and Beast disagree", input);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  fuzz_request(input);
  fuzz_response(input);
  fuzz_response_fast_path(input);
  fuzz_request_fast_path(input);
  return 0;
}
