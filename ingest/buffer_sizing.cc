#include "ingest/buffer_sizing.h"

#include <sys/statvfs.h>

#include <algorithm>

namespace cybersyn::ingest {

BufferSizing SizeBuffer(uint64_t free_disk_bytes, uint64_t buffer_max_bytes) {
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  if (free_disk_bytes >= 1024 * kMiB && buffer_max_bytes >= 256 * kMiB) {
    return {32 * kMiB, 128 * kMiB, false};
  }
  return {16 * kMiB, 64 * kMiB, true};
}

uint64_t SoftBoundBytes(int partitions, int enterprises, uint64_t produce_batch_bytes,
                        uint64_t floor, uint64_t ceiling) {
  const uint64_t used = static_cast<uint64_t>(std::max(1, std::min(partitions, enterprises)));
  return std::clamp(2 * used * produce_batch_bytes, floor, std::max(floor, ceiling));
}

uint64_t FreeDiskBytes(const std::string& dir) {
  struct statvfs st;
  if (::statvfs(dir.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

}  // namespace cybersyn::ingest
