#include "alerter/backtest.h"

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
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

absl::StatusOr<BacktestStats> RunBacktest(std::string_view input, std::string_view input_name,
                                          Detector& detector, std::string* output) {
  const auto start = std::chrono::steady_clock::now();
  BacktestStats stats;
  const std::string name(input_name);
  size_t pos = 0;
  int64_t line_no = 0;
  auto next_line = [&](std::string_view& line) {
    if (pos >= input.size()) return false;
    const char* nl =
        static_cast<const char*>(std::memchr(input.data() + pos, '\n', input.size() - pos));
    const size_t end = nl == nullptr ? input.size() : static_cast<size_t>(nl - input.data());
    line = input.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = end + 1;
    ++line_no;
    return true;
  };
  std::string_view line;
  // Header (a UTF-8 byte-order mark is tolerated).
  if (!next_line(line)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":1: header: empty input, want 'timestamp,value'"));
  }
  if (line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
  {
    const size_t comma = line.find(',');
    const std::string_view h0 = Trim(line.substr(0, comma));
    const std::string_view h1 =
        comma == std::string_view::npos ? std::string_view() : Trim(line.substr(comma + 1));
    if (!absl::EqualsIgnoreCase(absl::string_view(h0.data(), h0.size()), "timestamp") ||
        !absl::EqualsIgnoreCase(absl::string_view(h1.data(), h1.size()), "value")) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":1: header: want 'timestamp,value', got ", Quote(line)));
    }
  }
  output->append("timestamp,value,score,kind,signal\n");
  output->reserve(output->size() + input.size() + input.size() / 2);
  char buf[64];
  while (next_line(line)) {
    if (Trim(line).empty()) {
      if (pos >= input.size()) break;  // trailing blank line
      return absl::InvalidArgumentError(absl::StrCat(name, ":", line_no, ": row: empty line"));
    }
    const size_t comma = line.find(',');
    if (comma == std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ":", line_no, ": row: want 2 fields 'timestamp,value', got ", Quote(line)));
    }
    const std::string_view ts_text = line.substr(0, comma);
    const std::string_view value_text = line.substr(comma + 1);
    if (value_text.find(',') != std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", line_no, ": row: more than 2 fields in ", Quote(line)));
    }
    Observation obs;
    auto ts = ParseTimestamp(ts_text);
    if (!ts.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", line_no, ": timestamp: ", ts.status().message()));
    }
    obs.time_ms = *ts;
    const std::string_view v = Trim(value_text);
    if (v.empty()) {
      obs.missing = true;
      ++stats.missing;
    } else if (!absl::SimpleAtod(absl::string_view(v.data(), v.size()), &obs.value) ||
               !std::isfinite(obs.value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", line_no, ": value: not a finite number: ", Quote(v)));
    }
    const Verdict verdict = detector.Update(obs);
    ++stats.rows;
    stats.signals += verdict.signal;
    stats.resets += verdict.reset;
    output->append(ts_text);
    output->push_back(',');
    output->append(value_text);
    output->push_back(',');
    auto [end, ec] =
        std::to_chars(buf, buf + sizeof(buf), verdict.score, std::chars_format::fixed, 4);
    output->append(buf, end - buf);
    output->push_back(',');
    output->append(KindLabel(verdict.kind, verdict.direction));
    output->append(verdict.signal ? ",1\n" : ",0\n");
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

absl::StatusOr<BacktestStats> RunBacktestFiles(const std::string& input_path,
                                               const std::string& output_path, Detector& detector) {
  const auto start = std::chrono::steady_clock::now();
  std::string input;
  {
    FILE* in = input_path == "-" ? stdin : std::fopen(input_path.c_str(), "rb");
    if (in == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("cannot open input ", input_path, ": ", std::strerror(errno)));
    }
    char chunk[1 << 16];
    size_t n;
    while ((n = std::fread(chunk, 1, sizeof(chunk), in)) > 0) input.append(chunk, n);
    const bool failed = std::ferror(in) != 0;
    if (in != stdin) std::fclose(in);
    if (failed) return absl::DataLossError(absl::StrCat("error reading ", input_path));
  }
  std::string output;
  auto stats = RunBacktest(input, input_path == "-" ? "<stdin>" : input_path, detector, &output);
  if (!stats.ok()) return stats.status();
  FILE* out = output_path == "-" ? stdout : std::fopen(output_path.c_str(), "wb");
  if (out == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot open output ", output_path, ": ", std::strerror(errno)));
  }
  const bool ok =
      std::fwrite(output.data(), 1, output.size(), out) == output.size() && std::fflush(out) == 0;
  if (out != stdout) {
    if (std::fclose(out) != 0 || !ok) {
      return absl::DataLossError(absl::StrCat("error writing ", output_path));
    }
  } else if (!ok) {
    return absl::DataLossError("error writing standard output");
  }
  stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace cybersyn::alerter
