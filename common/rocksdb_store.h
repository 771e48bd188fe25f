// RocksDbStore: KvStore on RocksDB with a hard memory cap. Block cache, memtables (charged to
// the cache through a WriteBufferManager) and index/filter blocks share one budget, so a
// process's RocksDB memory stays under `memory_limit_bytes` however many series it holds.
// Opening checks the store (paranoid checks): a corrupt directory is reported as DATA_LOSS so
// the caller can wipe it and restore from the changelog.
// Thread-safety: safe for concurrent use.
#ifndef CYBERSYN_COMMON_ROCKSDB_STORE_H_
#define CYBERSYN_COMMON_ROCKSDB_STORE_H_

#include <memory>
#include <string>

#include "common/kv_store.h"

namespace rocksdb {
class DB;
class Cache;
class WriteBufferManager;
}  // namespace rocksdb

namespace cybersyn {

struct RocksDbOptions {
  std::string path;
  uint64_t memory_limit_bytes = 64ull << 20;
  bool sync_writes = false;  // Kafka is authoritative; the store is a recoverable cache
};

class RocksDbStore : public KvStore {
 public:
  static absl::StatusOr<std::unique_ptr<RocksDbStore>> Open(const RocksDbOptions& options);
  // Removes the store's directory (for a rebuild from the changelog).
  static absl::Status Destroy(const std::string& path);
  ~RocksDbStore() override;

  absl::StatusOr<std::string> Get(absl::string_view key) override;
  absl::Status Write(const WriteBatch& batch) override;
  absl::Status Scan(absl::string_view prefix,
                    const std::function<bool(absl::string_view, absl::string_view)>& fn) override;
  uint64_t ApproximateBytes() override;
  // Bytes RocksDB holds in memory now (block cache incl. memtables, table readers).
  uint64_t MemoryUsageBytes();

 private:
  RocksDbStore() = default;
  RocksDbOptions options_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> wbm_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_ROCKSDB_STORE_H_
