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

// Written by WAL-less runs of earlier versions.
std::string LegacyMarkerPath(const std::string& buffer_dir) {
  return absl::StrCat(buffer_dir, "/CYBERSYN-WAL-LESS-RUN");
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
  if (input.mqtt) {
    if (setting == BufferWal::kOff) {
      return absl::InvalidArgumentError(
          "--buffer-wal=off: an mqtt:// input's messages are acknowledged to the broker once in "
          "the "
          "disk buffer, which needs the buffer's write-ahead log; use auto or on");
    }
    return BufferWalChoice{true, "an MQTT input's messages are acknowledged as on disk"};
  }
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

std::string RunMarkerPath(const std::string& buffer_dir) {
  return absl::StrCat(buffer_dir, "/CYBERSYN-RUNNING");
}

absl::StatusOr<std::optional<std::string>> ReadRunMarker(const std::string& buffer_dir) {
  for (const std::string& path : {RunMarkerPath(buffer_dir), LegacyMarkerPath(buffer_dir)}) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      if (errno == ENOENT) continue;
      return Errno("reading", path);
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  return std::nullopt;
}

absl::Status WriteRunMarker(const std::string& buffer_dir, absl::string_view identity) {
  const std::string path = RunMarkerPath(buffer_dir);
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

absl::Status RemoveRunMarker(const std::string& buffer_dir) {
  bool removed = false;
  for (const std::string& path : {RunMarkerPath(buffer_dir), LegacyMarkerPath(buffer_dir)}) {
    if (::unlink(path.c_str()) == 0) {
      removed = true;
    } else if (errno != ENOENT) {
      return Errno("removing", path);
    }
  }
  return removed ? FsyncPath(buffer_dir, O_RDONLY | O_DIRECTORY) : absl::OkStatus();
}

}  // namespace cybersyn::ingest
