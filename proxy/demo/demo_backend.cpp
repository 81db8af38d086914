// demo-backend: argument parsing, the rollouts-demo request-body overrides, the demo page, and
// the HTTP/1.1 server (one io_context, one thread, a coroutine per connection; bodies are
// counted in fixed chunks, never buffered whole). The only Beast translation unit of the binary.
#include "demo/demo_backend.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <random>

#include "util/duration.h"
#include "util/text.h"

namespace canary::demo {

namespace json = boost::json;

// ---------------------------------------------------------------------------------------------
// Arguments

namespace {

// A duration in the one grammar (util/duration.h: 250ms, 1.5s, 2m, or an integer number of
// seconds), at most a day (more is surely a typo). nullopt when malformed or too long.
std::optional<std::chrono::milliseconds> parse_latency(std::string_view text) {
  auto d = util::parse_duration(text);
  if (!d || *d > std::chrono::hours(24)) return std::nullopt;
  return d;
}

// "host:port", "[v6]:port", ":port" (all interfaces) or "port" (loopback).
bool split_listen(std::string_view text, std::string& host, std::string& port) {
  std::string_view h, p;
  if (text.starts_with("[")) {
    auto close = text.find("]:");
    if (close == std::string_view::npos) return false;
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
    if (h.empty()) h = "0.0.0.0";
  } else {
    h = "127.0.0.1";
    p = text;
  }
  bool digits = !p.empty() && p.size() <= 5 &&
                std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (h.empty() || !digits || std::stoi(std::string(p)) > 65535) return false;
  host = std::string(h);
  port = std::string(p);
  return true;
}

}  // namespace

std::string usage() {
  return "Usage: demo-backend --listen ADDR --color NAME [--error-rate 0..1] "
         "[--latency DURATION]\n"
         "  --listen ADDR       host:port to listen on (port 0 = any free port; default "
         "127.0.0.1:8080)\n"
         "  --color NAME        the version's colour, returned by /color as \"NAME\"\n"
         "  --error-rate R      answer a share R (0..1) of /color requests with 500, evenly\n"
         "                      spaced (0.5: every other one, 0.05: one in 20)\n"
         "  --latency D         wait D before answering /color (250ms, 1s, 1.5s, 2; at most 24h)\n"
         "  -h, --help          print this help and exit\n";
}

parse_result parse_args(const std::vector<std::string>& args) {
  parse_result result;
  options opts;
  auto fail = [&](std::string message) {
    result.error = std::move(message);
    return result;
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::optional<std::string> value;
    if (auto eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name == "-h" || name == "--help") {
      result.help = true;
      result.opts = opts;
      return result;
    }
    if (name != "--listen" && name != "--color" && name != "--error-rate" && name != "--latency") {
      return fail("unknown argument: " + args[i]);
    }
    if (!value) {
      if (i + 1 >= args.size()) return fail("flag " + name + " needs a value");
      value = args[++i];
    }
    if (name == "--listen") {
      if (!split_listen(*value, opts.host, opts.port)) {
        return fail("bad --listen address '" + *value + "' (want host:port)");
      }
    } else if (name == "--color") {
      if (value->empty()) return fail("--color needs a name");
      opts.color = *value;
    } else if (name == "--error-rate") {
      char* end = nullptr;
      double rate = std::strtod(value->c_str(), &end);
      if (value->empty() || end != value->c_str() + value->size() || !(rate >= 0 && rate <= 1)) {
        return fail("bad --error-rate '" + *value + "' (want a number from 0 to 1)");
      }
      opts.error_rate = rate;
    } else {
      auto latency = parse_latency(*value);
      if (!latency) return fail("bad --latency '" + *value + "' (e.g. 250ms, 1s, 1.5s)");
      opts.latency = *latency;
    }
  }
  if (opts.color.empty()) return fail("--color is required");
  result.opts = std::move(opts);
  return result;
}

bool error_due(std::uint64_t n, double rate) {
  if (!(rate > 0)) return false;
  // The slack absorbs binary rounding: 20 * 0.05 must count as 1, not 0.999...
  constexpr double slack = 1e-9;
  auto crossed = [rate](std::uint64_t k) {
    return std::floor(static_cast<double>(k) * rate + slack);
  };
  return crossed(n + 1) > crossed(n);
}

// ---------------------------------------------------------------------------------------------
// rollouts-demo body overrides

std::optional<color_override> find_override(std::string_view body, std::string_view color) {
  if (body.empty()) return std::nullopt;
  std::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_array()) return std::nullopt;
  auto number = [](const json::object& o, std::string_view key) -> double {
    const json::value* f = o.if_contains(key);
    if (f == nullptr) return 0;
    if (f->is_double()) return f->as_double();
    if (f->is_int64()) return static_cast<double>(f->as_int64());
    if (f->is_uint64()) return static_cast<double>(f->as_uint64());
    return 0;
  };
  for (const auto& entry : v.as_array()) {
    if (!entry.is_object()) continue;
    const auto& o = entry.as_object();
    const json::value* c = o.if_contains("color");
    if (c == nullptr || !c->is_string() || c->as_string() != color) continue;
    color_override out;
    out.return500_percent = std::clamp(number(o, "return500"), 0.0, 100.0);
    out.delay_s = std::clamp(number(o, "delayLength"), 0.0, 60.0);  // a stuck demo is no demo
    return out;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// The demo page

std::string_view demo_page() {
  static constexpr std::string_view page = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>canary demo</title>
<style>
  :root { color-scheme: dark; }
  body { font: 14px/1.4 system-ui, sans-serif; background: #14161a; color: #d8dce3; margin: 0;
         padding: 16px 24px; }
  header { display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }
  h1 { font-size: 18px; margin: 0 8px 0 0; }
  button { font: inherit; font-weight: 600; padding: 6px 18px; border-radius: 4px; cursor: pointer;
           border: 1px solid #5a6270; background: #2a2f38; color: #eef; }
  button.stopped { background: #2e6b3a; border-color: #3d8d4d; }
  .muted { color: #8a93a3; }
  main { display: flex; gap: 32px; flex-wrap: wrap; align-items: flex-start; }
  #grid { display: grid; grid-template-columns: repeat(20, 1fr); gap: 3px; width: min(760px, 100%);
          margin: 16px 0; }
  .px { aspect-ratio: 1; background: #22262d; border: 2px solid transparent; border-radius: 3px;
        transition: background-color .25s; }
  .px.err { border-color: #ff3b3b; }
  table { border-collapse: collapse; margin-top: 16px; }
  th, td { padding: 4px 10px; text-align: right; white-space: nowrap; }
  th:first-child, td:first-child { text-align: left; }
  th { color: #8a93a3; font-weight: 500; border-bottom: 1px solid #333a45; }
  tbody tr { cursor: pointer; }
  tbody tr.sel { background: #262c36; }
  .chip { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px;
          vertical-align: -1px; }
  .bar { display: inline-block; height: 8px; background: #6b7585; border-radius: 2px;
         vertical-align: 0; margin-left: 6px; }
  #controls { margin-top: 12px; padding: 10px; border: 1px solid #333a45; border-radius: 4px; }
  #controls label { display: block; margin: 6px 0; }
  input[type=range] { width: 160px; vertical-align: middle; }
</style>
</head>
<body>
<header>
  <h1>canary demo</h1>
  <button id="toggle" type="button">STOP</button>
  <span id="state" class="muted">running</span>
  <span id="rate" class="muted"></span>
</header>
<main>
  <div id="grid" aria-label="one square per response, in the colour that answered"></div>
  <section>
    <table>
      <thead><tr><th>colour</th><th>responses</th><th>5xx</th><th>last 5 s</th><th>share</th>
      </tr></thead>
      <tbody id="rows"></tbody>
    </table>
    <p class="muted">answers without a colour (proxy errors): <span id="nocolor">0</span><br>
       network errors: <span id="neterr">0</span> &middot; in flight: <span id="inflight">0</span>
    </p>
    <div id="controls" hidden>
      <b id="selname"></b> (sent in every request body, like argoproj/rollouts-demo)
      <label>latency <input type="range" id="lat" min="0" max="5" step="0.1" value="0">
        <span id="latv">0 s</span></label>
      <label>errors <input type="range" id="err" min="0" max="100" step="1" value="0">
        <span id="errv">0 %</span></label>
    </div>
    <p class="muted">Click a colour to inject latency or errors into that version.</p>
  </section>
</main>
<script>
(() => {
  'use strict';
  const COLS = 20, ROWS = 10;
  const PERIOD_MS = 20;        // ~50 requests per second, as rollouts-demo
  const LIT_MS = 4000;         // how long a square keeps its colour
  const WINDOW_MS = 5000;      // the "last 5 s" share
  const MAX_IN_FLIGHT = 100;   // a slow backend must not pile up requests without bound
  const $ = (id) => document.getElementById(id);

  const cells = [];
  for (let i = 0; i < COLS * ROWS; i++) {
    const el = document.createElement('div');
    el.className = 'px';
    $('grid').appendChild(el);
    cells.push({ el, until: 0 });
  }

  const colors = new Map();  // name -> {css, total, errors, return500, delayLength}
  const recent = [];         // {t, color} of the responses in the last WINDOW_MS
  let noColor = 0, netErrors = 0, inFlight = 0, timer = null, wanted = true, selected = null;

  function cssColor(name) {
    if (CSS.supports('color', name)) return name;
    let h = 0;
    for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return `hsl(${h % 360} 70% 55%)`;
  }
  function entry(name) {
    let e = colors.get(name);
    if (!e) {
      e = { css: cssColor(name), total: 0, errors: 0, return500: 0, delayLength: 0 };
      colors.set(name, e);
    }
    return e;
  }
  function requestBody() {
    return JSON.stringify([...colors].map(([color, e]) =>
      ({ color, return500: e.return500, delayLength: e.delayLength })));
  }
  function light(css, error) {
    const c = cells[Math.floor(Math.random() * cells.length)];
    c.el.style.backgroundColor = css;
    c.el.classList.toggle('err', error);
    c.until = performance.now() + LIT_MS;
  }

  async function fire() {
    if (inFlight >= MAX_IN_FLIGHT) return;
    inFlight++;
    try {
      const r = await fetch('./color', { method: 'POST', body: requestBody(), cache: 'no-store' });
      const text = await r.text();
      let name = null;
      try { name = JSON.parse(text); } catch (_) { /* e.g. a proxy's 502 page */ }
      if (typeof name !== 'string' || name === '') {
        noColor++;
        light('#444', true);
        return;
      }
      const e = entry(name);
      const error = r.status >= 500;
      e.total++;
      if (error) e.errors++;
      recent.push({ t: performance.now(), color: name });
      light(e.css, error);
    } catch (_) {
      netErrors++;
    } finally {
      inFlight--;
    }
  }

  function render() {
    const now = performance.now();
    while (recent.length && recent[0].t < now - WINDOW_MS) recent.shift();
    for (const c of cells) {
      if (c.until && c.until < now) {
        c.until = 0;
        c.el.style.backgroundColor = '';
        c.el.classList.remove('err');
      }
    }
    const inWindow = new Map();
    for (const r of recent) inWindow.set(r.color, (inWindow.get(r.color) || 0) + 1);
    const rows = $('rows');
    rows.textContent = '';
    for (const [name, e] of [...colors].sort((a, b) => a[0].localeCompare(b[0]))) {
      const n = inWindow.get(name) || 0;
      const share = recent.length ? (100 * n) / recent.length : 0;
      const tr = document.createElement('tr');
      if (name === selected) tr.className = 'sel';
      const first = document.createElement('td');
      const chip = document.createElement('span');
      chip.className = 'chip';
      chip.style.background = e.css;
      first.append(chip, name);
      tr.append(first);
      for (const v of [e.total, e.errors, n]) {
        const td = document.createElement('td');
        td.textContent = String(v);
        tr.append(td);
      }
      const td = document.createElement('td');
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = `${Math.round(share)}px`;
      bar.style.background = e.css;
      td.append(`${share.toFixed(1)} %`, bar);
      tr.append(td);
      tr.addEventListener('click', () => select(name));
      rows.append(tr);
    }
    $('nocolor').textContent = String(noColor);
    $('neterr').textContent = String(netErrors);
    $('inflight').textContent = String(inFlight);
    $('rate').textContent = `${(recent.length / (WINDOW_MS / 1000)).toFixed(1)} responses/s`;
  }

  function select(name) {
    selected = name;
    const e = entry(name);
    $('controls').hidden = false;
    $('selname').textContent = name;
    $('lat').value = e.delayLength;
    $('err').value = e.return500;
    $('latv').textContent = `${e.delayLength} s`;
    $('errv').textContent = `${e.return500} %`;
  }
  $('lat').addEventListener('input', (ev) => {
    if (selected === null) return;
    entry(selected).delayLength = Number(ev.target.value);
    $('latv').textContent = `${ev.target.value} s`;
  });
  $('err').addEventListener('input', (ev) => {
    if (selected === null) return;
    entry(selected).return500 = Number(ev.target.value);
    $('errv').textContent = `${ev.target.value} %`;
  });

  function start() {
    if (timer === null) timer = setInterval(fire, PERIOD_MS);
    $('toggle').textContent = 'STOP';
    $('toggle').classList.remove('stopped');
    $('state').textContent = 'running';
  }
  function stop(why) {
    if (timer !== null) clearInterval(timer);
    timer = null;
    $('toggle').textContent = 'START';
    $('toggle').classList.add('stopped');
    $('state').textContent = why;
  }
  $('toggle').addEventListener('click', () => {
    wanted = timer === null;
    if (wanted) start(); else stop('stopped');
  });
  // A hidden tab would keep hammering the proxy (and browsers throttle it anyway).
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) stop('paused while the tab is hidden');
    else if (wanted) start();
  });

  setInterval(render, 250);
  if (document.hidden) stop('paused while the tab is hidden'); else start();
})();
</script>
</body>
</html>
)html";
  return page;
}

// ---------------------------------------------------------------------------------------------
// Server

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using executor_t = net::io_context::executor_type;
using stream_t = beast::basic_stream<tcp, executor_t>;
using acceptor_t = net::basic_socket_acceptor<tcp, executor_t>;
using timer_t = net::basic_waitable_timer<std::chrono::steady_clock,
                                          net::wait_traits<std::chrono::steady_clock>, executor_t>;
template <class T>
using task = net::awaitable<T, executor_t>;

auto use_tuple() { return net::as_tuple(net::use_awaitable_t<executor_t>{}); }

// Test clients send modest heads; anything larger is a test of the proxy's own limit.
constexpr std::uint32_t max_header_bytes = 64 * 1024;
// Only /color bodies are kept (to read the override array); larger ones are counted, not kept.
constexpr std::size_t max_kept_body = 64 * 1024;
constexpr auto idle_timeout = std::chrono::seconds(60);       // keep-alive between requests
constexpr auto body_idle_timeout = std::chrono::seconds(60);  // between two body reads
constexpr auto write_timeout = std::chrono::seconds(60);

struct server_state {
  const options& opts;
  std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t color_answers = 0;  // for --error-rate (error_due)

  // A uniform draw in [0, 1).
  double draw() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }
};

using response_t = http::response<http::string_body>;

response_t make_response(http::status status, unsigned version, std::string_view content_type,
                         std::string body) {
  response_t res{status, version};
  res.set(http::field::server, "demo-backend");
  res.set(http::field::content_type, content_type);
  res.body() = std::move(body);
  return res;
}

std::string echo_json(const http::request_parser<http::buffer_body>::value_type& req,
                      std::string_view color, std::uint64_t body_bytes) {
  json::array headers;
  for (const auto& f : req) {
    headers.push_back(json::array{json::string(f.name_string()), json::string(f.value())});
  }
  json::object o;
  o["color"] = color;
  o["method"] = req.method_string();
  o["target"] = req.target();
  o["version"] = req.version() == 10 ? "1.0" : "1.1";
  o["headers"] = std::move(headers);
  o["body_bytes"] = body_bytes;
  return json::serialize(o) + "\n";
}

// One connection: read a request (head, then the body in fixed chunks), answer, repeat while
// both sides keep the connection alive.
task<void> session(stream_t stream, server_state& state) {
  beast::flat_buffer buffer;
  char chunk[16 * 1024];
  for (;;) {
    http::request_parser<http::buffer_body> parser;
    parser.header_limit(max_header_bytes);
    parser.body_limit(boost::none);  // bodies are counted and dropped, so any size is fine
    stream.expires_after(idle_timeout);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, use_tuple());
    if (hec) {
      // end_of_stream is how keep-alive connections normally end; timeouts and resets just close.
      // A malformed head gets a short answer so a test sees why.
      bool too_big = hec == http::error::header_limit;
      bool malformed =
          hec.category() == http::make_error_code(http::error::bad_target).category() &&
          hec != http::error::end_of_stream && hec != http::error::partial_message;
      if (too_big || malformed) {
        auto res = make_response(
            too_big ? http::status::request_header_fields_too_large : http::status::bad_request, 11,
            "text/plain", too_big ? "request header too large\n" : "bad request\n");
        res.keep_alive(false);
        res.prepare_payload();
        stream.expires_after(write_timeout);
        co_await http::async_write(stream, res, use_tuple());
      }
      break;
    }
    auto& req = parser.get();
    std::string_view target = req.target();
    std::string_view path = target.substr(0, target.find('?'));
    bool is_color = path == "/color";

    // RFC 9110 §10.1.1: a client that sent Expect: 100-continue waits for this before the body.
    if (req.version() >= 11 && util::iequals(req[http::field::expect], "100-continue")) {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      stream.expires_after(write_timeout);
      auto [cec, cn] = co_await http::async_write(stream, cont, use_tuple());
      if (cec) break;
    }

    std::uint64_t body_bytes = 0;
    std::string kept;
    bool kept_whole = true;
    bool body_ok = true;
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      stream.expires_after(body_idle_timeout);
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, use_tuple());
      if (bec == http::error::need_buffer) bec = {};
      std::size_t got = sizeof chunk - parser.get().body().size;
      body_bytes += got;
      if (is_color && kept_whole) {
        if (kept.size() + got <= max_kept_body) {
          kept.append(chunk, got);
        } else {
          kept_whole = false;
          kept.clear();
        }
      }
      if (bec) {
        body_ok = false;
        break;
      }
    }
    if (!body_ok) break;  // a broken or timed-out body leaves the connection unusable

    unsigned version = req.version() == 10 ? 10 : 11;
    response_t res;
    bool head = req.method() == http::verb::head;
    if (is_color) {
      auto override = kept_whole ? find_override(kept, state.opts.color) : std::nullopt;
      bool fail = error_due(state.color_answers++, state.opts.error_rate);
      auto delay = state.opts.latency;
      if (override) {
        if (override->return500_percent > 0 && state.draw() * 100 < override->return500_percent) {
          fail = true;
        }
        if (override->delay_s > 0) {
          delay = std::chrono::milliseconds(std::llround(override->delay_s * 1000));
        }
      }
      if (delay.count() > 0) {
        timer_t timer(stream.get_executor());
        timer.expires_after(delay);
        co_await timer.async_wait(use_tuple());
      }
      res = make_response(fail ? http::status::internal_server_error : http::status::ok, version,
                          "text/plain; charset=utf-8",
                          json::serialize(json::string(state.opts.color)));
      res.set("X-Content-Type-Options", "nosniff");
    } else if (path == "/" || path == "/index.html") {
      res = make_response(http::status::ok, version, "text/html; charset=utf-8",
                          std::string(demo_page()));
      res.set(http::field::cache_control, "no-cache");
    } else if (path == "/healthz") {
      res = make_response(http::status::ok, version, "text/plain; charset=utf-8", "ok");
    } else if (path == "/echo") {
      res = make_response(http::status::ok, version, "application/json",
                          echo_json(req, state.opts.color, body_bytes));
    } else {
      res = make_response(http::status::not_found, version, "text/plain; charset=utf-8",
                          "not found\n");
    }
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    if (head) {
      // HEAD: same Content-Length as GET would have, no body (RFC 9110 §9.3.2).
      auto length = res.body().size();
      res.body().clear();
      res.content_length(length);
    }
    stream.expires_after(write_timeout);
    auto [wec, wn] = co_await http::async_write(stream, res, use_tuple());
    if (wec || !res.keep_alive()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

task<void> accept_loop(acceptor_t& acceptor, server_state& state) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple());
    if (ec == net::error::operation_aborted) co_return;
    if (ec) {
      // Out of file descriptors and the like: back off instead of spinning.
      timer_t timer(acceptor.get_executor());
      timer.expires_after(std::chrono::milliseconds(100));
      co_await timer.async_wait(use_tuple());
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    net::co_spawn(acceptor.get_executor(), session(stream_t(std::move(socket)), state),
                  net::detached);
  }
}

}  // namespace

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  parse_result parsed = parse_args(args);
  if (parsed.help) {
    std::cout << usage();
    return 0;
  }
  if (!parsed.opts) {
    std::cerr << "demo-backend: " << parsed.error << "\n" << usage();
    return 2;
  }
  const options& opts = *parsed.opts;
  try {
    net::io_context ioc(1);
    tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(opts.host, opts.port);
    acceptor_t acceptor(ioc.get_executor());
    tcp::endpoint endpoint = endpoints.begin()->endpoint();
    acceptor.open(endpoint.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(net::socket_base::max_listen_connections);
    tcp::endpoint bound = acceptor.local_endpoint();
    std::string address = bound.address().to_string();
    if (bound.address().is_v6()) address = "[" + address + "]";
    std::cout << "demo-backend " << opts.color << " listening on " << address << ":" << bound.port()
              << std::endl;

    server_state state{opts};
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) { ioc.stop(); });
    net::co_spawn(ioc.get_executor(), accept_loop(acceptor, state), net::detached);
    ioc.run();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "demo-backend: cannot listen on " << opts.host << ":" << opts.port << ": "
              << e.what() << "\n";
    return 1;
  }
}

}  // namespace canary::demo
