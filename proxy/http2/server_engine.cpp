// nghttp2's server session behind server_engine (server_engine.h): callbacks into streams, the
// proxy's header limits and abuse bounds.
#include "http2/server_engine.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>

namespace canary::http2 {

namespace {

constexpr std::int64_t one_second_ns = 1'000'000'000;
// Response bytes buffered per stream before the forwarder stops reading its upstream.
constexpr std::size_t out_wake_below = 64 * 1024;
// RFC 9113 §6.5.2 / RFC 7541 §4.1: a field's size is name + value + 32.
constexpr std::size_t field_overhead = 32;

std::string_view view(const std::uint8_t* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

}  // namespace

bool reset_guard::reset(std::int64_t now_ns) noexcept {
  ++resets_;
  if (now_ns - window_start_ns_ >= one_second_ns) {
    window_start_ns_ = now_ns;
    in_window_ = 0;
  }
  ++in_window_;
  if (in_window_ > per_second) return true;
  // Over the connection's life: more than 10 % of its streams reset, once past a floor that a
  // browser cancelling navigations never reaches.
  return resets_ > per_thousand && resets_ * 1000 > streams_ * per_thousand;
}

bool control_guard::frame(std::int64_t now_ns) noexcept {
  if (now_ns - window_start_ns_ >= one_second_ns) {
    window_start_ns_ = now_ns;
    in_window_ = 0;
  }
  return ++in_window_ > per_second;
}

struct server_engine::callbacks {
  static server_engine& self(void* p) { return *static_cast<server_engine*>(p); }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* u) {
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    auto& e = self(u);
    auto s = std::make_shared<stream>();
    s->id = f->hd.stream_id;
    e.streams_.emplace(s->id, std::move(s));
    e.resets_.stream_opened();
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* name,
                       std::size_t namelen, const std::uint8_t* value, std::size_t valuelen,
                       std::uint8_t, void* u) {
    if (f->hd.type != NGHTTP2_HEADERS) return 0;
    auto& e = self(u);
    auto s = e.find(f->hd.stream_id);
    if (!s) return 0;
    // Counted as decoded, before anything is stored: an HPACK bomb (small frames referencing a
    // large table entry many times) grows this count, not memory.
    s->header_bytes += namelen + valuelen + field_overhead;
    if (s->header_too_large || s->header_bytes > e.settings_.max_header_bytes ||
        s->fields.size() >= e.settings_.max_header_fields) {
      s->header_too_large = true;
      return 0;
    }
    const auto n = view(name, namelen);
    const auto v = view(value, valuelen);
    // nghttp2 already checked the pseudo-headers (RFC 9113 §8.3: known, once, before the
    // regular fields) and rejects connection-specific fields (§8.2.2).
    if (n == ":method")
      s->method = v;
    else if (n == ":scheme")
      s->scheme = v;
    else if (n == ":authority")
      s->authority = v;
    else if (n == ":path")
      s->path = v;
    else if (!n.empty() && n[0] != ':')
      s->fields.emplace_back(n, v);
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* u) {
    auto& e = self(u);
    switch (f->hd.type) {
      case NGHTTP2_HEADERS: {
        auto s = e.find(f->hd.stream_id);
        if (!s) return 0;
        const bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
        if (s->headers_done) {  // trailers: dropped (HTTP/1.1 upstreams get a plain body)
          if (end) {
            s->request_ended = true;
            e.handler_.on_stream_event(s);
          }
          return 0;
        }
        s->headers_done = true;
        s->request_ended = end;
        if (s->authority.empty()) {  // RFC 9113 §8.3.1: Host stands in for :authority
          for (const auto& [n, v] : s->fields)
            if (n == "host") {
              s->authority = v;
              break;
            }
        }
        if (!e.handler_.on_request(s))
          nghttp2_submit_rst_stream(e.session_, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
        return 0;
      }
      case NGHTTP2_DATA:
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
          if (auto s = e.find(f->hd.stream_id)) {
            s->request_ended = true;
            e.handler_.on_stream_event(s);
          }
        }
        return 0;
      case NGHTTP2_PING:
      case NGHTTP2_SETTINGS:
        if ((f->hd.flags & NGHTTP2_FLAG_ACK) == 0 && e.control_.frame(e.now_ns_())) e.calm_ = true;
        return 0;
      case NGHTTP2_RST_STREAM:
        if (e.resets_.reset(e.now_ns_())) e.calm_ = true;
        return 0;
      default:
        return 0;
    }
  }

  static int on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t id,
                           const std::uint8_t* data, std::size_t len, void* u) {
    auto& e = self(u);
    auto s = e.find(id);
    if (!s) {
      // Not ours to forward (already answered): give the window back at once.
      nghttp2_session_consume_connection(e.session_, len);
      return 0;
    }
    s->body.append(reinterpret_cast<const char*>(data), len);
    s->body_received += len;
    s->unconsumed += len;
    e.handler_.on_stream_event(s);
    return 0;
  }

  static int on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t code, void* u) {
    auto& e = self(u);
    auto it = e.streams_.find(id);
    if (it == e.streams_.end()) return 0;
    auto s = std::move(it->second);
    e.streams_.erase(it);
    s->closed = true;
    s->close_code = code;
    // Bytes the forwarder will never pass on still count against the connection's window.
    if (s->unconsumed != 0) {
      nghttp2_session_consume_connection(e.session_, static_cast<std::size_t>(s->unconsumed));
      s->unconsumed = 0;
    }
    e.handler_.on_stream_event(s);
    return 0;
  }

  static ssize_t read_body(nghttp2_session* session, std::int32_t, std::uint8_t* buf,
                           std::size_t length,
                           std::uint32_t* flags, nghttp2_data_source* src, void*) {
    auto& s = *static_cast<stream*>(src->ptr);
    const std::size_t n = std::min(length, s.out_pending());
    if (n == 0 && !s.out_done) {
      s.out_deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    std::memcpy(buf, s.out.data() + s.out_pos, n);
    s.out_pos += n;
    if (s.out_pos == s.out.size()) {
      s.out.clear();
      s.out_pos = 0;
    }
    if (s.out_done && s.out_pending() == 0) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      // Trailers end the stream instead of the last DATA frame (RFC 9113 §8.1).
      if (!s.trailers.empty()) {
        std::vector<nghttp2_nv> nv;
        nv.reserve(s.trailers.size());
        for (const auto& [k, v] : s.trailers)
          nv.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(k.data())),
                        reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), k.size(),
                        v.size(), NGHTTP2_NV_FLAG_NONE});
        if (nghttp2_submit_trailer(session, s.id, nv.data(), nv.size()) == 0)
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
    }
    // Room again: a forwarder holding back its upstream may read on.
    if (s.out_pending() < out_wake_below && s.wake) s.wake();
    return static_cast<ssize_t>(n);
  }
};

server_engine::server_engine(const engine_settings& settings, stream_handler& handler,
                             std::function<std::int64_t()> now_ns)
    : settings_(settings), handler_(handler), now_ns_(std::move(now_ns)) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, callbacks::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, callbacks::on_stream_close);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // The window is returned as the upstream takes the bytes (consumed()), not on receipt: a
  // slow upstream slows its client instead of growing a buffer (RFC 9113 §5.2.2).
  nghttp2_option_set_no_auto_window_update(opt, 1);
  // A response head larger than this is refused rather than split into endless CONTINUATIONs.
  nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
  // SETTINGS floods (RFC 9113 §10.5): at most 32 settings per frame, and a peer that does not
  // read the ACKs (of SETTINGS or PING) it provokes is cut after 1000 queued.
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_option_set_max_outbound_ack(opt, 1000);
  // CONTINUATION floods: a header block split into more than 8 CONTINUATION frames ends the
  // connection (nghttp2 1.52 as packaged by Debian carries this bound).
  nghttp2_option_set_max_continuations(opt, 8);
  // Rapid reset, the library's own token bucket, beside reset_guard's tighter bound.
  nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
  nghttp2_session_server_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);

  const nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.initial_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
       static_cast<std::uint32_t>(std::min<std::size_t>(settings_.max_header_bytes, 0x7fffffff))},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, std::size(iv));
  // The connection's window: several streams' worth, so one stalled stream does not stall the
  // others (RFC 9113 §5.2.1), bounded at 16 MiB.
  const std::int32_t conn_window = static_cast<std::int32_t>(std::min<std::uint64_t>(
      std::uint64_t{settings_.initial_window} * 4, 16u * 1024 * 1024));
  if (conn_window > 65535)
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, conn_window);
}

server_engine::~server_engine() { nghttp2_session_del(session_); }

std::shared_ptr<stream> server_engine::find(std::int32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

bool server_engine::receive(const char* data, std::size_t n) {
  if (failed_) return false;
  const auto rv =
      nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(data), n);
  if (rv < 0) {
    // RFC 9113 §5.4.1: a connection error ends with GOAWAY. nghttp2 queues one for some errors
    // only; a flood of frames that provoke ACKs is ENHANCE_YOUR_CALM (§10.5).
    nghttp2_session_terminate_session(
        session_, rv == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
    failed_ = true;
    return false;
  }
  if (calm_) {
    terminate(NGHTTP2_ENHANCE_YOUR_CALM);
    return false;
  }
  return true;
}

bool server_engine::take_output(std::string& out) {
  for (;;) {
    const std::uint8_t* p = nullptr;
    const auto n = nghttp2_session_mem_send(session_, &p);
    if (n < 0) {
      failed_ = true;
      return false;
    }
    if (n == 0) return true;
    out.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
  }
}

bool server_engine::finished() const {
  return (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_));
}

void server_engine::respond(stream& s, unsigned status, const std::vector<response_field>& fields,
                            bool has_body) {
  if (s.closed || s.responded) return;
  s.responded = true;
  char code[4] = {static_cast<char>('0' + status / 100 % 10),
                  static_cast<char>('0' + status / 10 % 10), static_cast<char>('0' + status % 10),
                  0};
  std::vector<nghttp2_nv> nv;
  nv.reserve(fields.size() + 1);
  auto add = [&](std::string_view n, std::string_view v) {
    nv.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                  reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(),
                  v.size(), NGHTTP2_NV_FLAG_NONE});
  };
  add(":status", std::string_view(code, 3));
  for (const auto& f : fields) add(f.name, f.value);
  nghttp2_data_provider provider{};
  provider.source.ptr = &s;
  provider.read_callback = callbacks::read_body;
  if (nghttp2_submit_response(session_, s.id, nv.data(), nv.size(),
                              has_body ? &provider : nullptr) != 0)
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
}

void server_engine::send_body(stream& s, const char* data, std::size_t n, bool last) {
  if (s.closed) return;
  s.out.append(data, n);
  s.bytes_sent += n;
  if (last) s.out_done = true;
  if (s.out_deferred) {
    s.out_deferred = false;
    nghttp2_session_resume_data(session_, s.id);
  }
}

void server_engine::send_trailers(stream& s,
                                  std::vector<std::pair<std::string, std::string>> fields) {
  if (s.closed) return;
  s.trailers = std::move(fields);
  send_body(s, "", 0, true);
}

void server_engine::reset(stream& s, std::uint32_t code) {
  if (s.closed) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, code);
}

void server_engine::consumed(stream& s, std::size_t n) {
  n = static_cast<std::size_t>(std::min<std::uint64_t>(n, s.unconsumed));
  if (n == 0 || s.closed) return;
  s.unconsumed -= n;
  nghttp2_session_consume(session_, s.id, n);
}

void server_engine::shut_down() {
  if (shutting_down_) return;
  shutting_down_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
}

void server_engine::terminate(std::uint32_t code) {
  shutting_down_ = true;
  nghttp2_session_terminate_session(session_, code);
}

}  // namespace canary::http2
