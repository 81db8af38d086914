// Reading heads as the session does per message (a fresh parser with the configured limits):
// http::request_parser_type (lean_parser: the fast path for plain heads, Beast's parser for the
// rest) over a typical ~400-byte browser request, then validate_request (the framing checks
// Beast does not make); a backend's response head. The *_beast variants run Beast's own
// parser<buffer_body> (fields in a basic_fields container) over the same bytes, for comparison.
#include <benchmark/benchmark.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <string_view>

#include "config/config.h"
#include "http/request_rules.h"

namespace {

using namespace canary;

constexpr std::string_view request =
    "GET /api/v1/items/12345?view=full&lang=en HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Cookie: session=3f2a9c1b7d4e8a60; theme=dark\r\n"
    "X-User: user-4711\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

bool parse(http::request_parser_type& p, const config::limits_config& limits) {
  p.header_limit(static_cast<std::uint32_t>(limits.max_request_header_bytes));
  p.body_limit(limits.max_request_body_bytes);
  boost::beast::error_code ec;
  p.put(boost::asio::buffer(request.data(), request.size()), ec);
  return !ec && p.is_header_done();
}

void BM_parse_request(benchmark::State& state) {
  const config::limits_config limits;
  for (auto _ : state) {
    http::request_parser_type p;
    benchmark::DoNotOptimize(parse(p, limits));
  }
  state.SetBytesProcessed(state.iterations() * request.size());
  state.SetLabel(std::to_string(request.size()) + "-byte head");
}
BENCHMARK(BM_parse_request);

void BM_parse_request_beast(benchmark::State& state) {
  const config::limits_config limits;
  for (auto _ : state) {
    boost::beast::http::request_parser<boost::beast::http::buffer_body> p;
    p.header_limit(static_cast<std::uint32_t>(limits.max_request_header_bytes));
    p.body_limit(limits.max_request_body_bytes);
    boost::beast::error_code ec;
    p.put(boost::asio::buffer(request.data(), request.size()), ec);
    benchmark::DoNotOptimize(p.is_header_done());
  }
  state.SetBytesProcessed(state.iterations() * request.size());
}
BENCHMARK(BM_parse_request_beast);

constexpr std::string_view response =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx/1.22.1\r\n"
    "Date: Thu, 26 Nov 2026 15:00:00 GMT\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 1234\r\n"
    "Connection: keep-alive\r\n"
    "Cache-Control: no-cache\r\n"
    "\r\n";

// A fresh parser per response, as the session makes one per message.
template <class Parser>
void parse_response(benchmark::State& state) {
  for (auto _ : state) {
    Parser p;
    p.header_limit(64 * 1024);
    p.body_limit(boost::none);
    boost::beast::error_code ec;
    p.put(boost::asio::buffer(response.data(), response.size()), ec);
    benchmark::DoNotOptimize(p.is_header_done());
  }
  state.SetBytesProcessed(state.iterations() * response.size());
  state.SetLabel(std::to_string(response.size()) + "-byte head");
}

void BM_parse_response(benchmark::State& state) {
  parse_response<http::response_parser_type>(state);
}
BENCHMARK(BM_parse_response);

void BM_parse_response_beast(benchmark::State& state) {
  parse_response<boost::beast::http::response_parser<boost::beast::http::buffer_body>>(state);
}
BENCHMARK(BM_parse_response_beast);

void BM_validate_request(benchmark::State& state) {
  const config::limits_config limits;
  http::request_parser_type p;
  if (!parse(p, limits)) {
    state.SkipWithError("the sample request does not parse");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(http::validate_request(p, limits).code);
}
BENCHMARK(BM_validate_request);

void BM_parse_and_validate_request(benchmark::State& state) {
  const config::limits_config limits;
  for (auto _ : state) {
    http::request_parser_type p;
    bool ok = parse(p, limits);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(http::validate_request(p, limits).code);
  }
  state.SetBytesProcessed(state.iterations() * request.size());
}
BENCHMARK(BM_parse_and_validate_request);

}  // namespace
