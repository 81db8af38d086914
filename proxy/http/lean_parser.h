// A Beast basic_parser that builds no field container. For the heads Beast parses (with all
// its checks: token syntax, CRLF, obs-fold limits, Content-Length / Transfer-Encoding /
// Connection semantics, header and body limits) this parser only records where the request or
// status line and each field lie, as views into its own copy of the field lines, and hands body
// bytes to a caller-provided window (as buffer_body does). Per message that saves a node
// allocation and a set insertion per field, and lets the proxy forward fields as received.
//
// Plain heads skip Beast's byte-at-a-time parser altogether (the fast path, below): a complete
// head of the simplest well-formed shape, whose body has a Content-Length or none, is scanned
// here with Beast's semantics; anything else is Beast's. fuzz/request_fuzz.cpp parses every
// input both ways and requires the same result.
//
// The message-like accessors (`get()` returns the parser itself) follow beast::http::message
// where the session and the framing checks use them: fields in arrival order, find by enum or
// name, method/target/version or status/reason, body().
#pragma once

#include <array>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/container/small_vector.hpp>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "http/header_rules.h"

namespace canary::http {

template <bool isRequest>
class lean_parser : public boost::beast::http::basic_parser<isRequest> {
  using base = boost::beast::http::basic_parser<isRequest>;
  using error_code = boost::system::error_code;
  using bsv = boost::beast::string_view;

 public:
  struct field_ref {
    boost::beast::http::field id;
    std::string_view name_view;
    std::string_view value_view;
    // While parsing: where the line ends in the caller's buffer (after its CRLF), or null when
    // Beast unfolded an obs-fold (the unfolded line is then in folded_).
    const char* line_end = nullptr;
    boost::beast::http::field name() const noexcept { return id; }
    std::string_view name_string() const noexcept { return name_view; }
    std::string_view value() const noexcept { return value_view; }
  };
  using const_iterator = const field_ref*;

  // Where body bytes go (buffer_body's value_type): `data` advances and `size` shrinks as bytes
  // arrive; with no room left the parser stops with error::need_buffer.
  struct body_window {
    void* data = nullptr;
    std::size_t size = 0;
  };

  // Fields a head may have here; more is an error (header_limit: 431 for a request, 502 for a
  // response), so a head of tiny fields cannot make the table grow without bound.
  static constexpr std::size_t hard_cap = 1024;

  lean_parser() = default;

  // What the head's views point into is the parser's own (head_bytes): Beast hands each field
  // to on_field_impl as views into the caller's buffer, and consumes completed lines on its
  // own even while the head is incomplete (the caller then drops those bytes).
  std::size_t put(boost::asio::const_buffer b, error_code& ec) {
    in_first_ = static_cast<const char*>(b.data());
    in_last_ = in_first_ + b.size();
    if (fast_) return fast_body(b, ec);
    if (!base::got_some()) {
      if (const std::size_t n = fast_head(in_first_, b.size())) {
        ec = {};
        return n;
      }
    }
    const std::size_t fresh = fields_.size();
    const std::size_t n = base::put(b, ec);
    if (fields_.size() != fresh) keep_lines(fresh);
    if (!rebased_ && this->is_header_done()) rebase_all();
    return n;
  }

  // Storage to reuse (a string with capacity from an earlier message), and to hand back.
  explicit lean_parser(std::string&& storage) : lines_(std::move(storage)) { lines_.clear(); }
  std::string take_storage() noexcept { return std::move(lines_); }

  // A head taken by the fast path (below) answers these itself; otherwise Beast does.
  bool is_header_done() const noexcept { return fast_ || base::is_header_done(); }
  bool is_done() const noexcept { return fast_ ? fast_left_ == 0 : base::is_done(); }
  bool got_some() const noexcept { return fast_ || base::got_some(); }
  bool chunked() const noexcept { return !fast_ && base::chunked(); }
  bool need_eof() const noexcept { return !fast_ && base::need_eof(); }
  bool keep_alive() const { return fast_ ? fast_keep_ : base::keep_alive(); }
  boost::optional<std::uint64_t> content_length() const {
    return fast_ ? fast_len_ : base::content_length();
  }
  void header_limit(std::uint32_t v) {
    limit_ = v;
    base::header_limit(v);
  }
  void body_limit(boost::optional<std::uint64_t> v) {
    body_limit_ = v;
    base::body_limit(v);
  }
  // Whether the last head came through the fast path (tests).
  bool fast() const noexcept { return fast_; }

  // --- the message view
  const lean_parser& get() const noexcept { return *this; }
  lean_parser& get() noexcept { return *this; }
  body_window& body() noexcept { return body_; }

  const_iterator begin() const noexcept { return fields_.data(); }
  const_iterator end() const noexcept { return fields_.data() + fields_.size(); }
  std::size_t field_count() const noexcept { return fields_.size(); }

  const_iterator find(boost::beast::http::field f) const noexcept {
    for (auto it = begin(); it != end(); ++it)
      if (it->id == f) return it;
    return end();
  }
  const_iterator find(std::string_view name) const noexcept {
    const auto f = boost::beast::http::string_to_field(bsv(name.data(), name.size()));
    if (f != boost::beast::http::field::unknown) return find(f);
    for (auto it = begin(); it != end(); ++it)
      if (it->id == boost::beast::http::field::unknown && iequals(it->name_view, name)) return it;
    return end();
  }
  std::string_view operator[](boost::beast::http::field f) const noexcept {
    const auto it = find(f);
    return it == end() ? std::string_view() : it->value_view;
  }
  std::size_t count(boost::beast::http::field f) const noexcept {
    std::size_t n = 0;
    for (const auto& x : fields_) n += x.id == f;
    return n;
  }

  // Appends the field lines `keep` accepts, as received (runs of kept lines are copied at
  // once); a line Beast unfolded (obs-fold) is written unfolded.
  template <class Keep>
  void append_fields(std::string& out, Keep&& keep) const {
    const char* run = nullptr;
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      const auto& f = fields_[i];
      if (keep(f)) {
        if (!run) run = f.name_view.data();
      } else if (run) {
        out.append(run, f.name_view.data());
        run = nullptr;
      }
    }
    if (run) out.append(run, lines_.data() + lines_.size());
  }

  // The field lines of the head, each ending in CRLF (obs-fold unfolded).
  std::string_view head_bytes() const noexcept {
    return std::string_view(lines_).substr(fields_at_);
  }

  unsigned version() const noexcept { return version_; }
  // Requests.
  boost::beast::http::verb method() const noexcept { return method_; }
  std::string_view method_string() const noexcept { return first_; }
  std::string_view target() const noexcept { return second_; }
  // Responses.
  unsigned result_int() const noexcept { return status_; }
  std::string_view reason() const noexcept { return second_; }

 private:
  static bool has_lf(const char* first, const char* last) noexcept {
    for (; first != last; ++first)
      if (*first == '\n') return true;
    return false;
  }
  // Until the head is complete the views hold offsets into lines_ (which may still
  // reallocate), made pointers by rebase_all.
  static std::string_view at(std::size_t offset, std::size_t n) noexcept {
    return {reinterpret_cast<const char*>(offset), n};
  }
  static void rebase(std::string_view& v, const std::string& s) noexcept {
    v = {s.data() + reinterpret_cast<std::uintptr_t>(v.data()), v.size()};
  }

  // ---- the fast path for plain heads
  // A complete, plainly well-formed head whose body is delimited by Content-Length (or that has
  // none) is taken without Beast's byte-at-a-time parser: request line (token method, target of
  // Beast's path characters, HTTP/1.x) or status line ("HTTP/1.x DDD reason"), field lines token
  // ":" OWS value OWS CRLF with field-vchar/SP/HTAB values, no obs-fold, Content-Length at most
  // once and digits only, Connection / Proxy-Connection plain token lists, no Transfer-Encoding.
  // Its semantics are Beast's for such a head (keep-alive from the Connection tokens and the
  // version, the length, no body for HEAD / 1xx / 204 / 304). Anything else (incomplete, unusual,
  // chunked, close-delimited, malformed) returns 0 having changed nothing, and Beast parses the
  // same bytes as before.
  static constexpr std::array<bool, 256> make_tchar() {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
  }
  static constexpr std::array<bool, 256> tchar_ = make_tchar();
  static bool tchar(char c) noexcept { return tchar_[static_cast<unsigned char>(c)]; }
  // VCHAR, obs-text, SP, HTAB: what a field value or reason phrase may hold.
  static bool text(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  }

  // The first byte in [p, last) that is not text(), or last; 16 bytes a step where SSE2 is.
  static const char* skip_text(const char* p, const char* last) noexcept {
#if defined(__SSE2__)
    const __m128i space = _mm_set1_epi8(0x20);
    const __m128i del = _mm_set1_epi8(0x7f);
    const __m128i minus_one = _mm_set1_epi8(-1);
    while (last - p >= 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      // Controls are the bytes 0x00-0x1f (signed: 0 <= v < 0x20; obs-text is negative).
      const __m128i ctl = _mm_and_si128(_mm_cmplt_epi8(v, space), _mm_cmpgt_epi8(v, minus_one));
      const int m = _mm_movemask_epi8(_mm_or_si128(ctl, _mm_cmpeq_epi8(v, del)));
      if (m == 0) {
        p += 16;
        continue;
      }
      p += __builtin_ctz(static_cast<unsigned>(m));
      if (*p != '\t') return p;
      ++p;
    }
#endif
    while (p < last && text(*p)) ++p;
    return p;
  }

  std::size_t fast_head(const char* first, std::size_t n) {
    const std::size_t got = fast_scan(first, n);
    if (got == 0) {
      fields_.clear();
      lines_.clear();
      fields_at_ = 0;
      fast_ = false;
    }
    return got;
  }

  // The start line of a request: method SP target SP "HTTP/1.0|1" CRLF, the method a token,
  // the target Beast's path characters (no SP, CTL or DEL). On success the method and target
  // are in lines_, `p` is past the CRLF.
  bool fast_request_line(const char*& p, const char* last) {
    const char* method = p;
    while (p < last && tchar(*p)) ++p;
    if (p == method || p >= last || *p != ' ') return false;
    const char* method_end = p++;
    const char* target = p;
    while (p<last&& static_cast<unsigned char>(*p)> 0x20 && *p != 0x7f) ++p;
    if (p == target || last - p < 11 || *p != ' ') return false;
    const char* target_end = p++;
    if (std::memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != '\r' ||
        p[9] != '\n')
      return false;
    version_ = p[7] == '1' ? 11 : 10;
    p += 10;
    const bsv m(method, static_cast<std::size_t>(method_end - method));
    method_ = boost::beast::http::string_to_verb(m);
    lines_.clear();
    lines_.append(method, m.size());
    lines_.append(target, static_cast<std::size_t>(target_end - target));
    first_ = at(0, m.size());
    second_ = at(m.size(), static_cast<std::size_t>(target_end - target));
    fields_at_ = lines_.size();
    return true;
  }

  // The status line of a response: "HTTP/1.0|1" SP 3DIGIT SP reason CRLF.
  bool fast_status_line(const char*& p, const char* last) {
    if (last - p < 16 || std::memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ' || p[12] != ' ')
      return false;
    unsigned status = 0;
    for (int i = 9; i < 12; ++i) {
      if (p[i] < '0' || p[i] > '9') return false;
      status = status * 10 + static_cast<unsigned>(p[i] - '0');
    }
    version_ = p[7] == '1' ? 11 : 10;
    status_ = status;
    p += 13;
    const char* reason = p;
    p = skip_text(p, last);
    if (last - p < 2 || p[0] != '\r' || p[1] != '\n') return false;
    lines_.clear();
    lines_.append(reason, static_cast<std::size_t>(p - reason));
    first_ = {};
    second_ = at(0, lines_.size());
    fields_at_ = lines_.size();
    p += 2;
    return true;
  }

  std::size_t fast_scan(const char* first, std::size_t n) {
    const char* const last = first + std::min<std::size_t>(n, limit_);
    const char* p = first;
    if constexpr (isRequest) {
      if (!fast_request_line(p, last)) return 0;
    } else {
      if (!fast_status_line(p, last)) return 0;
    }
    const char* const lines_first = p;
    bool has_length = false;
    std::uint64_t length = 0;
    bool close = false;
    bool keep_alive = false;
    for (;;) {
      if (last - p < 2) return 0;
      if (p[0] == '\r') {
        if (p[1] != '\n') return 0;
        break;
      }
      const char* name = p;
      while (p < last && tchar(*p)) ++p;
      if (p == name || p >= last || *p != ':') return 0;
      const char* name_end = p++;
      while (p < last && (*p == ' ' || *p == '\t')) ++p;
      const char* value = p;
      p = skip_text(p, last);
      if (last - p < 3 || p[0] != '\r' || p[1] != '\n' || p[2] == ' ' || p[2] == '\t')
        return 0;  // incomplete, a bad line end, or obs-fold
      const char* value_end = p;
      while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t')) --value_end;
      p += 2;
      const std::string_view v(value, static_cast<std::size_t>(value_end - value));
      const auto f =
          boost::beast::http::string_to_field(bsv(name, static_cast<std::size_t>(name_end - name)));
      using boost::beast::http::field;
      if (f == field::transfer_encoding) return 0;
      if (f == field::content_length) {
        if (has_length || v.empty() || v.size() > 18) return 0;
        for (char c : v) {
          if (c < '0' || c > '9') return 0;
          length = length * 10 + static_cast<std::uint64_t>(c - '0');
        }
        has_length = true;
      } else if (f == field::connection || f == field::proxy_connection) {
        std::size_t at = 0;
        while (at <= v.size()) {
          std::size_t end = v.find(',', at);
          if (end == std::string_view::npos) end = v.size();
          auto token = v.substr(at, end - at);
          while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
            token.remove_prefix(1);
          while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
            token.remove_suffix(1);
          for (char c : token)
            if (!tchar(c)) return 0;
          if (iequals(token, "close")) close = true;
          if (iequals(token, "keep-alive")) keep_alive = true;
          at = end + 1;
        }
      }
      if (fields_.size() >= hard_cap) return 0;
      const std::size_t off = fields_at_ + static_cast<std::size_t>(name - lines_first);
      fields_.push_back(field_ref{f, at(off, static_cast<std::size_t>(name_end - name)),
                                  at(off + static_cast<std::size_t>(value - name), v.size()),
                                  nullptr});
    }
    bool bodiless = base::skip();
    if constexpr (isRequest) {
      bodiless = bodiless || !has_length;  // no Content-Length, no body (chunked is Beast's)
    } else {
      bodiless = bodiless || status_ / 100 == 1 || status_ == 204 || status_ == 304;
      if (!bodiless && !has_length) return 0;  // read to EOF: Beast's
    }
    // Over the body limit: Beast's error (a request's 413).
    if (!bodiless && body_limit_ && length > *body_limit_) return 0;
    lines_.append(lines_first, static_cast<std::size_t>(p - lines_first));
    rebase_all();
    fast_ = true;
    fast_len_ = has_length ? boost::optional<std::uint64_t>(length) : boost::none;
    fast_left_ = bodiless ? 0 : length;
    fast_keep_ = version_ == 11 ? !close : keep_alive;
    return static_cast<std::size_t>(p + 2 - first);
  }

  // Body bytes of a fast-path response (buffer_body's semantics: stop at the window's end).
  std::size_t fast_body(boost::asio::const_buffer b, error_code& ec) {
    ec = {};
    if (fast_left_ == 0) return 0;
    if (!body_.data) {
      ec = boost::beast::http::error::need_buffer;
      return 0;
    }
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(b.size(), fast_left_));
    const std::size_t n = std::min(want, body_.size);
    if (n != 0) std::memcpy(body_.data, b.data(), n);
    body_.data = static_cast<char*>(body_.data) + n;
    body_.size -= n;
    fast_left_ -= n;
    if (n < want) ec = boost::beast::http::error::need_buffer;
    return n;
  }

  void on_request_impl(boost::beast::http::verb method, bsv method_str, bsv target, int version,
                       error_code& ec) override {
    method_ = method;
    // The start line's parts go first in lines_ (Beast may consume them before the fields).
    lines_.append(method_str.data(), method_str.size());
    lines_.append(target.data(), target.size());
    fields_at_ = lines_.size();
    first_ = at(0, method_str.size());
    second_ = at(method_str.size(), target.size());
    version_ = static_cast<unsigned>(version);
    ec = {};
  }
  void on_response_impl(int code, bsv reason, int version, error_code& ec) override {
    status_ = static_cast<unsigned>(code);
    lines_.append(reason.data(), reason.size());
    fields_at_ = lines_.size();
    second_ = at(0, reason.size());
    version_ = static_cast<unsigned>(version);
    ec = {};
  }
  void on_field_impl(boost::beast::http::field f, bsv name, bsv value, error_code& ec) override {
    ec = {};
    if (this->is_header_done()) return;  // a chunked trailer: never forwarded, not kept
    if (fields_.size() >= hard_cap) {
      ec = boost::beast::http::error::header_limit;
      return;
    }
    // A value Beast left in the caller's buffer, on the name's own line, stays there until
    // put() returns (then keep_lines copies the lines); anything else went through obs-fold and
    // is unfolded into folded_ now (Beast's copy lives only for this call).
    const char* name_end = name.data() + name.size();
    const char* value_end = value.data() + value.size();
    const void* eol = nullptr;
    if (value.data() >= name_end && value_end <= in_last_ && !has_lf(name_end, value.data())) {
      if (in_last_ - value_end >= 2 && value_end[0] == '\r' && value_end[1] == '\n')
        eol = value_end + 1;  // the usual line: no OWS after the value
      else
        eol = std::memchr(value_end, '\n', static_cast<std::size_t>(in_last_ - value_end));
    }
    if (eol) {
      fields_.push_back(field_ref{f,
                                  {name.data(), name.size()},
                                  {value.data(), value.size()},
                                  static_cast<const char*>(eol) + 1});
    } else {
      const std::size_t line = folded_.size();
      folded_.append(name.data(), name.size());
      folded_.append(": ", 2);
      folded_.append(value.data(), value.size());
      folded_.append("\r\n", 2);
      fields_.push_back(
          field_ref{f, at(line, name.size()), at(line + name.size() + 2, value.size()), nullptr});
    }
  }

  // Copies the lines of fields [from, end) into lines_ (a run of lines as received in one
  // append) and turns their views into offsets there.
  void keep_lines(std::size_t from) {
    std::size_t i = from;
    while (i < fields_.size()) {
      const std::size_t base_off = lines_.size();
      if (!fields_[i].line_end) {  // unfolded: from folded_
        auto& f = fields_[i];
        const auto line = reinterpret_cast<std::uintptr_t>(f.name_view.data());
        const std::size_t len = f.name_view.size() + 2 + f.value_view.size() + 2;
        lines_.append(folded_, line, len);
        f.name_view = at(base_off, f.name_view.size());
        f.value_view = at(base_off + f.name_view.size() + 2, f.value_view.size());
        ++i;
        continue;
      }
      const char* run = fields_[i].name_view.data();
      std::size_t j = i;
      while (j + 1 < fields_.size() && fields_[j + 1].line_end &&
             fields_[j + 1].name_view.data() == fields_[j].line_end)
        ++j;
      lines_.append(run, static_cast<std::size_t>(fields_[j].line_end - run));
      for (; i <= j; ++i) {
        auto& f = fields_[i];
        f.name_view =
            at(base_off + static_cast<std::size_t>(f.name_view.data() - run), f.name_view.size());
        f.value_view =
            at(base_off + static_cast<std::size_t>(f.value_view.data() - run), f.value_view.size());
      }
    }
  }

  void rebase_all() {
    rebased_ = true;
    rebase(first_, lines_);
    rebase(second_, lines_);
    for (auto& f : fields_) {
      rebase(f.name_view, lines_);
      rebase(f.value_view, lines_);
    }
  }

  void on_header_impl(error_code& ec) override { ec = {}; }
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code& ec) override {
    ec = {};
  }
  std::size_t on_body_impl(bsv s, error_code& ec) override {
    if (!body_.data) {
      ec = boost::beast::http::error::need_buffer;
      return 0;
    }
    const std::size_t n = std::min(s.size(), body_.size);
    if (n != 0) std::memcpy(body_.data, s.data(), n);
    body_.data = static_cast<char*>(body_.data) + n;
    body_.size -= n;
    if (n == s.size())
      ec = {};
    else
      ec = boost::beast::http::error::need_buffer;
    return n;
  }
  void on_chunk_header_impl(std::uint64_t, bsv, error_code& ec) override { ec = {}; }
  std::size_t on_chunk_body_impl(std::uint64_t, bsv s, error_code& ec) override {
    return on_body_impl(s, ec);
  }
  void on_finish_impl(error_code& ec) override { ec = {}; }

  const char* in_first_ = nullptr;
  const char* in_last_ = nullptr;
  std::string lines_;  // method and target (or reason), then the field lines
  std::size_t fields_at_ = 0;
  std::uint32_t limit_ = 8192;  // Beast's default header limit
  // Beast's default body limits (1 MB for requests, 8 MB for responses).
  boost::optional<std::uint64_t> body_limit_ = isRequest ? 1024 * 1024 : 8 * 1024 * 1024;
  bool fast_ = false;
  bool fast_keep_ = false;
  std::uint64_t fast_left_ = 0;
  boost::optional<std::uint64_t> fast_len_;
  std::string folded_;  // field lines Beast unfolded, until keep_lines takes them
  bool rebased_ = false;
  boost::container::small_vector<field_ref, 12> fields_;
  std::string_view first_;   // method
  std::string_view second_;  // target or reason
  boost::beast::http::verb method_ = boost::beast::http::verb::unknown;
  unsigned version_ = 11;
  unsigned status_ = 0;
  body_window body_;
};

}  // namespace canary::http
