// LineHashes: what a file source remembers of the lines it read, so that a later run can tell
// whether the file is still what was read before the point where it resumes.
//
// Every line gets a 64-bit hash; the hashes of all lines so far chain into one prefix hash, which
// the source's position carries with the byte offset and line number
// ("2:offset:line:hash:dev:ino"). A resume re-reads the file up to that line and compares the
// prefix hash. To name the first line that changed, the low 32 bits of every line's hash are also
// kept in a file of its own (4 bytes a line, `<state dir>/inputs/<hash of the input's
// identity>.lines`), written as lines are read and flushed with every position. Without that file
// (stdin, no state dir, or it was lost) a change is still found, only not its line.
//
// Thread-safety: used by one thread (the source's).
#ifndef CYBERSYN_INGEST_LINE_HASHES_H_
#define CYBERSYN_INGEST_LINE_HASHES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cybersyn::ingest {

// Where a file was when it was opened (stat): a change tells that the path was replaced.
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
};

// A stored position of a line source.
struct LinePosition {
  int64_t offset = 0;
  int64_t line = 0;
  uint64_t hash = 0;
  FileIdentity file;
  bool legacy = false;  // "offset:line:seen" of gateways that kept no hash: not verifiable
  // INVALID_ARGUMENT `bad stored position "<text>"`.
  static absl::StatusOr<LinePosition> Parse(absl::string_view text);
};

// The per-line hash file of the input named `identity` under the state directory `dir`.
std::string LineHashFilePath(const std::string& dir, const std::string& identity);

class LineHashes {
 public:
  LineHashes() = default;
  ~LineHashes();
  LineHashes(const LineHashes&) = delete;
  LineHashes& operator=(const LineHashes&) = delete;

  // Keeps per-line hashes in `path` (created with its directory); without it none are kept.
  void SetFile(const std::string& path);
  // Back to byte `offset`, line `line`: (0, 0) is the start. From any other point the prefix hash
  // is unknown, and positions are written in the legacy form. Unflushed hashes are dropped.
  void Reset(int64_t offset, int64_t line);
  // Counts one line (its bytes without the newline; `newline`: it had one). `verify`: compares
  // its hash with the one kept for that line number (mismatch() tells), instead of keeping it.
  void Add(absl::string_view line, bool newline, bool verify);
  // Keeps the hashes of the lines from now on, after the line() kept ones (the file is cut there).
  absl::Status StartRecording();
  // Writes the hashes not yet written to the file.
  void Flush();

  int64_t line() const { return line_; }
  int64_t offset() const { return offset_; }
  uint64_t prefix_hash() const { return prefix_; }
  bool mismatch() const { return mismatch_; }
  // The position just after the last line counted.
  std::string Position(const FileIdentity& file) const;

 private:
  // The kept hash of line `line` (1-based), or false when the file has none.
  bool Kept(int64_t line, uint32_t* hash);

  std::string path_;
  int fd_ = -1;
  int64_t offset_ = 0;
  int64_t line_ = 0;
  uint64_t prefix_ = 0;
  bool prefix_known_ = true;
  bool recording_ = false;
  bool mismatch_ = false;
  int64_t written_ = 0;            // lines whose hashes are in the file
  std::vector<uint32_t> pending_;  // hashes of the lines after them
  std::vector<uint32_t> kept_;     // read back for verifying: lines kept_base_+1 ...
  int64_t kept_base_ = -1;
  bool kept_short_ = false;  // the last read reached the file's end
};

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_LINE_HASHES_H_
