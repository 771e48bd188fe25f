#include "cli/signal_table.h"

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

std::string NoTime(int64_t) { return "t"; }

v1::Signal Make(const std::string& id, const std::string& node, const std::string& indicator,
                v1::SignalKind kind, v1::Severity severity) {
  v1::Signal s;
  s.set_id(id);
  s.set_kind(kind);
  s.set_severity(severity);
  s.set_origin_node(node);
  s.set_current_node(node);
  s.set_state(v1::SIGNAL_STATE_FIRING);
  s.set_current_level_name("unit");
  s.mutable_series()->set_node(node);
  s.mutable_series()->set_indicator(indicator);
  return s;
}

void AddVisible(v1::Signal* s, const std::string& node, const std::string& indicator) {
  v1::AlsoVisible* a = s->add_also_visible_at();
  a->mutable_series()->set_node(node);
  a->mutable_series()->set_indicator(indicator);
  a->mutable_series()->set_window_ms(10000);
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

TEST(SignalsTableTest, OneRowPerFaultWithItsAlsoVisibleNodes) {
  v1::Signal fault = Make("sig-a", "cl/m/e/u", "energy", v1::SIGNAL_KIND_STEP, v1::SEVERITY_ALERT);
  AddVisible(&fault, "cl/m/e", "energy");
  AddVisible(&fault, "cl/m", "energy");
  AddVisible(&fault, "cl/m/e/u", "productivity");
  const auto lines = Lines(SignalsTable({fault}, NoTime));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], HasSubstr("ALSO VISIBLE AT"));
  EXPECT_THAT(lines[1], MatchesRegex("sig-a +step +alert +cl/m/e/u +energy +firing +unit +t +"
                                     "cl/m/e energy, cl/m energy, cl/m/e/u productivity"));
  EXPECT_EQ(lines[2], "1 signal(s): 1 problem(s)");
}

TEST(SignalsTableTest, RewardsAreListedButNotCountedAsProblems) {
  const auto lines = Lines(
      SignalsTable({Make("sig-a", "cl/a", "output", v1::SIGNAL_KIND_STEP, v1::SEVERITY_CRISIS),
                    Make("sig-r", "cl", "output", v1::SIGNAL_KIND_REWARD, v1::SEVERITY_REWARD)},
                   NoTime));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_THAT(lines[1], MatchesRegex("sig-a .* +-"));  // visible nowhere else
  EXPECT_THAT(lines[2], HasSubstr("reward"));
  EXPECT_EQ(lines[3], "2 signal(s): 1 problem(s), 1 reward(s)");
}

v1::NodeStatus Tree() {
  v1::NodeStatus root;
  root.set_node("cl");
  root.set_level("nation");
  v1::NodeStatus* m = root.add_children();
  m->set_node("cl/m");
  m->set_level("sector");
  m->set_worst(v1::SEVERITY_ALERT);
  v1::Signal* fault = m->add_open_signals();
  *fault = Make("sig-a", "cl/m", "energy", v1::SIGNAL_KIND_STEP, v1::SEVERITY_ALERT);
  AddVisible(fault, "cl", "energy");
  AddVisible(fault, "cl", "productivity");
  *m->add_open_signals() =
      Make("sig-r", "cl/m", "output", v1::SIGNAL_KIND_REWARD, v1::SEVERITY_REWARD);
  (*m->mutable_last_values())["energy"] = 12.5;
  return root;
}

TEST(StatusTreeTest, MarksWhereAFaultIsAlsoVisibleWithoutCountingIt) {
  const auto lines = Lines(StatusTree(Tree()));
  ASSERT_EQ(lines.size(), 4u) << StatusTree(Tree());
  EXPECT_THAT(lines[0], HasSubstr("PROBLEMS"));
  EXPECT_THAT(lines[1], MatchesRegex("cl +nation +ok +0 open +"));
  // Once per signal, however many of the node's series it explains.
  EXPECT_EQ(lines[2], "  also visible: cl/m energy [sig-a]");
  EXPECT_THAT(lines[3], MatchesRegex("  cl/m +sector +alert +1 open \\+1 reward +energy=12.5"));
}

TEST(StatusTreeTest, NoMarksWithoutAttribution) {
  v1::NodeStatus root = Tree();
  root.mutable_children(0)->mutable_open_signals(0)->clear_also_visible_at();
  EXPECT_THAT(StatusTree(root), Not(HasSubstr("also visible")));
}

}  // namespace
}  // namespace cybersyn::cli
