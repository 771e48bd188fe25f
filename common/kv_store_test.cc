// Contract tests run against both KvStore implementations.
#include "common/kv_store.h"

#include <filesystem>

#include "common/rocksdb_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn {
namespace {

namespace fs = std::filesystem;

class KvStoreTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      dir_ = fs::path(::testing::TempDir()) / ("kv_store_test_" + std::to_string(::getpid()) + "_" +
                                               std::to_string(reinterpret_cast<uintptr_t>(this)));
      fs::remove_all(dir_);
      auto s = RocksDbStore::Open({dir_.string(), 8 << 20});
      ASSERT_TRUE(s.ok()) << s.status();
      store_ = std::move(*s);
    } else {
      store_ = std::make_unique<MemoryKvStore>();
    }
  }
  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
  std::unique_ptr<KvStore> store_;
};

TEST_P(KvStoreTest, GetPutDeleteAndMissingKeyIsNotFound) {
  EXPECT_EQ(store_->Get("a").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->Put("a", std::string("1\0x", 3)).ok());
  EXPECT_EQ(*store_->Get("a"), std::string("1\0x", 3));
  WriteBatch b;
  b.Delete("a");
  b.Put("b", "2");
  ASSERT_TRUE(store_->Write(b).ok());
  EXPECT_EQ(store_->Get("a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*store_->Get("b"), "2");
}

TEST_P(KvStoreTest, ScanVisitsPrefixInOrderAndStopsWhenAsked) {
  WriteBatch b;
  for (const char* k : {"w/2", "w/1", "x/1", "w/3", "v/9"}) b.Put(k, k);
  ASSERT_TRUE(store_->Write(b).ok());
  std::vector<std::string> keys;
  ASSERT_TRUE(store_
                  ->Scan("w/",
                         [&](absl::string_view k, absl::string_view v) {
                           EXPECT_EQ(k, v);
                           keys.emplace_back(k);
                           return keys.size() < 2;
                         })
                  .ok());
  EXPECT_THAT(keys, ::testing::ElementsAre("w/1", "w/2"));
}

INSTANTIATE_TEST_SUITE_P(Impls, KvStoreTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "RocksDb" : "Memory"; });

TEST(RocksDbStoreTest, DataSurvivesReopenAndMemoryStaysUnderCap) {
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("rocksdb_reopen_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const uint64_t cap = 8ull << 20;
  {
    auto s = RocksDbStore::Open({dir.string(), cap});
    ASSERT_TRUE(s.ok()) << s.status();
    std::string value(200, 'v');
    for (int chunk = 0; chunk < 20; ++chunk) {
      WriteBatch b;
      for (int i = 0; i < 5000; ++i) b.Put("series/" + std::to_string(chunk * 5000 + i), value);
      ASSERT_TRUE((*s)->Write(b).ok());
    }
    EXPECT_LE((*s)->MemoryUsageBytes(), cap + (1 << 20));
  }
  auto s = RocksDbStore::Open({dir.string(), cap});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->Get("series/99999")->size(), 200u);
  s->reset();
  fs::remove_all(dir);
}

TEST(RocksDbStoreTest, OpenerOpensTheSameStoreOnEachCall) {
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("rocksdb_opener_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const auto open = RocksDbStore::Opener({dir.string(), 8 << 20});
  {
    auto first = open();
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_TRUE((*first)->Put("k", "v").ok());
  }
  auto second = open();
  ASSERT_TRUE(second.ok()) << second.status();
  auto v = (*second)->Get("k");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "v");
  second->reset();
  fs::remove_all(dir);
}

TEST(RocksDbStoreTest, CorruptDirectoryIsReportedNotCrashed) {
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("rocksdb_corrupt_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    auto s = RocksDbStore::Open({dir.string(), 8 << 20});
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->Put("k", "v").ok());
  }
  // Overwrite the CURRENT file so it names a manifest that does not exist.
  {
    std::FILE* f = std::fopen((dir / "CURRENT").c_str(), "w");
    std::fputs("MANIFEST-999999\n", f);
    std::fclose(f);
  }
  auto s = RocksDbStore::Open({dir.string(), 8 << 20});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), ::testing::HasSubstr(dir.string()));
  ASSERT_TRUE(RocksDbStore::Destroy(dir.string()).ok());
  fs::remove_all(dir);
  EXPECT_TRUE(RocksDbStore::Open({dir.string(), 8 << 20}).ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cybersyn
