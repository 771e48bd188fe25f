#include "ingest/buffer_wal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace cybersyn::ingest {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  const int e = errno;
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(e)));
}

absl::Status FsyncPath(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Errno("opening", path);
  const int rc = ::fsync(fd);
  absl::Status s = rc == 0 ? absl::OkStatus() : Errno("fsync of", path);
  ::close(fd);
  return s;
}

}  // namespace

absl::StatusOr<BufferWal> ParseBufferWal(absl::string_view text) {
  if (text == "auto") return BufferWal::kAuto;
  if (text == "on") return BufferWal::kOn;
  if (text == "off") return BufferWal::kOff;
  return absl::InvalidArgumentError(absl::StrCat("expected auto, on or off, got \"", text, "\""));
}

absl::StatusOr<BufferWalChoice> ChooseBufferWal(BufferWal setting, const BufferWalInput& input) {
  if (setting == BufferWal::kOn) return BufferWalChoice{true, "--buffer-wal=on"};
  if (input.grpc) {
    if (setting == BufferWal::kOff) {
      return absl::InvalidArgumentError(
          "--buffer-wal=off: the gRPC Ingest listener acknowledges records as on disk (kill -9 "
          "safe), which needs the buffer's write-ahead log; use auto or on");
    }
    return BufferWalChoice{true, "a gRPC Ingest listener acknowledges records as on disk"};
  }
  if (input.identity.empty()) {
    if (setting == BufferWal::kOff) {
      return absl::InvalidArgumentError(
          "--buffer-wal=off needs an input that can be re-read after a crash (csv:PATH, "
          "jsonl:PATH, or sim: with a fixed --start); stdin and sim: without --start would lose "
          "the records read since the buffer's last flush");
    }
    return BufferWalChoice{true, "the input cannot be re-read after a crash"};
  }
  if (input.paced && setting == BufferWal::kAuto) {
    return BufferWalChoice{
        true, "the input is paced (--rate or the simulator's speedup); --buffer-wal=off overrides"};
  }
  return BufferWalChoice{false,
                         absl::StrCat("after a crash ", input.identity,
                                      " is re-read from the position stored with the last flush",
                                      setting == BufferWal::kOff ? " (--buffer-wal=off)" : "")};
}

std::string WalLessMarkerPath(const std::string& buffer_dir) {
  return absl::StrCat(buffer_dir, "/CYBERSYN-WAL-LESS-RUN");
}

absl::StatusOr<std::optional<std::string>> ReadWalLessMarker(const std::string& buffer_dir) {
  const std::string path = WalLessMarkerPath(buffer_dir);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::nullopt;
    return Errno("reading", path);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status WriteWalLessMarker(const std::string& buffer_dir, absl::string_view identity) {
  const std::string path = WalLessMarkerPath(buffer_dir);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("creating", tmp);
  size_t done = 0;
  while (done < identity.size()) {
    const ssize_t n = ::write(fd, identity.data() + done, identity.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status s = Errno("writing", tmp);
      ::close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    absl::Status s = Errno("fsync of", tmp);
    ::close(fd);
    return s;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("renaming to", path);
  return FsyncPath(buffer_dir, O_RDONLY | O_DIRECTORY);
}

absl::Status RemoveWalLessMarker(const std::string& buffer_dir) {
  const std::string path = WalLessMarkerPath(buffer_dir);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return Errno("removing", path);
  }
  return FsyncPath(buffer_dir, O_RDONLY | O_DIRECTORY);
}

}  // namespace cybersyn::ingest
