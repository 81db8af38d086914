// A Beast basic_parser that builds no field container. Beast still does all the parsing and
// its checks (token syntax, CRLF, obs-fold limits, Content-Length / Transfer-Encoding /
// Connection semantics, header and body limits); this parser only records where the request
// or status line and each field lie, as views into its own copy of the head bytes, and hands
// body bytes to a caller-provided window (as buffer_body does). Per message that saves a node
// allocation and a set insertion per field, and lets the proxy forward fields without
// re-serialising a container.
//
// The message-like accessors (`get()` returns the parser itself) follow beast::http::message
// where the session and the framing checks use them: fields in arrival order, find by enum or
// name, method/target/version or status/reason, body().
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/container/small_vector.hpp>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace canary::http {

bool iequals(std::string_view a, std::string_view b) noexcept;

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

  // Fields stored at most; more are counted (field_count) but an error (header_limit) once
  // past `hard_cap`, so a head of tiny fields cannot make the table grow without bound.
  static constexpr std::size_t hard_cap = 1024;

  lean_parser() = default;

  // What the head's views point into is the parser's own (head_bytes): Beast hands each field
  // to on_field_impl as views into the caller's buffer, and consumes completed lines on its
  // own even while the head is incomplete (the caller then drops those bytes).
  std::size_t put(boost::asio::const_buffer b, error_code& ec) {
    in_first_ = static_cast<const char*>(b.data());
    in_last_ = in_first_ + b.size();
    const std::size_t fresh = fields_.size();
    const std::size_t n = base::put(b, ec);
    if (fields_.size() != fresh) keep_lines(fresh);
    if (!rebased_ && this->is_header_done()) rebase_all();
    return n;
  }

  // Storage to reuse (a string with capacity from an earlier message), and to hand back.
  explicit lean_parser(std::string&& storage) : lines_(std::move(storage)) { lines_.clear(); }
  std::string take_storage() noexcept { return std::move(lines_); }

  // --- the message view
  const lean_parser& get() const noexcept { return *this; }
  lean_parser& get() noexcept { return *this; }
  body_window& body() noexcept { return body_; }

  const_iterator begin() const noexcept { return fields_.data(); }
  const_iterator end() const noexcept { return fields_.data() + fields_.size(); }
  std::size_t field_count() const noexcept { return count_; }

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
  boost::beast::http::status result() const noexcept {
    return boost::beast::http::int_to_status(status_);
  }
  std::string_view reason() const noexcept { return second_; }

 private:
  // Until the head is complete the views hold offsets into lines_ (which may still
  // reallocate), made pointers by rebase_all.
  static bool has_lf(const char* first, const char* last) noexcept {
    for (; first != last; ++first)
      if (*first == '\n') return true;
    return false;
  }
  static std::string_view at(std::size_t offset, std::size_t n) noexcept {
    return {reinterpret_cast<const char*>(offset), n};
  }
  static void rebase(std::string_view& v, const std::string& s) noexcept {
    v = {s.data() + reinterpret_cast<std::uintptr_t>(v.data()), v.size()};
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
    ++count_;
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
      fields_.push_back(field_ref{f, {name.data(), name.size()}, {value.data(), value.size()},
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
        f.name_view = at(base_off + static_cast<std::size_t>(f.name_view.data() - run),
                         f.name_view.size());
        f.value_view = at(base_off + static_cast<std::size_t>(f.value_view.data() - run),
                          f.value_view.size());
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
  std::string folded_;  // field lines Beast unfolded, until keep_lines takes them
  bool rebased_ = false;
  boost::container::small_vector<field_ref, 12> fields_;
  std::size_t count_ = 0;
  std::string_view first_;   // method
  std::string_view second_;  // target or reason
  boost::beast::http::verb method_ = boost::beast::http::verb::unknown;
  unsigned version_ = 11;
  unsigned status_ = 0;
  body_window body_;
};

}  // namespace canary::http
