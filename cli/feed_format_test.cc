#include "cli/feed_format.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::cli {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

void AddVisible(v1::Signal* s, const std::string& node, const std::string& indicator,
                int64_t window_ms) {
  v1::AlsoVisible* a = s->add_also_visible_at();
  a->mutable_series()->set_node(node);
  a->mutable_series()->set_indicator(indicator);
  a->mutable_series()->set_window_ms(window_ms);
}

v1::Signal Energy() {
  v1::Signal s;
  s.set_id("sig-1");
  s.set_kind(v1::SIGNAL_KIND_STEP);
  s.set_severity(v1::SEVERITY_ALERT);
  s.set_origin_node("cl/mining/chuquicamata/smelter");
  s.mutable_series()->set_node("cl/mining/chuquicamata/smelter");
  s.mutable_series()->set_indicator("energy");
  return s;
}

TEST(AlsoVisibleListTest, EmptyWhenVisibleNowhereElse) { EXPECT_EQ(AlsoVisibleList(Energy()), ""); }

TEST(AlsoVisibleListTest, OncePerNodeAndIndicatorInAttributionOrder) {
  v1::Signal s = Energy();
  AddVisible(&s, "cl/mining/chuquicamata", "energy", 10000);
  AddVisible(&s, "cl/mining/chuquicamata", "energy", 60000);  // another window size: folded
  AddVisible(&s, "cl/mining/chuquicamata/smelter", "productivity", 10000);
  AddVisible(&s, "cl", "energy", 10000);
  EXPECT_EQ(AlsoVisibleList(s),
            "cl/mining/chuquicamata energy, cl/mining/chuquicamata/smelter productivity, "
            "cl energy");
}

TEST(FeedLineTest, NamesTheOriginAndWhereTheFaultIsAlsoVisible) {
  v1::SignalEvent e;
  *e.mutable_signal() = Energy();
  AddVisible(e.mutable_signal(), "cl/mining", "energy", 10000);
  e.mutable_transition()->set_kind(v1::TRANSITION_KIND_ALSO_VISIBLE);
  e.mutable_transition()->set_actor("system");
  const std::string line = FeedLine(e);
  EXPECT_THAT(line, HasSubstr("also_visible step      alert   cl/mining/chuquicamata/smelter"));
  EXPECT_THAT(line, EndsWith("[sig-1]  also visible at: cl/mining energy"));
}

TEST(FeedLineTest, NoAlsoVisiblePartWithoutAttribution) {
  v1::SignalEvent e;
  *e.mutable_signal() = Energy();
  e.mutable_transition()->set_kind(v1::TRANSITION_KIND_RAISED);
  EXPECT_THAT(FeedLine(e), Not(HasSubstr("also visible")));
  EXPECT_THAT(FeedLine(e), EndsWith("[sig-1]"));
}

}  // namespace
}  // namespace cybersyn::cli
