// KvStore: the narrow interface to local state (RocksDB in production, memory in unit tests).
// Keys and values are bytes. Writes are applied atomically per WriteBatch.
// Thread-safety: implementations are safe for concurrent use.
#ifndef CYBERSYN_COMMON_KV_STORE_H_
#define CYBERSYN_COMMON_KV_STORE_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace cybersyn {

// Puts and deletes applied together or not at all.
class WriteBatch {
 public:
  void Put(absl::string_view key, absl::string_view value) {
    ops_.emplace_back(std::string(key), std::string(value));
  }
  // Put without copying: for large values built only to be written (the gateway's batches).
  void PutOwned(std::string key, std::string value) {
    ops_.emplace_back(std::move(key), std::move(value));
  }
  void Delete(absl::string_view key) { ops_.emplace_back(std::string(key), std::nullopt); }
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  const std::vector<std::pair<std::string, std::optional<std::string>>>& ops() const {
    return ops_;
  }
  // Moves the operations out (to reuse their strings after the write); leaves the batch empty.
  std::vector<std::pair<std::string, std::optional<std::string>>> TakeOps() {
    return std::exchange(ops_, {});
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> ops_;
};

class KvStore {
 public:
  virtual ~KvStore() = default;
  // NOT_FOUND when the key is absent.
  virtual absl::StatusOr<std::string> Get(absl::string_view key) = 0;
  virtual absl::Status Write(const WriteBatch& batch) = 0;
  // Calls fn(key, value) for every key starting with `prefix`, in key order, until fn returns
  // false.
  virtual absl::Status Scan(
      absl::string_view prefix,
      const std::function<bool(absl::string_view, absl::string_view)>& fn) = 0;
  // Approximate bytes of live data (for metrics).
  virtual uint64_t ApproximateBytes() = 0;
  // Bytes the store holds in memory (caches, memtables), for metrics; 0 when not known.
  virtual uint64_t MemoryUsageBytes() { return 0; }

  absl::Status Put(absl::string_view key, absl::string_view value) {
    WriteBatch b;
    b.Put(key, value);
    return Write(b);
  }
};

// In-memory KvStore for unit tests (LevelDB's memenv spirit).
class MemoryKvStore : public KvStore {
 public:
  absl::StatusOr<std::string> Get(absl::string_view key) override;
  absl::Status Write(const WriteBatch& batch) override;
  absl::Status Scan(absl::string_view prefix,
                    const std::function<bool(absl::string_view, absl::string_view)>& fn) override;
  uint64_t ApproximateBytes() override;

 private:
  absl::Mutex mu_;
  std::map<std::string, std::string, std::less<>> data_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_KV_STORE_H_
