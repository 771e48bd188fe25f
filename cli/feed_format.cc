#include "cli/feed_format.h"

#include <cctype>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace cybersyn::cli {

std::string ShortEnum(const std::string& enum_name) {
  std::string s = enum_name;
  for (const char* p :
       {"SIGNAL_KIND_", "SIGNAL_STATE_", "SEVERITY_", "TRANSITION_KIND_", "COMMAND_KIND_"}) {
    if (s.rfind(p, 0) == 0) {
      s = s.substr(std::string(p).size());
      break;
    }
  }
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string AlsoVisibleList(const v1::Signal& s) {
  std::set<std::pair<std::string, std::string>> seen;
  std::vector<std::string> out;
  for (const v1::AlsoVisible& a : s.also_visible_at()) {
    if (!seen.emplace(a.series().node(), a.series().indicator()).second) continue;
    out.push_back(absl::StrCat(a.series().node(), " ", a.series().indicator()));
  }
  return absl::StrJoin(out, ", ");
}

std::string FeedLine(const v1::SignalEvent& e) {
  const v1::Signal& s = e.signal();
  const v1::Transition& t = e.transition();
  const int64_t at = t.at_ms() != 0 ? t.at_ms() : s.raised_at_ms();
  std::string line = absl::StrFormat(
      "%s  %-12s %-9s %-7s %s · %s",
      absl::FormatTime("%H:%M:%S", absl::FromUnixMillis(at), absl::LocalTimeZone()),
      ShortEnum(v1::TransitionKind_Name(t.kind())), ShortEnum(v1::SignalKind_Name(s.kind())),
      ShortEnum(v1::Severity_Name(s.severity())), s.origin_node(), s.series().indicator());
  if (t.kind() == v1::TRANSITION_KIND_ESCALATED) {
    absl::StrAppend(&line, "  ⇧ ", t.from_node(), " → ", t.to_node(), " (", s.current_level_name(),
                    ")");
  }
  if (!t.actor().empty() && t.actor() != "system") absl::StrAppend(&line, "  by ", t.actor());
  if (!t.reason().empty()) absl::StrAppend(&line, "  \"", t.reason(), "\"");
  absl::StrAppend(&line, "  [", s.id(), "]");
  if (const std::string also = AlsoVisibleList(s); !also.empty()) {
    absl::StrAppend(&line, "  also visible at: ", also);
  }
  return line;
}

}  // namespace cybersyn::cli
