#include "ingest/line_hashes.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace cybersyn::ingest {
namespace {

constexpr uint64_t kSeed = 0x9E3779B97F4A7C15ULL;
constexpr int64_t kReadChunk = 16384;  // hashes read back at a time when verifying

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// A fast, stable (across runs and builds) hash; detects accidental changes, not attacks.
uint64_t HashBytes(absl::string_view s) {
  uint64_t h = kSeed ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = Mix(h ^ w);
  }
  uint64_t w = 0;
  if (i < s.size()) std::memcpy(&w, s.data() + i, s.size() - i);
  return Mix(h ^ w ^ (uint64_t{s.size() - i} << 59));
}

}  // namespace

absl::StatusOr<LinePosition> LinePosition::Parse(absl::string_view text) {
  const std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  LinePosition p;
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat("bad stored position \"", text, "\""));
  };
  if (parts.size() == 3) {
    int seen = 0;
    if (!absl::SimpleAtoi(parts[0], &p.offset) || !absl::SimpleAtoi(parts[1], &p.line) ||
        !absl::SimpleAtoi(parts[2], &seen)) {
      return bad();
    }
    p.legacy = true;
    return p;
  }
  if (parts.size() != 6 || parts[0] != "2" || !absl::SimpleAtoi(parts[1], &p.offset) ||
      !absl::SimpleAtoi(parts[2], &p.line) || !absl::SimpleHexAtoi(parts[3], &p.hash) ||
      !absl::SimpleAtoi(parts[4], &p.file.device) || !absl::SimpleAtoi(parts[5], &p.file.inode) ||
      p.offset < 0 || p.line < 0) {
    return bad();
  }
  return p;
}

std::string LineHashFilePath(const std::string& dir, const std::string& identity) {
  return absl::StrCat(dir, "/inputs/", absl::Hex(HashBytes(identity), absl::kZeroPad16), ".lines");
}

LineHashes::~LineHashes() {
  Flush();
  if (fd_ >= 0) ::close(fd_);
}

void LineHashes::SetFile(const std::string& path) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  path_ = path;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
}

void LineHashes::Reset(int64_t offset, int64_t line) {
  offset_ = offset;
  line_ = line;
  prefix_ = 0;
  prefix_known_ = offset == 0 && line == 0;
  recording_ = false;
  mismatch_ = false;
  pending_.clear();
  kept_.clear();
  kept_base_ = -1;
  kept_short_ = false;
}

void LineHashes::Add(absl::string_view line, bool newline, bool verify) {
  if (!recording_ && !verify && line_ == 0) (void)StartRecording();  // a fresh read
  const uint64_t h = HashBytes(line) ^ (newline ? 1 : 0);
  ++line_;
  offset_ += static_cast<int64_t>(line.size()) + (newline ? 1 : 0);
  prefix_ = Mix(prefix_ ^ h) + static_cast<uint64_t>(line_);
  if (verify) {
    uint32_t kept = 0;
    if (Kept(line_, &kept) && kept != static_cast<uint32_t>(h)) mismatch_ = true;
  } else if (recording_ && fd_ >= 0) {
    pending_.push_back(static_cast<uint32_t>(h));
    if (pending_.size() >= 16384) Flush();
  }
}

absl::Status LineHashes::StartRecording() {
  recording_ = true;
  pending_.clear();
  written_ = line_;
  kept_.clear();
  kept_base_ = -1;
  if (fd_ >= 0 && ::ftruncate(fd_, static_cast<off_t>(line_) * 4) != 0) {
    // Without the file a change is still found, only not its line.
    ::close(fd_);
    fd_ = -1;
  }
  return absl::OkStatus();
}

void LineHashes::Flush() {
  if (fd_ < 0 || pending_.empty()) return;
  const size_t bytes = pending_.size() * 4;
  if (::pwrite(fd_, pending_.data(), bytes, static_cast<off_t>(written_) * 4) ==
      static_cast<ssize_t>(bytes)) {
    written_ += static_cast<int64_t>(pending_.size());
  } else {
    ::close(fd_);  // a short file only means a change is found without its line
    fd_ = -1;
  }
  pending_.clear();
}

bool LineHashes::Kept(int64_t line, uint32_t* hash) {
  if (fd_ < 0) return false;
  const int64_t end = kept_base_ + static_cast<int64_t>(kept_.size());
  if (kept_base_ < 0 || line <= kept_base_ || line > end) {
    if (kept_base_ >= 0 && line > end && kept_short_) return false;  // past the file's end
    kept_.resize(kReadChunk);
    const ssize_t n = ::pread(fd_, kept_.data(), kReadChunk * 4, static_cast<off_t>(line - 1) * 4);
    kept_.resize(n > 0 ? static_cast<size_t>(n) / 4 : 0);
    kept_base_ = line - 1;
    kept_short_ = kept_.size() < static_cast<size_t>(kReadChunk);
    if (kept_.empty()) return false;
  }
  *hash = kept_[static_cast<size_t>(line - 1 - kept_base_)];
  return true;
}

std::string LineHashes::Position(const FileIdentity& file) const {
  if (!prefix_known_) return absl::StrCat(offset_, ":", line_, ":1");
  return absl::StrCat("2:", offset_, ":", line_, ":", absl::Hex(prefix_, absl::kZeroPad16), ":",
                      file.device, ":", file.inode);
}

}  // namespace cybersyn::ingest
