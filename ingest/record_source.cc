#include "ingest/record_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/duration.h"
#include "common/number_grammar.h"
#include "common/safe_text.h"
#include "common/utf8.h"
#include "ingest/line_hashes.h"
#include "ingest/message_limit.h"
#include "nlohmann/json.hpp"

namespace cybersyn::ingest {
namespace {

constexpr const char* kColumnNames[5] = {"node", "indicator", "value", "time", "labels"};
constexpr absl::string_view kBom = "\xEF\xBB\xBF";

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

int ColumnOf(absl::string_view name) {
  for (int i = 0; i < 5; ++i) {
    if (absl::EqualsIgnoreCase(name, kColumnNames[i])) return i;
  }
  return -1;
}

bool IsDefault(const CsvColumns& c) {
  const CsvColumns d;
  return c.count == d.count && std::equal(c.index, c.index + 5, d.index);
}

std::string ColumnList(const CsvColumns& c) {
  std::vector<std::string> names(c.count);
  for (int i = 0; i < 5; ++i) {
    if (c.index[i] >= 0) names[c.index[i]] = kColumnNames[i];
  }
  return absl::StrJoin(names, ",");
}

// A string of a record is valid UTF-8 (protobuf refuses the whole batch otherwise).
bool CheckUtf8(absl::string_view field, absl::string_view what, absl::string_view s,
               RecordError* err) {
  const size_t ok = ValidUtf8Prefix(s);
  if (ok == s.size()) return true;
  return Fail(err, field,
              absl::StrCat(
                  what, " is not valid UTF-8 (byte ",
                  absl::StrCat("0x", absl::Hex(static_cast<unsigned char>(s[ok]), absl::kZeroPad2)),
                  " at offset ", ok, " of ", SafeQuote(s), ")"),
              kReasonNotUtf8);
}

// JSON lines: a SAX handler for the one flat object a line holds. It builds the record as the
// parser goes, notes the first problem (without stopping, so that a syntax error later in the
// line is what is reported), and rejects a key given twice.
class JsonRecordHandler {
 public:
  using json = nlohmann::json;
  explicit JsonRecordHandler(v1::Record* out) : out_(out) {}

  bool null() { return Scalar("null"); }
  bool boolean(bool) { return Scalar("boolean"); }
  bool number_integer(json::number_integer_t v) {
    if (Expecting(kValue) || Expecting(kTime)) {
      if (slot_ == kValue) out_->set_value(static_cast<double>(v));
      if (slot_ == kTime) out_->set_event_time_ms(v);
      return Done();
    }
    return Scalar("number");
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (Expecting(kValue)) {
      out_->set_value(static_cast<double>(v));
      return Done();
    }
    if (Expecting(kTime)) {
      absl::StatusOr<int64_t> ms = EpochMillisFromUnsigned(v);
      if (ms.ok()) {
        out_->set_event_time_ms(*ms);
      } else {
        Problem("time", std::string(ms.status().message()), kReasonBadTime);
      }
      return Done();
    }
    return Scalar("number");
  }
  bool number_float(json::number_float_t v, const std::string& text) {
    if (Expecting(kValue)) {
      out_->set_value(v);
      return Done();
    }
    if (Expecting(kTime)) {
      // An integer too large for int64 reads as a float: out of range, not a fraction.
      absl::StatusOr<EventTime> t = ParseEventTime(text);
      Problem("time",
              t.ok() || !IsIntegerSyntax(text)
                  ? absl::StrCat("expected an RFC 3339 string or integer epoch milliseconds, got ",
                                 text)
                  : std::string(t.status().message()),
              kReasonBadTime);
      return Done();
    }
    return Scalar("number");
  }
  bool string(std::string& v) {
    if (skip_ == 0 && depth_ == 1 && (slot_ == kNode || slot_ == kIndicator)) {
      if (slot_ == kNode) {
        out_->set_node(std::move(v));
      } else {
        out_->set_indicator(std::move(v));
      }
      return Done();
    }
    if (Expecting(kTime)) {
      absl::StatusOr<EventTime> t = ParseEventTime(v);
      if (t.ok()) {
        out_->set_event_time_ms(t->ms);
        form_ = t->form;
      } else {
        Problem("time", std::string(t.status().message()), kReasonBadTime);
      }
      return Done();
    }
    if (skip_ == 0 && depth_ == 2 && in_labels_) {
      (*out_->mutable_labels())[label_] = std::move(v);
      return true;
    }
    return Scalar("string");
  }
  bool binary(json::binary_t&) { return Scalar("binary"); }
  bool start_object(std::size_t) {
    if (depth_ == 0) {
      depth_ = 1;
      top_object_ = true;
      return true;
    }
    if (depth_ == 1 && slot_ == kLabels && skip_ == 0) {
      depth_ = 2;
      in_labels_ = true;
      return true;
    }
    return Nested("object");
  }
  bool end_object() {
    if (skip_ > 0) {
      --skip_;
      return true;
    }
    if (depth_ == 2) {
      depth_ = 1;
      in_labels_ = false;
      return Done();
    }
    depth_ = 0;
    return true;
  }
  bool start_array(std::size_t) {
    if (depth_ == 0) {
      top_type_ = "array";
      skip_ = 1;
      return true;
    }
    return Nested("array");
  }
  bool end_array() {
    if (skip_ > 0) --skip_;
    return true;
  }
  bool key(std::string& k) {
    if (skip_ > 0) return true;
    if (depth_ == 2) {
      if (out_->labels().contains(k)) {
        Problem("labels", absl::StrCat("duplicate key ", SafeQuote(k)), kReasonBadLabel);
      }
      label_ = std::move(k);
      return true;
    }
    slot_ = kUnknown;
    for (int i = 0; i < 5; ++i) {
      if (k == kColumnNames[i]) slot_ = static_cast<Slot>(i);
    }
    if (slot_ == kUnknown) {
      // An empty key still needs a visible field name in "<file>:<line>: <field>: ..." (fuzz/).
      Problem(k.empty() ? "\"\"" : SafeName(k),
              "unknown field (expected node, indicator, value, time, labels)", kReasonSyntax);
    } else if (seen_[slot_]) {
      Problem("line", absl::StrCat("duplicate key ", SafeQuote(k)), kReasonSyntax);
    }
    if (slot_ != kUnknown) seen_[slot_] = true;
    return true;
  }
  bool parse_error(std::size_t position, const std::string& token,
                   const nlohmann::detail::exception& ex) {
    syntax_ = true;
    if (ex.id == 406) {  // a number beyond a double's range
      if (depth_ == 1 && slot_ == kValue) {
        Fail(&syntax_err_, "value", NumberOutOfRangeMessage(token), kReasonBadValue);
      } else if (depth_ == 1 && slot_ == kTime) {
        Fail(&syntax_err_, "time",
             absl::StrCat(SafeName(token),
                          " is out of range for epoch milliseconds (a signed 64-bit integer)"),
             kReasonBadTime);
      } else {
        Fail(&syntax_err_, "line", absl::StrCat(NumberOutOfRangeMessage(token)), kReasonBadValue);
      }
      return false;
    }
    const bool utf8 = absl::StrContains(ex.what(), "ill-formed UTF-8");
    Fail(&syntax_err_, "line",
         absl::StrCat("invalid JSON at byte ", position, utf8 ? " (not valid UTF-8)" : ""),
         utf8 ? kReasonNotUtf8 : kReasonSyntax);
    return false;
  }

  // After the parse: the record's problem, if any (a syntax error before the first other one).
  bool Finish(RecordError* err) {
    if (syntax_) {
      *err = syntax_err_;
      return false;
    }
    if (!top_object_) {
      return Fail(err, "line", absl::StrCat("expected a JSON object, got ", top_type_),
                  kReasonSyntax);
    }
    if (!err_.field.empty()) {
      *err = err_;
      return false;
    }
    for (int i = 0; i < 4; ++i) {
      if (!seen_[i]) return Fail(err, kColumnNames[i], "missing", kReasonMissingField);
    }
    return true;
  }
  TimeForm form() const { return form_; }

 private:
  enum Slot { kNode, kIndicator, kValue, kTime, kLabels, kUnknown };

  bool Expecting(Slot s) const { return depth_ == 1 && skip_ == 0 && slot_ == s; }
  bool Done() { return true; }
  void Problem(std::string field, std::string problem, absl::string_view reason) {
    if (err_.field.empty()) Fail(&err_, field, std::move(problem), reason);
  }
  // A scalar where the slot wants another type.
  bool Scalar(const char* type) {
    if (skip_ > 0) return true;
    if (depth_ == 0) {
      top_type_ = type;
      return true;
    }
    TypeProblem(type);
    return true;
  }
  bool Nested(const char* type) {
    if (skip_ == 0) TypeProblem(type);
    ++skip_;
    return true;
  }
  void TypeProblem(const char* type) {
    if (depth_ == 2) {
      Problem(absl::StrCat("labels.", SafeName(label_)),
              absl::StrCat("expected a string, got ", type), kReasonBadLabel);
      return;
    }
    switch (slot_) {
      case kNode:
      case kIndicator:
        Problem(kColumnNames[slot_], absl::StrCat("expected a string, got ", type), kReasonSyntax);
        break;
      case kValue:
        Problem("value", absl::StrCat("expected a number, got ", type), kReasonBadValue);
        break;
      case kTime:
        Problem(
            "time",
            absl::StrCat("expected an RFC 3339 string or integer epoch milliseconds, got ", type),
            kReasonBadTime);
        break;
      case kLabels:
        if (std::strcmp(type, "null") == 0) break;  // no labels
        Problem("labels", absl::StrCat("expected an object of strings, got ", type),
                kReasonBadLabel);
        break;
      case kUnknown:
        break;  // reported at its key
    }
  }

  v1::Record* out_;
  int depth_ = 0;  // 1: in the record object, 2: in its labels
  int skip_ = 0;   // nesting inside a value of the wrong type (or a top-level array)
  bool in_labels_ = false;
  bool top_object_ = false;
  const char* top_type_ = "nothing";
  Slot slot_ = kUnknown;
  bool seen_[5] = {false, false, false, false, false};
  std::string label_;
  TimeForm form_ = TimeForm::kEpochMillis;
  bool syntax_ = false;
  RecordError syntax_err_;
  RecordError err_;
};

// A source of lines: CSV or JSON lines from a file or a stream.
class LineSource : public RecordSource {
 public:
  LineSource(InputFormat format, std::istream* in, std::unique_ptr<std::istream> owned,
             std::string name, std::string identity, const RecordValidator* validator,
             FileIdentity file)
      : format_(format),
        in_(in),
        owned_(std::move(owned)),
        name_(std::move(name)),
        identity_(std::move(identity)),
        validator_(validator),
        file_(file) {}

  Result Next(v1::Record* out, const Hierarchy::Node** enterprise, RecordError* err) override {
    while (true) {
      if (ended_) return Result::kEnd;
      if (!ReadLine()) {
        if (in_->bad() && !reported_io_error_) {
          reported_io_error_ = true;
          *err = RecordError();
          err->source = name_;
          err->line = lines_.line();
          Fail(err, "line", absl::StrCat("read error: ", std::strerror(errno)), kReasonSyntax);
          return Result::kError;
        }
        return Result::kEnd;
      }
      *err = RecordError();
      absl::string_view v;
      switch (Classify(&v, err)) {
        case LineKind::kSkip:
          continue;
        case LineKind::kBadHeader:
          ended_ = true;  // its lines cannot be mapped to columns
          return Reject(err);
        case LineKind::kData:
          break;
      }
      out->Clear();
      const Hierarchy::Node* ent = format_ == InputFormat::kCsv
                                       ? ParseCsvLine(v, *validator_, out, err, columns_)
                                       : ParseJsonLine(v, *validator_, out, err);
      if (ent == nullptr) return Reject(err);
      *enterprise = ent;
      return Result::kRecord;
    }
  }

  Result NextRef(RecordRef* out, const Hierarchy::Node** enterprise, RecordError* err) override {
    const Result r = Next(&record_, enterprise, err);
    if (r == Result::kRecord) {
      *out = RecordRef::Of(record_);
      out->line = lines_.line();
    }
    return r;
  }

  std::string Identity() const override { return identity_; }
  std::string Position() const override {
    lines_.Flush();
    return lines_.Position(file_);
  }
  absl::Status Seek(absl::string_view position) override {
    if (identity_.empty()) return absl::UnimplementedError(absl::StrCat(name_, " cannot seek"));
    absl::StatusOr<LinePosition> p = LinePosition::Parse(position);
    if (!p.ok()) return p.status();
    if (p->legacy) {
      // Stored by a gateway that kept no hash: resumed unchecked, as it used to be.
      Rewind(p->offset, p->line);
      if (!*in_) {
        return absl::FailedPreconditionError(
            absl::StrCat(name_, ": cannot resume at byte ", p->offset, " (file shorter?)"));
      }
      return absl::OkStatus();
    }
    Rewind(0, 0);
    std::string changed;
    while (lines_.line() < p->line) {
      if (!ReadLine(/*verify=*/true)) {
        return Changed(*p, absl::StrCat("it has only ", lines_.line(), " lines now"));
      }
      if (lines_.mismatch()) {
        return Changed(*p, absl::StrCat("line ", lines_.line(), " is not what was read before"));
      }
      absl::string_view v;
      RecordError ignored;
      (void)Classify(&v, &ignored);  // the headers before the position set the columns
    }
    if (lines_.offset() != p->offset || lines_.prefix_hash() != p->hash) {
      return Changed(
          *p, absl::StrCat("a line before line ", p->line + 1, " is not what was read before"));
    }
    ended_ = false;
    return lines_.StartRecording();
  }
  absl::Status SeekLine(int64_t line) override {
    if (line < 1) return absl::InvalidArgumentError("lines are numbered from 1");
    Rewind(0, 0);
    if (!identity_.empty()) {
      if (absl::Status s = lines_.StartRecording(); !s.ok()) return s;
    }
    while (lines_.line() < line - 1) {
      if (!ReadLine()) {
        return absl::OutOfRangeError(absl::StrCat(name_, " has only ", lines_.line(),
                                                  " lines; line ", line, " is past its end"));
      }
      absl::string_view v;
      RecordError ignored;
      (void)Classify(&v, &ignored);
    }
    return absl::OkStatus();
  }
  void SetStateDir(const std::string& dir) override {
    if (!identity_.empty()) lines_.SetFile(LineHashFilePath(dir, identity_));
  }

 private:
  enum class LineKind { kSkip, kBadHeader, kData };

  // Reads the next line into line_ (without its newline and a trailing CR); false at the end.
  bool ReadLine(bool verify = false) {
    if (!std::getline(*in_, line_)) return false;
    lines_.Add(line_, /*newline=*/!in_->eof(), verify);
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    return true;
  }

  // What line_ is: skipped (blank, comment, header), a bad header, or data (`v`, trimmed).
  LineKind Classify(absl::string_view* v, RecordError* err) {
    absl::string_view s = line_;
    if (absl::StartsWith(s, kBom)) s.remove_prefix(kBom.size());
    s = absl::StripAsciiWhitespace(s);
    if (s.empty() || s[0] == '#') return LineKind::kSkip;
    // Column names hold no digits and a data line always does (its value and time): most lines
    // skip the header check.
    if (format_ == InputFormat::kCsv && s.find_first_of("0123456789") == absl::string_view::npos) {
      CsvColumns columns;
      if (ParseCsvHeader(s, &columns, err)) {
        if (!err->field.empty()) return LineKind::kBadHeader;
        columns_ = columns;
        header_line_ = IsDefault(columns) ? std::string() : std::string(s);
        return LineKind::kSkip;
      }
    }
    *v = s;
    return LineKind::kData;
  }

  Result Reject(RecordError* err) {
    err->source = name_;
    err->line = lines_.line();
    err->raw_line = line_;
    err->header_line = header_line_;
    return Result::kError;
  }

  void Rewind(int64_t offset, int64_t line) {
    in_->clear();
    in_->seekg(offset);
    lines_.Reset(offset, line);
    columns_ = CsvColumns();
    header_line_.clear();
    ended_ = false;
  }

  absl::Status Changed(const LinePosition& p, std::string what) {
    std::string replaced;
    if (p.file.inode != 0 && (p.file.device != file_.device || p.file.inode != file_.inode)) {
      replaced = " (it is another file now: the path was replaced)";
    }
    return absl::FailedPreconditionError(
        absl::StrCat(name_, " changed before the point where the last run stopped (line ", p.line,
                     "): ", what, replaced));
  }

  InputFormat format_;
  std::istream* in_;
  std::unique_ptr<std::istream> owned_;
  std::string name_;
  std::string identity_;
  const RecordValidator* validator_;
  FileIdentity file_;
  mutable LineHashes lines_;  // Position flushes the per-line hashes
  std::string line_;
  v1::Record record_;  // what NextRef refers to
  CsvColumns columns_;
  std::string header_line_;  // the header in force, when not the default columns
  bool ended_ = false;       // a bad header ended the source
  bool reported_io_error_ = false;
};

class SimSource : public RecordSource {
 public:
  SimSource(std::unique_ptr<Simulator> sim, std::string identity, const RecordValidator* validator,
            const Clock* clock)
      : sim_(std::move(sim)), identity_(std::move(identity)), validator_(validator), clock_(clock) {
    const TimeBounds& b = validator_->time_bounds();
    max_future_ms_ = absl::ToInt64Milliseconds(b.max_future);
    max_age_ms_ = absl::ToInt64Milliseconds(b.max_age);
    min_ms_ = b.min_ms;
    SetNow(std::numeric_limits<int64_t>::min() / 2);  // until the first clock read: nothing
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
  // (in range for the clock) are checked, as RecordValidator does.
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
    // A slightly stale "now" is stricter than the real one for max_future, so the fast path never
    // accepts a record that full validation would reject. For max_age it would be laxer: with a
    // max_age the clock is read per record.
    if ((sim_->records_emitted() & 4095) == 1 || max_age_ms_ > 0) SetNow(clock_->NowMillis());
    const Hierarchy::Node* ent = p.enterprise;
    // In range: lo_ <= time < lo_ + span_, in one unsigned comparison.
    if (ent == nullptr || !std::isfinite(s.value) ||
        static_cast<uint64_t>(s.time_ms) - lo_ >= span_) [[unlikely]] {
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
  double speedup() const override {
    const SimulatorOptions& o = sim_->options();
    return o.realtime_from_ms > 0 && o.speedup > 0 && last_time_ >= o.realtime_from_ms ? 1.0
                                                                                       : o.speedup;
  }
  int64_t event_time_ms() const override { return last_time_; }
  const Simulator* sim() const { return sim_.get(); }

 private:
  // What the fast path does not accept: full validation gives the exact message (out of line,
  // so that NextRef stays small). The cached "now" is renewed too (0 after a Seek).
  [[gnu::noinline]] Result ValidateFully(const RecordRef& ref, const Hierarchy::Node** enterprise,
                                         RecordError* err) {
    SetNow(clock_->NowMillis());
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

  // The range of times the fast path accepts at `now` (an empty one when there is none).
  void SetNow(int64_t now) {
    const int64_t hi = now + max_future_ms_;
    const int64_t lo = max_age_ms_ > 0 ? std::max(min_ms_, now - max_age_ms_) : min_ms_;
    lo_ = static_cast<uint64_t>(lo);
    span_ = hi >= lo ? static_cast<uint64_t>(hi) - lo_ + 1 : 0;  // 0: none, all take the slow path
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
  uint64_t lo_ = 0;  // the fast path's times: [lo_, lo_ + span_) as unsigned (SetNow)
  uint64_t span_ = 0;
  int64_t max_future_ms_ = 0;
  int64_t max_age_ms_ = 0;
  int64_t min_ms_ = 0;
};

// The largest part of a record, to name in the size message.
absl::string_view LargestField(const v1::Record& r) {
  size_t labels = 0;
  for (const auto& [k, v] : r.labels()) labels += k.size() + v.size();
  if (labels >= r.node().size() && labels >= r.indicator().size()) return "labels";
  return r.node().size() >= r.indicator().size() ? "node" : "indicator";
}

}  // namespace

RecordSource::Result RecordSource::NextRef(RecordRef* out, const Hierarchy::Node** enterprise,
                                           RecordError* err) {
  const Result r = Next(&ref_record_, enterprise, err);
  if (r == Result::kRecord) *out = RecordRef::Of(ref_record_);
  return r;
}

absl::Status RecordSource::SeekLine(int64_t) {
  return absl::UnimplementedError("this input has no lines to start at");
}

std::string RecordError::ToString() const {
  return SafeLine(absl::StrCat(source, ":", line, ": ", field, ": ", problem));
}

RecordValidator::RecordValidator(const Config& config, const Clock* clock)
    : config_(config), clock_(clock) {
  bounds_.min_ms = config.gateway.min_time_ms;
  bounds_.max_age = config.gateway.max_age;
  bounds_.max_future = config.gateway.max_future;
}

const Hierarchy::Node* RecordValidator::Validate(const v1::Record& r, RecordError* err,
                                                 TimeForm form) const {
  if (r.node().empty()) return Fail(err, "node", "missing", kReasonMissingField), nullptr;
  if (!CheckUtf8("node", "the node", r.node(), err)) return nullptr;
  const Hierarchy::Node* node = config_.hierarchy->Find(r.node());
  if (node == nullptr) {
    Fail(err, "node", absl::StrCat("unknown node ", SafeQuote(r.node())), kReasonUnknownNode);
    return nullptr;
  }
  absl::StatusOr<const Hierarchy::Node*> ent = config_.hierarchy->EnterpriseOf(r.node());
  if (!ent.ok()) {
    Fail(err, "node", absl::StrCat(SafeQuote(r.node()), " is above the enterprise level"),
         kReasonUnknownNode);
    return nullptr;
  }
  if (r.indicator().empty()) return Fail(err, "indicator", "missing", kReasonMissingField), nullptr;
  if (!CheckUtf8("indicator", "the indicator", r.indicator(), err)) return nullptr;
  if (config_.FindIndicator(r.indicator()) == nullptr) {
    Fail(err, "indicator", absl::StrCat("unknown indicator ", SafeQuote(r.indicator())),
         kReasonUnknownIndicator);
    return nullptr;
  }
  if (!std::isfinite(r.value())) {
    Fail(err, "value", absl::StrCat("must be finite, got ", r.value()), kReasonNonFinite);
    return nullptr;
  }
  if (std::optional<TimeProblem> p =
          CheckEventTime(r.event_time_ms(), form, bounds_, clock_->NowMillis())) {
    Fail(err, "time", std::move(p->message),
         p->kind == TimeProblem::Kind::kTooFarAhead ? kReasonFuture : kReasonBadTime);
    return nullptr;
  }
  if (r.labels_size() > config_.gateway.max_labels) {
    Fail(err, "labels",
         absl::StrCat(r.labels_size(), " labels, at most ", config_.gateway.max_labels, " allowed"),
         kReasonTooManyLabels);
    return nullptr;
  }
  size_t label_bytes = 0;
  for (const auto& [k, v] : r.labels()) {
    if (k.empty()) return Fail(err, "labels", "empty label key", kReasonBadLabel), nullptr;
    if (!CheckUtf8("labels", "a key", k, err)) return nullptr;
    if (!CheckUtf8("labels", absl::StrCat("the value of ", SafeQuote(k)), v, err)) return nullptr;
    label_bytes += k.size() + v.size() + 16;
  }
  if (const uint64_t limit = message_limit(); limit > 0) {
    const std::string& e = (*ent)->path;
    const uint64_t room = MaxBatchValueBytes(limit, e.size());
    // Exact only when it could matter: the bound below is never smaller than the record.
    const uint64_t bound =
        r.node().size() + r.indicator().size() + label_bytes + 2 * e.size() + 128;
    if (bound > room) {
      const uint64_t size = SingleRecordBatchBytes(r, e, config_.gateway.id);
      if (size > room) {
        Fail(err, LargestField(r),
             absl::StrCat("record of ", FormatMessageBytes(size), " exceeds the ",
                          FormatMessageBytes(limit), " message limit"),
             kReasonTooLarge);
        return nullptr;
      }
    }
  }
  return *ent;
}

bool ParseCsvHeader(absl::string_view line, CsvColumns* columns, RecordError* err) {
  std::vector<std::string> f;
  RecordError split;
  if (!SplitCsv(line, &f, &split)) return false;
  int known = 0;
  for (const std::string& name : f) known += ColumnOf(absl::StripAsciiWhitespace(name)) >= 0;
  if (known < 2) return false;
  CsvColumns c;
  for (int& i : c.index) i = -1;
  c.count = static_cast<int>(f.size());
  for (int i = 0; i < c.count; ++i) {
    const absl::string_view name = absl::StripAsciiWhitespace(f[i]);
    const int col = ColumnOf(name);
    if (col < 0) {
      Fail(err, "header",
           absl::StrCat("unknown column ", SafeQuote(name),
                        " (expected node, indicator, value, time, labels)"),
           kReasonBadHeader);
      return true;
    }
    if (c.index[col] >= 0) {
      Fail(err, "header", absl::StrCat("column ", SafeQuote(name), " given twice"),
           kReasonBadHeader);
      return true;
    }
    c.index[col] = i;
  }
  for (int col = 0; col < 4; ++col) {
    if (c.index[col] < 0) {
      Fail(err, "header", absl::StrCat("no ", kColumnNames[col], " column"), kReasonBadHeader);
      return true;
    }
  }
  *columns = c;
  return true;
}

const Hierarchy::Node* ParseCsvLine(absl::string_view line, const RecordValidator& validator,
                                    v1::Record* out, RecordError* err, const CsvColumns& columns) {
  out->Clear();
  std::vector<std::string> f;
  if (!SplitCsv(line, &f, err)) return nullptr;
  if (static_cast<int>(f.size()) > columns.count) {
    Fail(err, "line",
         absl::StrCat("expected at most ", columns.count, " fields (", ColumnList(columns),
                      "), got ", f.size()),
         kReasonSyntax);
    return nullptr;
  }
  auto field = [&](int col) -> absl::string_view {
    const int i = columns.index[col];
    return i >= 0 && i < static_cast<int>(f.size()) ? absl::StripAsciiWhitespace(f[i])
                                                    : absl::string_view();
  };
  for (int col = 0; col < 4; ++col) {
    if (field(col).empty())
      return Fail(err, kColumnNames[col], "missing", kReasonMissingField), nullptr;
  }
  out->set_node(std::string(field(0)));
  out->set_indicator(std::string(field(1)));
  absl::StatusOr<double> d = ParseNumber(field(2));
  if (!d.ok()) {
    const bool finite = !absl::StartsWith(d.status().message(), "must be finite");
    Fail(err, "value", std::string(d.status().message()),
         finite ? kReasonBadValue : kReasonNonFinite);
    return nullptr;
  }
  out->set_value(*d);
  absl::StatusOr<EventTime> t = ParseEventTime(field(3));
  if (!t.ok()) {
    Fail(err, "time", std::string(t.status().message()), kReasonBadTime);
    return nullptr;
  }
  out->set_event_time_ms(t->ms);
  if (const absl::string_view labels = field(4); !labels.empty()) {
    auto* map = out->mutable_labels();
    for (absl::string_view kv : absl::StrSplit(labels, ';', absl::SkipWhitespace())) {
      kv = absl::StripAsciiWhitespace(kv);
      const size_t eq = kv.find('=');
      if (eq == absl::string_view::npos || eq == 0) {
        Fail(err, "labels", absl::StrCat("expected key=value, got ", SafeQuote(kv)),
             kReasonBadLabel);
        return nullptr;
      }
      const std::string key(absl::StripAsciiWhitespace(kv.substr(0, eq)));
      if (map->contains(key)) {
        Fail(err, "labels", absl::StrCat("duplicate key ", SafeQuote(key)), kReasonBadLabel);
        return nullptr;
      }
      (*map)[key] = std::string(absl::StripAsciiWhitespace(kv.substr(eq + 1)));
    }
  }
  return validator.Validate(*out, err, t->form);
}

const Hierarchy::Node* ParseJsonLine(absl::string_view line, const RecordValidator& validator,
                                     v1::Record* out, RecordError* err) {
  out->Clear();
  JsonRecordHandler handler(out);
  (void)nlohmann::json::sax_parse(line.begin(), line.end(), &handler);
  if (!handler.Finish(err)) return nullptr;
  return validator.Validate(*out, err, handler.form());
}

absl::StatusOr<std::unique_ptr<RecordSource>> OpenFileSource(InputFormat format,
                                                             const std::string& path,
                                                             const RecordValidator* validator) {
  const std::string scheme = format == InputFormat::kCsv ? "csv:" : "jsonl:";
  if (path == "-") {
    return std::unique_ptr<RecordSource>(
        new LineSource(format, &std::cin, nullptr, "-", "", validator, FileIdentity()));
  }
  auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*in) {
    const int e = errno;
    std::string msg = absl::StrCat("cannot open ", path, ": ", std::strerror(e));
    if (e == EACCES) return absl::PermissionDeniedError(msg);
    return absl::NotFoundError(msg);
  }
  FileIdentity file;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    file.device = static_cast<uint64_t>(st.st_dev);
    file.inode = static_cast<uint64_t>(st.st_ino);
  }
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  std::istream* raw = in.get();
  return std::unique_ptr<RecordSource>(new LineSource(
      format, raw, std::move(in), path, scheme + (ec ? path : abs.string()), validator, file));
}

std::unique_ptr<RecordSource> StreamSource(InputFormat format, std::istream* in, std::string name,
                                           const RecordValidator* validator) {
  return std::unique_ptr<RecordSource>(
      new LineSource(format, in, nullptr, std::move(name), "", validator, FileIdentity()));
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
