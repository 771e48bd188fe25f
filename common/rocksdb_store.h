// RocksDbStore: KvStore on RocksDB with a hard memory cap. Block cache, memtables (charged to
// the cache through a WriteBufferManager) and index/filter blocks share one budget, so a
// process's RocksDB memory stays under `memory_limit_bytes` however many series it holds.
// Opening checks the store (paranoid checks, and every block's checksum unless
// verify_checksums_on_open is off): a corrupt directory is reported as DATA_LOSS at open, not at
// the first unlucky read, so the caller can wipe it and restore from the changelog.
// Thread-safety: safe for concurrent use.
#ifndef CYBERSYN_COMMON_ROCKSDB_STORE_H_
#define CYBERSYN_COMMON_ROCKSDB_STORE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "common/kv_store.h"

namespace prometheus {
class Counter;
class Registry;
}  // namespace prometheus

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
  // No write-ahead log: after a crash the store is what was last flushed, an older but
  // consistent prefix of the writes (one column family). Only for caches that record in the
  // same writes where to catch up from (the aggregator's changelog offset).
  bool disable_wal = false;
  // Reads every SST block once at open (state stores are small; a corrupt block found later
  // would fail the role at runtime, and again after each in-process restart).
  bool verify_checksums_on_open = true;
  // Memtable size; 0: min(memory_limit_bytes / 4, 64 MiB). The memory limit must allow two
  // (memtables are charged to it, and at half of it RocksDB flushes early).
  uint64_t write_buffer_bytes = 0;
  // LZ4 for SST files. Off for stores whose data is deleted soon after it is written (the
  // gateway buffer): compressing what a flush writes, only to delete it soon, wastes CPU.
  bool compress = true;
  // Writes are refused with RESOURCE_EXHAUSTED ("No space left on device") while the device has
  // less than this plus one memtable (what its flush needs) plus twice the batch free: RocksDB
  // itself does not fail cleanly when the disk fills (Debian's build hits an assertion in its WAL
  // writer after ENOSPC), and a refused write leaves the store consistent. Batches of deletes
  // only are never refused (that is how a full store shrinks). 0 disables the check.
  uint64_t min_free_bytes = 1ull << 20;
  // When set, writes refused for lack of space are counted in
  // cybersyn_store_write_refusals_total{store=metrics_store, reason="no_space"}, so a dashboard
  // or alert sees a full disk before the role's own symptoms (a stalled gateway, a lagging
  // aggregator).
  prometheus::Registry* registry = nullptr;
  std::string metrics_store;  // e.g. "gateway_buffer"
};

class RocksDbStore : public KvStore {
 public:
  static absl::StatusOr<std::unique_ptr<RocksDbStore>> Open(const RocksDbOptions& options);
  // Opens `options` on each call, as a KvStore (what the stream runtime's open_store takes).
  static std::function<absl::StatusOr<std::unique_ptr<KvStore>>()> Opener(RocksDbOptions options);
  // Removes the store's directory (for a rebuild from the changelog).
  static absl::Status Destroy(const std::string& path);
  ~RocksDbStore() override;

  absl::StatusOr<std::string> Get(absl::string_view key) override;
  absl::Status Write(const WriteBatch& batch) override;
  absl::Status Scan(absl::string_view prefix,
                    const std::function<bool(absl::string_view, absl::string_view)>& fn) override;
  uint64_t ApproximateBytes() override;
  // Writes the memtables to SST files and waits (what makes writes of a disable_wal store
  // durable; closing the store does it too, but cannot report a failure). wait = false only
  // schedules the flush (on RocksDB's background thread).
  absl::Status Flush(bool wait = true);
  // Bytes RocksDB holds in memory now (block cache incl. memtables, table readers).
  uint64_t MemoryUsageBytes() override;
  // Writes refused so far because the device was (nearly) full.
  uint64_t no_space_refusals() const { return no_space_refusals_.load(); }

 private:
  RocksDbStore() = default;
  RocksDbOptions options_;
  uint64_t reserve_bytes_ = 0;  // min_free_bytes + write buffer size
  std::atomic<uint64_t> no_space_refusals_{0};
  prometheus::Counter* no_space_counter_ = nullptr;  // owned by the registry
  void CountNoSpace();
  std::shared_ptr<rocksdb::Cache> cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> wbm_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_ROCKSDB_STORE_H_
