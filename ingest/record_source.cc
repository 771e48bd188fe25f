#include "ingest/record_source.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/duration.h"
#include "ingest/event_time.h"
#include "nlohmann/json.hpp"

namespace cybersyn::ingest {
namespace {

bool Fail(RecordError* err, absl::string_view field, std::string problem,
          absl::string_view reason) {
  err->field = std::string(field);
  err->problem = std::move(problem);
  err->reason = std::string(reason);
  return false;
}

// Splits one CSV line (RFC 4180 quoting, no embedded newlines).
bool SplitCsv(absl::string_view line, std::vector<std::string>* fields, RecordError* err) {
  fields->clear();
  std::string cur;
  size_t i = 0;
  while (true) {
    cur.clear();
    if (i < line.size() && line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            cur.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        cur.push_back(line[i++]);
      }
      if (!closed) return Fail(err, "line", "unterminated quoted field", kReasonSyntax);
      if (i < line.size() && line[i] != ',') {
        return Fail(err, "line", "unexpected character after a quoted field", kReasonSyntax);
      }
    } else {
      while (i < line.size() && line[i] != ',') cur.push_back(line[i++]);
    }
    fields->push_back(cur);
    if (i >= line.size()) break;
    ++i;  // the comma
  }
  return true;
}

std::string JsonTypeName(const nlohmann::json& j) {
  if (j.is_number()) return "number";
  return j.type_name();
}

class LineSource : public RecordSource {
 public:
  LineSource(InputFormat format, std::istream* in, std::unique_ptr<std::istream> owned,
             std::string name, std::string identity, const RecordValidator* validator)
      : format_(format),
        in_(in),
        owned_(std::move(owned)),
        name_(std::move(name)),
        identity_(std::move(identity)),
        validator_(validator) {}

  Result Next(v1::Record* out, const Hierarchy::Node** enterprise, RecordError* err) override {
    std::string line;
    while (true) {
      if (!std::getline(*in_, line)) {
        if (in_->bad() && !reported_io_error_) {
          reported_io_error_ = true;
          err->source = name_;
          err->line = line_;
          Fail(err, "line", absl::StrCat("read error: ", std::strerror(errno)), kReasonSyntax);
          return Result::kError;
        }
        return Result::kEnd;
      }
      ++line_;
      offset_ += static_cast<int64_t>(line.size()) + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      absl::string_view v = absl::StripAsciiWhitespace(line);
      if (v.empty()) continue;
      if (format_ == InputFormat::kCsv) {
        if (v[0] == '#') continue;
        if (!seen_content_ && absl::StartsWith(v, "node,")) {
          seen_content_ = true;
          continue;  // header
        }
      }
      seen_content_ = true;
      *err = RecordError();
      out->Clear();
      const Hierarchy::Node* ent = format_ == InputFormat::kCsv
                                       ? ParseCsvLine(v, *validator_, out, err)
                                       : ParseJsonLine(v, *validator_, out, err);
      if (ent == nullptr) {
        err->source = name_;
        err->line = line_;
        return Result::kError;
      }
      *enterprise = ent;
      return Result::kRecord;
    }
  }

  std::string Identity() const override { return identity_; }
  std::string Position() const override {
    return absl::StrCat(offset_, ":", line_, ":", seen_content_ ? 1 : 0);
  }
  absl::Status Seek(absl::string_view position) override {
    std::vector<absl::string_view> parts = absl::StrSplit(position, ':');
    int64_t offset = 0, line = 0;
    int seen = 0;
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &offset) ||
        !absl::SimpleAtoi(parts[1], &line) || !absl::SimpleAtoi(parts[2], &seen)) {
      return absl::InvalidArgumentError(absl::StrCat("bad stored position \"", position, "\""));
    }
    if (identity_.empty()) return absl::UnimplementedError(absl::StrCat(name_, " cannot seek"));
    in_->clear();
    in_->seekg(offset);
    if (!*in_) {
      return absl::OutOfRangeError(
          absl::StrCat(name_, ": cannot resume at byte ", offset, " (file shorter?)"));
    }
    offset_ = offset;
    line_ = line;
    seen_content_ = seen != 0;
    return absl::OkStatus();
  }

 private:
  InputFormat format_;
  std::istream* in_;
  std::unique_ptr<std::istream> owned_;
  std::string name_;
  std::string identity_;
  const RecordValidator* validator_;
  int64_t line_ = 0;
  int64_t offset_ = 0;
  bool seen_content_ = false;
  bool reported_io_error_ = false;
};

class SimSource : public RecordSource {
 public:
  SimSource(std::unique_ptr<Simulator> sim, std::string identity, const RecordValidator* validator,
            const Clock* clock)
      : sim_(std::move(sim)), identity_(std::move(identity)), validator_(validator), clock_(clock) {
    max_future_ms_ = absl::ToInt64Milliseconds(validator_->config().gateway.max_future);
    // What validation checks of a record's node and indicator is a fact of its series (the
    // simulator uses the config's hierarchy and indicators), so it is looked up once per series
    // here; per record only the value and the time are checked. A series whose node or indicator
    // the validator would reject gets a null enterprise: its records take the full validation.
    // Node, indicator and their encoding (node_indicator_pb) of every series are laid out back to
    // back in one string, in series order: the records read them sequentially, instead of from
    // the hierarchy's and the series' strings all over the heap.
    const std::vector<Simulator::Series>& series = sim_->series();
    size_t bytes = 0;
    for (const Simulator::Series& s : series)
      bytes += s.unit->path.size() + s.indicator.size() + 12;
    arena_.reserve(bytes);
    for (const Simulator::Series& s : series) {
      PerSeries p;
      p.pb = static_cast<uint32_t>(arena_.size());
      p.node = AppendField(0x0A, s.unit->path);
      p.indicator = AppendField(0x12, s.indicator);
      p.pb_size = static_cast<uint32_t>(arena_.size() - p.pb);
      auto ent = validator_->config().hierarchy->EnterpriseOf(s.unit->path);
      const bool known = !s.indicator.empty() &&
                         validator_->config().FindIndicator(s.indicator) != nullptr &&
                         validator_->config().hierarchy->Find(s.unit->path) != nullptr;
      p.enterprise = ent.ok() && known ? *ent : nullptr;
      series_.push_back(p);
    }
  }

  Result Next(v1::Record* out, const Hierarchy::Node** enterprise, RecordError* err) override {
    RecordRef ref;
    const Result r = NextRef(&ref, enterprise, err);
    if (r == Result::kRecord) {
      out->set_node(std::string(ref.node));
      out->set_indicator(std::string(ref.indicator));
      out->set_value(ref.value);
      out->set_event_time_ms(ref.event_time_ms);
    }
    return r;
  }

  // The fast path: node, indicator and their encoding refer to strings made once per series, the
  // enterprise is looked up once per series, so per record only the value (finite) and the time
  // (not too far ahead of the clock) are checked, as RecordValidator does.
  Result NextRef(RecordRef* out, const Hierarchy::Node** enterprise, RecordError* err) override {
    Simulator::Sample s;
    if (!sim_->NextSample(&s)) return Result::kEnd;
    const PerSeries& p = series_[s.series];
    const char* a = arena_.data();
    *out = RecordRef{absl::string_view(a + p.node.offset, p.node.size),
                     absl::string_view(a + p.indicator.offset, p.indicator.size),
                     s.value,
                     s.time_ms,
                     nullptr,
                     absl::string_view(a + p.pb, p.pb_size)};
    last_time_ = s.time_ms;
    // A slightly stale "now" is stricter than the real one, so the fast path never accepts a
    // record that full validation would reject.
    if ((sim_->records_emitted() & 4095) == 1) now_cache_ = clock_->NowMillis();
    const Hierarchy::Node* ent = p.enterprise;
    if (ent == nullptr || !std::isfinite(s.value) || s.time_ms > now_cache_ + max_future_ms_)
        [[unlikely]] {
      return ValidateFully(*out, enterprise, err);
    }
    *enterprise = ent;
    return Result::kRecord;
  }
  std::string Identity() const override { return identity_; }
  std::string Position() const override { return absl::StrCat(sim_->records_emitted()); }
  absl::Status Seek(absl::string_view position) override {
    uint64_t n = 0;
    if (!absl::SimpleAtoi(position, &n)) {
      return absl::InvalidArgumentError(absl::StrCat("bad stored position \"", position, "\""));
    }
    sim_->SkipTo(n);
    return absl::OkStatus();
  }
  double speedup() const override { return sim_->options().speedup; }
  int64_t event_time_ms() const override { return last_time_; }
  const Simulator* sim() const { return sim_.get(); }

 private:
  // What the fast path does not accept: full validation gives the exact message (out of line,
  // so that NextRef stays small). The cached "now" is renewed too (0 after a Seek).
  [[gnu::noinline]] Result ValidateFully(const RecordRef& ref, const Hierarchy::Node** enterprise,
                                         RecordError* err) {
    now_cache_ = clock_->NowMillis();
    v1::Record record;
    record.set_node(std::string(ref.node));
    record.set_indicator(std::string(ref.indicator));
    record.set_value(ref.value);
    record.set_event_time_ms(ref.event_time_ms);
    *err = RecordError();
    const Hierarchy::Node* ent = validator_->Validate(record, err);
    if (ent == nullptr) {
      err->source = "sim";
      err->line = static_cast<int64_t>(sim_->records_emitted());
      return Result::kError;
    }
    *enterprise = ent;
    return Result::kRecord;
  }

  struct Span {  // in arena_
    uint32_t offset = 0;
    uint32_t size = 0;
  };
  struct PerSeries {
    Span node;
    Span indicator;
    uint32_t pb = 0;  // node_indicator_pb: the node's field and the indicator's, adjacent
    uint32_t pb_size = 0;
    const Hierarchy::Node* enterprise = nullptr;  // null: the validator rejects the series
  };
  // Appends string field `tag` (omitted when empty, as protobuf does) to arena_; where its
  // value's bytes are.
  Span AppendField(char tag, const std::string& value) {
    if (value.empty()) return Span{static_cast<uint32_t>(arena_.size()), 0};
    arena_.push_back(tag);
    for (uint64_t v = value.size();; v >>= 7) {
      if (v < 0x80) {
        arena_.push_back(static_cast<char>(v));
        break;
      }
      arena_.push_back(static_cast<char>(v | 0x80));
    }
    const Span span{static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(value.size())};
    arena_.append(value);
    return span;
  }
  std::unique_ptr<Simulator> sim_;
  std::string identity_;
  const RecordValidator* validator_;
  std::string arena_;  // what the PerSeries spans refer to
  std::vector<PerSeries> series_;
  const Clock* clock_;
  int64_t last_time_ = 0;
  int64_t now_cache_ = 0;
  int64_t max_future_ms_ = 0;
};

}  // namespace

RecordSource::Result RecordSource::NextRef(RecordRef* out, const Hierarchy::Node** enterprise,
                                           RecordError* err) {
  const Result r = Next(&ref_record_, enterprise, err);
  if (r == Result::kRecord) *out = RecordRef::Of(ref_record_);
  return r;
}

std::string RecordError::ToString() const {
  return absl::StrCat(source, ":", line, ": ", field, ": ", problem);
}

RecordValidator::RecordValidator(const Config& config, const Clock* clock)
    : config_(config), clock_(clock) {}

const Hierarchy::Node* RecordValidator::Validate(const v1::Record& r, RecordError* err) const {
  if (r.node().empty()) return Fail(err, "node", "missing", kReasonMissingField), nullptr;
  const Hierarchy::Node* node = config_.hierarchy->Find(r.node());
  if (node == nullptr) {
    Fail(err, "node", absl::StrCat("unknown node \"", r.node(), "\""), kReasonUnknownNode);
    return nullptr;
  }
  absl::StatusOr<const Hierarchy::Node*> ent = config_.hierarchy->EnterpriseOf(r.node());
  if (!ent.ok()) {
    Fail(err, "node", absl::StrCat("\"", r.node(), "\" is above the enterprise level"),
         kReasonUnknownNode);
    return nullptr;
  }
  if (r.indicator().empty()) return Fail(err, "indicator", "missing", kReasonMissingField), nullptr;
  if (config_.FindIndicator(r.indicator()) == nullptr) {
    Fail(err, "indicator", absl::StrCat("unknown indicator \"", r.indicator(), "\""),
         kReasonUnknownIndicator);
    return nullptr;
  }
  if (!std::isfinite(r.value())) {
    Fail(err, "value", absl::StrCat("must be finite, got ", r.value()), kReasonNonFinite);
    return nullptr;
  }
  const int64_t now = clock_->NowMillis();
  const int64_t max_future = absl::ToInt64Milliseconds(config_.gateway.max_future);
  if (r.event_time_ms() > now + max_future) {
    Fail(err, "time",
         absl::StrCat(FormatEventTime(r.event_time_ms()), " is ",
                      DurationToString(absl::Milliseconds(r.event_time_ms() - now)),
                      " ahead of the gateway clock (max_future ",
                      DurationToString(config_.gateway.max_future), ")"),
         kReasonFuture);
    return nullptr;
  }
  if (r.labels_size() > config_.gateway.max_labels) {
    Fail(err, "labels",
         absl::StrCat(r.labels_size(), " labels, at most ", config_.gateway.max_labels, " allowed"),
         kReasonTooManyLabels);
    return nullptr;
  }
  for (const auto& [k, v] : r.labels()) {
    if (k.empty()) return Fail(err, "labels", "empty label key", kReasonBadLabel), nullptr;
  }
  return *ent;
}

const Hierarchy::Node* ParseCsvLine(absl::string_view line, const RecordValidator& validator,
                                    v1::Record* out, RecordError* err) {
  static constexpr const char* kNames[] = {"node", "indicator", "value", "time", "labels"};
  std::vector<std::string> f;
  if (!SplitCsv(line, &f, err)) return nullptr;
  if (f.size() > 5) {
    Fail(err, "line",
         absl::StrCat("expected at most 5 fields (node,indicator,value,time,labels), got ",
                      f.size()),
         kReasonSyntax);
    return nullptr;
  }
  for (size_t i = 0; i < 4; ++i) {
    if (i >= f.size() || absl::StripAsciiWhitespace(f[i]).empty()) {
      Fail(err, kNames[i], "missing", kReasonMissingField);
      return nullptr;
    }
  }
  out->set_node(std::string(absl::StripAsciiWhitespace(f[0])));
  out->set_indicator(std::string(absl::StripAsciiWhitespace(f[1])));
  const absl::string_view value = absl::StripAsciiWhitespace(f[2]);
  double d = 0;
  if (!absl::SimpleAtod(value, &d)) {
    Fail(err, "value", absl::StrCat("expected a number, got \"", value, "\""), kReasonBadValue);
    return nullptr;
  }
  out->set_value(d);
  absl::StatusOr<int64_t> t = ParseEventTime(absl::StripAsciiWhitespace(f[3]));
  if (!t.ok()) {
    Fail(err, "time", std::string(t.status().message()), kReasonBadTime);
    return nullptr;
  }
  out->set_event_time_ms(*t);
  if (f.size() == 5 && !absl::StripAsciiWhitespace(f[4]).empty()) {
    auto* labels = out->mutable_labels();
    for (absl::string_view kv : absl::StrSplit(f[4], ';', absl::SkipWhitespace())) {
      kv = absl::StripAsciiWhitespace(kv);
      const size_t eq = kv.find('=');
      if (eq == absl::string_view::npos || eq == 0) {
        Fail(err, "labels", absl::StrCat("expected key=value, got \"", kv, "\""), kReasonBadLabel);
        return nullptr;
      }
      const std::string key(absl::StripAsciiWhitespace(kv.substr(0, eq)));
      if (labels->contains(key)) {
        Fail(err, "labels", absl::StrCat("duplicate key \"", key, "\""), kReasonBadLabel);
        return nullptr;
      }
      (*labels)[key] = std::string(absl::StripAsciiWhitespace(kv.substr(eq + 1)));
    }
  }
  return validator.Validate(*out, err);
}

const Hierarchy::Node* ParseJsonLine(absl::string_view line, const RecordValidator& validator,
                                     v1::Record* out, RecordError* err) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line.begin(), line.end());
  } catch (const nlohmann::json::parse_error& e) {
    Fail(err, "line", absl::StrCat("invalid JSON at byte ", e.byte), kReasonSyntax);
    return nullptr;
  } catch (const nlohmann::json::exception& e) {
    // E.g. out_of_range.406 "number overflow parsing '1e999'": drop the "[json.exception...] ".
    absl::string_view what = e.what();
    if (const size_t close = what.find("] "); close != absl::string_view::npos) {
      what.remove_prefix(close + 2);
    }
    Fail(err, "line", std::string(what), e.id == 406 ? kReasonNonFinite : kReasonSyntax);
    return nullptr;
  }
  if (!j.is_object()) {
    Fail(err, "line", absl::StrCat("expected a JSON object, got ", JsonTypeName(j)), kReasonSyntax);
    return nullptr;
  }
  for (const auto& [key, v] : j.items()) {
    if (key != "node" && key != "indicator" && key != "value" && key != "time" && key != "labels") {
      // An empty key still needs a visible field name in "<file>:<line>: <field>: ..." (fuzz/).
      Fail(err, key.empty() ? "\"\"" : key,
           "unknown field (expected node, indicator, value, time, labels)", kReasonSyntax);
      return nullptr;
    }
  }
  for (const char* name : {"node", "indicator"}) {
    auto it = j.find(name);
    if (it == j.end()) return Fail(err, name, "missing", kReasonMissingField), nullptr;
    if (!it->is_string()) {
      Fail(err, name, absl::StrCat("expected a string, got ", JsonTypeName(*it)), kReasonSyntax);
      return nullptr;
    }
  }
  out->set_node(j["node"].get<std::string>());
  out->set_indicator(j["indicator"].get<std::string>());
  auto value = j.find("value");
  if (value == j.end()) return Fail(err, "value", "missing", kReasonMissingField), nullptr;
  if (!value->is_number()) {
    Fail(err, "value", absl::StrCat("expected a number, got ", JsonTypeName(*value)),
         kReasonBadValue);
    return nullptr;
  }
  out->set_value(value->get<double>());
  auto time = j.find("time");
  if (time == j.end()) return Fail(err, "time", "missing", kReasonMissingField), nullptr;
  if (time->is_string()) {
    absl::StatusOr<int64_t> t = ParseEventTime(time->get<std::string>());
    if (!t.ok())
      return Fail(err, "time", std::string(t.status().message()), kReasonBadTime), nullptr;
    out->set_event_time_ms(*t);
  } else if (time->is_number_integer()) {
    out->set_event_time_ms(time->get<int64_t>());
  } else {
    Fail(err, "time",
         absl::StrCat("expected an RFC 3339 string or integer epoch milliseconds, got ",
                      time->is_number() ? time->dump() : JsonTypeName(*time)),
         kReasonBadTime);
    return nullptr;
  }
  auto labels = j.find("labels");
  if (labels != j.end() && !labels->is_null()) {
    if (!labels->is_object()) {
      Fail(err, "labels",
           absl::StrCat("expected an object of strings, got ", JsonTypeName(*labels)),
           kReasonBadLabel);
      return nullptr;
    }
    for (const auto& [k, v] : labels->items()) {
      if (!v.is_string()) {
        Fail(err, absl::StrCat("labels.", k),
             absl::StrCat("expected a string, got ", JsonTypeName(v)), kReasonBadLabel);
        return nullptr;
      }
      (*out->mutable_labels())[k] = v.get<std::string>();
    }
  }
  return validator.Validate(*out, err);
}

absl::StatusOr<std::unique_ptr<RecordSource>> OpenFileSource(InputFormat format,
                                                             const std::string& path,
                                                             const RecordValidator* validator) {
  const std::string scheme = format == InputFormat::kCsv ? "csv:" : "jsonl:";
  if (path == "-") {
    return std::unique_ptr<RecordSource>(
        new LineSource(format, &std::cin, nullptr, "-", "", validator));
  }
  auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*in) {
    const int e = errno;
    std::string msg = absl::StrCat("cannot open ", path, ": ", std::strerror(e));
    if (e == EACCES) return absl::PermissionDeniedError(msg);
    return absl::NotFoundError(msg);
  }
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  std::istream* raw = in.get();
  return std::unique_ptr<RecordSource>(new LineSource(
      format, raw, std::move(in), path, scheme + (ec ? path : abs.string()), validator));
}

std::unique_ptr<RecordSource> StreamSource(InputFormat format, std::istream* in, std::string name,
                                           const RecordValidator* validator) {
  return std::unique_ptr<RecordSource>(
      new LineSource(format, in, nullptr, std::move(name), "", validator));
}

absl::StatusOr<std::unique_ptr<RecordSource>> SimulatorSource(const Config& config,
                                                              SimulatorOptions options,
                                                              std::string identity,
                                                              const RecordValidator* validator,
                                                              const Clock* clock) {
  if (options.start_ms == 0) {
    // Paced runs start now; unpaced runs (benchmarks) run far ahead of the wall clock, so they
    // start a week back to stay clear of the max_future check.
    const int64_t step = std::max<int64_t>(1, absl::ToInt64Milliseconds(options.interval));
    int64_t start = clock->NowMillis();
    if (options.speedup == 0) start -= 7 * 86'400'000LL;
    options.start_ms = start / step * step;
  }
  absl::StatusOr<std::unique_ptr<Simulator>> sim = Simulator::Create(config, std::move(options));
  if (!sim.ok()) return sim.status();
  auto src = std::make_unique<SimSource>(*std::move(sim), std::move(identity), validator, clock);
  return std::unique_ptr<RecordSource>(std::move(src));
}

const Simulator* SimulatorOf(const RecordSource& source) {
  const auto* s = dynamic_cast<const SimSource*>(&source);
  return s == nullptr ? nullptr : s->sim();
}

}  // namespace cybersyn::ingest
