// RejectFile: lines the gateway could not send, kept so that a person can fix them and send the
// file as a new input (docs/ingest.md, "Rejected and set-aside records"). Each line is preceded by
// a comment line "# <why>" (both input formats skip '#' lines). Input lines rejected at validation
// are kept as they were read, after the CSV header in force for them, so the file is an input of
// the same format; records the publisher sets aside are written as JSON lines.
// The file is created with its directory on the first line.
// Thread-safety: Append may be called from any thread.
#ifndef CYBERSYN_INGEST_REJECT_FILE_H_
#define CYBERSYN_INGEST_REJECT_FILE_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "cybersyn/v1/record.pb.h"

namespace cybersyn::ingest {

class RejectFile {
 public:
  explicit RejectFile(std::string path) : path_(std::move(path)) {}
  ~RejectFile();
  RejectFile(const RejectFile&) = delete;
  RejectFile& operator=(const RejectFile&) = delete;

  // Appends "# <comment>" and `line` (when not empty), after `header` when it differs from the
  // header written last (a CSV header line; "" for none). `sync`: fsynced before returning (what
  // the publisher needs before it deletes a record from its buffer).
  absl::Status Append(absl::string_view comment, absl::string_view line,
                      absl::string_view header = "", bool sync = false);

  const std::string& path() const { return path_; }
  uint64_t records() const;  // lines appended (not counting comments and headers)

 private:
  const std::string path_;
  mutable absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
  std::string header_ ABSL_GUARDED_BY(mu_);
  uint64_t records_ ABSL_GUARDED_BY(mu_) = 0;
};

// `record` as one JSON line of the gateway's input format (epoch milliseconds for the time).
std::string RecordAsJsonLine(const v1::Record& record);

// A file name for a reject file made now: "<stem>-<UTC time, 20240501T120000Z>.<extension>".
std::string RejectFileName(absl::string_view stem, absl::string_view extension);

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_REJECT_FILE_H_
