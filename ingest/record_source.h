// Record sources of the gateway and validation at the edge.
//
// Input formats (docs/ingest.md has the full description and an example):
//   CSV:         node,indicator,value,time[,labels]      labels = key=value;key=value
//                an optional header line starting with "node," and '#' comment lines are skipped;
//                fields may be double-quoted ("" for a quote inside).
//   JSON lines:  {"node": "...", "indicator": "...", "value": 1.5, "time": "RFC 3339" | epoch_ms,
//                 "labels": {"k": "v"}}                   one object per line, blank lines skipped
// Time is RFC 3339 ("2024-05-01T12:00:00Z", offsets allowed) or integer epoch milliseconds.
//
// Every rejected record is reported as "<file>:<line>: <field>: <problem>" and carries a short
// reason for the rejected-records metric. Nothing rejected is ever published.
//
// Thread-safety: a source is used by one thread. RecordValidator is immutable and thread-safe.
#ifndef CYBERSYN_INGEST_RECORD_SOURCE_H_
#define CYBERSYN_INGEST_RECORD_SOURCE_H_

#include <cstdint>
#include <fstream>
#include <istream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "common/config.h"
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

// One rejected record.
struct RecordError {
  std::string source;  // file name, "-" for stdin, "grpc"
  int64_t line = 0;    // 1-based line (or record index for gRPC)
  std::string field;   // "node", "value", "labels", "line" (the whole line), ...
  std::string problem;
  std::string reason;  // one of the kReason* values
  // "<source>:<line>: <field>: <problem>"
  std::string ToString() const;
};

// Checks a parsed record against the config and the clock: node known and at or below the
// enterprise level, indicator known, value finite, time not further ahead than
// gateway.max_future, at most gateway.max_labels labels with non-empty keys.
class RecordValidator {
 public:
  // `config` and `clock` must outlive the validator.
  RecordValidator(const Config& config, const Clock* clock);
  // The record's enterprise node, or nullptr with `err` filled (field, problem, reason; the
  // caller sets source and line).
  const Hierarchy::Node* Validate(const v1::Record& record, RecordError* err) const;
  const Config& config() const { return config_; }

 private:
  const Config& config_;
  const Clock* clock_;
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
  virtual absl::Status Seek(absl::string_view position) = 0;
  // For pacing live sources: event time runs this much faster than wall time; 0 = unpaced.
  virtual double speedup() const { return 0; }
  // Event time of the last record returned (pacing).
  virtual int64_t event_time_ms() const { return 0; }

 private:
  v1::Record ref_record_;  // what the default NextRef refers to
};

enum class InputFormat { kCsv, kJsonLines };

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

// Parses one CSV / JSON line into `out` and validates it. Exposed for the gRPC path and tests.
const Hierarchy::Node* ParseCsvLine(absl::string_view line, const RecordValidator& validator,
                                    v1::Record* out, RecordError* err);
const Hierarchy::Node* ParseJsonLine(absl::string_view line, const RecordValidator& validator,
                                     v1::Record* out, RecordError* err);

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_RECORD_SOURCE_H_
