# Local state: the KvStore interface, its in-memory and RocksDB implementations.
cybersyn_cc_library(NAME store SRCS kv_store.cc rocksdb_store.cc
  DEPS RocksDB::rocksdb prometheus-cpp::core absl::status absl::statusor absl::strings
       absl::synchronization)
cybersyn_cc_test(NAME kv_store_test SRCS kv_store_test.cc DEPS cybersyn::store)
# Damaged state directories are DATA_LOSS at open (issue 8: corrupted-store detection).
cybersyn_cc_test(NAME rocksdb_corruption_test SRCS rocksdb_corruption_test.cc DEPS cybersyn::store)
