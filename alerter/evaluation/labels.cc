#include "alerter/evaluation/labels.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "alerter/backtest.h"
#include "nlohmann/json.hpp"

namespace cybersyn::alerter::evaluation {
namespace {

// This Abseil's string_view is its own type: StrCat takes it, not std::string_view.
using AbslView = absl::string_view;

AbslView TrimSpace(AbslView s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

absl::StatusOr<Window> MakeWindow(AbslView start, AbslView end, const std::string& where) {
  auto s = ParseTimestamp(std::string_view(start.data(), start.size()));
  if (!s.ok())
    return absl::InvalidArgumentError(absl::StrCat(where, ": start: ", s.status().message()));
  auto e = ParseTimestamp(std::string_view(end.data(), end.size()));
  if (!e.ok())
    return absl::InvalidArgumentError(absl::StrCat(where, ": end: ", e.status().message()));
  if (*e < *s) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": end: '", end, "' is before start '", start, "'"));
  }
  return Window{*s, *e};
}

absl::Status ParseJson(AbslView text, AbslView source, Labels::WindowMap& out) {
  const nlohmann::json doc =
      nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON"));
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": want an object {\"series\": [[start, end], ...]}"));
  }
  for (const auto& [key, list] : doc.items()) {
    const std::string where = absl::StrCat(source, ": '", key, "'");
    if (!list.is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": want a list of [start, end]"));
    }
    std::vector<Window>& windows = out[key];
    for (size_t i = 0; i < list.size(); ++i) {
      const auto& w = list[i];
      const std::string at = absl::StrCat(where, ": window ", i + 1);
      if (!w.is_array() || w.size() != 2 || !w[0].is_string() || !w[1].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(at, ": want [\"start\", \"end\"], got ", w.dump()));
      }
      auto window = MakeWindow(w[0].get<std::string>(), w[1].get<std::string>(), at);
      if (!window.ok()) return window.status();
      windows.push_back(*window);
    }
  }
  return absl::OkStatus();
}

absl::Status ParseCsv(AbslView text, AbslView source, Labels::WindowMap& out) {
  int64_t line_no = 0;
  bool header = true;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    AbslView line = TrimSpace(text.substr(0, nl));
    text.remove_prefix(nl == AbslView::npos ? text.size() : nl + 1);
    ++line_no;
    const std::string where = absl::StrCat(source, ":", line_no);
    if (header) {
      if (line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
      if (line != "series,start,end") {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": header: want 'series,start,end' (or a NAB windows JSON), got '", line, "'"));
      }
      header = false;
      continue;
    }
    if (line.empty()) continue;
    // The series name may hold commas; the two timestamps cannot.
    const size_t c2 = line.rfind(',');
    const size_t c1 = c2 == AbslView::npos || c2 == 0 ? AbslView::npos : line.rfind(',', c2 - 1);
    if (c1 == AbslView::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": row: want 'series,start,end', got '", line, "'"));
    }
    const AbslView series = TrimSpace(line.substr(0, c1));
    if (series.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": series: empty"));
    auto window = MakeWindow(line.substr(c1 + 1, c2 - c1 - 1), line.substr(c2 + 1), where);
    if (!window.ok()) return window.status();
    out[std::string(series)].push_back(*window);
  }
  if (header) return absl::InvalidArgumentError(absl::StrCat(source, ": empty labels file"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Labels> Labels::Parse(std::string_view text, std::string_view source) {
  Labels labels;
  const AbslView all(text.data(), text.size());
  const AbslView src(source.data(), source.size());
  const AbslView body = absl::StripLeadingAsciiWhitespace(all);
  absl::Status st = !body.empty() && body.front() == '{' ? ParseJson(all, src, labels.windows_)
                                                         : ParseCsv(all, src, labels.windows_);
  if (!st.ok()) return st;
  return labels;
}

absl::StatusOr<Labels> Labels::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open labels ", path, ": ", std::strerror(errno)));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return Parse(buf.str(), path);
}

const std::vector<Window>* Labels::Lookup(std::string_view name, const std::string** key) const {
  // Exact, then ever shorter trailing paths: the longest key that matches wins.
  for (std::string_view tail = name;;) {
    if (auto it = windows_.find(tail); it != windows_.end()) {
      *key = &it->first;
      return &it->second;
    }
    const size_t slash = tail.find('/');
    if (slash == AbslView::npos) return nullptr;
    tail.remove_prefix(slash + 1);
  }
}

Labels::Match Labels::Find(std::string_view series) const {
  Match m;
  m.windows = Lookup(series, &m.key);
  if (m.windows == nullptr) {
    // `file:column` falls back to the file's windows.
    const size_t colon = series.rfind(':');
    if (colon != AbslView::npos) m.windows = Lookup(series.substr(0, colon), &m.key);
  }
  return m;
}

size_t Labels::window_count() const {
  size_t n = 0;
  for (const auto& [key, w] : windows_) n += w.size();
  return n;
}

}  // namespace cybersyn::alerter::evaluation
