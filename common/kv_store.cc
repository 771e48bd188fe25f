#include "common/kv_store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace cybersyn {

absl::StatusOr<std::string> MemoryKvStore::Get(absl::string_view key) {
  absl::MutexLock lock(&mu_);
  auto it = data_.find(key);
  if (it == data_.end()) return absl::NotFoundError(absl::StrCat("key not found: ", key));
  return it->second;
}

absl::Status MemoryKvStore::Write(const WriteBatch& batch) {
  absl::MutexLock lock(&mu_);
  for (const auto& [k, v] : batch.ops()) {
    if (v.has_value()) {
      data_[k] = *v;
    } else {
      data_.erase(k);
    }
  }
  return absl::OkStatus();
}

absl::Status MemoryKvStore::Scan(
    absl::string_view prefix, const std::function<bool(absl::string_view, absl::string_view)>& fn) {
  absl::MutexLock lock(&mu_);
  for (auto it = data_.lower_bound(prefix); it != data_.end(); ++it) {
    if (!absl::StartsWith(it->first, prefix)) break;
    if (!fn(it->first, it->second)) break;
  }
  return absl::OkStatus();
}

uint64_t MemoryKvStore::ApproximateBytes() {
  absl::MutexLock lock(&mu_);
  uint64_t n = 0;
  for (const auto& [k, v] : data_) n += k.size() + v.size();
  return n;
}

}  // namespace cybersyn
