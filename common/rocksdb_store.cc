#include "common/rocksdb_store.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <filesystem>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/table.h"
#include "rocksdb/write_buffer_manager.h"

namespace cybersyn {
namespace {

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
  if (s.IsIOError()) return absl::UnavailableError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  return absl::InternalError(msg);
}

// ThreadSanitizer build only: stores are opened (and destroyed) one at a time. RocksDB (Debian's
// librocksdb.a, not instrumented) builds process-wide state on first use (the default Env and
// FileSystem with its thread pools, the build-properties map DB::Open logs, the block cache stats
// collector's static mutex, ...) in function-local statics whose fast path is an acquire load TSan
// cannot see. The second store of a process (the alerter's, on the main thread of `cybersyn demo`)
// read what the first (the aggregator's thread) had built, and TSan reported those reads as races
// in frames of our code or std:: templates, where no suppression could be narrow. Holding one mutex
// makes the first open happen-before the next; other builds need no such order.
#if defined(__SANITIZE_THREAD__)
std::unique_lock<std::mutex> OpenOrderForTsan() {
  static std::mutex mu;
  return std::unique_lock<std::mutex>(mu);
}
#else
int OpenOrderForTsan() { return 0; }
#endif

}  // namespace

std::function<absl::StatusOr<std::unique_ptr<KvStore>>()> RocksDbStore::Opener(
    RocksDbOptions options) {
  return [options = std::move(options)]() -> absl::StatusOr<std::unique_ptr<KvStore>> {
    ASSIGN_OR_RETURN(auto s, Open(options));
    return std::unique_ptr<KvStore>(std::move(s));
  };
}

absl::StatusOr<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(const RocksDbOptions& options) {
  [[maybe_unused]] auto open_order = OpenOrderForTsan();
  std::unique_ptr<RocksDbStore> store(new RocksDbStore());
  store->options_ = options;
  if (options.registry != nullptr) {
    store->no_space_counter_ =
        &prometheus::BuildCounter()
             .Name("cybersyn_store_write_refusals_total")
             .Help(
                 "Local state/buffer writes refused, by store and reason (no_space: the "
                 "device is (nearly) full; nothing of the refused write was stored)")
             .Register(*options.registry)
             .Add({{"store", options.metrics_store.empty() ? options.path : options.metrics_store},
                   {"reason", "no_space"}});
  }
  const size_t limit = std::max<uint64_t>(options.memory_limit_bytes, 4ull << 20);
  // One LRU cache is the whole budget; memtables are charged to it (strict limit).
  store->cache_ = rocksdb::NewLRUCache(limit, -1, /*strict_capacity_limit=*/false);
  store->wbm_ = std::make_shared<rocksdb::WriteBufferManager>(limit / 2, store->cache_,
                                                              /*allow_stall=*/true);
  rocksdb::Options opts;
  opts.create_if_missing = true;
  opts.paranoid_checks = true;
  opts.write_buffer_manager = store->wbm_;
  opts.write_buffer_size = options.write_buffer_bytes > 0
                               ? static_cast<size_t>(options.write_buffer_bytes)
                               : std::min<size_t>(limit / 4, 64ull << 20);
  // Free space must be what statvfs says: no WAL space preallocated ahead of the data.
  opts.allow_fallocate = false;
  if (options.min_free_bytes > 0) {
    store->reserve_bytes_ = options.min_free_bytes + opts.write_buffer_size;
  }
  opts.max_write_buffer_number = 2;
  opts.max_open_files = 256;
  opts.max_background_jobs = 2;
  opts.compression = options.compress ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = store->cache_;
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // RocksDB creates the last directory only; state dirs are often nested (/var/lib/x/role).
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("creating RocksDB directory ", options.path, ": ", ec.message()));
  }
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(opts, options.path, &db);
  if (!s.ok()) {
    absl::Status st = FromRocks(s, absl::StrCat("opening RocksDB store ", options.path));
    // A file the store's own metadata names is gone (CURRENT -> MANIFEST -> SST): damaged.
    if (s.IsPathNotFound()) st = absl::DataLossError(st.message());
    return st;
  }
  store->db_.reset(db);
  if (options.verify_checksums_on_open) {
    s = db->VerifyChecksum();
    if (!s.ok()) {
      // An unreadable file is as good as a corrupt one: the store cannot be trusted.
      absl::Status st = FromRocks(s, absl::StrCat("verifying RocksDB store ", options.path));
      if (s.IsCorruption() || s.IsIOError()) st = absl::DataLossError(st.message());
      return st;
    }
  }
  return store;
}

absl::Status RocksDbStore::Destroy(const std::string& path) {
  [[maybe_unused]] auto open_order = OpenOrderForTsan();
  return FromRocks(rocksdb::DestroyDB(path, rocksdb::Options()),
                   absl::StrCat("destroying RocksDB store ", path));
}

RocksDbStore::~RocksDbStore() {
  if (db_) db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::string> RocksDbStore::Get(absl::string_view key) {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat("key not found: ", key));
  if (!s.ok()) return FromRocks(s, "RocksDB get");
  return value;
}

absl::Status RocksDbStore::Write(const WriteBatch& batch) {
  // A batch of deletes only is how a full store shrinks (the gateway drops confirmed batches):
  // never refuse it for space.
  const bool deletes_only = std::all_of(batch.ops().begin(), batch.ops().end(),
                                        [](const auto& op) { return !op.second.has_value(); });
  if (reserve_bytes_ > 0 && !deletes_only) {
    uint64_t bytes = 0;
    for (const auto& [k, v] : batch.ops()) bytes += k.size() + (v ? v->size() : 0) + 16;
    struct statvfs st;
    if (::statvfs(options_.path.c_str(), &st) == 0) {
      const uint64_t avail = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
      if (avail < reserve_bytes_ + 2 * bytes) {
        CountNoSpace();
        return absl::ResourceExhaustedError(absl::StrCat(
            "RocksDB write to ", options_.path, ": No space left on device (", avail,
            " bytes free; a write of ", bytes, " bytes needs ", reserve_bytes_ + 2 * bytes,
            " with the store's reserve); nothing was written"));
      }
    }
  }
  // Sized up front: growing it by doubling copied a gateway seal's ~1 MB several times.
  size_t reserve = 12;  // the WriteBatch header
  for (const auto& [k, v] : batch.ops()) reserve += k.size() + (v ? v->size() : 0) + 11;
  rocksdb::WriteBatch wb(reserve);
  for (const auto& [k, v] : batch.ops()) {
    if (v.has_value()) {
      wb.Put(k, *v);
    } else {
      wb.Delete(k);
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  wo.disableWAL = options_.disable_wal;
  rocksdb::Status s = db_->Write(wo, &wb);
  if (s.IsNoSpace()) CountNoSpace();
  return FromRocks(s, absl::StrCat("RocksDB write to ", options_.path));
}

absl::Status RocksDbStore::Scan(
    absl::string_view prefix, const std::function<bool(absl::string_view, absl::string_view)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const rocksdb::Slice p(prefix.data(), prefix.size());
  for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
    if (!fn(absl::string_view(it->key().data(), it->key().size()),
            absl::string_view(it->value().data(), it->value().size()))) {
      break;
    }
  }
  return FromRocks(it->status(), "RocksDB scan");
}

absl::Status RocksDbStore::Flush(bool wait) {
  rocksdb::FlushOptions fo;
  fo.wait = wait;
  return FromRocks(db_->Flush(fo), absl::StrCat("flushing RocksDB store ", options_.path));
}

uint64_t RocksDbStore::ApproximateBytes() {
  uint64_t live = 0, mem = 0;
  db_->GetIntProperty("rocksdb.estimate-live-data-size", &live);
  db_->GetIntProperty("rocksdb.cur-size-all-mem-tables", &mem);
  return live + mem;
}

uint64_t RocksDbStore::MemoryUsageBytes() {
  uint64_t readers = 0;
  db_->GetIntProperty("rocksdb.estimate-table-readers-mem", &readers);
  return cache_->GetUsage() + readers;
}

void RocksDbStore::CountNoSpace() {
  no_space_refusals_.fetch_add(1);
  if (no_space_counter_ != nullptr) no_space_counter_->Increment();
}

}  // namespace cybersyn
