// h2c upstream client; see upstream.h. nghttp2 does the framing, HPACK and flow control; this
// file moves its bytes (mem_recv/mem_send) and turns its callbacks into per-stream state that
// the owning coroutine waits on.
#include "http2/upstream.h"

#include <nghttp2/nghttp2.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <cstring>

namespace canary::http2 {

namespace {

class client_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "h2c upstream"; }
  std::string message(int e) const override {
    switch (static_cast<client_errc>(e)) {
      case client_errc::connect_failed: return "connect failed";
      case client_errc::connect_timeout: return "connect timeout";
      case client_errc::timeout: return "timeout";
      case client_errc::reset: return "stream reset or connection lost";
      case client_errc::refused: return "stream refused";
      case client_errc::protocol: return "HTTP/2 protocol error";
    }
    return "unknown";
  }
};

// Our receive windows. The stream window bounds what one stream buffers while its client reads
// slowly (the window is given back only as the session reads: nghttp2_session_consume); the
// connection window is larger so that one slow stream does not stall the others at once.
constexpr std::int32_t stream_window = 256 * 1024;
constexpr std::int32_t connection_window = 16 * 1024 * 1024;
// A peer's concurrent-stream limit before its SETTINGS arrive (RFC 9113 §6.5.2 recommends at
// least 100; nghttp2 would assume unlimited).
constexpr std::uint32_t assumed_max_streams = 100;
constexpr std::size_t max_response_header_bytes = 64 * 1024;
constexpr std::size_t write_batch = 64 * 1024;
constexpr std::size_t read_size = 16 * 1024;

constexpr auto forever = timer_type::time_point::max();

}  // namespace

const std::error_category& client_category() noexcept {
  static const client_category_impl c;
  return c;
}

// One TCP connection and its nghttp2 session.
class client_connection : public std::enable_shared_from_this<client_connection> {
 public:
  client_connection(executor ex, std::shared_ptr<upstream::endpoint> ep)
      : sock_(ex), write_wake_(ex), idle_timer_(ex), ready_wake_(ex), target_(std::move(ep)) {}
  ~client_connection() {
    if (session_) nghttp2_session_del(session_);
  }

  enum class state { connecting, ready, dead };

  awaitable<std::error_code> start(const client_limits& limits);
  // Waits until a connecting connection is ready or dead.
  awaitable<void> wait_ready() {
    while (state_ == state::connecting) {
      ready_wake_.expires_at(forever);
      co_await ready_wake_.async_wait(use_tuple);
    }
  }
  bool accepting() const {
    return state_ == state::ready && !goaway_ &&
           nghttp2_session_get_next_stream_id(session_) <= (1u << 31) - 1 &&
           nghttp2_session_check_request_allowed(session_) == 1;
  }
  bool has_room() const {
    return streams_.size() <
           nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  }
  bool dead() const { return state_ == state::dead; }
  std::error_code submit(const request_head& head, bool has_body,
                         const std::shared_ptr<client_stream>& st);
  void kick() { write_wake_.cancel(); }
  void close(std::error_code why);

  nghttp2_session* session_ = nullptr;
  std::shared_ptr<upstream::endpoint> const& target() const { return target_; }
  std::uint64_t served_ = 0;  // streams opened so far

 private:
  awaitable<void> read_loop();
  awaitable<void> write_loop();
  void arm_idle();
  static client_stream* stream_of(nghttp2_session* s, std::int32_t id) {
    return static_cast<client_stream*>(nghttp2_session_get_stream_user_data(s, id));
  }
  static int on_header(nghttp2_session* s, const nghttp2_frame* frame, const std::uint8_t* name,
                       std::size_t namelen, const std::uint8_t* value, std::size_t valuelen,
                       std::uint8_t flags, void* user);
  static int on_frame_recv(nghttp2_session* s, const nghttp2_frame* frame, void* user);
  static int on_data_chunk(nghttp2_session* s, std::uint8_t flags, std::int32_t id,
                           const std::uint8_t* data, std::size_t len, void* user);
  static int on_stream_close(nghttp2_session* s, std::int32_t id, std::uint32_t error_code,
                             void* user);
  static ssize_t read_body(nghttp2_session* s, std::int32_t id, std::uint8_t* buf,
                           std::size_t length, std::uint32_t* flags, nghttp2_data_source* src,
                           void* user);

  socket_type sock_;
  timer_type write_wake_;
  timer_type idle_timer_;
  timer_type ready_wake_;
  std::shared_ptr<upstream::endpoint> target_;
  std::unordered_map<std::int32_t, std::shared_ptr<client_stream>> streams_;
  std::chrono::milliseconds idle_timeout_{30000};
  std::string out_;
  state state_ = state::connecting;
  bool goaway_ = false;
};

awaitable<std::error_code> client_connection::start(const client_limits& limits) {
  idle_timeout_ = limits.idle_timeout;
  // The connect deadline: a timer that closes the socket, which ends the connect with an error.
  timer_type deadline(sock_.get_executor());
  bool timed_out = false;
  deadline.expires_after(limits.connect_timeout);
  deadline.async_wait([this, &timed_out](boost::system::error_code ec) {
    if (ec) return;
    timed_out = true;
    boost::system::error_code ignored;
    sock_.close(ignored);
  });
  auto [ec] = co_await sock_.async_connect(target_->address, use_tuple);
  deadline.cancel();
  // The handler above refers to this frame: let it run (cancelled) before the frame goes.
  co_await net::post(sock_.get_executor(), use_tuple);
  if (ec || timed_out) {
    close(timed_out ? client_errc::connect_timeout : client_errc::connect_failed);
    co_return timed_out ? make_error_code(client_errc::connect_timeout)
                        : make_error_code(client_errc::connect_failed);
  }
  boost::system::error_code ignored;
  sock_.set_option(tcp::no_delay(true), ignored);

  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &client_connection::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &client_connection::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &client_connection::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &client_connection::on_stream_close);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_peer_max_concurrent_streams(opt, assumed_max_streams);
  const int rv = nghttp2_session_client_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    session_ = nullptr;
    close(client_errc::protocol);
    co_return make_error_code(client_errc::protocol);
  }
  // No server push (RFC 9113 §8.4: a client that disables it never gets PUSH_PROMISE).
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                             {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
                                              static_cast<std::uint32_t>(stream_window)}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, connection_window);
  state_ = state::ready;
  ready_wake_.cancel();
  auto self = shared_from_this();
  net::co_spawn(sock_.get_executor(), [self]() { return self->read_loop(); }, net::detached);
  net::co_spawn(sock_.get_executor(), [self]() { return self->write_loop(); }, net::detached);
  co_return std::error_code{};
}

awaitable<void> client_connection::read_loop() {
  auto self = shared_from_this();
  std::unique_ptr<std::uint8_t[]> buf(new std::uint8_t[read_size]);
  while (state_ != state::dead) {
    auto [ec, n] = co_await sock_.async_read_some(net::buffer(buf.get(), read_size), use_tuple);
    if (state_ == state::dead) break;
    if (ec) {
      close(client_errc::reset);
      break;
    }
    const auto rv = nghttp2_session_mem_recv(session_, buf.get(), n);
    if (rv < 0) {
      spdlog::warn("h2c upstream {}: {}", target_->text, nghttp2_strerror(static_cast<int>(rv)));
      close(client_errc::protocol);
      break;
    }
    kick();  // SETTINGS ACK, WINDOW_UPDATE, PING ACK, ...
  }
}

awaitable<void> client_connection::write_loop() {
  auto self = shared_from_this();
  while (state_ != state::dead) {
    out_.clear();
    for (;;) {
      const std::uint8_t* data = nullptr;
      const auto n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        close(client_errc::protocol);
        co_return;
      }
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
      if (out_.size() >= write_batch) break;
    }
    if (out_.empty()) {
      // Both sides said all they will (a GOAWAY exchanged, no stream left): done.
      if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
        close(client_errc::reset);
        co_return;
      }
      write_wake_.expires_at(forever);
      co_await write_wake_.async_wait(use_tuple);
      continue;
    }
    auto [ec, n] = co_await net::async_write(sock_, net::buffer(out_), use_tuple);
    if (ec) {
      close(client_errc::reset);
      co_return;
    }
  }
}

void client_connection::close(std::error_code why) {
  if (state_ == state::dead) return;
  state_ = state::dead;
  boost::system::error_code ignored;
  sock_.close(ignored);
  write_wake_.cancel();
  idle_timer_.cancel();
  ready_wake_.cancel();
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, st] : streams) st->fail(why);
}

void client_connection::arm_idle() {
  idle_timer_.expires_after(idle_timeout_);
  idle_timer_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
    if (ec) return;
    if (auto c = w.lock(); c && c->streams_.empty()) c->close(client_errc::reset);
  });
}

std::error_code client_connection::submit(const request_head& head, bool has_body,
                                          const std::shared_ptr<client_stream>& st) {
  std::vector<nghttp2_nv> nva;
  nva.reserve(head.fields.size() + 4);
  auto add = [&nva](std::string_view n, std::string_view v) {
    nva.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                   reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(),
                   v.size(), NGHTTP2_NV_FLAG_NONE});
  };
  add(":method", head.method);
  add(":scheme", "http");
  add(":authority", head.authority);
  add(":path", head.path);
  for (const auto& f : head.fields) add(f.name, f.value);
  nghttp2_data_provider provider{};
  provider.source.ptr = st.get();
  provider.read_callback = &client_connection::read_body;
  const std::int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                                 has_body ? &provider : nullptr, st.get());
  if (id < 0) return make_error_code(client_errc::refused);
  st->id_ = id;
  st->reused_ = served_++ != 0;
  streams_.emplace(id, st);
  idle_timer_.cancel();
  kick();
  return {};
}

int client_connection::on_header(nghttp2_session* s, const nghttp2_frame* frame,
                                 const std::uint8_t* name, std::size_t namelen,
                                 const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                                 void*) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  auto* st = stream_of(s, frame->hd.stream_id);
  if (!st) return 0;
  st->header_bytes_ += namelen + valuelen + 32;  // RFC 9113 §6.5.2's field size
  if (st->header_bytes_ > max_response_header_bytes) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (!st->head_done_) {
    if (n == ":status") {
      unsigned code = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), code);
      if (ec != std::errc{} || p != v.data() + v.size() || code < 100 || code > 999)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      st->head_.status = code;
      st->head_.fields.clear();  // a final head after interim ones starts afresh
    } else if (!n.empty() && n.front() != ':') {
      st->head_.fields.push_back({std::string(n), std::string(v)});
    }
  } else if (!n.empty() && n.front() != ':') {
    st->trailers_.push_back({std::string(n), std::string(v)});
  }
  return 0;
}

int client_connection::on_frame_recv(nghttp2_session* s, const nghttp2_frame* frame, void* user) {
  auto* c = static_cast<client_connection*>(user);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    // Streams above last_stream_id are closed by nghttp2 (REFUSED_STREAM); no new ones here.
    c->goaway_ = true;
    return 0;
  }
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
  auto* st = stream_of(s, frame->hd.stream_id);
  if (!st) return 0;
  if (frame->hd.type == NGHTTP2_HEADERS && !st->head_done_) {
    if (st->head_.status >= 200) {
      st->head_done_ = true;
    } else {
      // An interim head (1xx) is not relayed: its fields go, the final head follows.
      st->head_.status = 0;
      st->head_.fields.clear();
    }
  }
  if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) st->remote_end_ = true;
  st->header_bytes_ = frame->hd.type == NGHTTP2_HEADERS ? 0 : st->header_bytes_;
  st->wake();
  return 0;
}

int client_connection::on_data_chunk(nghttp2_session* s, std::uint8_t, std::int32_t id,
                                     const std::uint8_t* data, std::size_t len, void*) {
  auto* st = stream_of(s, id);
  if (!st) {
    // A stream we reset: its window is ours to give back, or the connection's would shrink.
    nghttp2_session_consume_connection(s, len);
    return 0;
  }
  st->in_.append(reinterpret_cast<const char*>(data), len);
  st->wake();
  return 0;
}

int client_connection::on_stream_close(nghttp2_session* s, std::int32_t id,
                                       std::uint32_t error_code, void* user) {
  auto* c = static_cast<client_connection*>(user);
  auto it = c->streams_.find(id);
  if (it == c->streams_.end()) return 0;
  auto st = std::move(it->second);
  c->streams_.erase(it);
  st->closed_ = true;
  if (!st->in_.empty()) {
    // Unread DATA of a closed stream: its connection window comes back now (nghttp2_session_
    // consume would no longer find the stream).
    nghttp2_session_consume_connection(s, st->in_.size());
  }
  if (!st->error_ && !st->remote_end_)
    st->error_ = make_error_code(error_code == NGHTTP2_REFUSED_STREAM ? client_errc::refused
                                                                      : client_errc::reset);
  else if (!st->error_ && error_code != NGHTTP2_NO_ERROR && !st->head_done_)
    st->error_ = make_error_code(client_errc::reset);
  st->wake();
  if (c->streams_.empty() && c->state_ == state::ready) {
    if (c->goaway_)
      c->close(client_errc::reset);
    else
      c->arm_idle();
  }
  return 0;
}

ssize_t client_connection::read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf,
                                     std::size_t length, std::uint32_t* flags,
                                     nghttp2_data_source* src, void*) {
  auto* st = static_cast<client_stream*>(src->ptr);
  const std::size_t n = std::min(length, st->out_.size() - st->out_taken_);
  if (n == 0 && !st->out_end_) {
    st->deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  std::memcpy(buf, st->out_.data() + st->out_taken_, n);
  st->out_taken_ += n;
  if (st->out_taken_ == st->out_.size()) {
    if (st->out_end_) *flags |= NGHTTP2_DATA_FLAG_EOF;
    st->wake();  // the sender may give more
  }
  return static_cast<ssize_t>(n);
}

// ---- client_stream

client_stream::client_stream(executor ex, std::shared_ptr<client_connection> conn)
    : conn_(std::move(conn)), wake_(ex) {
  // Set once: re-arming in wait() would cancel the other coroutine's wait (a sender and a
  // reader may wait at once), and the two would wake each other forever.
  wake_.expires_at(forever);
}

const std::shared_ptr<upstream::endpoint>& client_stream::target() const {
  return conn_->target();
}

awaitable<void> client_stream::wait() {
  co_await wake_.async_wait(use_tuple);
}

void client_stream::fail(std::error_code ec) {
  if (!error_) error_ = ec;
  closed_ = true;
  wake();
}

awaitable<std::error_code> client_stream::send_body(std::string_view data, bool end) {
  if (error_) co_return error_;
  if (closed_) co_return make_error_code(client_errc::reset);
  out_.append(data);
  out_end_ = end;
  if (deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(conn_->session_, id_);
  }
  conn_->kick();
  while (out_taken_ < out_.size() || (out_end_ && deferred_)) {
    if (error_) co_return error_;
    if (closed_) co_return make_error_code(client_errc::reset);
    co_await wait();
  }
  out_.clear();
  out_taken_ = 0;
  co_return error_;
}

awaitable<std::error_code> client_stream::read_head() {
  while (!head_done_) {
    if (error_) co_return error_;
    if (closed_) co_return make_error_code(client_errc::reset);
    co_await wait();
  }
  co_return std::error_code{};
}

awaitable<std::error_code> client_stream::read_body(std::string& out, bool& end) {
  out.clear();
  end = false;
  for (;;) {
    if (!in_.empty()) {
      std::swap(out, in_);
      if (!closed_ && !conn_->dead()) {
        nghttp2_session_consume(conn_->session_, id_, out.size());
        conn_->kick();
      }
      end = remote_end_ && !error_;
      co_return std::error_code{};
    }
    if (error_) co_return error_;
    if (remote_end_) {
      end = true;
      co_return std::error_code{};
    }
    if (closed_) co_return make_error_code(client_errc::reset);
    co_await wait();
  }
}

void client_stream::reset() {
  if (closed_ || id_ < 0 || conn_->dead()) return;
  nghttp2_submit_rst_stream(conn_->session_, NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
  conn_->kick();
}

void client_stream::expire() {
  if (!error_) error_ = make_error_code(client_errc::timeout);
  reset();
  wake();
}

// ---- client_pool

client_pool::~client_pool() { clear(); }

void client_pool::clear() {
  for (auto& [id, list] : by_endpoint_)
    for (auto& c : list) c->close(client_errc::reset);
  by_endpoint_.clear();
}

std::size_t client_pool::connection_count() {
  std::size_t n = 0;
  for (auto& [id, list] : by_endpoint_) {
    std::erase_if(list, [](const auto& c) { return c->dead(); });
    n += list.size();
  }
  return n;
}

awaitable<std::error_code> client_pool::open(const std::shared_ptr<upstream::endpoint>& ep,
                                             const request_head& head, bool has_body,
                                             const client_limits& limits,
                                             std::shared_ptr<client_stream>& out) {
  out.reset();
  auto& list = by_endpoint_[ep->id];
  for (;;) {
    std::erase_if(list, [](const auto& c) { return c->dead(); });
    std::shared_ptr<client_connection> pending;
    for (const auto& c : list) {
      if (c->accepting() && c->has_room()) {
        auto st = std::make_shared<client_stream>(ex_, c);
        if (auto ec = c->submit(head, has_body, st)) co_return ec;
        out = std::move(st);
        co_return std::error_code{};
      }
      // A connection being opened will likely have room: wait for it rather than open another.
      if (!pending && c->dead() == false && !c->accepting() && !c->session_) pending = c;
    }
    if (pending) {
      co_await pending->wait_ready();
      if (pending->dead()) co_return make_error_code(client_errc::connect_failed);
      continue;
    }
    auto c = std::make_shared<client_connection>(ex_, ep);
    list.push_back(c);
    if (auto ec = co_await c->start(limits)) co_return ec;
    // A fresh connection takes the stream, or nothing will (a peer allowing 0 streams): no
    // second connection for this request.
    if (!c->accepting() || !c->has_room()) co_return make_error_code(client_errc::refused);
    auto st = std::make_shared<client_stream>(ex_, c);
    if (auto ec = c->submit(head, has_body, st)) co_return ec;
    out = std::move(st);
    co_return std::error_code{};
  }
}

}  // namespace canary::http2
