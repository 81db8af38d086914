// Prometheus and web providers; see providers.h. Answers are parsed with Boost.JSON without
// exceptions: a provider's body is untrusted input.
#include "analysis/providers.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "util/text.h"

namespace canary::analysis {

namespace json = boost::json;

namespace {

constexpr std::string_view variable_names[] = {"route", "stable", "canary", "interval"};

// Calls on_text(literal) and on_var(name, raw "{{...}}") along `text`. An unclosed "{{" is text.
template <class Text, class Var>
void scan_template(std::string_view text, Text on_text, Var on_var) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto open = text.find("{{", pos);
    if (open == text.npos) break;
    const auto close = text.find("}}", open + 2);
    if (close == text.npos) break;
    on_text(text.substr(pos, open - pos));
    on_var(util::trim(text.substr(open + 2, close - open - 2), util::http_ows),
           text.substr(open, close + 2 - open));
    pos = close + 2;
  }
  on_text(text.substr(pos));
}

provider_result error(std::string message) {
  return {provider_result::status::error, 0, std::move(message)};
}
provider_result empty(std::string message) {
  return {provider_result::status::empty, 0, std::move(message)};
}
provider_result value(double v) { return {provider_result::status::value, v, {}}; }

// Timeout, connection, TLS and HTTP status failures: the provider could not be asked.
std::optional<provider_result> transport_error(const http_response& r) {
  if (r.result != http_response::outcome::ok) return error(r.error);
  if (r.status < 200 || r.status > 299) return error("HTTP " + std::to_string(r.status));
  return std::nullopt;
}

// A decimal number as Prometheus writes sample values ("0.5", "NaN", "+Inf", "1e-3").
std::optional<double> parse_number(std::string_view text) {
  text = util::trim(text);
  if (text.empty()) return std::nullopt;
  const std::string lower = util::to_lower(text);
  if (lower == "nan") return std::nan("");
  if (lower == "+inf" || lower == "inf") return HUGE_VAL;
  if (lower == "-inf") return -HUGE_VAL;
  double v = 0;
  const char* first = text.data();
  if (*first == '+') ++first;
  const auto [end, ec] = std::from_chars(first, text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

provider_result number_result(double v, std::string_view what) {
  if (std::isnan(v)) return empty(std::string(what) + " is NaN");
  if (std::isinf(v)) return empty(std::string(what) + " is " + (v > 0 ? "+Inf" : "-Inf"));
  return value(v);
}

std::string short_text(std::string_view text) {
  constexpr std::size_t max = 120;
  return text.size() <= max ? std::string(text) : std::string(text.substr(0, max)) + "...";
}

// A Prometheus sample [<unix time>, "<value>"].
std::optional<double> sample_value(const json::value& sample) {
  const auto* pair = sample.if_array();
  if (!pair || pair->size() != 2) return std::nullopt;
  const auto* text = (*pair)[1].if_string();
  if (!text) return std::nullopt;
  return parse_number(*text);
}

struct path_step {
  bool index = false;
  std::size_t n = 0;
  std::string key;
};

// Parses the json_path subset; nullopt and `why` when malformed.
std::optional<std::vector<path_step>> parse_path(std::string_view path, std::string& why) {
  std::vector<path_step> steps;
  if (!path.starts_with('$')) {
    why = "must start with '$'";
    return std::nullopt;
  }
  std::size_t i = 1;
  const auto key_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  };
  while (i < path.size()) {
    const std::string at = " at offset " + std::to_string(i);
    if (path[i] == '.') {
      std::size_t end = i + 1;
      while (end < path.size() && key_char(path[end])) ++end;
      if (end == i + 1) {
        why = "expected a key after '.'" + at;
        return std::nullopt;
      }
      steps.push_back({false, 0, std::string(path.substr(i + 1, end - i - 1))});
      i = end;
    } else if (path[i] == '[') {
      if (i + 1 < path.size() && (path[i + 1] == '\'' || path[i + 1] == '"')) {
        const char quote = path[i + 1];
        const auto close = path.find(quote, i + 2);
        if (close == path.npos || close + 1 >= path.size() || path[close + 1] != ']') {
          why = std::string("expected ") + quote + "] to close the key" + at;
          return std::nullopt;
        }
        steps.push_back({false, 0, std::string(path.substr(i + 2, close - i - 2))});
        i = close + 2;
      } else {
        const auto close = path.find(']', i + 1);
        const auto digits = path.substr(i + 1, close == path.npos ? 0 : close - i - 1);
        std::size_t n = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
        if (close == path.npos || digits.empty() || ec != std::errc() ||
            end != digits.data() + digits.size()) {
          why = "expected [index], ['key'] or [\"key\"]" + at;
          return std::nullopt;
        }
        steps.push_back({true, n, {}});
        i = close + 1;
      }
    } else {
      why = "expected '.' or '['" + at;
      return std::nullopt;
    }
  }
  return steps;
}

}  // namespace

std::string url_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (const unsigned char c : text) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
  return out;
}

std::string expand_template(std::string_view text, const template_vars& vars,
                            template_escape escape) {
  std::string out;
  const auto put = [&](std::string_view v) {
    out += escape == template_escape::url ? url_encode(v) : std::string(v);
  };
  scan_template(
      text, [&](std::string_view literal) { out += literal; },
      [&](std::string_view name, std::string_view raw) {
        if (name == "route") {
          put(vars.route);
        } else if (name == "stable") {
          put(vars.stable);
        } else if (name == "canary") {
          put(vars.canary);
        } else if (name == "interval") {
          const auto ms = std::max<std::int64_t>(vars.interval.count(), 1);
          put(std::to_string((ms + 999) / 1000));
        } else {
          out += raw;
        }
      });
  return out;
}

std::optional<std::string> unknown_template_variable(std::string_view text) {
  std::optional<std::string> unknown;
  scan_template(
      text, [](std::string_view) {},
      [&](std::string_view name, std::string_view) {
        if (unknown) return;
        for (const auto known : variable_names)
          if (name == known) return;
        unknown = std::string(name);
      });
  return unknown;
}

http_request prometheus_request(const config::metric_config& metric, const template_vars& vars) {
  http_request r;
  std::string_view address = metric.target.url;
  while (address.ends_with('/')) address.remove_suffix(1);
  r.url = std::string(address) + "/api/v1/query?query=" +
          url_encode(expand_template(metric.query, vars));
  r.headers = metric.target.headers;
  r.headers.emplace("Accept", "application/json");
  r.timeout = metric.target.timeout;
  r.ca_file = metric.target.ca_file;
  return r;
}

provider_result prometheus_result(const http_response& response) {
  // Prometheus answers a bad query with 400 and a JSON error: its message says more than "HTTP 400".
  if (response.result != http_response::outcome::ok) return error(response.error);
  boost::system::error_code ec;
  const json::value doc = json::parse(response.body, ec);
  const auto* obj = ec ? nullptr : doc.if_object();
  const bool ok_status = response.status >= 200 && response.status <= 299;
  if (!obj) {
    if (!ok_status) return error("HTTP " + std::to_string(response.status));
    return error("prometheus: answer is not a JSON object: " + short_text(response.body));
  }
  const auto* status = obj->if_contains("status");
  if (!status || !status->is_string() || status->get_string() != "success") {
    std::string msg = "prometheus: query failed";
    if (!ok_status) msg = "HTTP " + std::to_string(response.status);
    const auto* type = obj->if_contains("errorType");
    const auto* text = obj->if_contains("error");
    if (type && type->is_string()) msg += std::string(": ") + std::string(type->get_string());
    if (text && text->is_string()) msg += std::string(": ") + std::string(text->get_string());
    return error(msg);
  }
  if (!ok_status) return error("HTTP " + std::to_string(response.status));
  const auto* data = obj->if_contains("data");
  const auto* data_obj = data ? data->if_object() : nullptr;
  const auto* type = data_obj ? data_obj->if_contains("resultType") : nullptr;
  const auto* result = data_obj ? data_obj->if_contains("result") : nullptr;
  if (!type || !type->is_string() || !result)
    return error("prometheus: answer without data.resultType and data.result");
  const std::string_view kind = type->get_string();
  if (kind == "scalar") {
    const auto v = sample_value(*result);
    if (!v) return error("prometheus: malformed scalar");
    return number_result(*v, "scalar");
  }
  if (kind != "vector")
    return error("prometheus: resultType " + std::string(kind) +
                 " (the query must give a scalar or a one-element vector)");
  const auto* series = result->if_array();
  if (!series) return error("prometheus: malformed vector");
  if (series->empty()) return empty("no data (empty vector)");
  if (series->size() > 1)
    return error("prometheus: vector of " + std::to_string(series->size()) +
                 " elements (the query must give one number: aggregate it, e.g. sum(...))");
  const auto* element = series->front().if_object();
  const auto* sample = element ? element->if_contains("value") : nullptr;
  const auto v = sample ? sample_value(*sample) : std::nullopt;
  if (!v) return error("prometheus: malformed vector element");
  return number_result(*v, "value");
}

http_request web_request(const config::metric_config& metric, const template_vars& vars) {
  http_request r;
  r.url = expand_template(metric.target.url, vars, template_escape::url);
  r.headers = metric.target.headers;
  r.timeout = metric.target.timeout;
  r.ca_file = metric.target.ca_file;
  return r;
}

provider_result web_result(const http_response& response, std::string_view json_path) {
  if (auto e = transport_error(response)) return *e;
  if (json_path.empty()) {
    const auto v = parse_number(response.body);
    if (!v) return error("web: body is not a number: " + short_text(response.body));
    return number_result(*v, "body");
  }
  std::string why;
  const auto steps = parse_path(json_path, why);
  if (!steps) return error("web: json_path " + std::string(json_path) + ": " + why);
  boost::system::error_code ec;
  const json::value doc = json::parse(response.body, ec);
  if (ec) return error("web: body is not JSON (" + ec.message() + "): " + short_text(response.body));
  const json::value* at = &doc;
  for (const auto& step : *steps) {
    if (step.index) {
      const auto* arr = at->if_array();
      at = arr && step.n < arr->size() ? &(*arr)[step.n] : nullptr;
    } else {
      const auto* obj = at->if_object();
      at = obj ? obj->if_contains(step.key) : nullptr;
    }
    if (!at) return empty("web: " + std::string(json_path) + " not found");
  }
  const std::string what = "web: " + std::string(json_path);
  if (at->is_null()) return empty(what + " is null");
  if (at->is_number()) return number_result(at->to_number<double>(), what);
  if (const auto* text = at->if_string()) {
    const auto v = parse_number(*text);
    if (!v) return error(what + " is not a number: \"" + short_text(*text) + "\"");
    return number_result(*v, what);
  }
  return error(what + " is not a number: " + short_text(json::serialize(*at)));
}

std::optional<std::string> json_path_error(std::string_view path) {
  if (path.empty()) return std::nullopt;
  std::string why;
  if (parse_path(path, why)) return std::nullopt;
  return why;
}

}  // namespace canary::analysis
