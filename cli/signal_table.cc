#include "cli/signal_table.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/feed_format.h"

namespace cybersyn::cli {
namespace {

bool IsReward(const v1::Signal& s) {
  return s.kind() == v1::SIGNAL_KIND_REWARD || s.severity() == v1::SEVERITY_REWARD;
}

constexpr char kRow[] = "%-24s %-10s %-8s %-32s %-12s %-12s %-10s %-19s %s\n";

// node -> "origin indicator [id]" of every open signal in the tree also visible at the node.
using VisibleAt = std::map<std::string, std::vector<std::string>>;

void CollectVisible(const v1::NodeStatus& n, VisibleAt* out) {
  for (const v1::Signal& s : n.open_signals()) {
    std::set<std::string> nodes;
    for (const v1::AlsoVisible& a : s.also_visible_at()) nodes.insert(a.series().node());
    for (const std::string& node : nodes) {
      (*out)[node].push_back(
          absl::StrCat(s.origin_node(), " ", s.series().indicator(), " [", s.id(), "]"));
    }
  }
  for (const v1::NodeStatus& c : n.children()) CollectVisible(c, out);
}

void PrintNode(const v1::NodeStatus& n, int indent, const VisibleAt& visible, std::string* out) {
  const std::string sev =
      n.worst() == v1::SEVERITY_UNSPECIFIED ? "ok" : ShortEnum(v1::Severity_Name(n.worst()));
  int problems = 0;
  int rewards = 0;
  for (const v1::Signal& s : n.open_signals()) ++(IsReward(s) ? rewards : problems);
  std::vector<std::string> vals;
  for (const auto& [k, v] : n.last_values()) vals.push_back(absl::StrFormat("%s=%.4g", k, v));
  std::sort(vals.begin(), vals.end());
  std::string counts = absl::StrFormat("%2d open", problems);
  if (rewards > 0) absl::StrAppend(&counts, absl::StrFormat(" +%d reward", rewards));
  absl::StrAppend(out, absl::StrFormat("%s%-*s %-11s %-7s %-18s %s\n", std::string(indent * 2, ' '),
                                       40 - indent * 2, n.node(), n.level(), sev, counts,
                                       absl::StrJoin(vals, " ")));
  if (auto it = visible.find(n.node()); it != visible.end()) {
    absl::StrAppend(out, std::string(indent * 2 + 2, ' '),
                    "also visible: ", absl::StrJoin(it->second, ", "), "\n");
  }
  for (const auto& child : n.children()) PrintNode(child, indent + 1, visible, out);
}

}  // namespace

std::string SignalsTable(const std::vector<v1::Signal>& signals, std::string (*time)(int64_t)) {
  std::string out = absl::StrFormat(kRow, "ID", "KIND", "SEVERITY", "ORIGIN", "INDICATOR", "STATE",
                                    "LEVEL", "RAISED", "ALSO VISIBLE AT");
  int rewards = 0;
  for (const v1::Signal& s : signals) {
    if (IsReward(s)) ++rewards;
    std::string also = AlsoVisibleList(s);
    absl::StrAppend(
        &out,
        absl::StrFormat(kRow, s.id(), ShortEnum(v1::SignalKind_Name(s.kind())),
                        ShortEnum(v1::Severity_Name(s.severity())), s.origin_node(),
                        s.series().indicator(), ShortEnum(v1::SignalState_Name(s.state())),
                        s.current_level_name(), time(s.raised_at_ms()), also.empty() ? "-" : also));
  }
  const int problems = static_cast<int>(signals.size()) - rewards;
  absl::StrAppend(&out, signals.size(), " signal(s): ", problems, " problem(s)");
  if (rewards > 0) absl::StrAppend(&out, ", ", rewards, " reward(s)");
  absl::StrAppend(&out, "\n");
  return out;
}

std::string StatusTree(const v1::NodeStatus& root) {
  VisibleAt visible;
  CollectVisible(root, &visible);
  std::string out = absl::StrFormat("%-40s %-11s %-7s %-18s %s\n", "NODE", "LEVEL", "STATE",
                                    "PROBLEMS", "LAST VALUES");
  PrintNode(root, 0, visible, &out);
  return out;
}

}  // namespace cybersyn::cli
