// The runtime's loop through the TopologyTestDriver: one transaction per batch with outputs,
// changelog and offsets; restore; revoke; rewinds; dead letters; corrupt state. A counting
// processor stands in for a role.
#include "stream/runtime.h"

#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stream/task_store.h"
#include "stream/test_driver.h"

namespace cybersyn::stream {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr char kIn[] = "in";
constexpr char kOut[] = "out";
constexpr char kChangelog[] = "count-changelog";

// Counts messages per key. Value "poison" is dead-lettered, "delete" forgets the key. Persisted
// as decimal strings; a stored "corrupt" does not load.
class CountProcessor : public Processor {
 public:
  absl::Status Load(absl::string_view key, absl::string_view value) override {
    int n = 0;
    if (!absl::SimpleAtoi(value, &n)) {
      return absl::DataLossError(absl::StrCat("count of ", key, ": not a number"));
    }
    counts[std::string(key)] = n;
    return absl::OkStatus();
  }
  void Process(const ConsumedMessage& m, Emitter& out) override {
    const std::string key(m.key());
    if (m.value() == "poison") {
      out.DeadLetter(m, "poison", std::string(m.value()), {{"why", "test"}});
      return;
    }
    dirty.insert(key);
    if (m.value() == "delete") {
      counts.erase(key);
      return;
    }
    const int n = ++counts[key];
    out.Send(0, key, absl::StrCat(n));
    out.Count(0);
  }
  void Punctuate(const PunctuateInfo& info, Emitter&) override {
    last_punctuate_ms = info.now_ms;
    caught_up = info.caught_up;
  }
  void TakeChanges(std::vector<StateChange>* out) override {
    for (const std::string& k : dirty) {
      auto it = counts.find(k);
      out->push_back({k, it == counts.end() ? "" : absl::StrCat(it->second)});
    }
    dirty.clear();
  }

  std::map<std::string, int> counts;
  std::set<std::string> dirty;
  int64_t last_punctuate_ms = 0;
  bool caught_up = false;
};

Topology CountTopology() {
  Topology t;
  t.role = "count";
  t.subtopologies.push_back(
      {"cnt", {kIn}, kChangelog, [](int32_t) { return std::make_unique<CountProcessor>(); }});
  t.outputs = {kOut};
  t.deadletter = "dead";
  t.counters = {"counted"};
  return t;
}

std::map<std::string, std::string> Latest(const std::vector<MemoryBroker::Record>& records) {
  std::map<std::string, std::string> out;
  for (const auto& r : records) out[r.key] = r.value.value_or("<null>");
  return out;
}

class RuntimeTest : public ::testing::TestWithParam<int> {
 protected:
  RuntimeTest()
      : d_([](Clock*) { return CountTopology(); },
           DriverOptions{.processing_threads = GetParam()}) {}

  // Keys that land on partition `p` of the input.
  std::string KeyOn(int32_t p, int i = 0) {
    for (int k = 0;; ++k) {
      std::string key = absl::StrCat("k", k);
      if (d_.broker().PartitionFor(kIn, key) == p && i-- == 0) return key;
    }
  }
  CountProcessor* Task(int32_t p) { return d_.processor<CountProcessor>("cnt", p); }

  TopologyTestDriver d_;
};

TEST_P(RuntimeTest, OneTransactionCarriesOutputsStateAndOffsets) {
  ASSERT_TRUE(d_.Start().ok());
  EXPECT_FALSE(d_.runtime()->ready());
  const std::string a = KeyOn(0), b = KeyOn(1);
  d_.Pipe(kIn, a, "x");
  d_.Pipe(kIn, a, "x");
  d_.Pipe(kIn, b, "x");
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_TRUE(d_.runtime()->ready());
  EXPECT_THAT(Latest(d_.ReadOutput(kOut)), UnorderedElementsAre(Pair(a, "2"), Pair(b, "1")));
  // Dirty-only: one changelog entry per changed key, not per message.
  EXPECT_THAT(Latest(d_.ReadAll(kChangelog)), UnorderedElementsAre(Pair(a, "2"), Pair(b, "1")));
  EXPECT_EQ(d_.ReadAll(kChangelog).size(), 2u);
  EXPECT_THAT(d_.State("cnt", 0), ElementsAre(Pair(a, "2")));
  EXPECT_THAT(d_.State("cnt", 1), ElementsAre(Pair(b, "1")));
  const auto committed = d_.Committed();
  EXPECT_EQ(committed.at({kIn, 0}), 2);
  EXPECT_EQ(committed.at({kIn, 1}), 1);
  EXPECT_FALSE(committed.contains({kIn, 2}));  // nothing consumed there
  EXPECT_EQ(d_.counter("counted"), 3u);
  EXPECT_EQ(d_.runtime()->stats().transactions, 1u);
  // The checkpoint: the changelog offset after the commit marker's predecessor.
  auto ckpt = DecodeCheckpoint(*d_.store().Get(CheckpointKey(TaskPrefix("cnt", 0))));
  ASSERT_TRUE(ckpt.has_value());
  EXPECT_EQ(ckpt->next_offset, 1);  // entry at 0, the marker at 1
  EXPECT_EQ(ckpt->written_at_ms, d_.clock().NowMillis());
}

TEST_P(RuntimeTest, PunctuatesEveryTaskWithTheClockAndIdleness) {
  ASSERT_TRUE(d_.Start().ok());
  d_.Pipe(kIn, KeyOn(2), "x");
  ASSERT_TRUE(d_.Advance(absl::Minutes(3)).ok());
  for (int p = 0; p < 4; ++p) {
    ASSERT_NE(Task(p), nullptr);
    EXPECT_EQ(Task(p)->last_punctuate_ms, d_.clock().NowMillis()) << p;
    EXPECT_TRUE(Task(p)->caught_up) << p;
  }
}

TEST_P(RuntimeTest, RestartRestoresFromTheStoreAndTheChangelogTail) {
  ASSERT_TRUE(d_.Start().ok());
  const std::string a = KeyOn(0);
  d_.Pipe(kIn, a, "x");
  ASSERT_TRUE(d_.Process().ok());
  d_.Crash();
  ASSERT_TRUE(d_.Start().ok());
  d_.Pipe(kIn, a, "x");
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_EQ(Task(0)->counts.at(a), 2);
  EXPECT_EQ(d_.runtime()->stats().restored_entries, 0u);  // the store was current
  // The disk is lost too: everything comes back from the changelog.
  d_.Crash(/*wipe_store=*/true);
  ASSERT_TRUE(d_.Start().ok());
  d_.Pipe(kIn, a, "x");
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_EQ(Task(0)->counts.at(a), 3);
  EXPECT_EQ(d_.runtime()->stats().restored_entries, 2u);  // a=1, a=2 (not compacted)
  EXPECT_THAT(Latest(d_.ReadOutput(kOut)), ElementsAre(Pair(a, "3")));
  EXPECT_EQ(d_.ReadAll(kOut).size(), 3u) << "each message's output exactly once";
}

TEST_P(RuntimeTest, FailedTransactionIsAbortedRewoundAndRetried) {
  ASSERT_TRUE(d_.Start().ok());
  const std::string a = KeyOn(0), b = KeyOn(3);
  d_.Pipe(kIn, a, "x");
  ASSERT_TRUE(d_.Process().ok());
  int failures = 0;
  d_.SetCommitHook([&](uint64_t n) -> absl::Status {
    if (n == 1 && failures++ < 2) return absl::UnavailableError("injected");
    return absl::OkStatus();
  });
  d_.Pipe(kIn, a, "x");
  d_.Pipe(kIn, b, "x");
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_EQ(failures, 3);
  EXPECT_EQ(d_.runtime()->stats().rewinds, 2u);
  EXPECT_EQ(Task(0)->counts.at(a), 2) << "counted once despite two aborted attempts";
  const auto out = d_.ReadAll(kOut);
  ASSERT_EQ(out.size(), 3u);  // aborted outputs are invisible (read_committed)
  EXPECT_THAT(Latest(out), UnorderedElementsAre(Pair(a, "2"), Pair(b, "1")));
  EXPECT_EQ(d_.counter("counted"), 3u);
}

TEST_P(RuntimeTest, PersistentFailureEndsTheRunWithoutCommittingAnything) {
  ASSERT_TRUE(d_.Start().ok());
  const std::string a = KeyOn(1);
  d_.Pipe(kIn, a, "x");
  d_.SetCommitHook([](uint64_t) { return absl::UnavailableError("broker says no"); });
  absl::Status s = d_.Process();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("broker says no"));
  EXPECT_EQ(d_.runtime()->stats().rewinds, 3u);
  EXPECT_FALSE(d_.Stop().ok());
  EXPECT_THAT(d_.ReadAll(kOut), IsEmpty());
  EXPECT_THAT(d_.Committed(), IsEmpty()) << "no offsets without their state";
  // The next incarnation starts from the committed (empty) state and gets it right.
  d_.SetCommitHook(nullptr);
  ASSERT_TRUE(d_.Start().ok());
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_THAT(Latest(d_.ReadAll(kOut)), ElementsAre(Pair(a, "1")));
}

TEST_P(RuntimeTest, PoisonAndOversizedInputGoToTheDeadLetterTopicWithTheirReason) {
  ASSERT_TRUE(d_.Start().ok());
  const std::string a = KeyOn(2);
  d_.Pipe(kIn, a, "x");
  const int64_t poison = d_.Pipe(kIn, a, "poison");
  d_.Pipe(kIn, a, std::string(5u << 20, 'z'));
  d_.Pipe(kIn, a, "x");
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_EQ(Task(2)->counts.at(a), 2);
  const auto dead = d_.ReadAll("dead");
  ASSERT_EQ(dead.size(), 2u);
  auto header = [](const MemoryBroker::Record& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return std::string("<none>");
  };
  EXPECT_EQ(header(dead[0], "reason"), "poison");
  EXPECT_EQ(header(dead[0], "why"), "test");
  EXPECT_EQ(header(dead[0], "source_topic"), kIn);
  EXPECT_EQ(header(dead[0], "source_partition"), "2");
  EXPECT_EQ(header(dead[0], "source_offset"), absl::StrCat(poison));
  EXPECT_EQ(header(dead[1], "reason"), "too_large");
  EXPECT_EQ(header(dead[1], "size"), absl::StrCat(5u << 20));
  EXPECT_EQ(d_.runtime()->stats().deadlettered, 2u);
  EXPECT_EQ(d_.Committed().at({kIn, 2}), 4) << "dead letters are consumed input too";
}

// Issue 19, bug 1: a batch that straddles a revoke. The consumer fetched messages of
// partitions that were taken away inside the same poll; they must be neither processed nor
// committed (the alerter committed their offsets and lost them).
TEST_P(RuntimeTest, MessagesOfPartitionsRevokedInsideTheBatchAreNotCommitted) {
  ASSERT_TRUE(d_.Start().ok());
  ASSERT_TRUE(d_.Process().ok());  // owns 0..3
  std::vector<std::string> keys;
  for (int p = 0; p < 4; ++p) {
    keys.push_back(KeyOn(p));
    d_.Pipe(kIn, keys.back(), "x");
  }
  d_.KeepPartitions({0, 1}, /*mid_batch=*/true);
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_THAT(Latest(d_.ReadAll(kOut)),
              UnorderedElementsAre(Pair(keys[0], "1"), Pair(keys[1], "1")));
  const auto committed = d_.Committed();
  EXPECT_FALSE(committed.contains({kIn, 2})) << "committed past a message never processed";
  EXPECT_FALSE(committed.contains({kIn, 3}));
  // Whoever owns them next processes them, once.
  d_.AssignAll();
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_THAT(Latest(d_.ReadAll(kOut)),
              UnorderedElementsAre(Pair(keys[0], "1"), Pair(keys[1], "1"), Pair(keys[2], "1"),
                                   Pair(keys[3], "1")));
  EXPECT_EQ(d_.ReadAll(kOut).size(), 4u);
}

// A commit inside a rebalance callback refused (as the coordinator refuses offsets of the
// generation the rebalance just ended, KIP-447) is a failed commit like any other: aborted, and
// the instance rewinds and goes on. It used to end the run (the bench's instances that "ended").
TEST_P(RuntimeTest, CommitRefusedInsideARebalanceRewindsAndTheRunGoesOn) {
  ASSERT_TRUE(d_.Start().ok());
  ASSERT_TRUE(d_.Process().ok());  // owns 0..3
  const uint64_t before = d_.runtime()->stats().transactions;
  // 600 messages: the first fetch (500) is processed, then the revoke arrives after the second,
  // with the first fetch's work pending; its commit is refused.
  std::map<std::string, int> piped;
  for (int i = 0; i < 600; ++i) {
    const std::string key = KeyOn(i % 4, i % 3);
    d_.Pipe(kIn, key, "x");
    ++piped[key];
  }
  d_.KeepPartitions({0, 1}, /*mid_batch=*/true, /*after_fetches=*/1);
  bool refused = false;
  d_.SetCommitHook([&](uint64_t n) -> absl::Status {
    if (n == before && !refused) {
      refused = true;
      return absl::FailedPreconditionError("Specified group generation id is not valid");
    }
    return absl::OkStatus();
  });
  absl::Status s = d_.Process();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(refused);
  EXPECT_EQ(d_.runtime()->stats().rewinds, 1u);
  EXPECT_THAT(d_.runtime()->stats().partitions, ElementsAre(0, 1));
  d_.AssignAll();
  s = d_.Process();
  ASSERT_TRUE(s.ok()) << s;
  std::map<std::string, std::string> want;
  for (const auto& [k, n] : piped) want[k] = absl::StrCat(n);
  EXPECT_EQ(Latest(d_.ReadAll(kOut)), want);
  EXPECT_EQ(d_.ReadAll(kOut).size(), 600u) << "every message counted once";
  EXPECT_EQ(d_.counter("counted"), 600u);
}

// Issue 19 item 4: a rebalance moves only the partitions that change owner. The tasks that stay
// keep their processor and state (no restore); only the partitions that come back restore.
TEST_P(RuntimeTest, CooperativeRebalanceRestoresOnlyThePartitionsThatMove) {
  ASSERT_TRUE(d_.Start().ok());
  for (int p = 0; p < 4; ++p) d_.Pipe(kIn, KeyOn(p), "x");
  ASSERT_TRUE(d_.Process().ok());
  const uint64_t restored = d_.runtime()->stats().tasks_restored;
  EXPECT_EQ(restored, 4u);
  CountProcessor* kept0 = Task(0);
  CountProcessor* kept1 = Task(1);
  d_.KeepPartitions({0, 1});
  d_.Pipe(kIn, KeyOn(0), "x");
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_EQ(Task(0), kept0) << "a task that stayed was rebuilt";
  EXPECT_EQ(Task(2), nullptr);
  EXPECT_EQ(d_.runtime()->stats().tasks_restored, restored);
  EXPECT_THAT(d_.runtime()->stats().partitions, ElementsAre(0, 1));
  d_.AssignAll();
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_EQ(Task(0), kept0);
  EXPECT_EQ(Task(1), kept1);
  EXPECT_EQ(d_.runtime()->stats().tasks_restored, restored + 2) << "only 2 and 3 restore";
  EXPECT_EQ(Task(2)->counts.at(KeyOn(2)), 1);
  EXPECT_EQ(Task(0)->counts.at(KeyOn(0)), 2);
}

// The same with the restore in the background: the tasks that stay go on, the messages of a
// partition read while it restores are read again after it, and every message counts once.
TEST_P(RuntimeTest, BackgroundRestoreCountsEveryMessageOnceAndKeepsTheTasksThatStay) {
  TopologyTestDriver d(
      [](Clock*) { return CountTopology(); },
      DriverOptions{.processing_threads = GetParam(), .restore_in_background = true});
  auto key_on = [&](int32_t p) {
    for (int k = 0;; ++k) {
      std::string key = absl::StrCat("k", k);
      if (d.broker().PartitionFor(kIn, key) == p) return key;
    }
  };
  ASSERT_TRUE(d.Start().ok());
  for (int p = 0; p < 4; ++p) d.Pipe(kIn, key_on(p), "x");
  ASSERT_TRUE(d.Process().ok());
  EXPECT_TRUE(d.runtime()->ready());
  CountProcessor* kept0 = d.processor<CountProcessor>("cnt", 0);
  d.KeepPartitions({0, 1});
  ASSERT_TRUE(d.Process().ok());
  for (int p = 0; p < 4; ++p) d.Pipe(kIn, key_on(p), "x");  // 2 and 3: while not owned
  d.AssignAll();
  for (int p = 0; p < 4; ++p) d.Pipe(kIn, key_on(p), "x");
  ASSERT_TRUE(d.Process().ok());
  EXPECT_EQ(d.processor<CountProcessor>("cnt", 0), kept0);
  EXPECT_EQ(d.runtime()->stats().tasks_restored, 6u);  // 4 at the start, then 2 and 3
  for (int p = 0; p < 4; ++p) {
    EXPECT_EQ(d.processor<CountProcessor>("cnt", p)->counts.at(key_on(p)), 3) << p;
  }
  EXPECT_EQ(d.ReadAll(kOut).size(), 12u);
}

// A rebalance that arrives while a background restore runs waits for it inside the callback
// (OnRevoked, StartRestore). The restore thread must not need the group's consumer then: the
// broker (as librdkafka) does not answer its offset fetch until the callback returns. Before the
// committed offsets were read in the callback, this deadlocked until stable_offsets_wait.
TEST_P(RuntimeTest, RebalanceDuringABackgroundRestoreDoesNotWaitForItsOffsetFetch) {
  TopologyTestDriver d([](Clock*) { return CountTopology(); },
                       DriverOptions{.processing_threads = GetParam(),
                                     .restore_in_background = true,
                                     .stable_offsets_wait = absl::Seconds(2)});
  auto key_on = [&](int32_t p) {
    for (int k = 0;; ++k) {
      std::string key = absl::StrCat("k", k);
      if (d.broker().PartitionFor(kIn, key) == p) return key;
    }
  };
  for (int p = 0; p < 4; ++p) d.Pipe(kIn, key_on(p), "x");
  ASSERT_TRUE(d.Start().ok());
  // One poll delivers: assign 0-3 (restore starts), revoke 2 and 3 (joins that restore), then
  // 2 and 3 back (another restore).
  d.KeepPartitions({0, 1});
  d.AssignAll();
  absl::Status s = d.Process();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(d.runtime()->ready());
  EXPECT_EQ(d.runtime()->stats().tasks_restored, 6u);  // 0-3, then 2 and 3 again
  for (int p = 0; p < 4; ++p) {
    ASSERT_NE(d.processor<CountProcessor>("cnt", p), nullptr) << p;
    EXPECT_EQ(d.processor<CountProcessor>("cnt", p)->counts.at(key_on(p)), 1) << p;
  }
  EXPECT_EQ(d.ReadAll(kOut).size(), 4u);
}

// Co-partitioned inputs: the group assigns the lead topic; partition p of the other input goes
// and comes with the lead's p, so a task never runs with half its inputs.
TEST_P(RuntimeTest, PairedInputFollowsTheLeadPartition) {
  TopologyTestDriver d(
      [](Clock*) {
        Topology t = CountTopology();
        t.subtopologies[0].inputs = {kIn, "in2"};
        return t;
      },
      DriverOptions{.processing_threads = GetParam()});
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Process().ok());
  d.KeepPartitions({0});
  ASSERT_TRUE(d.Process().ok());
  d.broker().Append("in2", 0, "a", "x");
  d.broker().Append("in2", 3, "b", "x");
  ASSERT_TRUE(d.Process().ok());
  auto owned = d.broker().Assignment(d.group());
  ASSERT_EQ(owned.size(), 1u);
  EXPECT_THAT(owned.begin()->second, ElementsAre(TopicPartition{kIn, 0}));
  const auto committed = d.Committed();
  EXPECT_TRUE(committed.contains({"in2", 0}));
  EXPECT_FALSE(committed.contains({"in2", 3})) << "read a paired partition of another member";
  d.AssignAll();
  ASSERT_TRUE(d.Process().ok());
  EXPECT_EQ(d.Committed().at({"in2", 3}), 1);
}

// Issue 19, bug 1 (the other way in): a restore that fails must not let anything commit.
TEST_P(RuntimeTest, FailedRestoreCommitsNothing) {
  d_.Pipe(kIn, KeyOn(0), "x");
  d_.broker().FailChangelogReads(absl::UnavailableError("changelog unreachable"), 1000);
  ASSERT_TRUE(d_.Start().ok());
  d_.broker().CreateTopic(kChangelog, 4);
  d_.broker().Append(kChangelog, 0, "old", "1");  // something to restore
  absl::Status s = d_.Process();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(s.message(), HasSubstr("restoring state"));
  EXPECT_THAT(d_.Committed(), IsEmpty());
  EXPECT_THAT(d_.ReadAll(kOut), IsEmpty());
  EXPECT_FALSE(d_.runtime()->ready());
}

// Issue 19, bug 2: after a revoke, the local state must not survive. Another instance owns the
// partition meanwhile and deletes a key (a tombstone), compaction removes the tombstone; when
// the partition comes back, a restore from the old checkpoint over the old keys would bring the
// deleted key back.
TEST_P(RuntimeTest, RevokedStateIsWipedSoDeletionsCompactedMeanwhileStayDeleted) {
  ASSERT_TRUE(d_.Start().ok());
  const std::string a = KeyOn(0);
  d_.Pipe(kIn, a, "x");
  ASSERT_TRUE(d_.Process().ok());
  d_.KeepPartitions({1, 2, 3});
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_THAT(d_.State("cnt", 0), IsEmpty()) << "revoked state left on disk";
  EXPECT_FALSE(d_.store().Get(CheckpointKey(TaskPrefix("cnt", 0))).ok());
  // The other owner deletes `a`; the tombstone is compacted away.
  d_.broker().Append(kChangelog, 0, a, std::nullopt);
  d_.broker().Compact(kChangelog);
  d_.AssignAll();
  d_.Pipe(kIn, a, "x");
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_EQ(Task(0)->counts.at(a), 1) << "a deleted key came back";
}

// The same hazard after a crash (no revoke callback, no wipe): a checkpoint older than the
// tombstones' retention is not trusted.
TEST_P(RuntimeTest, CheckpointOlderThanTombstoneRetentionRestoresFromTheBeginning) {
  ASSERT_TRUE(d_.Start().ok());
  const std::string a = KeyOn(3), b = KeyOn(3, 1);
  d_.Pipe(kIn, a, "x");
  d_.Pipe(kIn, b, "x");
  ASSERT_TRUE(d_.Process().ok());
  d_.Crash();
  d_.clock().Advance(absl::Hours(13));
  d_.broker().Append(kChangelog, 3, a, std::nullopt);
  d_.broker().Compact(kChangelog);
  ASSERT_TRUE(d_.Start().ok());
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_FALSE(Task(3)->counts.contains(a));
  EXPECT_EQ(Task(3)->counts.at(b), 1);
}

TEST_P(RuntimeTest, FailedWipeOfRevokedStateIsFatal) {
  ASSERT_TRUE(d_.Start().ok());
  d_.Pipe(kIn, KeyOn(0), "x");
  ASSERT_TRUE(d_.Process().ok());
  d_.KeepPartitions({});
  d_.FailStoreWrites(absl::InternalError("disk on fire"), 100);
  absl::Status s = d_.Process();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("wiping the local state of revoked cnt[0]"));
  EXPECT_THAT(s.message(), HasSubstr("disk on fire"));
}

// Issue 19, bug 3: a local entry that does not load is not dropped silently: the task is rebuilt
// from its changelog, and it is counted.
TEST_P(RuntimeTest, CorruptLocalEntryIsRebuiltFromTheChangelogAndCounted) {
  ASSERT_TRUE(d_.Start().ok());
  const std::string a = KeyOn(1), b = KeyOn(1, 1);
  d_.Pipe(kIn, a, "x");
  d_.Pipe(kIn, a, "x");
  d_.Pipe(kIn, b, "x");
  ASSERT_TRUE(d_.Process().ok());
  d_.Crash();
  ASSERT_TRUE(d_.store().Put(StatePrefix(TaskPrefix("cnt", 1)) + a, "corrupt").ok());
  ASSERT_TRUE(d_.Start().ok());
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_EQ(Task(1)->counts.at(a), 2);
  EXPECT_EQ(Task(1)->counts.at(b), 1);
  const RuntimeStats st = d_.runtime()->stats();
  EXPECT_EQ(st.corrupt_local_entries, 1u);
  EXPECT_EQ(st.corrupt_changelog_entries, 0u);
  EXPECT_EQ(d_.State("cnt", 1).at(a), "2") << "the local copy is repaired";
}

// ... and an entry corrupt in the changelog itself is dead-lettered with its key, tombstoned
// (so it is reported once, not at every restore), and the rest of the task is kept.
TEST_P(RuntimeTest, CorruptChangelogEntryIsDeadLetteredTombstonedAndCounted) {
  ASSERT_TRUE(d_.Start().ok());
  const std::string a = KeyOn(2), b = KeyOn(2, 1);
  d_.Pipe(kIn, a, "x");
  d_.Pipe(kIn, b, "x");
  ASSERT_TRUE(d_.Process().ok());
  int64_t a_offset = -1;
  for (const auto& r : d_.broker().ReadCommitted(kChangelog, 2)) {
    if (r.key == a) a_offset = r.offset;
  }
  ASSERT_GE(a_offset, 0);
  ASSERT_TRUE(d_.broker().CorruptRecordForTest(kChangelog, 2, a_offset, "corrupt").ok());
  d_.Crash(/*wipe_store=*/true);
  ASSERT_TRUE(d_.Start().ok());
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_FALSE(Task(2)->counts.contains(a));
  EXPECT_EQ(Task(2)->counts.at(b), 1);
  const auto dead = d_.ReadAll("dead");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].key, a);
  EXPECT_EQ(dead[0].value, "corrupt");
  std::map<std::string, std::string> h(dead[0].headers.begin(), dead[0].headers.end());
  EXPECT_EQ(h["reason"], "corrupt_state");
  EXPECT_EQ(h["source_topic"], kChangelog);
  EXPECT_EQ(h["state_key"], a);
  EXPECT_THAT(h["error"], HasSubstr("not a number"));
  EXPECT_EQ(d_.runtime()->stats().corrupt_changelog_entries, 1u);
  EXPECT_EQ(Latest(d_.ReadAll(kChangelog)).at(a), "<null>") << "tombstoned";
  d_.Crash(/*wipe_store=*/true);
  ASSERT_TRUE(d_.Start().ok());
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_EQ(d_.ReadAll("dead").size(), 1u) << "reported once";
}

TEST_P(RuntimeTest, StoreCorruptAtOpenIsRebuiltFromTheChangelogs) {
  ASSERT_TRUE(d_.Start().ok());
  const std::string a = KeyOn(0);
  d_.Pipe(kIn, a, "x");
  ASSERT_TRUE(d_.Process().ok());
  d_.Crash();
  d_.CorruptStoreAtNextOpen();
  ASSERT_TRUE(d_.Start().ok());
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_EQ(Task(0)->counts.at(a), 1);
  EXPECT_EQ(d_.runtime()->stats().store_rebuilds, 1u);
  EXPECT_EQ(d_.runtime()->stats().restored_entries, 1u);
}

TEST_P(RuntimeTest, FencedProducerIsReplacedAndTheBatchRetried) {
  ASSERT_TRUE(d_.Start().ok());
  const std::string a = KeyOn(1);
  d_.Pipe(kIn, a, "x");
  ASSERT_TRUE(d_.Process().ok());
  d_.broker().FenceProducer("count.driver-0");
  d_.Pipe(kIn, a, "x");
  ASSERT_TRUE(d_.Process().ok());
  EXPECT_EQ(d_.runtime()->stats().rewinds, 1u);
  EXPECT_THAT(Latest(d_.ReadAll(kOut)), ElementsAre(Pair(a, "2")));
  EXPECT_EQ(d_.ReadAll(kOut).size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Lanes, RuntimeTest, ::testing::Values(0, 2),
                         [](const auto& info) { return absl::StrCat(info.param, "_lanes"); });

}  // namespace
}  // namespace cybersyn::stream
