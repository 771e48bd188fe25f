#include "alerter/backtest.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace cybersyn::alerter {
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool Digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

std::string Quote(std::string_view s) {
  return absl::StrCat("'", std::string(s.substr(0, 40)), s.size() > 40 ? "...'" : "'");
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

absl::StatusOr<int64_t> ParseTimestamp(std::string_view text) {
  const std::string_view s = Trim(text);
  if (s.empty()) return absl::InvalidArgumentError("empty timestamp");
  const bool all_digits =
      s.find_first_not_of("0123456789", s[0] == '-' ? 1 : 0) == std::string_view::npos;
  if (all_digits) {
    int64_t ms = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), ms);
    if (ec != std::errc() || p != s.data() + s.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("epoch milliseconds out of range: ", Quote(s)));
    }
    return ms;
  }
  int year, month, day, hour, minute, second;
  if (!Digits(s, 0, 4, year) || s.size() < 19 || s[4] != '-' || !Digits(s, 5, 2, month) ||
      s[7] != '-' || !Digits(s, 8, 2, day) || (s[10] != ' ' && s[10] != 'T' && s[10] != 't') ||
      !Digits(s, 11, 2, hour) || s[13] != ':' || !Digits(s, 14, 2, minute) || s[16] != ':' ||
      !Digits(s, 17, 2, second)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected YYYY-MM-DD HH:MM:SS, RFC 3339 or epoch milliseconds, got ", Quote(s)));
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return absl::InvalidArgumentError(
        absl::StrCat("date or time field out of range in ", Quote(s)));
  }
  size_t pos = 19;
  int64_t frac_ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 3) frac_ms = frac_ms * 10 + (s[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0)
      return absl::InvalidArgumentError(absl::StrCat("empty fraction in ", Quote(s)));
    for (int i = digits; i < 3; ++i) frac_ms *= 10;
  }
  int64_t offset_s = 0;
  if (pos < s.size()) {
    const char c = s[pos];
    int oh, om;
    if ((c == 'Z' || c == 'z') && pos + 1 == s.size()) {
      // UTC
    } else if ((c == '+' || c == '-') && pos + 6 == s.size() && Digits(s, pos + 1, 2, oh) &&
               s[pos + 3] == ':' && Digits(s, pos + 4, 2, om) && oh <= 23 && om <= 59) {
      offset_s = (c == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("bad time zone (want Z or +HH:MM) in ", Quote(s)));
    }
  }
  const int64_t days = DaysFromCivil(year, month, day);
  const int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  return secs * 1000 + frac_ms;
}

namespace {

// Splits `line` at commas into `fields` (views into `line`).
void SplitFields(std::string_view line, std::vector<std::string_view>& fields) {
  fields.clear();
  size_t start = 0;
  for (;;) {
    const size_t comma = line.find(',', start);
    if (comma == std::string_view::npos) {
      fields.push_back(line.substr(start));
      return;
    }
    fields.push_back(line.substr(start, comma - start));
    start = comma + 1;
  }
}

// Splits `input` into lines (CR/LF stripped), numbering them from 1.
class LineReader {
 public:
  explicit LineReader(std::string_view input) : input_(input) {}
  bool Next(std::string_view& line) {
    if (pos_ >= input_.size()) return false;
    const char* nl =
        static_cast<const char*>(std::memchr(input_.data() + pos_, '\n', input_.size() - pos_));
    const size_t end = nl == nullptr ? input_.size() : static_cast<size_t>(nl - input_.data());
    line = input_.substr(pos_, end - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos_ = end + 1;
    ++line_no_;
    return true;
  }
  bool AtEnd() const { return pos_ >= input_.size(); }
  int64_t line_no() const { return line_no_; }

 private:
  std::string_view input_;
  size_t pos_ = 0;
  int64_t line_no_ = 0;
};

absl::Status ParseHeader(std::string_view line, const std::string& name,
                         std::string_view only_column, std::vector<std::string>& columns,
                         std::vector<size_t>& field_of_column, size_t& fields_wanted) {
  if (line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // UTF-8 byte-order mark
  std::vector<std::string_view> h;
  SplitFields(line, h);
  for (auto& f : h) f = Trim(f);
  if (!only_column.empty() && std::find(h.begin() + 1, h.end(), only_column) == h.end()) {
    return absl::NotFoundError(
        absl::StrCat(name, ":1: header: no column ", Quote(only_column), " in ", Quote(line)));
  }
  if (!absl::EqualsIgnoreCase(absl::string_view(h[0].data(), h[0].size()), "timestamp") ||
      h.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ":1: header: want 'timestamp,value' (or 'timestamp,a,b,...'), got ", Quote(line)));
  }
  fields_wanted = h.size();
  for (size_t i = 1; i < h.size(); ++i) {
    if (!only_column.empty()) {
      if (h[i] != only_column) continue;
    } else if (h[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":1: header: column ", i + 1, " has no name"));
    } else if (std::find(columns.begin(), columns.end(), h[i]) != columns.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":1: header: column ", Quote(h[i]), " appears twice"));
    }
    columns.emplace_back(h[i]);
    field_of_column.push_back(i);
    if (!only_column.empty()) break;
  }
  if (!only_column.empty()) fields_wanted = field_of_column[0] + 1;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SeriesTable> ParseSeriesCsv(std::string_view input, std::string_view input_name,
                                           const ParseOptions& options) {
  const std::string name(input_name);
  const std::string_view only_column = options.only_column;
  SeriesTable table;
  LineReader reader(input);
  std::string_view line;
  if (!reader.Next(line)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":1: header: empty input, want 'timestamp,value'"));
  }
  std::vector<size_t> field_of_column;
  size_t fields_wanted = 0;
  RETURN_IF_ERROR(
      ParseHeader(line, name, only_column, table.columns, field_of_column, fields_wanted));
  const bool exact = only_column.empty();
  table.values.resize(table.columns.size());
  std::vector<std::string_view> f;
  int64_t prev_line = 0;
  while (reader.Next(line)) {
    const int64_t line_no = reader.line_no();
    if (Trim(line).empty()) {
      if (reader.AtEnd()) break;  // trailing blank line
      return absl::InvalidArgumentError(absl::StrCat(name, ":", line_no, ": row: empty line"));
    }
    SplitFields(line, f);
    if (exact ? f.size() != fields_wanted : f.size() < fields_wanted) {
      return absl::InvalidArgumentError(absl::StrCat(name, ":", line_no, ": row: want ",
                                                     fields_wanted, " fields like the header, got ",
                                                     f.size(), " in ", Quote(line)));
    }
    auto ts = ParseTimestamp(f[0]);
    if (!ts.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", line_no, ": timestamp: ", ts.status().message()));
    }
    if (!table.time_ms.empty() && *ts <= table.time_ms.back() && options.allow_unordered) {
      ++table.unordered;
    } else if (!table.time_ms.empty() && *ts <= table.time_ms.back()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", line_no, ": timestamp: ", Quote(Trim(f[0])),
                       *ts == table.time_ms.back() ? " repeats" : " is before",
                       " the timestamp on line ", prev_line,
                       "; rows must be in strictly increasing time order (local times across a "
                       "daylight-saving change? export UTC, or allow it with --allow-unordered)"));
    }
    table.time_ms.push_back(*ts);
    prev_line = line_no;
    table.lines.push_back(line);
    for (size_t c = 0; c < field_of_column.size(); ++c) {
      const std::string_view v = Trim(f[field_of_column[c]]);
      double value = std::numeric_limits<double>::quiet_NaN();
      if (v.empty()) {
        ++table.missing;
      } else if (!absl::SimpleAtod(absl::string_view(v.data(), v.size()), &value) ||
                 !std::isfinite(value)) {
        return absl::InvalidArgumentError(absl::StrCat(name, ":", line_no, ": ", table.columns[c],
                                                       ": not a finite number: ", Quote(v)));
      }
      table.values[c].push_back(value);
    }
  }
  return table;
}

ColumnVerdicts RunDetector(const SeriesTable& table, size_t column, Detector& detector) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<double>& values = table.values[column];
  const size_t n = values.size();
  ColumnVerdicts out;
  out.score.resize(n);
  out.kind.resize(n);
  out.direction.resize(n);
  out.signal.resize(n);
  BacktestStats& stats = out.stats;
  timespec cpu0, cpu1;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
  for (size_t i = 0; i < n; ++i) {
    Observation obs;
    obs.time_ms = table.time_ms[i];
    obs.missing = std::isnan(values[i]);
    obs.value = obs.missing ? 0.0 : values[i];
    const Verdict v = detector.Update(obs);
    out.score[i] = v.score;
    out.kind[i] = v.kind;
    out.direction[i] = v.direction;
    out.signal[i] = v.signal;
    stats.signals += v.signal;
    stats.resets += v.reset;
    stats.missing += obs.missing;
  }
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
  stats.rows = static_cast<int64_t>(n);
  stats.update_ns = (cpu1.tv_sec - cpu0.tv_sec) * 1e9 + (cpu1.tv_nsec - cpu0.tv_nsec);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

void AppendVerdictCsv(const SeriesTable& table, const std::vector<ColumnVerdicts>& verdicts,
                      std::string* output) {
  const bool plain = table.columns.size() == 1 && table.columns[0] == "value";
  output->append("timestamp");
  for (const std::string& c : table.columns) {
    if (plain) {
      output->append(",value,score,kind,signal");
    } else {
      absl::StrAppend(output, ",", c, ",", c, "_score,", c, "_kind,", c, "_signal");
    }
  }
  output->push_back('\n');
  output->reserve(output->size() + table.lines.size() * (24 + 24 * table.columns.size()));
  std::vector<std::string_view> f;
  char buf[64];
  for (size_t i = 0; i < table.lines.size(); ++i) {
    SplitFields(table.lines[i], f);
    output->append(f[0]);
    for (size_t c = 0; c < verdicts.size(); ++c) {
      const ColumnVerdicts& v = verdicts[c];
      output->push_back(',');
      output->append(f[c + 1]);
      output->push_back(',');
      auto [end, ec] =
          std::to_chars(buf, buf + sizeof(buf), v.score[i], std::chars_format::fixed, 4);
      output->append(buf, end - buf);
      output->push_back(',');
      output->append(KindLabel(v.kind[i], v.direction[i]));
      output->append(v.signal[i] ? ",1" : ",0");
    }
    output->push_back('\n');
  }
}

absl::StatusOr<BacktestStats> RunBacktest(std::string_view input, std::string_view input_name,
                                          const DetectorFactory& make, std::string* output,
                                          const ParseOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(SeriesTable table, ParseSeriesCsv(input, input_name, options));
  std::vector<ColumnVerdicts> verdicts;
  BacktestStats stats;
  for (size_t c = 0; c < table.columns.size(); ++c) {
    ASSIGN_OR_RETURN(std::unique_ptr<Detector> detector, make());
    verdicts.push_back(RunDetector(table, c, *detector));
    const BacktestStats& s = verdicts.back().stats;
    stats.signals += s.signals;
    stats.missing += s.missing;
    stats.resets += s.resets;
    stats.update_ns += s.update_ns;
  }
  stats.rows = static_cast<int64_t>(table.time_ms.size());
  stats.unordered = table.unordered;
  AppendVerdictCsv(table, verdicts, output);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

absl::StatusOr<std::string> ReadInputFile(const std::string& path) {
  std::string input;
  FILE* in = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (in == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot open input ", path, ": ", std::strerror(errno)));
  }
  char chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), in)) > 0) input.append(chunk, n);
  const bool failed = std::ferror(in) != 0;
  if (in != stdin) std::fclose(in);
  if (failed) return absl::DataLossError(absl::StrCat("error reading ", path));
  return input;
}

absl::Status WriteOutputFile(const std::string& path, std::string_view data) {
  FILE* out = path == "-" ? stdout : std::fopen(path.c_str(), "wb");
  if (out == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot open output ", path, ": ", std::strerror(errno)));
  }
  const bool ok =
      std::fwrite(data.data(), 1, data.size(), out) == data.size() && std::fflush(out) == 0;
  if (out != stdout) {
    if (std::fclose(out) != 0 || !ok) {
      return absl::DataLossError(absl::StrCat("error writing ", path));
    }
  } else if (!ok) {
    return absl::DataLossError("error writing standard output");
  }
  return absl::OkStatus();
}

}  // namespace cybersyn::alerter
