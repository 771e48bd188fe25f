#include "ingest/buffer_wal.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/rocksdb_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::ingest {
namespace {

using ::testing::HasSubstr;

std::string TempDir(const std::string& name) {
  std::string d = ::testing::TempDir() + "/wal-" + name + "-" + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

TEST(BufferWalTest, AutoSkipsTheWalOnlyForAResumableUnpacedInputWithoutGrpc) {
  struct Case {
    BufferWalInput input;
    bool wal;
    const char* reason;
  };
  const Case cases[] = {
      {{"csv:/data/a.csv", false, false}, false, "csv:/data/a.csv is re-read"},
      {{"sim:bench:seed=1:start=5", false, false}, false, "re-read"},
      {{"", false, false}, true, "cannot be re-read"},          // stdin, sim without --start
      {{"csv:/data/a.csv", false, true}, true, "gRPC Ingest"},  // acks promise disk
      {{"", false, true}, true, "gRPC Ingest"},                 // gRPC only
      {{"csv:/data/a.csv", true, false}, true, "paced"},        // --rate / speedup
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input.identity + (c.input.paced ? " paced" : "") +
                 (c.input.grpc ? " grpc" : ""));
    auto choice = ChooseBufferWal(BufferWal::kAuto, c.input);
    ASSERT_TRUE(choice.ok()) << choice.status();
    EXPECT_EQ(choice->wal, c.wal);
    EXPECT_THAT(choice->reason, HasSubstr(c.reason));
    // "on" always keeps it.
    auto on = ChooseBufferWal(BufferWal::kOn, c.input);
    ASSERT_TRUE(on.ok());
    EXPECT_TRUE(on->wal);
  }
}

TEST(BufferWalTest, OffIsRefusedWhereItCouldLoseRecordsAndAllowedWhenPaced) {
  auto grpc = ChooseBufferWal(BufferWal::kOff, {"csv:/a.csv", false, true});
  EXPECT_EQ(grpc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(grpc.status().message(), HasSubstr("gRPC Ingest listener acknowledges"));
  auto mqtt = ChooseBufferWal(BufferWal::kOff, {"", false, false, true});
  EXPECT_EQ(mqtt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mqtt.status().message(), HasSubstr("mqtt:// input's messages are acknowledged"));
  auto mqtt_auto = ChooseBufferWal(BufferWal::kAuto, {"", false, false, true});
  ASSERT_TRUE(mqtt_auto.ok());
  EXPECT_TRUE(mqtt_auto->wal);
  auto stdin_input = ChooseBufferWal(BufferWal::kOff, {"", false, false});
  EXPECT_EQ(stdin_input.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(stdin_input.status().message(), HasSubstr("needs an input that can be re-read"));
  auto paced = ChooseBufferWal(BufferWal::kOff, {"jsonl:/a.jsonl", true, false});
  ASSERT_TRUE(paced.ok());
  EXPECT_FALSE(paced->wal);
  EXPECT_THAT(paced->reason, HasSubstr("--buffer-wal=off"));
}

TEST(BufferWalTest, ParsesTheFlagValues) {
  EXPECT_EQ(*ParseBufferWal("auto"), BufferWal::kAuto);
  EXPECT_EQ(*ParseBufferWal("on"), BufferWal::kOn);
  EXPECT_EQ(*ParseBufferWal("off"), BufferWal::kOff);
  EXPECT_EQ(ParseBufferWal("yes").status().message(), "expected auto, on or off, got \"yes\"");
}

TEST(BufferWalTest, MarkerRoundTrip) {
  const std::string dir = TempDir("marker");
  auto none = ReadRunMarker(dir);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(WriteRunMarker(dir, "csv:/data/a.csv").ok());
  auto some = ReadRunMarker(dir);
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(some->value_or("none"), "csv:/data/a.csv");
  EXPECT_FALSE(std::filesystem::exists(RunMarkerPath(dir) + ".tmp"));
  ASSERT_TRUE(WriteRunMarker(dir, "sim:x").ok());  // replaced
  EXPECT_EQ(ReadRunMarker(dir)->value_or("none"), "sim:x");
  ASSERT_TRUE(RemoveRunMarker(dir).ok());
  EXPECT_FALSE(ReadRunMarker(dir)->has_value());
  EXPECT_TRUE(RemoveRunMarker(dir).ok());  // none is fine
  // The marker of an earlier version (WAL-less runs only) counts, and goes with a clean stop.
  std::ofstream(dir + "/CYBERSYN-WAL-LESS-RUN") << "csv:/old.csv";
  EXPECT_EQ(ReadRunMarker(dir)->value_or("none"), "csv:/old.csv");
  ASSERT_TRUE(RemoveRunMarker(dir).ok());
  EXPECT_FALSE(ReadRunMarker(dir)->has_value());
  EXPECT_FALSE(std::filesystem::exists(dir + "/CYBERSYN-WAL-LESS-RUN"));
  auto bad = WriteRunMarker(dir + "/missing/dir", "x");
  EXPECT_EQ(bad.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(bad.message(), HasSubstr("missing/dir/CYBERSYN-RUNNING.tmp"));
}

// The premise of the mode, on Debian's librocksdb: without the WAL a process that dies keeps only
// what was flushed, and closing the store flushes. Children write (forked before this process
// opens any RocksDB, so they do not inherit its background threads' state).
TEST(BufferWalTest, WithoutTheWalADeadProcessKeepsOnlyFlushedWritesAndCloseFlushes) {
  const std::string base = TempDir("premise");
  auto child = [&](const std::string& dir, bool flush_first, bool close) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      RocksDbOptions o;
      o.path = dir;
      o.disable_wal = true;
      auto store = RocksDbStore::Open(o);
      if (!store.ok()) ::_exit(2);
      WriteBatch a;
      a.Put("flushed", "1");
      if (!(*store)->Write(a).ok()) ::_exit(3);
      if (flush_first && !(*store)->Flush().ok()) ::_exit(4);
      WriteBatch b;
      b.Put("last", "2");
      if (!(*store)->Write(b).ok()) ::_exit(5);
      if (close) store->reset();  // the destructor closes
      ::_exit(0);                 // as a kill -9 would: no destructors, no flush
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  ASSERT_EQ(child(base + "/crash", true, false), 0);
  ASSERT_EQ(child(base + "/close", false, true), 0);
  {
    RocksDbOptions o;
    o.path = base + "/crash";
    auto store = RocksDbStore::Open(o);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_TRUE((*store)->Get("flushed").ok());
    EXPECT_TRUE(absl::IsNotFound((*store)->Get("last").status()))
        << "an unflushed write survived: the WAL is not off";
  }
  {
    RocksDbOptions o;
    o.path = base + "/close";
    auto store = RocksDbStore::Open(o);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->Get("flushed").value_or("missing"), "1");
    EXPECT_EQ((*store)->Get("last").value_or("missing"), "2") << "closing did not flush";
  }
}

}  // namespace
}  // namespace cybersyn::ingest
