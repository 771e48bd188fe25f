// Cooperative rebalancing against the real broker (issue 19 item 4): co-partitioned topics move
// together, and a static member killed between the two rounds of a cooperative rebalance and
// restarted at once leaves no partition unowned (common/kafka_consumer.h).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <set>

#include "absl/time/clock.h"
#include "common/kafka_admin.h"
#include "common/kafka_consumer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/real_kafka.h"

namespace cybersyn {
namespace {

using Owned = std::set<std::pair<std::string, int32_t>>;

// What a member owns, from its rebalance callbacks.
class Tracker : public RebalanceListener {
 public:
  void OnAssigned(std::vector<TopicPartitionOffset>& p) override {
    for (const auto& tp : p) owned.insert({tp.topic, tp.partition});
    ++assignments;
  }
  void OnRevoked(const std::vector<TopicPartitionOffset>& p, bool) override {
    for (const auto& tp : p) owned.erase({tp.topic, tp.partition});
  }
  Owned owned;
  int assignments = 0;
};

// Dies (as kill -9 would: no unassign, no rejoin) as soon as it is told to give partitions up.
class DieOnRevoke : public Tracker {
 public:
  explicit DieOnRevoke(int fd) : fd_(fd) {}
  void OnAssigned(std::vector<TopicPartitionOffset>& p) override {
    Tracker::OnAssigned(p);
    const std::string line = std::to_string(owned.size()) + "\n";
    (void)!write(fd_, line.data(), line.size());
  }
  void OnRevoked(const std::vector<TopicPartitionOffset>& p, bool lost) override {
    if (!p.empty() && !lost) _exit(0);
  }

 private:
  int fd_;
};

class RebalanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = testing::GetRealKafka();
    ASSERT_TRUE(k.ok()) << k.status();
    client_ = {k->bootstrap, {}};
    lead_ = testing::UniqueName("rebalance-lead");
    paired_ = testing::UniqueName("rebalance-paired");
    group_ = testing::UniqueName("rebalance-group");
    ASSERT_TRUE(EnsureTopics(client_, {{lead_, 4, 1, {}}, {paired_, 4, 1, {}}}).ok());
  }

  std::unique_ptr<KafkaConsumer> Member(const std::string& instance, RebalanceListener* l,
                                        bool rejoin_once = true) {
    ConsumerOptions o;
    o.client = client_;
    o.group_id = group_;
    o.listener = l;
    o.paired_topics = {paired_};
    o.static_rejoin_once = rejoin_once;
    // Long enough that the killed member's session cannot time out during the test: only the
    // restarted member can bring the group back to full ownership.
    o.overrides = {{"group.instance.id", instance},
                   {"session.timeout.ms", "45000"},
                   {"heartbeat.interval.ms", "500"}};
    auto c = KafkaConsumer::Create(o);
    EXPECT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE((*c)->Subscribe({lead_}).ok());
    return std::move(*c);
  }

  // Polls the members until `done` or `timeout`.
  void PollUntil(const std::vector<KafkaConsumer*>& members, absl::Duration timeout,
                 const std::function<bool()>& done) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end && !done()) {
      for (KafkaConsumer* m : members) (void)m->ConsumeBatch(10, absl::Milliseconds(50));
    }
  }

  KafkaClientOptions client_;
  std::string lead_, paired_, group_;
};

Owned All(const std::string& lead, const std::string& paired) {
  Owned all;
  for (int p = 0; p < 4; ++p) {
    all.insert({lead, p});
    all.insert({paired, p});
  }
  return all;
}

TEST_F(RebalanceTest, StaticMemberKilledMidRebalanceAndRestartedLeavesNothingUnowned) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    DieOnRevoke a(fds[1]);
    auto c = Member("a", &a);
    const absl::Time end = absl::Now() + absl::Seconds(90);
    while (absl::Now() < end) (void)c->ConsumeBatch(10, absl::Milliseconds(100));
    _exit(1);  // never asked to give anything up
  }
  close(fds[1]);
  // Member a owns every partition of both topics.
  FILE* from_a = fdopen(fds[0], "r");
  char line[32];
  int owned_by_a = 0;
  while (owned_by_a < 8 && fgets(line, sizeof(line), from_a) != nullptr) {
    owned_by_a = std::atoi(line);
  }
  ASSERT_EQ(owned_by_a, 8);
  absl::SleepFor(absl::Seconds(2));  // (a's own rejoin after its first assignment settles)

  // b joins: in the first round a gives up half and dies before its second round. (b does not
  // rejoin after its own first assignment: it stands for a member that joined long ago, so
  // only the restarted member can bring the orphans back.)
  Tracker b;
  auto cb = Member("b", &b, /*rejoin_once=*/false);
  int status = 0;
  pid_t done = 0;
  PollUntil({cb.get()}, absl::Seconds(60), [&] {
    done = waitpid(child, &status, WNOHANG);
    return done == child;
  });
  fclose(from_a);
  ASSERT_EQ(done, child) << "member a was never asked to give partitions up";
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);

  // a restarts at once, with the same group.instance.id.
  Tracker a2;
  auto ca2 = Member("a", &a2);
  auto covered = [&] {
    Owned both = a2.owned;
    both.insert(b.owned.begin(), b.owned.end());
    return both == All(lead_, paired_) && a2.owned.size() + b.owned.size() == 8;
  };
  PollUntil({ca2.get(), cb.get()}, absl::Seconds(30), covered);
  std::cout << "after the restart: a owns " << a2.owned.size() << ", b owns " << b.owned.size()
            << std::endl;
  EXPECT_TRUE(covered()) << "partitions left unowned after the static member's restart";
  // Co-partitioned: each member owns partition p of both topics or of neither.
  for (const Tracker* t : {&a2, &b}) {
    for (const auto& [topic, p] : t->owned) {
      EXPECT_TRUE(t->owned.contains({topic == lead_ ? paired_ : lead_, p})) << topic << p;
    }
  }
  (void)ca2->Close();
  (void)cb->Close();
}

}  // namespace
}  // namespace cybersyn
