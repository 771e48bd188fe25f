#include "common/config.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/duration.h"
#include "common/kafka_properties.h"
#include "common/time_grammar.h"
#include "yaml-cpp/yaml.h"

namespace cybersyn {
namespace {

// Debian's Abseil is built with its own string_view type; StrCat and friends take only that.
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Joins std::string_views (absl::StrJoin formats only Abseil's string_view).
template <typename Range>
std::string Join(const Range& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out.append(sep);
    out.append(std::string_view(item));
  }
  return out;
}

}  // namespace

std::string KafkaConfig::Topic(std::string_view name) const {
  return absl::StrCat(topic_prefix, ".", Av(name));
}

namespace {

constexpr std::string_view kRollupNames[] = {"sum", "mean", "min", "max", "last", "none"};
constexpr std::string_view kRoleNames[] = {"none", "actuality", "capability", "potentiality"};
constexpr std::string_view kOnOff[] = {"on", "off"};
constexpr std::string_view kDetectorNames[] = {"cyberstride", "ewma",      "cusum",
                                               "bocpd",       "threshold", "none"};

}  // namespace

std::string_view RollupName(Rollup r) { return kRollupNames[static_cast<int>(r)]; }
std::string_view RoleName(Role r) { return kRoleNames[static_cast<int>(r)]; }
std::string_view DetectorKindName(DetectorKind k) { return kDetectorNames[static_cast<int>(k)]; }

absl::StatusOr<double> ParseAlertBudget(std::string_view input) {
  const std::string text(input);
  const auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected an alert budget \"<count>/<hour|day|week|month>\" like 1/week or 2/day, got \"",
        text, "\""));
  };
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return bad();
  double count = 0;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(absl::string_view(text).substr(0, slash)),
                        &count))
    return bad();
  const std::string unit(absl::StripAsciiWhitespace(absl::string_view(text).substr(slash + 1)));
  double per_week = 0;
  if (unit == "hour") {
    per_week = 7 * 24;
  } else if (unit == "day") {
    per_week = 7;
  } else if (unit == "week") {
    per_week = 1;
  } else if (unit == "month") {
    per_week = 7.0 / 30;
  } else {
    return bad();
  }
  if (!(count > 0 && std::isfinite(count))) {
    return absl::InvalidArgumentError(
        absl::StrCat("alert budget must allow a positive count of false signals, got \"", text,
                     "\" (a series cannot be calibrated to never signal falsely)"));
  }
  if (count * per_week > 1e6) {
    return absl::InvalidArgumentError(
        absl::StrCat("alert budget \"", text, "\" is above 1e6 a week"));
  }
  return count * per_week;
}

const IndicatorConfig* Config::FindIndicator(std::string_view name) const {
  for (const IndicatorConfig& ind : indicators) {
    if (ind.name == name) return &ind;
  }
  return nullptr;
}

const IndicatorConfig* Config::IndicatorWithRole(Role role) const {
  if (role == Role::kNone) return nullptr;
  for (const IndicatorConfig& ind : indicators) {
    if (ind.role == role) return &ind;
  }
  return nullptr;
}

std::vector<const IndicatorConfig*> Config::BasesOf(std::string_view index) const {
  std::pair<Role, Role> roles;
  if (index == "productivity") {
    roles = {Role::kActuality, Role::kCapability};
  } else if (index == "latency") {
    roles = {Role::kCapability, Role::kPotentiality};
  } else if (index == "performance") {
    roles = {Role::kActuality, Role::kPotentiality};
  } else {
    return {};
  }
  const IndicatorConfig* a = IndicatorWithRole(roles.first);
  const IndicatorConfig* b = IndicatorWithRole(roles.second);
  if (a == nullptr || b == nullptr) return {};
  return {a, b};
}

bool Config::MayAttribute(std::string_view explained, std::string_view explaining) const {
  for (std::string_view name : {explained, explaining}) {
    const IndicatorConfig* ind = FindIndicator(name);
    if (ind != nullptr && !ind->attribution) return false;
  }
  return true;
}

const OperatorConfig* Config::FindOperatorByToken(std::string_view token) const {
  const OperatorConfig* found = nullptr;
  for (const OperatorConfig& op : operators) {
    // Constant time in the token's content, so response timing does not leak prefixes.
    unsigned char diff = op.token.size() == token.size() ? 0 : 1;
    const size_t n = std::min(op.token.size(), token.size());
    for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(op.token[i] ^ token[i]);
    if (diff == 0 && found == nullptr && !token.empty()) found = &op;
  }
  return found;
}

std::string ConfigProblem::ToString() const {
  return path.empty() ? message : absl::StrCat(path, ": ", message);
}

namespace {

// Levenshtein distance, for "did you mean" hints.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t subst =
          prev[j - 1] + (absl::ascii_tolower(a[i - 1]) == absl::ascii_tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
      // A swap of two neighbours ("titel" for "title") counts as one edit.
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
      }
    }
    prev2 = prev;
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The closest option to `word` if it is close enough to be a likely typo, else empty.
template <typename Range>
std::string Closest(std::string_view word, const Range& options) {
  const size_t limit = std::max<size_t>(1, std::min<size_t>(3, word.size() / 3));
  size_t best = limit + 1;
  std::string out;
  for (const auto& option : options) {
    const size_t d = EditDistance(word, option);
    if (d < best) {
      best = d;
      out = std::string(option);
    }
  }
  return out;
}

template <typename Range>
std::string DidYouMean(std::string_view word, const Range& options) {
  std::string best = Closest(word, options);
  return best.empty() ? "" : absl::StrCat("; did you mean \"", best, "\"?");
}

int LineOf(const YAML::Node& node) {
  if (!node.IsDefined()) return 0;
  const YAML::Mark mark = node.Mark();
  return mark.line >= 0 ? mark.line + 1 : 0;
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return node.size() == 0 ? "an empty map" : "a map";
    case YAML::NodeType::Sequence:
      return node.size() == 0 ? "an empty list" : "a list";
    case YAML::NodeType::Scalar:
      return absl::StrCat("\"", node.Scalar(), "\"");
    default:
      return "nothing";
  }
}

bool IsHostPort(std::string_view s) {
  std::string_view host;
  std::string_view port;
  if (!s.empty() && s[0] == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return false;
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    if (host.empty()) return false;
    for (char c : host) {
      if (!(absl::ascii_isxdigit(c) || c == ':' || c == '.')) return false;
    }
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.empty()) return false;
    for (char c : host) {
      if (!(absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '_')) return false;
    }
  }
  int port_number = 0;
  if (port.empty() || port.size() > 5) return false;
  for (char c : port) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return absl::SimpleAtoi(Av(port), &port_number) && port_number <= 65535;
}

bool IsTopicPrefix(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

std::string JoinPath(std::string_view base, std::string_view key) {
  return base.empty() ? std::string(key) : absl::StrCat(Av(base), ".", Av(key));
}

// Reads a whole file; on failure returns the strerror text in *error.
bool ReadWholeFile(const std::string& path, std::string* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = std::strerror(errno);
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    *error = std::strerror(errno);
    return false;
  }
  *out = buffer.str();
  return true;
}

enum class Sign { kPositive, kNonNegative };

// One key of a YAML map, with the line to blame for its value (a missing value has no position of
// its own, so its key's line is used).
struct Entry {
  std::string key;
  YAML::Node value;
  std::string path;
  int key_line = 0;
  int line = 0;
};

// A YAML map checked against its allowed keys.
struct Map {
  bool ok = false;  // a map (or nothing, treated as empty)
  std::string path;
  int line = 0;
  std::vector<Entry> entries;
  std::vector<std::string> suggested;  // keys offered as "did you mean" for unknown keys

  const Entry* Get(std::string_view key) const {
    for (const Entry& e : entries) {
      if (e.key == key) return &e;
    }
    return nullptr;
  }
};

// Walks the document, fills a Config and collects every problem.
class Loader {
 public:
  explicit Loader(std::string base_dir) : base_dir_(std::move(base_dir)) {}

  void Load(const YAML::Node& doc);

  std::vector<ConfigProblem> TakeProblems() {
    std::stable_sort(problems_.begin(), problems_.end(),
                     [](const ConfigProblem& a, const ConfigProblem& b) {
                       const int la = a.line == 0 ? INT_MAX : a.line;
                       const int lb = b.line == 0 ? INT_MAX : b.line;
                       return la < lb;
                     });
    return std::move(problems_);
  }
  Config TakeConfig() { return std::move(config_); }

 private:
  void Problem(int line, std::string path, std::string message) {
    problems_.push_back(ConfigProblem{
        .line = line, .column = 0, .path = std::move(path), .message = std::move(message)});
  }
  void Missing(const Map& m, std::string_view key) {
    // "rolup: unknown key; did you mean rollup?" already says it.
    if (std::find(m.suggested.begin(), m.suggested.end(), key) != m.suggested.end()) return;
    Problem(m.line, JoinPath(m.path, key), "required key is missing");
  }

  // `node` as a map with keys from `known`; unknown and repeated keys are problems. `hint` is
  // appended to unknown-key messages that have no close match.
  Map ReadMap(const YAML::Node& node, int fallback_line, std::string path,
              const std::vector<std::string_view>& known, std::string_view hint = "",
              std::string_view what = "a map");
  // Map entries under `path` whose keys are free-form (ids, property names).
  std::vector<Entry> FreeMap(const YAML::Node& node, int fallback_line, const std::string& path,
                             std::string_view what);

  std::optional<std::string> String(const Map& m, std::string_view key, bool required);
  std::optional<int64_t> Int(const Map& m, std::string_view key, int64_t min, int64_t max,
                             bool required = false);
  std::optional<double> Number(const Entry& e);
  std::optional<double> AlertBudget(const Entry& e);  // false signals per week
  std::optional<absl::Duration> DurationAt(const YAML::Node& node, int line,
                                           const std::string& path, Sign sign);
  std::optional<absl::Duration> Duration(const Map& m, std::string_view key, Sign sign,
                                         bool required = false);
  std::optional<uint64_t> Bytes(const Map& m, std::string_view key, uint64_t min);
  // Index of the entry's value in `names`, or nullopt (with a problem).
  template <size_t N>
  std::optional<size_t> Enum(const Map& m, std::string_view key, const std::string_view (&names)[N],
                             size_t first, bool required);
  std::optional<std::string> ReadableFile(const Entry& e, bool trim);

  void LoadKafka(const Entry* e);
  void LoadKafkaProperties(const Entry* p, std::map<std::string, std::string>* out);
  void LoadLevels(const Map& top);
  void LoadHierarchy(const Map& top);
  std::optional<NodeSpec> LoadNode(const YAML::Node& key, const YAML::Node& value,
                                   const std::string& parent_path, int depth);
  void LoadIndicators(const Map& top);
  void LoadOperators(const Entry* e);
  void LoadSparkplug(const Entry* e);
  void LoadListen(const Entry* e);
  void LoadAggregator(const Entry* e);
  void LoadAlerter(const Entry* e);
  void LoadGateway(const Entry* e);
  void LoadQuery(const Entry* e);

  std::string base_dir_;
  Config config_;
  std::vector<ConfigProblem> problems_;

  // Levels as far as they could be read; deadlines unset where they were invalid.
  struct Level {
    std::string name;
    std::optional<absl::Duration> ack_within;
    std::optional<absl::Duration> resolve_within;
  };
  std::vector<Level> levels_;
  bool levels_ok_ = false;
  std::vector<NodeSpec> roots_;
  std::vector<std::string> node_paths_;  // every node path seen, valid or not
};

Map Loader::ReadMap(const YAML::Node& node, int fallback_line, std::string path,
                    const std::vector<std::string_view>& known, std::string_view hint,
                    std::string_view what) {
  Map m;
  m.path = std::move(path);
  m.line = LineOf(node) != 0 ? LineOf(node) : fallback_line;
  if (node.IsNull() || !node.IsDefined()) {
    m.ok = true;
    return m;
  }
  if (!node.IsMap()) {
    Problem(m.line, m.path, absl::StrCat("expected ", Av(what), ", got ", Describe(node)));
    return m;
  }
  m.ok = true;
  absl::flat_hash_set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const int key_line = LineOf(it->first);
    if (!it->first.IsScalar()) {
      Problem(key_line, m.path, "keys must be plain strings");
      continue;
    }
    const std::string key = it->first.Scalar();
    const std::string key_path = JoinPath(m.path, key);
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string closest = Closest(key, known);
      std::string suggestion;
      if (!closest.empty()) {
        suggestion = absl::StrCat("; did you mean \"", closest, "\"?");
        m.suggested.push_back(closest);
      } else {
        suggestion = absl::StrCat(" (expected one of: ", Join(known, ", "), ")", Av(hint));
      }
      Problem(key_line, key_path, absl::StrCat("unknown key", suggestion));
      continue;
    }
    if (!seen.insert(key).second) {
      Problem(key_line, key_path, "duplicate key");
      continue;
    }
    const int value_line = it->second.IsNull() ? key_line : LineOf(it->second);
    m.entries.push_back(Entry{.key = key,
                              .value = it->second,
                              .path = key_path,
                              .key_line = key_line,
                              .line = value_line != 0 ? value_line : key_line});
  }
  return m;
}

std::vector<Entry> Loader::FreeMap(const YAML::Node& node, int fallback_line,
                                   const std::string& path, std::string_view what) {
  std::vector<Entry> out;
  if (node.IsNull() || !node.IsDefined()) return out;
  if (!node.IsMap()) {
    Problem(LineOf(node) != 0 ? LineOf(node) : fallback_line, path,
            absl::StrCat("expected ", Av(what), ", got ", Describe(node)));
    return out;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    const int key_line = LineOf(it->first);
    if (!it->first.IsScalar()) {
      Problem(key_line, path, "keys must be plain strings");
      continue;
    }
    const int value_line = it->second.IsNull() ? key_line : LineOf(it->second);
    out.push_back(Entry{.key = it->first.Scalar(),
                        .value = it->second,
                        .path = JoinPath(path, it->first.Scalar()),
                        .key_line = key_line,
                        .line = value_line != 0 ? value_line : key_line});
  }
  return out;
}

std::optional<std::string> Loader::String(const Map& m, std::string_view key, bool required) {
  const Entry* e = m.Get(key);
  if (e == nullptr) {
    if (required && m.ok) Missing(m, key);
    return std::nullopt;
  }
  if (!e->value.IsScalar()) {
    Problem(e->line, e->path, absl::StrCat("expected a string, got ", Describe(e->value)));
    return std::nullopt;
  }
  if (e->value.Scalar().empty()) {
    Problem(e->line, e->path, "must not be empty");
    return std::nullopt;
  }
  return e->value.Scalar();
}

std::optional<int64_t> Loader::Int(const Map& m, std::string_view key, int64_t min, int64_t max,
                                   bool required) {
  const Entry* e = m.Get(key);
  if (e == nullptr) {
    if (required && m.ok) Missing(m, key);
    return std::nullopt;
  }
  int64_t v = 0;
  if (!e->value.IsScalar() || !absl::SimpleAtoi(e->value.Scalar(), &v)) {
    Problem(e->line, e->path, absl::StrCat("expected an integer, got ", Describe(e->value)));
    return std::nullopt;
  }
  if (v < min || v > max) {
    Problem(e->line, e->path,
            v < min ? absl::StrCat("must be at least ", min, ", got ", v)
                    : absl::StrCat("must be at most ", max, ", got ", v));
    return std::nullopt;
  }
  return v;
}

std::optional<double> Loader::AlertBudget(const Entry& e) {
  if (!e.value.IsScalar()) {
    Problem(e.line, e.path,
            absl::StrCat("expected an alert budget like 1/week, got ", Describe(e.value)));
    return std::nullopt;
  }
  absl::StatusOr<double> v = ParseAlertBudget(e.value.Scalar());
  if (!v.ok()) {
    Problem(e.line, e.path, std::string(v.status().message()));
    return std::nullopt;
  }
  return *v;
}

std::optional<double> Loader::Number(const Entry& e) {
  double v = 0;
  if (!e.value.IsScalar() || !absl::SimpleAtod(e.value.Scalar(), &v) || !std::isfinite(v)) {
    Problem(e.line, e.path, absl::StrCat("expected a number, got ", Describe(e.value)));
    return std::nullopt;
  }
  return v;
}

std::optional<absl::Duration> Loader::DurationAt(const YAML::Node& node, int line,
                                                 const std::string& path, Sign sign) {
  if (!node.IsScalar()) {
    Problem(line, path, absl::StrCat("expected a duration like 15m, got ", Describe(node)));
    return std::nullopt;
  }
  absl::StatusOr<absl::Duration> d = ParseDuration(node.Scalar());
  if (!d.ok()) {
    Problem(line, path, std::string(d.status().message()));
    return std::nullopt;
  }
  if (sign == Sign::kPositive && *d <= absl::ZeroDuration()) {
    Problem(line, path, absl::StrCat("must be positive, got ", node.Scalar()));
    return std::nullopt;
  }
  return *d;
}

std::optional<absl::Duration> Loader::Duration(const Map& m, std::string_view key, Sign sign,
                                               bool required) {
  const Entry* e = m.Get(key);
  if (e == nullptr) {
    if (required && m.ok) Missing(m, key);
    return std::nullopt;
  }
  return DurationAt(e->value, e->line, e->path, sign);
}

std::optional<uint64_t> Loader::Bytes(const Map& m, std::string_view key, uint64_t min) {
  const Entry* e = m.Get(key);
  if (e == nullptr) return std::nullopt;
  if (!e->value.IsScalar()) {
    Problem(e->line, e->path,
            absl::StrCat("expected a byte size like 256MiB, got ", Describe(e->value)));
    return std::nullopt;
  }
  absl::StatusOr<uint64_t> v = ParseByteSize(e->value.Scalar());
  if (!v.ok()) {
    Problem(e->line, e->path, std::string(v.status().message()));
    return std::nullopt;
  }
  if (*v < min) {
    Problem(e->line, e->path,
            absl::StrCat("must be at least ", ByteSizeToString(min), ", got ", e->value.Scalar()));
    return std::nullopt;
  }
  return *v;
}

template <size_t N>
std::optional<size_t> Loader::Enum(const Map& m, std::string_view key,
                                   const std::string_view (&names)[N], size_t first,
                                   bool required) {
  const Entry* e = m.Get(key);
  if (e == nullptr) {
    if (required && m.ok) Missing(m, key);
    return std::nullopt;
  }
  std::vector<std::string_view> allowed(std::begin(names) + first, std::end(names));
  if (e->value.IsScalar()) {
    for (size_t i = first; i < N; ++i) {
      if (e->value.Scalar() == names[i]) return i;
    }
  }
  std::string message =
      absl::StrCat("expected one of ", Join(allowed, "|"), ", got ", Describe(e->value));
  if (e->value.IsScalar()) absl::StrAppend(&message, DidYouMean(e->value.Scalar(), allowed));
  Problem(e->line, e->path, std::move(message));
  return std::nullopt;
}

std::optional<std::string> Loader::ReadableFile(const Entry& e, bool trim) {
  if (!e.value.IsScalar() || e.value.Scalar().empty()) {
    Problem(e.line, e.path, absl::StrCat("expected a file path, got ", Describe(e.value)));
    return std::nullopt;
  }
  std::string path = e.value.Scalar();
  if (path[0] != '/' && !base_dir_.empty()) path = absl::StrCat(base_dir_, "/", path);
  std::string contents;
  std::string error;
  if (!ReadWholeFile(path, &contents, &error)) {
    Problem(e.line, e.path, absl::StrCat("cannot read \"", path, "\": ", error));
    return std::nullopt;
  }
  if (trim) contents = std::string(absl::StripAsciiWhitespace(contents));
  if (contents.empty()) {
    Problem(e.line, e.path, absl::StrCat("\"", path, "\" is empty"));
    return std::nullopt;
  }
  return contents;
}

void Loader::Load(const YAML::Node& doc) {
  static const std::vector<std::string_view> kSections = {
      "kafka",  "levels",     "hierarchy", "indicators", "operators",
      "listen", "aggregator", "alerter",   "gateway",    "query"};
  if (!doc.IsNull() && doc.IsDefined() && !doc.IsMap()) {
    Problem(LineOf(doc), "",
            absl::StrCat("expected a map of sections (", Join(kSections, ", "), "), got ",
                         Describe(doc)));
    return;
  }
  Map top = ReadMap(doc, 1, "", kSections);
  for (std::string_view required : {"levels", "hierarchy", "indicators"}) {
    if (top.Get(required) == nullptr) {
      Problem(0, std::string(required), "required section is missing");
    }
  }
  LoadKafka(top.Get("kafka"));
  LoadLevels(top);
  LoadHierarchy(top);
  LoadIndicators(top);
  LoadOperators(top.Get("operators"));
  LoadListen(top.Get("listen"));
  LoadAggregator(top.Get("aggregator"));
  LoadAlerter(top.Get("alerter"));
  LoadGateway(top.Get("gateway"));
  LoadQuery(top.Get("query"));
  if (!problems_.empty() || roots_.size() != 1) return;
  std::vector<LevelSpec> levels;
  for (const Level& level : levels_) {
    levels.push_back(LevelSpec{level.name, *level.ack_within, *level.resolve_within});
  }
  absl::StatusOr<Hierarchy> hierarchy = Hierarchy::Build(std::move(levels), std::move(roots_[0]));
  if (!hierarchy.ok()) {
    // The checks above should have caught whatever Build rejects; report rather than crash.
    Problem(0, "hierarchy", std::string(hierarchy.status().message()));
    return;
  }
  config_.hierarchy = std::make_shared<const Hierarchy>(std::move(*hierarchy));
}

void Loader::LoadKafka(const Entry* e) {
  if (e == nullptr) return;
  Map m = ReadMap(e->value, e->line, e->path,
                  {"bootstrap", "topic_prefix", "partitions", "replication_factor", "properties",
                   "producer", "consumer", "admin"});
  KafkaConfig& k = config_.kafka;
  if (auto v = String(m, "bootstrap", false)) {
    bool ok = *v == KafkaConfig::kEmbedded;
    if (!ok) {
      ok = true;
      for (absl::string_view server : absl::StrSplit(*v, ',')) {
        const absl::string_view trimmed = absl::StripAsciiWhitespace(server);
        ok = ok && IsHostPort(std::string_view(trimmed.data(), trimmed.size()));
      }
    }
    if (ok) {
      k.bootstrap = *v;
    } else {
      Problem(m.Get("bootstrap")->line, m.Get("bootstrap")->path,
              absl::StrCat("expected \"embedded\" or host:port[,host:port...], got \"", *v, "\""));
    }
  }
  if (auto v = String(m, "topic_prefix", false)) {
    if (IsTopicPrefix(*v)) {
      k.topic_prefix = *v;
    } else {
      Problem(m.Get("topic_prefix")->line, m.Get("topic_prefix")->path,
              absl::StrCat("must match [a-zA-Z0-9._-]+, got \"", *v, "\""));
    }
  }
  if (auto v = Int(m, "partitions", 1, 100000)) k.partitions = static_cast<int>(*v);
  if (auto v = Int(m, "replication_factor", 1, 100)) k.replication_factor = static_cast<int>(*v);
  LoadKafkaProperties(m.Get("properties"), &k.properties);
  LoadKafkaProperties(m.Get("producer"), &k.producer);
  LoadKafkaProperties(m.Get("consumer"), &k.consumer);
  LoadKafkaProperties(m.Get("admin"), &k.admin);
}

void Loader::LoadKafkaProperties(const Entry* p, std::map<std::string, std::string>* out) {
  if (p == nullptr) return;
  for (const Entry& prop : FreeMap(p->value, p->line, p->path, "a map of librdkafka properties")) {
    if (!prop.value.IsScalar()) {
      Problem(prop.line, prop.path,
              absl::StrCat("expected a string value, got ", Describe(prop.value)));
      continue;
    }
    if (const char* why = PinnedKeyReason(prop.key)) {
      Problem(prop.key_line, prop.path,
              absl::StrCat("is set by Cybersyn and cannot be configured: ", why));
      continue;
    }
    if (!out->emplace(prop.key, prop.value.Scalar()).second) {
      Problem(prop.key_line, prop.path, "duplicate key");
    }
  }
}

void Loader::LoadLevels(const Map& top) {
  const Entry* e = top.Get("levels");
  if (e == nullptr) return;
  if (!e->value.IsSequence()) {
    Problem(e->line, e->path,
            absl::StrCat("expected a list of levels, top to bottom, got ", Describe(e->value)));
    return;
  }
  if (e->value.size() == 0) {
    Problem(e->line, e->path, "at least one level is required");
    return;
  }
  levels_ok_ = true;
  absl::flat_hash_map<std::string, size_t> seen;
  bool names_ok = true;
  for (size_t i = 0; i < e->value.size(); ++i) {
    const YAML::Node item = e->value[i];
    const std::string path = absl::StrCat("levels[", i, "]");
    Map m = ReadMap(item, e->line, path, {"name", "ack_within", "resolve_within"});
    Level level;
    if (auto name = String(m, "name", m.ok)) {
      if (!IsValidId(*name)) {
        Problem(m.Get("name")->line, m.Get("name")->path,
                absl::StrCat("must match [a-z0-9_-]+, got \"", *name, "\""));
      } else if (auto [it, inserted] = seen.emplace(*name, i); !inserted) {
        Problem(
            m.Get("name")->line, m.Get("name")->path,
            absl::StrCat("duplicate level \"", *name, "\" (first at levels[", it->second, "])"));
      }
      level.name = *name;
    } else {
      level.name = absl::StrCat("levels[", i, "]");
    }
    names_ok = names_ok && IsValidId(level.name);
    level.ack_within = Duration(m, "ack_within", Sign::kPositive, m.ok);
    level.resolve_within = Duration(m, "resolve_within", Sign::kPositive, m.ok);
    if (level.ack_within && level.resolve_within && *level.resolve_within < *level.ack_within) {
      Problem(m.Get("resolve_within")->line, m.Get("resolve_within")->path,
              absl::StrCat("resolve_within (", DurationToString(*level.resolve_within),
                           ") must be at least ack_within (", DurationToString(*level.ack_within),
                           ")"));
      level.resolve_within.reset();
    }
    levels_.push_back(std::move(level));
  }
  if (names_ok && !seen.contains(std::string(Hierarchy::kEnterpriseLevel))) {
    Problem(e->line, e->path,
            "no level is named \"enterprise\"; one must be (records are keyed and partitioned by "
            "enterprise)");
  }
}

void Loader::LoadHierarchy(const Map& top) {
  const Entry* e = top.Get("hierarchy");
  if (e == nullptr) return;
  if (!e->value.IsMap() || e->value.size() == 0) {
    Problem(e->line, e->path,
            absl::StrCat("expected a map with one root node (id: {title, children, ...}), got ",
                         Describe(e->value)));
    return;
  }
  std::vector<std::string> ids;
  for (auto it = e->value.begin(); it != e->value.end(); ++it) {
    if (auto root = LoadNode(it->first, it->second, "", 0)) roots_.push_back(std::move(*root));
    ids.push_back(it->first.IsScalar() ? it->first.Scalar() : "?");
  }
  if (ids.size() > 1) {
    Problem(e->line, e->path,
            absl::StrCat("expected exactly one root node, got ", ids.size(), " (",
                         absl::StrJoin(ids, ", "), ")"));
  }
}

std::optional<NodeSpec> Loader::LoadNode(const YAML::Node& key, const YAML::Node& value,
                                         const std::string& parent_path, int depth) {
  const int key_line = LineOf(key);
  if (!key.IsScalar()) {
    Problem(key_line, parent_path.empty() ? "hierarchy" : absl::StrCat("hierarchy.", parent_path),
            "node ids must be plain strings");
    return std::nullopt;
  }
  NodeSpec spec;
  spec.id = key.Scalar();
  const std::string node_path =
      parent_path.empty() ? spec.id : absl::StrCat(parent_path, "/", spec.id);
  const std::string path = absl::StrCat("hierarchy.", node_path);
  node_paths_.push_back(node_path);
  if (!IsValidId(spec.id)) {
    Problem(key_line, path, absl::StrCat("node id must match [a-z0-9_-]+, got \"", spec.id, "\""));
  }
  const int num_levels = static_cast<int>(levels_.size());
  constexpr int kMaxDepth = 64;  // without usable levels, still bound the recursion
  if (depth >= kMaxDepth) {
    Problem(key_line, path, absl::StrCat("deeper than ", kMaxDepth, " levels"));
    return std::nullopt;
  }
  if (levels_ok_ && depth >= num_levels) {
    Problem(key_line, path,
            absl::StrCat("deeper than the ", num_levels,
                         " levels declared in levels (the last level is \"", levels_.back().name,
                         "\")"));
    return std::nullopt;
  }
  Map m = ReadMap(value, key_line, path, {"title", "ack_within", "resolve_within", "children"},
                  "; child nodes go under \"children\"",
                  "a map (title, ack_within, resolve_within, children) or nothing");
  if (!m.ok) return std::nullopt;
  if (auto title = String(m, "title", false)) spec.title = *title;
  spec.ack_within = Duration(m, "ack_within", Sign::kPositive);
  spec.resolve_within = Duration(m, "resolve_within", Sign::kPositive);
  if (levels_ok_ && (spec.ack_within || spec.resolve_within) &&
      (spec.ack_within || levels_[depth].ack_within) &&
      (spec.resolve_within || levels_[depth].resolve_within)) {
    const Level& level = levels_[depth];
    const absl::Duration ack = spec.ack_within.value_or(*level.ack_within);
    const absl::Duration resolve = spec.resolve_within.value_or(*level.resolve_within);
    const bool ack_bad = m.Get("ack_within") != nullptr && !spec.ack_within;
    const bool resolve_bad = m.Get("resolve_within") != nullptr && !spec.resolve_within;
    if (!ack_bad && !resolve_bad && resolve < ack) {
      const Entry* at = m.Get(spec.resolve_within ? "resolve_within" : "ack_within");
      Problem(at->line, at->path,
              absl::StrCat("resolve_within (", DurationToString(resolve),
                           spec.resolve_within ? "" : absl::StrCat(", from level ", level.name),
                           ") must be at least ack_within (", DurationToString(ack),
                           spec.ack_within ? "" : absl::StrCat(", from level ", level.name), ")"));
    }
  }
  if (const Entry* children = m.Get("children")) {
    if (!children->value.IsNull() && !children->value.IsMap()) {
      Problem(children->line, children->path,
              absl::StrCat("expected a map of child id -> node, got ", Describe(children->value)));
    } else if (children->value.IsMap()) {
      absl::flat_hash_set<std::string> seen;
      for (auto it = children->value.begin(); it != children->value.end(); ++it) {
        if (it->first.IsScalar() && !seen.insert(it->first.Scalar()).second) {
          Problem(LineOf(it->first), absl::StrCat(path, "/", it->first.Scalar()),
                  absl::StrCat("duplicate node id among the children of ", node_path));
          continue;
        }
        if (auto child = LoadNode(it->first, it->second, node_path, depth + 1)) {
          spec.children.push_back(std::move(*child));
        }
      }
    }
  }
  if (levels_ok_ && spec.children.empty() && depth < num_levels - 1 &&
      (m.Get("children") == nullptr || m.Get("children")->value.IsNull() ||
       m.Get("children")->value.size() == 0)) {
    Problem(key_line, path,
            absl::StrCat("leaf at level \"", levels_[depth].name,
                         "\"; every leaf must be at the last level \"", levels_.back().name,
                         "\" (the tree must be ", num_levels, " levels deep)"));
  }
  return spec;
}

void Loader::LoadIndicators(const Map& top) {
  const Entry* e = top.Get("indicators");
  if (e == nullptr) return;
  if (!e->value.IsSequence()) {
    Problem(e->line, e->path,
            absl::StrCat("expected a list of indicators, got ", Describe(e->value)));
    return;
  }
  if (e->value.size() == 0) {
    Problem(e->line, e->path, "at least one indicator is required");
    return;
  }
  absl::flat_hash_map<std::string, size_t> names;
  std::vector<std::optional<size_t>> role_holder(std::size(kRoleNames));
  for (size_t i = 0; i < e->value.size(); ++i) {
    const std::string path = absl::StrCat("indicators[", i, "]");
    Map m = ReadMap(e->value[i], e->line, path,
                    {"name", "unit", "description", "rollup", "role", "expect_every", "thresholds",
                     "detector", "alert_budget", "attribution"});
    IndicatorConfig ind;
    if (auto name = String(m, "name", m.ok)) {
      if (!IsValidId(*name)) {
        Problem(m.Get("name")->line, m.Get("name")->path,
                absl::StrCat("must match [a-z0-9_-]+, got \"", *name, "\""));
      } else if (auto [it, inserted] = names.emplace(*name, i); !inserted) {
        Problem(m.Get("name")->line, m.Get("name")->path,
                absl::StrCat("duplicate indicator \"", *name, "\" (first at indicators[",
                             it->second, "])"));
      }
      ind.name = *name;
    }
    if (auto unit = String(m, "unit", m.ok)) ind.unit = *unit;
    if (auto description = String(m, "description", false)) ind.description = *description;
    if (auto rollup = Enum(m, "rollup", kRollupNames, 0, m.ok)) {
      ind.rollup = static_cast<Rollup>(*rollup);
    }
    if (auto role = Enum(m, "role", kRoleNames, 1, false)) {
      ind.role = static_cast<Role>(*role);
      if (role_holder[*role]) {
        const size_t first = *role_holder[*role];
        Problem(m.Get("role")->line, m.Get("role")->path,
                absl::StrCat("indicators[", first, "] (\"", config_.indicators[first].name,
                             "\") already has role ", Av(kRoleNames[*role]),
                             "; at most one indicator per role"));
      } else {
        role_holder[*role] = i;
      }
    }
    ind.expect_every = Duration(m, "expect_every", Sign::kPositive);
    if (const Entry* t = m.Get("thresholds")) {
      Map tm = ReadMap(t->value, t->line, t->path, {"min", "max"});
      if (const Entry* min = tm.Get("min")) ind.thresholds.min = Number(*min);
      if (const Entry* max = tm.Get("max")) ind.thresholds.max = Number(*max);
      if (ind.thresholds.min && ind.thresholds.max &&
          !(*ind.thresholds.min < *ind.thresholds.max)) {
        Problem(t->line, t->path,
                absl::StrCat("min (", *ind.thresholds.min, ") must be less than max (",
                             *ind.thresholds.max, ")"));
      }
    }
    if (const Entry* d = m.Get("detector")) {
      Map dm = ReadMap(d->value, d->line, d->path, {"kind", "params"});
      if (auto kind = Enum(dm, "kind", kDetectorNames, 0, false)) {
        ind.detector.kind = static_cast<DetectorKind>(*kind);
      }
      if (const Entry* p = dm.Get("params")) {
        for (const Entry& param :
             FreeMap(p->value, p->line, p->path, "a map of parameter names to numbers")) {
          if (auto v = Number(param)) {
            if (!ind.detector.params.emplace(param.key, *v).second) {
              Problem(param.key_line, param.path, "duplicate key");
            }
          }
        }
      }
    }
    if (const Entry* b = m.Get("alert_budget")) ind.alert_budget = AlertBudget(*b);
    if (auto on = Enum(m, "attribution", kOnOff, 0, false)) ind.attribution = *on == 0;
    config_.indicators.push_back(std::move(ind));
  }
}

void Loader::LoadOperators(const Entry* e) {
  if (e == nullptr || e->value.IsNull()) return;
  if (!e->value.IsSequence()) {
    Problem(e->line, e->path,
            absl::StrCat("expected a list of operators, got ", Describe(e->value)));
    return;
  }
  absl::flat_hash_map<std::string, size_t> names;
  for (size_t i = 0; i < e->value.size(); ++i) {
    const std::string path = absl::StrCat("operators[", i, "]");
    Map m = ReadMap(e->value[i], e->line, path,
                    {"name", "subtree", "token", "token_env", "token_file"});
    OperatorConfig op;
    if (auto name = String(m, "name", m.ok)) {
      if (!IsValidId(*name)) {
        Problem(m.Get("name")->line, m.Get("name")->path,
                absl::StrCat("must match [a-z0-9_-]+, got \"", *name, "\""));
      } else if (auto [it, inserted] = names.emplace(*name, i); !inserted) {
        Problem(m.Get("name")->line, m.Get("name")->path,
                absl::StrCat("duplicate operator \"", *name, "\" (first at operators[", it->second,
                             "])"));
      }
      op.name = *name;
    }
    if (auto subtree = String(m, "subtree", m.ok)) {
      op.subtree = *subtree;
      if (!node_paths_.empty() &&
          std::find(node_paths_.begin(), node_paths_.end(), *subtree) == node_paths_.end()) {
        Problem(m.Get("subtree")->line, m.Get("subtree")->path,
                absl::StrCat("no node \"", *subtree, "\" in the hierarchy",
                             DidYouMean(*subtree, node_paths_)));
      }
    }
    if (!m.ok) continue;
    std::vector<std::string_view> sources;
    for (std::string_view key : {"token", "token_env", "token_file"}) {
      if (m.Get(key) != nullptr) sources.push_back(key);
    }
    if (sources.size() != 1) {
      Problem(m.line, path,
              absl::StrCat("exactly one of token, token_env, token_file is required, got ",
                           sources.empty() ? "none" : Join(sources, " and ")));
    } else if (sources[0] == "token") {
      op.token_source = OperatorConfig::TokenSource::kLiteral;
      if (auto token = String(m, "token", true)) op.token = *token;
    } else if (sources[0] == "token_env") {
      op.token_source = OperatorConfig::TokenSource::kEnv;
      if (auto var = String(m, "token_env", true)) {
        op.token_ref = *var;
        const char* value = std::getenv(var->c_str());
        if (value == nullptr || *value == '\0') {
          Problem(m.Get("token_env")->line, m.Get("token_env")->path,
                  absl::StrCat("environment variable ", *var, " is not set"));
        } else {
          op.token = value;
        }
      }
    } else {
      op.token_source = OperatorConfig::TokenSource::kFile;
      const Entry* f = m.Get("token_file");
      op.token_ref = f->value.IsScalar() ? f->value.Scalar() : "";
      if (auto token = ReadableFile(*f, /*trim=*/true)) op.token = *token;
    }
    if (!op.token.empty()) {
      for (size_t j = 0; j < config_.operators.size(); ++j) {
        if (config_.operators[j].token == op.token) {
          Problem(m.line, path,
                  absl::StrCat("has the same token as operators[", j, "] (\"",
                               config_.operators[j].name, "\"); a token identifies one operator"));
          break;
        }
      }
    }
    config_.operators.push_back(std::move(op));
  }
}

void Loader::LoadListen(const Entry* e) {
  if (e == nullptr) return;
  Map m =
      ReadMap(e->value, e->line, e->path, {"grpc", "http", "metrics", "tls", "http_tls", "limits"});
  ListenConfig& l = config_.listen;
  for (auto [key, field] : {std::pair<std::string_view, std::string*>{"grpc", &l.grpc},
                            {"http", &l.http},
                            {"metrics", &l.metrics}}) {
    if (auto v = String(m, key, false)) {
      if (IsHostPort(*v)) {
        *field = *v;
      } else {
        Problem(m.Get(key)->line, m.Get(key)->path,
                absl::StrCat("expected host:port (e.g. 127.0.0.1:7070), got \"", *v, "\""));
      }
    }
  }
  // tls: the gRPC server; http_tls: the HTTP servers (Opsroom, metrics, health).
  for (auto [name, out] : {std::pair<std::string_view, std::optional<TlsConfig>*>{"tls", &l.tls},
                           {"http_tls", &l.http_tls}}) {
    const Entry* t = m.Get(name);
    if (t == nullptr) continue;
    Map tm = ReadMap(t->value, t->line, t->path, {"cert", "key", "client_ca"});
    TlsConfig tls;
    for (auto [key, field] : {std::pair<std::string_view, std::string*>{"cert", &tls.cert},
                              {"key", &tls.key},
                              {"client_ca", &tls.client_ca}}) {
      const Entry* f = tm.Get(key);
      if (f == nullptr) {
        if (key != "client_ca" && tm.ok) Missing(tm, key);
        continue;
      }
      if (ReadableFile(*f, /*trim=*/false)) {
        *field = f->value.Scalar()[0] == '/' || base_dir_.empty()
                     ? f->value.Scalar()
                     : absl::StrCat(base_dir_, "/", f->value.Scalar());
      }
    }
    *out = std::move(tls);
  }
  if (const Entry* le = m.Get("limits")) {
    Map lm = ReadMap(le->value, le->line, le->path,
                     {"max_request_bytes", "max_streams_per_connection", "max_watch_streams",
                      "max_watch_streams_per_operator", "actions_per_second", "actions_burst",
                      "max_http_body_bytes"});
    ClientLimitsConfig& c = l.limits;
    // gRPC takes int sizes; 1 GiB is far above any sane request.
    if (auto v = Bytes(lm, "max_request_bytes", 1 << 10)) {
      if (*v > (uint64_t{1} << 30)) {
        Problem(lm.Get("max_request_bytes")->line, lm.Get("max_request_bytes")->path,
                absl::StrCat("must be at most 1GiB, got ",
                             lm.Get("max_request_bytes")->value.Scalar()));
      } else {
        c.max_request_bytes = *v;
      }
    }
    if (auto v = Int(lm, "max_streams_per_connection", 1, 1 << 20)) {
      c.max_streams_per_connection = static_cast<int>(*v);
    }
    if (auto v = Int(lm, "max_watch_streams", 1, 1 << 20))
      c.max_watch_streams = static_cast<int>(*v);
    if (auto v = Int(lm, "max_watch_streams_per_operator", 1, 1 << 20)) {
      c.max_watch_streams_per_operator = static_cast<int>(*v);
    }
    for (auto [key, field, min] : {std::tuple<std::string_view, double*, double>{
                                       "actions_per_second", &c.actions_per_second, 0},
                                   {"actions_burst", &c.actions_burst, 1}}) {
      const Entry* f = lm.Get(key);
      if (f == nullptr) continue;
      if (auto v = Number(*f)) {
        if (*v < min) {
          Problem(f->line, f->path, absl::StrCat("must be at least ", min, ", got ", *v));
        } else {
          *field = *v;
        }
      }
    }
    if (auto v = Bytes(lm, "max_http_body_bytes", 1 << 10)) c.max_http_body_bytes = *v;
  }
}

void Loader::LoadAggregator(const Entry* e) {
  if (e == nullptr) return;
  Map m = ReadMap(
      e->value, e->line, e->path,
      {"windows", "allowed_lateness", "grace", "idle_advance", "state_dir", "memory_limit"});
  AggregatorConfig& a = config_.aggregator;
  if (const Entry* w = m.Get("windows")) {
    if (!w->value.IsSequence() || w->value.size() == 0) {
      Problem(w->line, w->path,
              absl::StrCat("expected a non-empty list of window sizes like [1m, 1h], got ",
                           Describe(w->value)));
    } else {
      std::vector<std::pair<absl::Duration, size_t>> windows;
      bool ok = true;
      for (size_t i = 0; i < w->value.size(); ++i) {
        const YAML::Node item = w->value[i];
        auto d = DurationAt(item, LineOf(item) != 0 ? LineOf(item) : w->line,
                            absl::StrCat(w->path, "[", i, "]"), Sign::kPositive);
        if (d) {
          windows.emplace_back(*d, i);
        } else {
          ok = false;
        }
      }
      if (!windows.empty()) {
        const absl::Duration smallest = std::min_element(windows.begin(), windows.end())->first;
        for (size_t i = 0; i < windows.size(); ++i) {
          const auto [d, index] = windows[i];
          const YAML::Node item = w->value[index];
          const int line = LineOf(item) != 0 ? LineOf(item) : w->line;
          const std::string item_path = absl::StrCat(w->path, "[", index, "]");
          bool duplicate = false;
          for (size_t j = 0; j < i; ++j) duplicate = duplicate || windows[j].first == d;
          if (duplicate) {
            Problem(line, item_path, absl::StrCat("duplicate window ", DurationToString(d)));
            ok = false;
          } else if (d % smallest != absl::ZeroDuration()) {
            Problem(line, item_path,
                    absl::StrCat(DurationToString(d), " is not a multiple of the smallest window ",
                                 DurationToString(smallest)));
            ok = false;
          }
        }
      }
      if (ok) {
        a.windows.clear();
        for (const auto& [d, index] : windows) a.windows.push_back(d);
        std::sort(a.windows.begin(), a.windows.end());
      }
    }
  }
  if (auto v = Duration(m, "allowed_lateness", Sign::kNonNegative)) a.allowed_lateness = *v;
  if (auto v = Duration(m, "grace", Sign::kNonNegative)) a.grace = *v;
  if (auto v = Duration(m, "idle_advance", Sign::kPositive)) a.idle_advance = *v;
  if (auto v = String(m, "state_dir", false)) a.state_dir = *v;
  if (auto v = Bytes(m, "memory_limit", 1 << 20)) a.memory_limit = *v;
}

void Loader::LoadAlerter(const Entry* e) {
  if (e == nullptr) return;
  Map m = ReadMap(e->value, e->line, e->path,
                  {"state_dir", "warmup", "auto_resolve_after", "memory_limit", "alertmanager",
                   "alert_budget"});
  AlerterConfig& a = config_.alerter;
  if (auto v = String(m, "state_dir", false)) a.state_dir = *v;
  if (auto v = Int(m, "warmup", 0, 1000000)) a.warmup = static_cast<int>(*v);
  if (auto v = Int(m, "auto_resolve_after", 1, 1000000)) {
    a.auto_resolve_after = static_cast<int>(*v);
  }
  if (auto v = Bytes(m, "memory_limit", 1 << 20)) a.memory_limit = *v;
  if (const Entry* b = m.Get("alert_budget")) {
    if (auto v = AlertBudget(*b)) a.alert_budget = *v;
  }
  if (const Entry* am = m.Get("alertmanager")) {
    Map amm = ReadMap(am->value, am->line, am->path, {"url", "resend_interval", "timeout"});
    AlertmanagerConfig c;
    if (auto v = String(amm, "url", true)) {
      if (v->rfind("http://", 0) == 0 || v->rfind("https://", 0) == 0) {
        c.url = *v;
      } else {
        Problem(amm.Get("url")->line, amm.Get("url")->path,
                absl::StrCat("expected an http:// or https:// URL, got \"", *v, "\""));
      }
    }
    if (auto v = Duration(amm, "resend_interval", Sign::kPositive)) c.resend_interval = *v;
    if (auto v = Duration(amm, "timeout", Sign::kPositive)) c.timeout = *v;
    a.alertmanager = std::move(c);
  }
}

void Loader::LoadQuery(const Entry* e) {
  if (e == nullptr) return;
  Map m = ReadMap(e->value, e->line, e->path, {"retention"});
  if (auto v = Duration(m, "retention", Sign::kPositive)) config_.query.retention = *v;
}

void Loader::LoadGateway(const Entry* e) {
  if (e == nullptr) return;
  Map m = ReadMap(e->value, e->line, e->path,
                  {"id", "buffer_dir", "buffer_max_bytes", "max_future", "max_age", "min_time",
                   "max_labels", "batch", "sparkplug"});
  GatewayConfig& g = config_.gateway;
  LoadSparkplug(m.Get("sparkplug"));
  if (auto v = String(m, "id", false)) {
    if (IsTopicPrefix(*v)) {
      g.id = *v;
    } else {
      Problem(m.Get("id")->line, m.Get("id")->path,
              absl::StrCat("must match [a-zA-Z0-9._-]+, got \"", *v, "\""));
    }
  }
  if (auto v = String(m, "buffer_dir", false)) g.buffer_dir = *v;
  if (auto v = Bytes(m, "buffer_max_bytes", 1 << 20)) g.buffer_max_bytes = *v;
  if (auto v = Duration(m, "max_future", Sign::kNonNegative)) g.max_future = *v;
  if (auto v = Duration(m, "max_age", Sign::kNonNegative)) g.max_age = *v;
  if (const Entry* t = m.Get("min_time")) {
    absl::StatusOr<EventTime> v =
        t->value.IsScalar()
            ? ParseEventTime(t->value.Scalar())
            : absl::InvalidArgumentError(absl::StrCat(
                  "expected a time like 2000-01-01T00:00:00Z, got ", Describe(t->value)));
    if (!v.ok()) {
      Problem(t->line, t->path, std::string(v.status().message()));
    } else if (v->ms < -62'167'219'200'000) {  // before the year 0000
      Problem(t->line, t->path, "must not be before 0000-01-01T00:00:00Z");
    } else {
      g.min_time_ms = v->ms;
    }
  }
  if (auto v = Int(m, "max_labels", 0, 1024)) g.max_labels = static_cast<int>(*v);
  if (const Entry* b = m.Get("batch")) {
    Map bm = ReadMap(b->value, b->line, b->path, {"max_records", "max_bytes", "linger"});
    if (auto v = Int(bm, "max_records", 1, 1000000)) g.batch.max_records = static_cast<int>(*v);
    if (auto v = Bytes(bm, "max_bytes", 1)) g.batch.max_bytes = *v;
    if (auto v = Duration(bm, "linger", Sign::kNonNegative)) g.batch.linger = *v;
  }
}

void Loader::LoadSparkplug(const Entry* e) {
  if (e == nullptr || e->value.IsNull()) return;
  if (!e->value.IsSequence()) {
    Problem(e->line, e->path,
            absl::StrCat("expected a list of edge nodes and devices, got ", Describe(e->value)));
    return;
  }
  // A Sparkplug id is one topic level: no '/', and no MQTT wildcard.
  const auto valid_id = [](const std::string& v) {
    return !v.empty() && v.find_first_of("/+#") == std::string::npos;
  };
  absl::flat_hash_map<std::string, size_t> seen;
  for (size_t i = 0; i < e->value.size(); ++i) {
    const std::string path = absl::StrCat("gateway.sparkplug[", i, "]");
    Map m =
        ReadMap(e->value[i], e->line, path, {"group", "edge_node", "device", "node", "metrics"});
    GatewayConfig::Sparkplug sp;
    for (auto [key, out, required] :
         {std::tuple{"group", &sp.group, true}, std::tuple{"edge_node", &sp.edge_node, true},
          std::tuple{"device", &sp.device, false}}) {
      if (auto v = String(m, key, required && m.ok)) {
        if (!valid_id(*v)) {
          Problem(m.Get(key)->line, m.Get(key)->path,
                  absl::StrCat("a Sparkplug id may not be empty or hold '/', '+' or '#', got \"",
                               *v, "\""));
        }
        *out = *v;
      }
    }
    if (auto node = String(m, "node", m.ok)) {
      sp.node = *node;
      if (!node_paths_.empty() &&
          std::find(node_paths_.begin(), node_paths_.end(), *node) == node_paths_.end()) {
        Problem(m.Get("node")->line, m.Get("node")->path,
                absl::StrCat("no node \"", *node, "\" in the hierarchy",
                             DidYouMean(*node, node_paths_)));
      }
    }
    if (const Entry* me = m.Get("metrics")) {
      std::vector<std::string> names;
      for (const IndicatorConfig& ind : config_.indicators) names.push_back(ind.name);
      for (const Entry& metric :
           FreeMap(me->value, me->line, me->path, "a map of Sparkplug metric name: indicator")) {
        if (!metric.value.IsScalar()) {
          Problem(metric.line, metric.path,
                  absl::StrCat("expected an indicator name, got ", Describe(metric.value)));
          continue;
        }
        const std::string ind = metric.value.Scalar();
        if (config_.FindIndicator(ind) == nullptr) {
          Problem(metric.line, metric.path,
                  absl::StrCat("no indicator \"", ind, "\"", DidYouMean(ind, names)));
        }
        sp.metrics[metric.key] = ind;
      }
    } else if (m.ok) {
      Problem(m.line, path, "metrics: required (Sparkplug metric name: indicator)");
    }
    const std::string id = absl::StrCat(sp.group, "/", sp.edge_node, "/", sp.device);
    if (auto [it, inserted] = seen.emplace(id, i); !inserted) {
      Problem(m.line, path,
              absl::StrCat("duplicate Sparkplug source ", id, " (first at gateway.sparkplug[",
                           it->second, "])"));
    }
    config_.gateway.sparkplug.push_back(std::move(sp));
  }
}

struct LoadResult {
  std::optional<Config> config;
  std::vector<ConfigProblem> problems;
};

LoadResult LoadFromText(std::string_view yaml, std::string_view name, std::string base_dir) {
  LoadResult result;
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    result.problems.push_back(ConfigProblem{.line = e.mark.line >= 0 ? e.mark.line + 1 : 0,
                                            .column = e.mark.column >= 0 ? e.mark.column + 1 : 0,
                                            .path = "",
                                            .message = absl::StrCat("YAML syntax error: ", e.msg)});
    return result;
  }
  Loader loader(std::move(base_dir));
  try {
    loader.Load(doc);
  } catch (const YAML::Exception& e) {
    // Reading a well-formed document should not throw; report rather than crash on bad input.
    result.problems.push_back(ConfigProblem{.line = e.mark.line >= 0 ? e.mark.line + 1 : 0,
                                            .column = 0,
                                            .path = "",
                                            .message = absl::StrCat("unreadable YAML: ", e.msg)});
  }
  std::vector<ConfigProblem> problems = loader.TakeProblems();
  result.problems.insert(result.problems.end(), problems.begin(), problems.end());
  if (!result.problems.empty()) return result;
  result.config = loader.TakeConfig();
  result.config->source = std::string(name);
  return result;
}

std::string FormatProblems(std::string_view name, const std::vector<ConfigProblem>& problems) {
  std::string out = absl::StrCat(Av(name), ": ", problems.size(), " problem(s):");
  for (const ConfigProblem& p : problems) {
    absl::StrAppend(&out, "\n  - ", Av(name));
    if (p.line > 0) absl::StrAppend(&out, ":", p.line);
    if (p.line > 0 && p.column > 0) absl::StrAppend(&out, ":", p.column);
    absl::StrAppend(&out, ": ", p.ToString());
  }
  return out;
}

}  // namespace

absl::StatusOr<Config> LoadConfigString(std::string_view yaml, std::string_view name_for_messages) {
  LoadResult result = LoadFromText(yaml, name_for_messages, "");
  if (!result.problems.empty()) {
    return absl::InvalidArgumentError(FormatProblems(name_for_messages, result.problems));
  }
  return std::move(*result.config);
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string message = absl::StrCat(path, ": cannot read: ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::InvalidArgumentError(message);
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const size_t slash = path.rfind('/');
  std::string base_dir = slash == std::string::npos ? "" : path.substr(0, slash);
  if (slash == 0) base_dir = "/";
  LoadResult result = LoadFromText(buffer.str(), path, base_dir);
  if (!result.problems.empty()) {
    return absl::InvalidArgumentError(FormatProblems(path, result.problems));
  }
  return std::move(*result.config);
}

std::vector<ConfigProblem> CheckConfigString(std::string_view yaml,
                                             std::string_view name_for_messages) {
  return LoadFromText(yaml, name_for_messages, "").problems;
}

std::vector<std::string> ConfigProblemStrings(std::string_view yaml) {
  std::vector<std::string> out;
  for (const ConfigProblem& p : CheckConfigString(yaml, "config")) out.push_back(p.ToString());
  return out;
}

std::string_view MinimalExampleConfig() {
  return R"(# A minimal Cybersyn config: one enterprise with two units on the embedded Kafka.
# Check it with `cybersyn config check FILE`; deploy/examples/chile.yaml documents every key.
levels:                       # top to bottom; every leaf sits at the last level
  - {name: enterprise, ack_within: 15m, resolve_within: 2h}
  - {name: unit, ack_within: 5m, resolve_within: 1h}
hierarchy:                    # one root; children keyed by id ([a-z0-9_-]+)
  acme:
    title: Acme Mill
    children:
      spinning: {title: Spinning}
      weaving: {title: Weaving}
indicators:
  - {name: output, unit: t, rollup: sum, role: actuality}
  - {name: energy, unit: kWh, rollup: sum}
operators:
  - name: admin
    subtree: acme
    token: change-me          # outside a demo use token_env or token_file
)";
}

}  // namespace cybersyn
