// A scriptable HTTP/1.1 server (plain or TLS) on 127.0.0.1 port 0 for the analysis client tests,
// and the openssl CLI calls that make a CA and a leaf certificate at test time. The server runs on
// its own thread (one coroutine per connection); the handler decides each reply there. Destroying
// it stops its io_context and joins: hanging connections are closed then.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <openssl/ssl.h>

namespace canary::analysis::testing {

namespace tnet = boost::asio;
namespace thttp = boost::beast::http;

struct test_reply {
  enum class kind {
    respond,  // status + body (Content-Length, or chunked)
    hang,     // read the request, never answer
    hold,     // answer 200 once release_held() is called
  };
  kind what = kind::respond;
  int status = 200;
  std::string body;
  bool chunked = false;
};

struct seen_request {
  std::string method, target, body, sni;
  std::map<std::string, std::string> headers;
};

class test_server {
 public:
  using handler = std::function<test_reply(const seen_request&, std::size_t index)>;

  explicit test_server(handler h, tnet::ssl::context* tls = nullptr)
      : handler_(std::move(h)), tls_(tls), acceptor_(ioc_), release_(ioc_) {
    tnet::ip::tcp::endpoint ep(tnet::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    release_.expires_at(tnet::steady_timer::time_point::max());
    tnet::co_spawn(ioc_, accept_loop(), tnet::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~test_server() {
    ioc_.stop();
    thread_.join();
  }

  unsigned short port() const { return port_; }
  std::string url(std::string_view path = "/") const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) +
           std::string(path);
  }
  std::vector<seen_request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return requests_.size();
  }
  void release_held() {
    tnet::post(ioc_, [this] { release_.cancel(); });
  }

 private:
  tnet::awaitable<void> accept_loop() {
    for (;;) {
      auto socket = co_await acceptor_.async_accept(tnet::use_awaitable);
      tnet::co_spawn(ioc_, serve(std::move(socket)), tnet::detached);
    }
  }

  tnet::awaitable<void> serve(tnet::ip::tcp::socket socket) {
    try {
      if (tls_) {
        tnet::ssl::stream<tnet::ip::tcp::socket> stream(std::move(socket), *tls_);
        co_await stream.async_handshake(tnet::ssl::stream_base::server, tnet::use_awaitable);
        const char* sni =
            SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
        co_await exchange(stream, sni ? sni : "");
      } else {
        co_await exchange(socket, "");
      }
    } catch (const std::exception&) {
      // A client that gave up (timeout, refused certificate) ends its connection here.
    }
  }

  template <class Stream>
  tnet::awaitable<void> exchange(Stream& stream, std::string sni) {
    boost::beast::flat_buffer buffer;
    thttp::request<thttp::string_body> req;
    co_await thttp::async_read(stream, buffer, req, tnet::use_awaitable);
    seen_request seen{std::string(req.method_string()), std::string(req.target()), req.body(),
                      std::move(sni), {}};
    for (const auto& f : req) seen.headers[std::string(f.name_string())] = std::string(f.value());
    std::size_t index = 0;
    {
      std::lock_guard lock(mutex_);
      index = requests_.size();
      requests_.push_back(seen);
    }
    test_reply reply = handler_(seen, index);
    if (reply.what == test_reply::kind::hang) {
      tnet::steady_timer forever(ioc_, tnet::steady_timer::time_point::max());
      co_await forever.async_wait(tnet::use_awaitable);
    }
    if (reply.what == test_reply::kind::hold) {
      boost::system::error_code ec;
      co_await release_.async_wait(tnet::redirect_error(tnet::use_awaitable, ec));
      reply.status = 200;
    }
    if (reply.chunked) {
      std::string out = "HTTP/1.1 " + std::to_string(reply.status) +
                        " X\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
      // Chunks of 1000 bytes: the client must join them.
      for (std::size_t i = 0; i < reply.body.size(); i += 1000) {
        const auto part = reply.body.substr(i, 1000);
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", part.size());
        out += size + part + "\r\n";
      }
      out += "0\r\n\r\n";
      co_await tnet::async_write(stream, tnet::buffer(out), tnet::use_awaitable);
    } else {
      thttp::response<thttp::string_body> res{static_cast<thttp::status>(reply.status), 11};
      res.set(thttp::field::connection, "close");
      res.body() = reply.body;
      res.prepare_payload();
      co_await thttp::async_write(stream, res, tnet::use_awaitable);
    }
  }

  handler handler_;
  tnet::ssl::context* tls_;
  tnet::io_context ioc_{1};
  tnet::ip::tcp::acceptor acceptor_;
  tnet::steady_timer release_;
  unsigned short port_ = 0;
  mutable std::mutex mutex_;
  std::vector<seen_request> requests_;
  std::thread thread_;
};

// A CA and a leaf for DNS name `host` (only), made with the openssl CLI in a fresh temp dir.
struct test_pki {
  std::filesystem::path dir, ca_cert, leaf_cert, leaf_key;
  bool ok = false;

  explicit test_pki(const std::string& host) {
    dir = std::filesystem::temp_directory_path() /
          ("canary-pki-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    std::filesystem::create_directories(dir);
    ca_cert = dir / "ca.crt";
    leaf_cert = dir / "leaf.crt";
    leaf_key = dir / "leaf.key";
    std::ofstream(dir / "ext.cnf") << "basicConstraints=CA:FALSE\nsubjectAltName=DNS:" << host
                                   << "\n";
    const std::string d = dir.string();
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string cmd =
        "cd " + d + " && openssl req -x509" + ec +
        " -keyout ca.key -out ca.crt -days 2 -subj /CN=canary-test-ca 2>/dev/null && "
        "openssl req" + ec + " -keyout leaf.key -out leaf.csr -subj /CN=" + host +
        " 2>/dev/null && openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key "
        "-CAcreateserial -out leaf.crt -days 2 -extfile ext.cnf 2>/dev/null";
    ok = std::system(cmd.c_str()) == 0;
  }
  ~test_pki() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

}  // namespace canary::analysis::testing
