// A damaged RocksDB state directory is reported as DATA_LOSS at open (so a role wipes it and
// restores from its changelog), whichever file was damaged: SST blocks, the manifest, CURRENT, a
// deleted SST. Real RocksDB on a temporary directory.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/rocksdb_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn {
namespace {

namespace fs = std::filesystem;

class RocksDbCorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The pid too: two checkouts' test runs on one machine would otherwise share the directory.
    dir_ = fs::path(::testing::TempDir()) /
           ("rocksdb_corruption_" + std::to_string(::getpid()) + "_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    // ~10 MB through 2 MiB memtables: several flushes, so SST files exist at close.
    auto s = RocksDbStore::Open({dir_.string(), 8 << 20});
    ASSERT_TRUE(s.ok()) << s.status();
    for (int i = 0; i < 50000; ++i) {
      WriteBatch b;
      b.Put("series/" + std::to_string(i), std::string(200, static_cast<char>('a' + i % 26)));
      ASSERT_TRUE((*s)->Write(b).ok());
    }
    s->reset();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<fs::path> Files(const std::string& suffix_or_prefix, bool prefix = false) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (prefix ? name.rfind(suffix_or_prefix, 0) == 0
                 : name.size() >= suffix_or_prefix.size() &&
                       name.compare(name.size() - suffix_or_prefix.size(), suffix_or_prefix.size(),
                                    suffix_or_prefix) == 0) {
        out.push_back(e.path());
      }
    }
    return out;
  }

  static void Scribble(const fs::path& p, size_t offset, size_t n) {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f << std::string(n, '\x5a');
  }

  void ExpectDataLoss() {
    auto s = RocksDbStore::Open({dir_.string(), 8 << 20});
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
    EXPECT_THAT(std::string(s.status().message()), ::testing::HasSubstr(dir_.string()));
    // What the roles do next: wipe and start empty.
    ASSERT_TRUE(RocksDbStore::Destroy(dir_.string()).ok());
    auto fresh = RocksDbStore::Open({dir_.string(), 8 << 20});
    ASSERT_TRUE(fresh.ok()) << fresh.status();
    EXPECT_EQ((*fresh)->Get("series/1").status().code(), absl::StatusCode::kNotFound);
  }

  fs::path dir_;
};

TEST_F(RocksDbCorruptionTest, ScribbledSstBlockIsFoundAtOpen) {
  auto ssts = Files(".sst");
  ASSERT_FALSE(ssts.empty());
  Scribble(ssts[0], fs::file_size(ssts[0]) / 3, 64);
  ExpectDataLoss();
}

TEST_F(RocksDbCorruptionTest, DeletedSstIsFoundAtOpen) {
  auto ssts = Files(".sst");
  ASSERT_FALSE(ssts.empty());
  fs::remove(ssts[0]);
  ExpectDataLoss();
}

TEST_F(RocksDbCorruptionTest, ScribbledManifestIsFoundAtOpen) {
  auto manifests = Files("MANIFEST-", /*prefix=*/true);
  ASSERT_FALSE(manifests.empty());
  for (const auto& m : manifests) Scribble(m, 0, std::min<size_t>(fs::file_size(m), 200));
  ExpectDataLoss();
}

TEST_F(RocksDbCorruptionTest, GarbageCurrentIsFoundAtOpen) {
  std::ofstream(dir_ / "CURRENT", std::ios::trunc) << "MANIFEST-999999\n";
  ExpectDataLoss();
}

TEST_F(RocksDbCorruptionTest, IntactStoreOpensWithItsData) {
  auto s = RocksDbStore::Open({dir_.string(), 8 << 20});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->Get("series/49999")->size(), 200u);
}

}  // namespace
}  // namespace cybersyn
