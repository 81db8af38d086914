// libFuzzer target: client bytes into the HTTP/2 server engine (proxy/http2/server_engine.h),
// no sockets. Every input is preceded by the client preface (RFC 9113 §3.4) so the fuzzer
// spends its time on frames; the first byte of the input chooses how the rest is cut into
// reads, as a socket would deliver it. The handler answers every complete request with a small
// body, returns the window of what it read, and sometimes resets or shuts down: the paths a
// forwarder drives. Under ASan and UBSan: no crash, leak or undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "http2/server_engine.h"

namespace {

using namespace canary::http2;

struct fuzz_handler : stream_handler {
  server_engine* engine = nullptr;
  unsigned n = 0;
  bool on_request(const std::shared_ptr<stream>& s) override {
    if (++n % 17 == 0) return false;  // refused
    if (s->request_ended) answer(*s);
    return true;
  }
  void on_stream_event(const std::shared_ptr<stream>& s) override {
    if (s->closed || !s->headers_done) return;
    engine->consumed(*s, s->body.size());
    s->body.clear();
    if (s->request_ended && !s->responded) answer(*s);
  }
  void answer(stream& s) {
    if (n % 5 == 0) return engine->reset(s, 0x8);
    engine->respond(s, s.header_too_large ? 431 : 200, {{"content-type", "text/plain"}},
                    true);
    engine->send_body(s, s.path.data(), s.path.size(), n % 3 != 0);
    if (n % 3 == 0) engine->send_body(s, "end", 3, true);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::int64_t now = 0;
  fuzz_handler handler;
  engine_settings settings;
  settings.max_concurrent_streams = 8;
  settings.initial_window = 16384;
  settings.max_header_bytes = 4096;
  settings.max_header_fields = 32;
  server_engine engine(settings, handler, [&now] { return now += 1'000'000; });
  handler.engine = &engine;
  const std::size_t cut = 1 + data[0] % 64;
  std::string input(client_preface);
  input.append(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string out;
  for (std::size_t at = 0; at < input.size(); at += cut) {
    const std::size_t n = std::min(cut, input.size() - at);
    const bool ok = engine.receive(input.data() + at, n);
    out.clear();
    engine.take_output(out);
    if (engine.finished()) break;
    if (!ok) break;
    if (data[0] == 0xff && at == 0) engine.shut_down();
  }
  out.clear();
  engine.take_output(out);
  return 0;
}
