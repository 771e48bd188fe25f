#include "stream/lanes.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::stream {
namespace {

TEST(LanesTest, EachLaneRunsItsJobsInPushOrderAndDrainWaitsForAll) {
  constexpr int kLanes = 3;
  std::vector<std::vector<int>> seen(kLanes);  // each written by its own lane only
  std::vector<std::thread::id> threads(kLanes);
  Lanes<int> lanes(kLanes, 4, [&](int lane, int& job) {
    seen[lane].push_back(job);
    threads[lane] = std::this_thread::get_id();
  });
  for (int i = 0; i < 3000; ++i) lanes.Push(i % kLanes, i);
  lanes.Drain();
  for (int l = 0; l < kLanes; ++l) {
    ASSERT_EQ(seen[l].size(), 1000u) << "lane " << l;
    for (size_t k = 0; k < seen[l].size(); ++k) EXPECT_EQ(seen[l][k], l + 3 * static_cast<int>(k));
    EXPECT_NE(threads[l], std::this_thread::get_id());
  }
  // The caller owns the state again after Drain, and lanes keep working after it.
  seen[0].clear();
  lanes.Push(0, 7);
  lanes.Drain();
  EXPECT_THAT(seen[0], testing::ElementsAre(7));
}

TEST(LanesTest, PushBlocksWhileTheLaneIsFullAndOtherLanesKeepRunning) {
  absl::Notification release;
  std::atomic<int> done0{0}, done1{0};
  Lanes<int> lanes(2, 2, [&](int lane, int&) {
    if (lane == 0) {
      release.WaitForNotification();
      ++done0;
    } else {
      ++done1;
    }
  });
  // Lane 0 runs one job (blocked) and holds two more: the fourth push must wait.
  for (int i = 0; i < 3; ++i) lanes.Push(0, i);
  std::atomic<bool> fourth_pushed{false};
  std::thread pusher([&] {
    lanes.Push(0, 3);
    fourth_pushed = true;
  });
  for (int i = 0; i < 5; ++i) lanes.Push(1, i);  // not held up by lane 0
  while (done1.load() < 5) std::this_thread::yield();
  absl::SleepFor(absl::Milliseconds(50));  // a chance for a wrongly unblocked push to land
  EXPECT_FALSE(fourth_pushed.load());
  EXPECT_EQ(done0.load(), 0);
  release.Notify();
  pusher.join();
  EXPECT_TRUE(fourth_pushed.load());
  lanes.Drain();
  EXPECT_EQ(done0.load(), 4);
}

TEST(LanesTest, MoveOnlyJobsAndDestructionRunsWhatWasPushed) {
  std::atomic<int> sum{0};
  {
    Lanes<std::unique_ptr<int>> lanes(2, 8, [&](int, std::unique_ptr<int>& j) { sum += *j; });
    for (int i = 1; i <= 10; ++i) lanes.Push(i % 2, std::make_unique<int>(i));
  }
  EXPECT_EQ(sum.load(), 55);
}

}  // namespace
}  // namespace cybersyn::stream
