#include "ingest/reject_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/safe_text.h"
#include "nlohmann/json.hpp"

namespace cybersyn::ingest {

RejectFile::~RejectFile() {
  absl::MutexLock l(&mu_);
  if (fd_ >= 0) ::close(fd_);
}

absl::Status RejectFile::Append(absl::string_view comment, absl::string_view line,
                                absl::string_view header, bool sync) {
  absl::MutexLock l(&mu_);
  if (fd_ < 0) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot open ", path_, ": ", std::strerror(errno)));
    }
  }
  std::string out;
  if (header != header_) {
    if (!header.empty()) absl::StrAppend(&out, header, "\n");
    header_ = std::string(header);
  }
  // One line whatever the comment holds.
  absl::StrAppend(&out, "# ", absl::StrReplaceAll(SafeLine(comment), {{"\n", " "}}), "\n");
  if (!line.empty()) absl::StrAppend(&out, line, "\n");
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::write(fd_, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(
          absl::StrCat("cannot write ", path_, ": ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  if (sync && ::fsync(fd_) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot sync ", path_, ": ", std::strerror(errno)));
  }
  if (!line.empty()) ++records_;
  return absl::OkStatus();
}

uint64_t RejectFile::records() const {
  absl::MutexLock l(&mu_);
  return records_;
}

std::string RecordAsJsonLine(const v1::Record& r) {
  nlohmann::json j;
  j["node"] = r.node();
  j["indicator"] = r.indicator();
  j["value"] = r.value();
  j["time"] = r.event_time_ms();
  if (!r.labels().empty()) {
    nlohmann::json labels = nlohmann::json::object();
    for (const auto& [k, v] : r.labels()) labels[k] = v;
    j["labels"] = std::move(labels);
  }
  // Strings that are not UTF-8 (only in batches of older gateways) are replaced, not dropped.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string RejectFileName(absl::string_view stem, absl::string_view extension) {
  return absl::StrCat(stem, "-",
                      absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone()), ".",
                      extension);
}

}  // namespace cybersyn::ingest
