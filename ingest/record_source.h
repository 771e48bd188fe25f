// Record sources of the gateway and validation at the edge.
//
// Input formats (docs/ingest.md has the full description and an example):
//   CSV:         node,indicator,value,time[,labels]      labels = key=value;key=value
//                A header line names the columns, in any order (case and spaces around names do
//                not matter); one anywhere in the file sets the columns for the lines after it.
//                Fields may be double-quoted ("" for a quote inside).
//   JSON lines:  {"node": "...", "indicator": "...", "value": 1.5, "time": "RFC 3339" | epoch_ms,
//                 "labels": {"k": "v"}}                   one object per line; a key given twice
//                is an error.
// Both: blank lines and lines starting with '#' are skipped, a UTF-8 byte order mark at the start
// of a line is dropped, times follow common/time_grammar.h and numbers common/number_grammar.h,
// every string must be valid UTF-8.
//
// Every rejected record is reported as "<file>:<line>: <field>: <problem>" and carries a short
// reason for the rejected-records metric. Input text in a problem is escaped (common/safe_text.h).
// Nothing rejected is ever published.
//
// A file source can resume after a restart: its position names the byte offset and line it
// reached and a hash of everything before it, and a per-line hash file in the gateway's state
// directory lets it name the first line that changed when the file is no longer what was read.
//
// Thread-safety: a source is used by one thread. RecordValidator is thread-safe; its message
// limit may be lowered at any time (SetMessageLimit).
#ifndef CYBERSYN_INGEST_RECORD_SOURCE_H_
#define CYBERSYN_INGEST_RECORD_SOURCE_H_

#include <atomic>
#include <cstdint>
#include <fstream>
#include <istream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/time_grammar.h"
#include "cybersyn/v1/record.pb.h"
#include "ingest/record_ref.h"
#include "ingest/simulator.h"

namespace cybersyn::ingest {

// Reasons (metric label values) for rejected records.
inline constexpr absl::string_view kReasonSyntax = "syntax";
inline constexpr absl::string_view kReasonMissingField = "missing_field";
inline constexpr absl::string_view kReasonUnknownNode = "unknown_node";
inline constexpr absl::string_view kReasonUnknownIndicator = "unknown_indicator";
inline constexpr absl::string_view kReasonBadValue = "bad_value";
inline constexpr absl::string_view kReasonNonFinite = "non_finite";
inline constexpr absl::string_view kReasonBadTime = "bad_time";
inline constexpr absl::string_view kReasonFuture = "future";
inline constexpr absl::string_view kReasonBadLabel = "bad_label";
inline constexpr absl::string_view kReasonTooManyLabels = "too_many_labels";
inline constexpr absl::string_view kReasonNotUtf8 = "not_utf8";
inline constexpr absl::string_view kReasonTooLarge = "too_large";
inline constexpr absl::string_view kReasonBadHeader = "bad_header";

// One rejected record.
struct RecordError {
  std::string source;  // file name, "-" for stdin, "grpc"
  int64_t line = 0;    // 1-based line (or record index for gRPC)
  std::string field;   // "node", "value", "labels", "line" (the whole line), ...
  std::string problem;
  std::string reason;  // one of the kReason* values
  // The input line as read (file sources; for the reject file) and the CSV header line in force
  // for it ("" when the columns are the default ones).
  std::string raw_line;
  std::string header_line;
  // "<source>:<line>: <field>: <problem>", safe to print (control characters escaped).
  std::string ToString() const;
};

// Checks a parsed record against the config and the clock: node known and at or below the
// enterprise level, indicator known, value finite, time in range (common/time_grammar.h, with
// gateway.min_time, max_age and max_future), at most gateway.max_labels labels with non-empty
// keys, every string valid UTF-8, and the record small enough for a Kafka message of its own
// (the message limit, once set).
class RecordValidator {
 public:
  // `config` and `clock` must outlive the validator.
  RecordValidator(const Config& config, const Clock* clock);
  // The record's enterprise node, or nullptr with `err` filled (field, problem, reason; the
  // caller sets source and line). `form` is how its time was written (names epoch seconds).
  const Hierarchy::Node* Validate(const v1::Record& record, RecordError* err,
                                  TimeForm form = TimeForm::kEpochMillis) const;
  // Records whose RecordBatch alone would exceed `bytes` (ingest/message_limit.h) are rejected
  // from now on ("labels: record of 1.2 MB exceeds the 1 MB message limit"); 0: no check.
  void SetMessageLimit(uint64_t bytes) { message_limit_.store(bytes, std::memory_order_relaxed); }
  uint64_t message_limit() const { return message_limit_.load(std::memory_order_relaxed); }
  const Config& config() const { return config_; }
  const TimeBounds& time_bounds() const { return bounds_; }

 private:
  const Config& config_;
  const Clock* clock_;
  TimeBounds bounds_;
  std::atomic<uint64_t> message_limit_{0};
};

// Where records come from. Sources that can resume after a restart report an opaque position
// after each record; the gateway persists it with the buffered batches and seeks on restart.
class RecordSource {
 public:
  enum class Result { kRecord, kError, kEnd };
  virtual ~RecordSource() = default;
  // The next record with its enterprise (validated), or an error (the record is skipped), or the
  // end. An unreadable input ends the source with an error reported once (field "line").
  virtual Result Next(v1::Record* out, const Hierarchy::Node** enterprise, RecordError* err) = 0;
  // As Next, by reference (what the gateway encodes from); `out` stays valid until the next call.
  // The default reads into a v1::Record the source keeps; the simulator fills `out` from strings
  // it owns, without building a record.
  virtual Result NextRef(RecordRef* out, const Hierarchy::Node** enterprise, RecordError* err);
  // Stable identity ("csv:/abs/path", "sim:small:seed=1"); a stored position is used only if the
  // identity matches. Empty: the source cannot resume (stdin).
  virtual std::string Identity() const = 0;
  // Position just after the last record returned by Next.
  virtual std::string Position() const = 0;
  // Continues after `position` (from Position() of an earlier run with the same Identity()).
  // FAILED_PRECONDITION when the input is no longer what that run read before the position (a
  // file changed in place or replaced): the message names the first changed line where known.
  virtual absl::Status Seek(absl::string_view position) = 0;
  // Starts at line `line` (1-based) instead, skipping the lines before it (a CSV header among them
  // still sets the columns). UNIMPLEMENTED for sources without lines; OUT_OF_RANGE past the end.
  virtual absl::Status SeekLine(int64_t line);
  // A directory where the source may keep files across runs (the gateway's buffer directory):
  // a file source keeps its per-line hashes there. Call before Seek/SeekLine/Next.
  virtual void SetStateDir(const std::string& dir) {}
  // For pacing live sources: event time runs this much faster than wall time; 0 = unpaced. A
  // paced source may change it between records (a fast replay that continues live): the gateway
  // paces from that record on at the new speed.
  virtual double speedup() const { return 0; }
  // Event time of the last record returned (pacing).
  virtual int64_t event_time_ms() const { return 0; }

 private:
  v1::Record ref_record_;  // what the default NextRef refers to
};

enum class InputFormat { kCsv, kJsonLines };

// CSV columns (a header line sets them): which field of a line holds each of the five values.
struct CsvColumns {
  // Index of node, indicator, value, time, labels in a line; -1: absent (labels only).
  int index[5] = {0, 1, 2, 3, 4};
  int count = 5;  // fields a line may have
};

// Whether `line` is a CSV header (two or more known column names, any case, spaces trimmed), and
// if so its columns; a header naming an unknown column, one twice, or missing one of node,
// indicator, value, time fills `err` (field "header") and returns true with `columns` unchanged.
bool ParseCsvHeader(absl::string_view line, CsvColumns* columns, RecordError* err);

// CSV or JSON lines from a file (`path`) or stdin (`path` == "-").
// NotFound / PermissionDenied when the file cannot be opened.
absl::StatusOr<std::unique_ptr<RecordSource>> OpenFileSource(InputFormat format,
                                                             const std::string& path,
                                                             const RecordValidator* validator);
// The same over a stream (tests, stdin); `name` is used in messages. Cannot seek.
std::unique_ptr<RecordSource> StreamSource(InputFormat format, std::istream* in, std::string name,
                                           const RecordValidator* validator);

// The simulator as a source (records are valid by construction but still validated).
// options.start_ms == 0 is replaced by the clock's now, rounded down to the interval.
absl::StatusOr<std::unique_ptr<RecordSource>> SimulatorSource(const Config& config,
                                                              SimulatorOptions options,
                                                              std::string identity,
                                                              const RecordValidator* validator,
                                                              const Clock* clock);
// The simulator inside a SimulatorSource (for writing the ground truth), or nullptr.
const Simulator* SimulatorOf(const RecordSource& source);

// Parses one CSV / JSON line into `out` (cleared first) and validates it. Exposed for the fuzz
// targets and tests.
const Hierarchy::Node* ParseCsvLine(absl::string_view line, const RecordValidator& validator,
                                    v1::Record* out, RecordError* err,
                                    const CsvColumns& columns = CsvColumns());
const Hierarchy::Node* ParseJsonLine(absl::string_view line, const RecordValidator& validator,
                                     v1::Record* out, RecordError* err);

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_RECORD_SOURCE_H_
