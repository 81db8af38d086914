// Buffered access log; see access_log.h. Lines are appended to one std::string (reserved once)
// and written with write(2) on an O_APPEND descriptor, so several workers appending to the same
// file never interleave inside a write. When the descriptor is a pipe (stdout under a
// supervisor), each write is cut at a line end within PIPE_BUF so the lines of different
// writers (other workers, spdlog) stay whole (POSIX: writes of at most PIPE_BUF are atomic).
#include "log/access_log.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "util/rfc3339.h"

namespace canary::log {

namespace {

int open_log(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

bool is_pipe(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

// Writes all of [p, p+n) (short writes and EINTR retried). False on an error.
bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// Microseconds as milliseconds with three decimals ("12.345").
void append_ms(std::string& out, std::uint64_t us) {
  append_uint(out, us / 1000);
  const auto frac = static_cast<unsigned>(us % 1000);
  const char digits[4] = {'.', static_cast<char>('0' + frac / 100),
                          static_cast<char>('0' + frac / 10 % 10),
                          static_cast<char>('0' + frac % 10)};
  out.append(digits, 4);
}

constexpr char hex[] = "0123456789abcdef";

// Length of the valid UTF-8 sequence starting at s[i] (RFC 3629: no overlongs, no surrogates,
// at most U+10FFFF), or 0 when it is not one.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  std::size_t n;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF)
    n = 3;
  else if (c >= 0xF0 && c <= 0xF4)
    n = 4;
  else
    return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((b(k) & 0xC0) != 0x80) return 0;
  if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
  if (c == 0xED && b(1) > 0x9F) return 0;  // surrogates
  if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
  if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
  return n;
}

// A JSON string (RFC 8259 §7): quotes, backslashes and control characters escaped; bytes that
// are not valid UTF-8 are written as the code point of the same value (\u00XX), so the line is
// always valid JSON and nothing is silently dropped.
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      std::size_t j = i + 1;
      while (j < s.size()) {
        const auto d = static_cast<unsigned char>(s[j]);
        if (d < 0x20 || d >= 0x7F || d == '"' || d == '\\') break;
        ++j;
      }
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c >= 0x80) {
          if (const std::size_t n = utf8_length(s, i)) {
            out.append(s.data() + i, n);
            i += n;
            continue;
          }
        }
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0xF];
    }
    ++i;
  }
  out += '"';
}

void append_json_string_or_null(std::string& out, std::string_view s) {
  if (s.empty())
    out += "null";
  else
    append_json_string(out, s);
}

// For the text format: like nginx's escape of $request, bytes outside printable ASCII and the
// quote and backslash become \xHH, so a line stays one line and its quoted fields stay quoted.
void append_text_escaped(std::string& out, std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      out += ch;
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
}

void append_text_field(std::string& out, std::string_view s) {
  if (s.empty())
    out += '-';
  else
    append_text_escaped(out, s);
}

}  // namespace

access_log::access_log(const config::access_log_config& cfg) : cfg_(cfg) {
  if (!cfg_.enabled) return;
  if (cfg_.path == "-") {
    fd_ = STDOUT_FILENO;
    owns_fd_ = false;
  } else {
    fd_ = open_log(cfg_.path);
    if (fd_ < 0)
      throw std::runtime_error("access_log.path " + cfg_.path +
                               ": cannot open for appending: " + std::strerror(errno));
    owns_fd_ = true;
  }
  buffer_.reserve(flush_bytes + 4096);
}

access_log::~access_log() {
  flush();
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

void access_log::write(const access_record& r) {
  if (fd_ < 0) return;
  auto& b = buffer_;
  const std::string_view protocol =
      r.version == 10 ? "HTTP/1.0" : r.version == 20 ? "HTTP/2.0" : "HTTP/1.1";
  if (cfg_.format != "text") {
    b += "{\"time\":\"";
    util::append_rfc3339(b, r.time);
    b += "\",\"client\":";
    append_json_string_or_null(b, r.client_ip);
    b += ",\"method\":";
    append_json_string(b, r.method);
    b += ",\"path\":";
    append_json_string(b, r.target);
    b += ",\"protocol\":\"";
    b += protocol;
    b += "\",\"status\":";
    append_uint(b, r.status);
    b += ",\"route\":";
    append_json_string_or_null(b, r.route);
    b += ",\"variant\":";
    append_json_string_or_null(b, r.variant);
    b += ",\"reason\":";
    append_json_string_or_null(b, r.reason);
    b += ",\"upstream\":";
    append_json_string_or_null(b, r.upstream);
    b += ",\"endpoint\":";
    append_json_string_or_null(b, r.endpoint);
    b += ",\"local\":";
    b += r.local ? "true" : "false";
    b += ",\"bytes_received\":";
    append_uint(b, r.bytes_received);
    b += ",\"bytes_sent\":";
    append_uint(b, r.bytes_sent);
    b += ",\"upstream_ms\":";
    if (r.local && r.upstream_us == 0)
      b += "null";
    else
      append_ms(b, r.upstream_us);
    b += ",\"duration_ms\":";
    append_ms(b, r.total_us);
    b += "}\n";
  } else {
    // Combined-log-like: client - - [time] "request" status bytes, then the proxy's fields.
    append_text_field(b, r.client_ip);
    b += " - - [";
    util::append_rfc3339(b, r.time);
    b += "] \"";
    append_text_escaped(b, r.method);
    b += ' ';
    append_text_escaped(b, r.target);
    b += ' ';
    b += protocol;
    b += "\" ";
    append_uint(b, r.status);
    b += ' ';
    append_uint(b, r.bytes_sent);
    b += " route=";
    append_text_field(b, r.route);
    b += " variant=";
    append_text_field(b, r.variant);
    b += " reason=";
    append_text_field(b, r.reason);
    b += " upstream=";
    append_text_field(b, r.upstream);
    b += " endpoint=";
    append_text_field(b, r.endpoint);
    b += " local=";
    b += r.local ? '1' : '0';
    b += " bytes_received=";
    append_uint(b, r.bytes_received);
    b += " upstream_ms=";
    if (r.local && r.upstream_us == 0)
      b += '-';
    else
      append_ms(b, r.upstream_us);
    b += " duration_ms=";
    append_ms(b, r.total_us);
    b += '\n';
  }
  if (b.size() >= flush_bytes) flush();
}

void access_log::flush() {
  if (fd_ < 0 || buffer_.empty()) return;
  const char* p = buffer_.data();
  std::size_t left = buffer_.size();
  const bool pipe = is_pipe(fd_);
  bool ok = true;
  int err = 0;
  while (ok && left > 0) {
    std::size_t n = left;
    if (pipe && n > PIPE_BUF) {
      // Up to the last line end within PIPE_BUF (a longer line goes out whole).
      std::string_view window(p, PIPE_BUF);
      const auto nl = window.rfind('\n');
      if (nl != std::string_view::npos) {
        n = nl + 1;
      } else {
        const void* end = std::memchr(p, '\n', left);
        n = end ? static_cast<std::size_t>(static_cast<const char*>(end) - p) + 1 : left;
      }
    }
    ok = write_all(fd_, p, n);
    if (!ok) err = errno;
    p += n;
    left -= n;
  }
  if (!ok) {
    // Dropped, not retried: the buffer must not grow without bound while the disk is full.
    // Logged at most once a minute per worker (this thread's own clock, no shared state).
    thread_local std::chrono::steady_clock::time_point last_report{};
    const auto now = std::chrono::steady_clock::now();
    if (last_report == std::chrono::steady_clock::time_point{} ||
        now - last_report >= std::chrono::minutes(1)) {
      last_report = now;
      spdlog::error("access log {}: write failed, {} bytes dropped: {}", cfg_.path,
                    buffer_.size(), std::strerror(err));
    }
  }
  buffer_.clear();
}

void access_log::reopen() {
  flush();
  if (!owns_fd_) return;
  const int fd = open_log(cfg_.path);
  if (fd < 0) {
    spdlog::error("access log {}: cannot reopen (keeping the old file): {}", cfg_.path,
                  std::strerror(errno));
    return;
  }
  ::close(fd_);
  fd_ = fd;
}

}  // namespace canary::log
