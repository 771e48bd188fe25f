#include "common/config.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

const std::string kTestdata = std::string(CYBERSYN_SOURCE_DIR) + "/common/testdata/config/";
const std::string kExamples = std::string(CYBERSYN_SOURCE_DIR) + "/deploy/examples/";

// The whole error message of loading testdata/config/invalid/<name>, with the directory removed
// so that expectations read "<name>:<line>: ...".
std::string InvalidMessage(const std::string& name) {
  const std::string dir = kTestdata + "invalid/";
  absl::StatusOr<Config> config = LoadConfigFile(dir + name);
  if (config.ok()) return "unexpectedly valid";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return absl::StrReplaceAll(config.status().message(), {{dir, ""}});
}

std::vector<std::string> Paths(const std::vector<const Hierarchy::Node*>& nodes) {
  std::vector<std::string> out;
  for (const Hierarchy::Node* n : nodes) out.push_back(n->path);
  return out;
}

// --- Valid files ---------------------------------------------------------------------------------

TEST(ConfigTest, ChileExampleLoads) {
  absl::StatusOr<Config> c = LoadConfigFile(kExamples + "chile.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->source, kExamples + "chile.yaml");
  EXPECT_EQ(c->kafka.bootstrap, "localhost:9092");
  EXPECT_EQ(c->gateway.min_time_ms, 946'684'800'000);
  EXPECT_EQ(c->gateway.max_age, absl::ZeroDuration());
  EXPECT_EQ(c->kafka.Topic("records"), "cybersyn.records");
  EXPECT_EQ(c->kafka.properties.at("client.id"), "cybersyn");
  const Hierarchy& h = *c->hierarchy;
  ASSERT_EQ(h.levels().size(), 4u);
  EXPECT_EQ(h.levels()[3].name, "unit");
  EXPECT_THAT(Paths(h.root().children), ElementsAre("cl/textiles", "cl/mining", "cl/food"));
  EXPECT_EQ(h.NodesAtDepth(2).size(), 6u);
  EXPECT_EQ(h.leaves().size(), 14u);
  EXPECT_EQ(h.Find("cl/textiles")->ack_within, absl::Minutes(20));
  EXPECT_EQ(h.Find("cl/textiles")->resolve_within, absl::Hours(2));
  EXPECT_EQ(h.Find("cl/mining/chuquicamata")->ack_within, absl::Minutes(10));
  EXPECT_EQ(h.Find("cl/textiles/yarur/dyeing")->resolve_within, absl::Minutes(45));
  EXPECT_EQ(h.Find("cl/food/watts")->title, "Watt's");
  EXPECT_EQ((*h.EnterpriseOf("cl/mining/el_teniente/smelter"))->path, "cl/mining/el_teniente");
  ASSERT_EQ(c->indicators.size(), 7u);
  EXPECT_EQ(c->IndicatorWithRole(Role::kActuality)->name, "output");
  EXPECT_EQ(c->IndicatorWithRole(Role::kCapability)->name, "capacity");
  EXPECT_EQ(c->IndicatorWithRole(Role::kPotentiality)->name, "potential");
  auto names = [](std::vector<const IndicatorConfig*> v) {
    std::vector<std::string> out;
    for (const IndicatorConfig* i : v) out.push_back(i->name);
    return out;
  };
  EXPECT_THAT(names(c->BasesOf("productivity")), ::testing::ElementsAre("output", "capacity"));
  EXPECT_THAT(names(c->BasesOf("latency")), ::testing::ElementsAre("capacity", "potential"));
  EXPECT_THAT(names(c->BasesOf("performance")), ::testing::ElementsAre("output", "potential"));
  EXPECT_TRUE(c->BasesOf("output").empty());
  const IndicatorConfig* output = c->FindIndicator("output");
  ASSERT_NE(output, nullptr);
  EXPECT_EQ(output->expect_every, absl::Minutes(5));
  EXPECT_EQ(output->detector.kind, DetectorKind::kCyberstride);
  EXPECT_EQ(output->detector.params.at("transient_k"), 100);
  const IndicatorConfig* kiln = c->FindIndicator("kiln_temperature");
  EXPECT_EQ(kiln->rollup, Rollup::kMax);
  EXPECT_EQ(kiln->thresholds.min, 600);
  EXPECT_EQ(kiln->thresholds.max, 1250);
  EXPECT_EQ(c->FindIndicator("absenteeism")->rollup, Rollup::kMean);
  EXPECT_EQ(c->FindIndicator("missing"), nullptr);
  ASSERT_EQ(c->operators.size(), 3u);
  EXPECT_EQ(c->operators[1].subtree, "cl/textiles");
  EXPECT_EQ(c->FindOperatorByToken("textiles-demo-token"), &c->operators[1]);
  EXPECT_EQ(c->FindOperatorByToken("textiles-demo-toke"), nullptr);
  EXPECT_EQ(c->FindOperatorByToken(""), nullptr);
  EXPECT_THAT(c->aggregator.windows, ElementsAre(absl::Minutes(1), absl::Hours(1)));
  EXPECT_EQ(c->gateway.id, "gw-santiago-1");
  EXPECT_EQ(c->gateway.batch.linger, absl::Milliseconds(50));
}

TEST(ConfigTest, DemoExampleLoads) {
  absl::StatusOr<Config> c = LoadConfigFile(kExamples + "demo.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->kafka.bootstrap, "embedded");
  const Hierarchy& h = *c->hierarchy;
  EXPECT_EQ(h.NodesAtDepth(1).size(), 2u);
  EXPECT_EQ(h.NodesAtDepth(2).size(), 4u);
  EXPECT_EQ(h.leaves().size(), 8u);
  // Deadlines short and growing upward so that escalation shows within a minute.
  const Hierarchy::Node* unit = h.leaves().front();
  EXPECT_EQ(unit->ack_within, absl::Seconds(10));
  EXPECT_EQ(unit->resolve_within, absl::Seconds(30));
  for (const Hierarchy::Node* n = unit; n->parent != nullptr; n = n->parent) {
    EXPECT_LT(n->ack_within, n->parent->ack_within) << n->path;
  }
  EXPECT_LE(h.root().ack_within, absl::Seconds(30));
  absl::Duration to_top = absl::ZeroDuration();  // unanswered: unit -> nation
  for (const Hierarchy::Node* n = unit; n->parent != nullptr; n = n->parent)
    to_top += n->ack_within;
  EXPECT_LE(to_top, absl::Seconds(60));
  EXPECT_EQ(c->indicators.size(), 4u);
  EXPECT_EQ(c->aggregator.windows.front(), absl::Seconds(10));
  // A token for the root and one per sector.
  std::vector<std::string> scopes;
  for (const OperatorConfig& op : c->operators) scopes.push_back(op.subtree);
  EXPECT_THAT(scopes, ElementsAre("cl", "cl/textiles", "cl/mining"));
  EXPECT_EQ(c->FindOperatorByToken("demo-cl")->name, "planning");
}

TEST(ConfigTest, MinimalExampleLoadsWithDefaults) {
  absl::StatusOr<Config> c = LoadConfigString(MinimalExampleConfig(), "minimal");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->source, "minimal");
  // Every optional section at its default.
  EXPECT_EQ(c->kafka.bootstrap, "embedded");
  EXPECT_EQ(c->kafka.topic_prefix, "cybersyn");
  EXPECT_EQ(c->kafka.partitions, 8);
  EXPECT_EQ(c->kafka.replication_factor, 1);
  EXPECT_EQ(c->listen.grpc, "127.0.0.1:7070");
  EXPECT_EQ(c->listen.http, "127.0.0.1:8080");
  EXPECT_EQ(c->listen.metrics, "127.0.0.1:9464");
  EXPECT_FALSE(c->listen.tls.has_value());
  EXPECT_THAT(c->aggregator.windows, ElementsAre(absl::Minutes(1), absl::Hours(1)));
  EXPECT_EQ(c->aggregator.allowed_lateness, absl::Seconds(30));
  EXPECT_EQ(c->aggregator.grace, absl::Seconds(10));
  EXPECT_EQ(c->aggregator.idle_advance, absl::Seconds(30));
  EXPECT_EQ(c->aggregator.memory_limit, uint64_t{256} << 20);
  EXPECT_EQ(c->alerter.warmup, 10);
  EXPECT_EQ(c->alerter.auto_resolve_after, 3);
  EXPECT_EQ(c->gateway.buffer_max_bytes, uint64_t{1} << 30);
  EXPECT_EQ(c->gateway.max_future, absl::Minutes(5));
  EXPECT_EQ(c->gateway.max_labels, 16);
  EXPECT_EQ(c->gateway.batch.max_records, 1000);
  EXPECT_EQ(c->gateway.batch.max_bytes, uint64_t{1} << 20);
  EXPECT_EQ(c->FindIndicator("energy")->detector.kind, DetectorKind::kCyberstride);
  EXPECT_EQ(c->FindIndicator("energy")->role, Role::kNone);
  EXPECT_EQ(c->IndicatorWithRole(Role::kCapability), nullptr);
  EXPECT_TRUE(c->BasesOf("productivity").empty());  // no capability: no productivity index
}

TEST(ConfigTest, TokenSources) {
  setenv("CYBERSYN_CONFIG_TEST_TOKEN", "pedro-from-env", 1);
  absl::StatusOr<Config> c = LoadConfigFile(kTestdata + "valid/token_sources.yaml");
  unsetenv("CYBERSYN_CONFIG_TEST_TOKEN");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->operators.size(), 3u);
  EXPECT_EQ(c->operators[0].token, "ana-secret-from-file");  // trimmed
  EXPECT_EQ(c->operators[0].token_source, OperatorConfig::TokenSource::kFile);
  EXPECT_EQ(c->operators[0].token_ref, "tokens/ana.token");
  EXPECT_EQ(c->operators[1].token, "pedro-from-env");
  EXPECT_EQ(c->operators[1].token_source, OperatorConfig::TokenSource::kEnv);
  EXPECT_EQ(c->operators[1].token_ref, "CYBERSYN_CONFIG_TEST_TOKEN");
  EXPECT_EQ(c->operators[2].token, "rosa-literal");
  EXPECT_EQ(c->operators[2].token_source, OperatorConfig::TokenSource::kLiteral);
  EXPECT_EQ(c->FindOperatorByToken("pedro-from-env"), &c->operators[1]);
}

TEST(ConfigTest, TokensNeverInProblems) {
  // Two operators share a secret: the problem names them, never the secret.
  std::vector<std::string> problems = ConfigProblemStrings(R"(
levels: [{name: enterprise, ack_within: 1m, resolve_within: 2m}]
hierarchy: {acme: }
indicators: [{name: x, unit: t, rollup: sum}]
operators:
  - {name: a, subtree: acme, token: hunter2}
  - {name: b, subtree: acme, token: hunter2}
)");
  EXPECT_THAT(problems,
              ElementsAre("operators[1]: has the same token as operators[0] (\"a\"); a token "
                          "identifies one operator"));
}

TEST(ConfigTest, MissingFileIsNotFound) {
  absl::StatusOr<Config> c = LoadConfigFile("/no/such/cybersyn.yaml");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(c.status().message(), "/no/such/cybersyn.yaml: cannot read: No such file or directory");
}

// --- Invalid files: every problem, exactly -------------------------------------------------------

TEST(ConfigInvalidTest, SyntaxError) {
  EXPECT_EQ(InvalidMessage("syntax_error.yaml"),
            "syntax_error.yaml: 1 problem(s):\n"
            "  - syntax_error.yaml:3:10: YAML syntax error: end of map flow not found");
}

TEST(ConfigInvalidTest, MissingSections) {
  EXPECT_EQ(InvalidMessage("missing_sections.yaml"),
            "missing_sections.yaml: 3 problem(s):\n"
            "  - missing_sections.yaml: levels: required section is missing\n"
            "  - missing_sections.yaml: hierarchy: required section is missing\n"
            "  - missing_sections.yaml: indicators: required section is missing");
}

TEST(ConfigInvalidTest, UnknownKeysWithHints) {
  EXPECT_EQ(InvalidMessage("unknown_keys.yaml"),
            "unknown_keys.yaml: 5 problem(s):\n"
            "  - unknown_keys.yaml:2: kafka.topic_prefx: unknown key; did you mean "
            "\"topic_prefix\"?\n"
            "  - unknown_keys.yaml:5: levels[1].colour: unknown key (expected one of: name, "
            "ack_within, resolve_within)\n"
            "  - unknown_keys.yaml:8: hierarchy.acme.titel: unknown key; did you mean \"title\"?\n"
            "  - unknown_keys.yaml:12: indicators[0].rolup: unknown key; did you mean "
            "\"rollup\"?\n"
            "  - unknown_keys.yaml:13: alerts: unknown key; did you mean \"alerter\"?");
}

TEST(ConfigInvalidTest, BadDurations) {
  EXPECT_EQ(InvalidMessage("bad_durations.yaml"),
            "bad_durations.yaml: 6 problem(s):\n"
            "  - bad_durations.yaml:4: levels[2].resolve_within: expected a duration like 15m, "
            "got \"2 hours\"\n"
            "  - bad_durations.yaml:10: hierarchy.cl/textiles.ack_within: expected a duration "
            "like 15m, got \"soon\"\n"
            "  - bad_durations.yaml:16: indicators[0].expect_every: must be positive, got 0s\n"
            "  - bad_durations.yaml:18: aggregator.grace: expected a duration like 15m, got "
            "\"-1s\"\n"
            "  - bad_durations.yaml:20: gateway.max_future: expected a duration like 15m, got a "
            "list\n"
            "  - bad_durations.yaml:21: gateway.batch.linger: expected a duration like 15m, got "
            "\"10\" (add a unit: ms, s, m, h or d)");
}

TEST(ConfigInvalidTest, BadSizes) {
  EXPECT_EQ(InvalidMessage("bad_sizes.yaml"),
            "bad_sizes.yaml: 5 problem(s):\n"
            "  - bad_sizes.yaml:9: aggregator.memory_limit: expected a byte size like 256MiB, got "
            "\"lots\"\n"
            "  - bad_sizes.yaml:11: alerter.memory_limit: must be at least 1MiB, got 1KiB\n"
            "  - bad_sizes.yaml:13: gateway.buffer_max_bytes: expected a byte size like 256MiB, "
            "got \"1.5GiB\"\n"
            "  - bad_sizes.yaml:14: gateway.batch.max_records: must be at least 1, got 0\n"
            "  - bad_sizes.yaml:14: gateway.batch.max_bytes: must be at least 1, got 0");
}

TEST(ConfigInvalidTest, BadIds) {
  EXPECT_EQ(InvalidMessage("bad_ids.yaml"),
            "bad_ids.yaml: 7 problem(s):\n"
            "  - bad_ids.yaml:2: levels[0].name: must match [a-z0-9_-]+, got \"Enterprise\"\n"
            "  - bad_ids.yaml:7: hierarchy.acme/Press: node id must match [a-z0-9_-]+, got "
            "\"Press\"\n"
            "  - bad_ids.yaml:8: hierarchy.acme/paint shop: node id must match [a-z0-9_-]+, got "
            "\"paint shop\"\n"
            "  - bad_ids.yaml:10: indicators[0].name: must match [a-z0-9_-]+, got \"Output\"\n"
            "  - bad_ids.yaml:11: indicators[1].unit: must not be empty\n"
            "  - bad_ids.yaml:13: operators[0].name: must match [a-z0-9_-]+, got \"Ana\"\n"
            "  - bad_ids.yaml:15: gateway.id: must match [a-zA-Z0-9._-]+, got \"gw 1\"");
}

TEST(ConfigInvalidTest, Duplicates) {
  EXPECT_EQ(InvalidMessage("duplicates.yaml"),
            "duplicates.yaml: 5 problem(s):\n"
            "  - duplicates.yaml:4: levels[2].name: duplicate level \"unit\" (first at "
            "levels[1])\n"
            "  - duplicates.yaml:10: hierarchy.acme/press: duplicate node id among the children "
            "of acme\n"
            "  - duplicates.yaml:15: indicators[2].name: duplicate indicator \"output\" (first at "
            "indicators[0])\n"
            "  - duplicates.yaml:18: operators[1].name: duplicate operator \"ana\" (first at "
            "operators[0])\n"
            "  - duplicates.yaml:21: kafka.partitions: duplicate key");
}

TEST(ConfigInvalidTest, TreeDepthMustMatchLevels) {
  EXPECT_EQ(InvalidMessage("depth.yaml"),
            "depth.yaml: 3 problem(s):\n"
            "  - depth.yaml:12: hierarchy.cl/yarur/spinning/spindle_7: deeper than the 3 levels "
            "declared in levels (the last level is \"unit\")\n"
            "  - depth.yaml:13: hierarchy.cl/sumar: leaf at level \"enterprise\"; every leaf must "
            "be at the last level \"unit\" (the tree must be 3 levels deep)\n"
            "  - depth.yaml:14: hierarchy.cl/codelco: leaf at level \"enterprise\"; every leaf "
            "must be at the last level \"unit\" (the tree must be 3 levels deep)");
}

TEST(ConfigInvalidTest, Operators) {
  unsetenv("CYBERSYN_TEST_SURELY_UNSET_TOKEN");
  EXPECT_EQ(InvalidMessage("operators.yaml"),
            "operators.yaml: 7 problem(s):\n"
            "  - operators.yaml:14: operators[0].subtree: no node \"cl/textile\" in the "
            "hierarchy; did you mean \"cl/textiles\"?\n"
            "  - operators.yaml:15: operators[1]: exactly one of token, token_env, token_file is "
            "required, got none\n"
            "  - operators.yaml:16: operators[2]: exactly one of token, token_env, token_file is "
            "required, got token and token_env\n"
            "  - operators.yaml:17: operators[3].token_env: environment variable "
            "CYBERSYN_TEST_SURELY_UNSET_TOKEN is not set\n"
            "  - operators.yaml:18: operators[4].token_file: cannot read \"no/such.token\": No "
            "such file or directory\n"
            "  - operators.yaml:19: operators[5]: has the same token as operators[0] (\"ana\"); a "
            "token identifies one operator\n"
            "  - operators.yaml:20: operators[6].subtree: no node \"mining\" in the hierarchy");
}

TEST(ConfigInvalidTest, Enums) {
  EXPECT_EQ(InvalidMessage("enums.yaml"),
            "enums.yaml: 5 problem(s):\n"
            "  - enums.yaml:7: indicators[0].rollup: expected one of sum|mean|min|max|last|none, "
            "got \"average\"\n"
            "  - enums.yaml:8: indicators[1].role: expected one of "
            "actuality|capability|potentiality, got \"capabilty\"; did you mean \"capability\"?\n"
            "  - enums.yaml:13: indicators[2].detector.kind: expected one of "
            "cyberstride|ewma|cusum|bocpd|threshold|none, got \"cyberstrid\"; did you mean "
            "\"cyberstride\"?\n"
            "  - enums.yaml:14: indicators[2].detector.params.lambda: expected a number, got "
            "\"high\"\n"
            "  - enums.yaml:15: indicators[3].rollup: expected one of sum|mean|min|max|last|none, "
            "got a list");
}

TEST(ConfigInvalidTest, ThresholdsAndRoles) {
  EXPECT_EQ(InvalidMessage("thresholds_roles.yaml"),
            "thresholds_roles.yaml: 5 problem(s):\n"
            "  - thresholds_roles.yaml:7: indicators[0].thresholds: min (10) must be less than "
            "max (5)\n"
            "  - thresholds_roles.yaml:8: indicators[1].role: indicators[0] (\"output\") already "
            "has role actuality; at most one indicator per role\n"
            "  - thresholds_roles.yaml:9: indicators[2].thresholds: min (20) must be less than "
            "max (20)\n"
            "  - thresholds_roles.yaml:10: indicators[3].thresholds.low: unknown key (expected "
            "one of: min, max)\n"
            "  - thresholds_roles.yaml:10: indicators[3].thresholds.max: expected a number, got "
            "\".nan\"");
}

TEST(ConfigInvalidTest, AlertBudgets) {
  EXPECT_EQ(InvalidMessage("alert_budget.yaml"),
            "alert_budget.yaml: 5 problem(s):\n"
            "  - alert_budget.yaml:7: indicators[0].alert_budget: expected an alert budget "
            "\"<count>/<hour|day|week|month>\" like 1/week or 2/day, got \"weekly\"\n"
            "  - alert_budget.yaml:8: indicators[1].alert_budget: expected an alert budget "
            "\"<count>/<hour|day|week|month>\" like 1/week or 2/day, got \"1/fortnight\"\n"
            "  - alert_budget.yaml:9: indicators[2].alert_budget: alert budget must allow a "
            "positive count of false signals, got \"0/week\" (a series cannot be calibrated to "
            "never signal falsely)\n"
            "  - alert_budget.yaml:10: indicators[3].alert_budget: expected an alert budget like "
            "1/week, got a list\n"
            "  - alert_budget.yaml:12: alerter.alert_budget: alert budget \"2e6/day\" is above "
            "1e6 a week");
}

TEST(ConfigInvalidTest, Attribution) {
  EXPECT_EQ(InvalidMessage("attribution.yaml"),
            "attribution.yaml: 4 problem(s):\n"
            "  - attribution.yaml:7: indicators[0].attribution: expected one of on|off, got "
            "\"offf\"; did you mean \"off\"?\n"
            "  - attribution.yaml:8: indicators[1].attribution: expected one of on|off, got "
            "\"false\"\n"
            "  - attribution.yaml:9: indicators[2].attribution: expected one of on|off, got a "
            "list\n"
            "  - attribution.yaml:10: indicators[3].atribution: unknown key; did you mean "
            "\"attribution\"?");
}

// On by default; `attribution: off` on an indicator stops its series from being explained and
// its signals from explaining, derived indices included (docs/attribution.md).
TEST(ConfigTest, AttributionIsOnUnlessAnIndicatorTurnsItOff) {
  absl::StatusOr<Config> c = LoadConfigString(R"(
levels:
  - {name: enterprise, ack_within: 15m, resolve_within: 1h}
  - {name: unit, ack_within: 5m, resolve_within: 30m}
hierarchy:
  acme: {children: {press: {}}}
indicators:
  - {name: output, unit: t, rollup: sum, role: actuality, attribution: off}
  - {name: capacity, unit: t, rollup: sum, role: capability, attribution: on}
  - {name: energy, unit: kWh, rollup: sum}
)",
                                              "attribution.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->FindIndicator("output")->attribution);
  EXPECT_TRUE(c->FindIndicator("capacity")->attribution);
  EXPECT_TRUE(c->FindIndicator("energy")->attribution);
  EXPECT_TRUE(c->MayAttribute("energy", "energy"));
  EXPECT_TRUE(c->MayAttribute("productivity", "capacity"));
  EXPECT_FALSE(c->MayAttribute("productivity", "output"));
  EXPECT_FALSE(c->MayAttribute("output", "output"));
}

TEST(ConfigTest, AlertBudgetsInFalseSignalsPerWeek) {
  EXPECT_DOUBLE_EQ(*ParseAlertBudget("1/week"), 1);
  EXPECT_DOUBLE_EQ(*ParseAlertBudget(" 2 / day "), 14);
  EXPECT_DOUBLE_EQ(*ParseAlertBudget("0.5/hour"), 84);
  EXPECT_DOUBLE_EQ(*ParseAlertBudget("3/month"), 0.7);
  absl::StatusOr<Config> c = LoadConfigFile(kExamples + "chile.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->alerter.alert_budget, 1);
  EXPECT_DOUBLE_EQ(c->FindIndicator("energy")->alert_budget.value_or(0), 2);
  EXPECT_FALSE(c->FindIndicator("output")->alert_budget.has_value());
}

TEST(ConfigInvalidTest, Windows) {
  EXPECT_EQ(InvalidMessage("windows.yaml"),
            "windows.yaml: 4 problem(s):\n"
            "  - windows.yaml:9: aggregator.windows[3]: must be positive, got 0s\n"
            "  - windows.yaml:9: aggregator.windows[1]: 1m30s is not a multiple of the smallest "
            "window 1m\n"
            "  - windows.yaml:9: aggregator.windows[2]: duplicate window 1m\n"
            "  - windows.yaml:11: aggregator.idle_advance: must be positive, got 0s");
}

TEST(ConfigInvalidTest, ListenAndKafka) {
  EXPECT_EQ(InvalidMessage("listen_kafka.yaml"),
            "listen_kafka.yaml: 9 problem(s):\n"
            "  - listen_kafka.yaml:2: kafka.bootstrap: expected \"embedded\" or "
            "host:port[,host:port...], got \"localhost\"\n"
            "  - listen_kafka.yaml:3: kafka.topic_prefix: must match [a-zA-Z0-9._-]+, got "
            "\"cyber syn\"\n"
            "  - listen_kafka.yaml:4: kafka.partitions: must be at least 1, got 0\n"
            "  - listen_kafka.yaml:5: kafka.replication_factor: expected an integer, got "
            "\"three\"\n"
            "  - listen_kafka.yaml:8: kafka.properties.sasl: expected a string value, got a map\n"
            "  - listen_kafka.yaml:17: listen.grpc: expected host:port (e.g. 127.0.0.1:7070), got "
            "\"7070\"\n"
            "  - listen_kafka.yaml:18: listen.http: expected host:port (e.g. 127.0.0.1:7070), got "
            "\"localhost:80800\"\n"
            "  - listen_kafka.yaml:20: listen.tls.cert: required key is missing\n"
            "  - listen_kafka.yaml:20: listen.tls.key: cannot read \"/no/such/server.key\": No "
            "such file or directory");
}

TEST(ConfigInvalidTest, Deadlines) {
  EXPECT_EQ(InvalidMessage("deadlines.yaml"),
            "deadlines.yaml: 4 problem(s):\n"
            "  - deadlines.yaml:3: levels[1].resolve_within: resolve_within (10m) must be at "
            "least ack_within (30m)\n"
            "  - deadlines.yaml:4: levels[2].ack_within: must be positive, got 0s\n"
            "  - deadlines.yaml:13: hierarchy.cl/textiles/yarur/spinning.ack_within: "
            "resolve_within (30m, from level unit) must be at least ack_within (45m)\n"
            "  - deadlines.yaml:14: hierarchy.cl/textiles/yarur/weaving.resolve_within: "
            "resolve_within (1m) must be at least ack_within (5m)");
}

TEST(ConfigInvalidTest, Structure) {
  EXPECT_EQ(InvalidMessage("structure.yaml"),
            "structure.yaml: 4 problem(s):\n"
            "  - structure.yaml:2: levels: no level is named \"enterprise\"; one must be (records "
            "are keyed and partitioned by enterprise)\n"
            "  - structure.yaml:5: hierarchy: expected exactly one root node, got 2 (cl, ar)\n"
            "  - structure.yaml:8: indicators: expected a list of indicators, got a map\n"
            "  - structure.yaml:9: operators: expected a list of operators, got \"everyone\"");
}

TEST(ConfigInvalidTest, NotAMap) {
  EXPECT_EQ(InvalidMessage("shapes.yaml"),
            "shapes.yaml: 1 problem(s):\n"
            "  - shapes.yaml:1: expected a map of sections (kafka, levels, hierarchy, indicators, "
            "operators, listen, aggregator, alerter, gateway, query), got a list");
}

TEST(ConfigInvalidTest, EveryInvalidFileIsTested) {
  // Keeps the list above in step with the directory.
  const char* names[] = {"syntax_error",     "missing_sections",
                         "unknown_keys",     "bad_durations",
                         "bad_sizes",        "bad_ids",
                         "duplicates",       "depth",
                         "operators",        "enums",
                         "thresholds_roles", "windows",
                         "listen_kafka",     "deadlines",
                         "structure",        "shapes"};
  for (const char* name : names) {
    EXPECT_THAT(InvalidMessage(std::string(name) + ".yaml"), HasSubstr("problem(s):")) << name;
  }
}

// --- Inline cases
// ----------------------------------------------------------------------------------

constexpr char kLevels[] = R"(
levels:
  - {name: sector, ack_within: 30m, resolve_within: 2h}
  - {name: enterprise, ack_within: 15m, resolve_within: 1h}
  - {name: unit, ack_within: 5m, resolve_within: 30m}
indicators: [{name: output, unit: t, rollup: sum}]
)";

TEST(ConfigInlineTest, IssueMessageFormat) {
  EXPECT_THAT(ConfigProblemStrings(std::string(kLevels) + R"(
hierarchy:
  cl:
    children:
      textiles:
        ack_within: soon
        children: {yarur: {children: {spinning: }}}
)"),
              ElementsAre("hierarchy.cl/textiles.ack_within: expected a duration like 15m, got "
                          "\"soon\"",
                          "hierarchy.cl/textiles/yarur/spinning: deeper than the 3 levels "
                          "declared in levels (the last level is \"unit\")"));
}

// Issue 22: the gateway's time bounds, in the time grammar every source uses.
TEST(ConfigInlineTest, GatewayTimeBounds) {
  const std::string tree = std::string(kLevels) +
                           "hierarchy: {cl: {children: {e: {children: "
                           "{u: {}}}}}}\n";
  auto c =
      LoadConfigString(tree + "gateway: {max_age: 30d, min_time: 2020-01-01T00:00:00Z}\n", "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->gateway.max_age, absl::Hours(24 * 30));
  EXPECT_EQ(c->gateway.min_time_ms, 1'577'836'800'000);
  c = LoadConfigString(tree + "gateway: {min_time: 0}\n", "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->gateway.min_time_ms, 0);
  EXPECT_THAT(ConfigProblemStrings(tree + "gateway: {min_time: 2020-01-01, max_age: soon}\n"),
              ElementsAre("gateway.max_age: expected a duration like 15m, got \"soon\"",
                          "gateway.min_time: expected RFC 3339 or epoch milliseconds, got "
                          "\"2020-01-01\" (add the time of day and a zone: T00:00:00Z)"));
}

TEST(ConfigInlineTest, QueryRetention) {
  const std::string tree = std::string(kLevels) +
                           "hierarchy: {cl: {children: {e: {children: "
                           "{u: {}}}}}}\n";
  auto c = LoadConfigString(tree, "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->query.retention, absl::Hours(24 * 7));  // days by default, not forever
  c = LoadConfigString(tree + "query: {retention: 30d}\n", "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->query.retention, absl::Hours(24 * 30));
  EXPECT_THAT(ConfigProblemStrings(tree + "query: {retention: 0, keep: all}\n"),
              ElementsAre("query.keep: unknown key (expected one of: retention)",
                          "query.retention: must be positive, got 0"));
}

// Issue 20: the Sparkplug B mapping, with problems named by their place.
TEST(ConfigInlineTest, SparkplugMapping) {
  const std::string tree = std::string(kLevels) +
                           "hierarchy: {cl: {children: {e: {children: "
                           "{u: {}}}}}}\n";
  auto c = LoadConfigString(tree + R"(
gateway:
  sparkplug:
    - {group: plant, edge_node: mill-1, node: cl/e/u, metrics: {"Line 1/Output": output}}
    - {group: plant, edge_node: mill-1, device: spinner, node: cl/e, metrics: {Out: output}}
)",
                            "t");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->gateway.sparkplug.size(), 2u);
  EXPECT_EQ(c->gateway.sparkplug[0].device, "");
  EXPECT_EQ(c->gateway.sparkplug[0].metrics.at("Line 1/Output"), "output");
  EXPECT_EQ(c->gateway.sparkplug[1].device, "spinner");
  EXPECT_THAT(ConfigProblemStrings(tree + R"(
gateway:
  sparkplug:
    - {group: plant, edge_node: "a/b", node: cl/e/x, metrics: {T: outptu}}
    - {group: plant, edge_node: m, node: cl/e}
    - {group: plant, edge_node: m, node: cl/e, metrics: {T: output}}
)"),
              ElementsAre("gateway.sparkplug[0].edge_node: a Sparkplug id may not be empty or "
                          "hold '/', '+' or '#', got \"a/b\"",
                          "gateway.sparkplug[0].node: no node \"cl/e/x\" in the hierarchy; did "
                          "you mean \"cl/e/u\"?",
                          "gateway.sparkplug[0].metrics.T: no indicator \"outptu\"; did you mean "
                          "\"output\"?",
                          "gateway.sparkplug[1]: metrics: required (Sparkplug metric name: "
                          "indicator)",
                          "gateway.sparkplug[2]: duplicate Sparkplug source plant/m/ (first at "
                          "gateway.sparkplug[1])"));
}

TEST(ConfigInlineTest, KafkaSectionsPerClientKind) {
  absl::StatusOr<Config> c = LoadConfigString(std::string(kLevels) + R"(
hierarchy: {cl: {children: {y: {children: {s: }}}}}
kafka:
  properties: {security.protocol: SSL}
  producer: {linger.ms: "10", compression.type: zstd}
  consumer: {fetch.wait.max.ms: "50"}
  admin: {socket.timeout.ms: "5000"}
)",
                                              "inline");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->kafka.properties.at("security.protocol"), "SSL");
  EXPECT_EQ(c->kafka.producer.at("linger.ms"), "10");
  EXPECT_EQ(c->kafka.consumer.at("fetch.wait.max.ms"), "50");
  EXPECT_EQ(c->kafka.admin.at("socket.timeout.ms"), "5000");
}

TEST(ConfigInlineTest, KafkaKeysCorrectnessDependsOnAreRefusedInEverySection) {
  EXPECT_THAT(
      ConfigProblemStrings(std::string(kLevels) + R"(
hierarchy: {cl: {children: {y: {children: {s: }}}}}
kafka:
  properties: {enable.idempotence: "false", linger.ms: "5"}
  producer: {acks: "1", transactional.id: x, enable.gapless.guarantee: "false"}
  consumer: {isolation.level: read_uncommitted, enable.auto.commit: "true"}
  admin: {request.required.acks: "0"}
  nonsense: {}
)"),
      ElementsAre(
          "kafka.properties.enable.idempotence: is set by Cybersyn and cannot be configured: "
          "producers are idempotent (no duplicates or reordering on retries); always on",
          "kafka.producer.acks: is set by Cybersyn and cannot be configured: records are "
          "acknowledged by all in-sync replicas (acks=all); always on",
          "kafka.producer.transactional.id: is set by Cybersyn and cannot be configured: each "
          "aggregator/alerter derives its transactional id from --instance-id (zombie fencing)",
          "kafka.producer.enable.gapless.guarantee: is set by Cybersyn and cannot be configured: "
          "the gateway needs per-enterprise order across failed batches; always on",
          "kafka.consumer.isolation.level: is set by Cybersyn and cannot be configured: "
          "consumers read only committed transactions (read_committed)",
          "kafka.consumer.enable.auto.commit: is set by Cybersyn and cannot be configured: "
          "offsets are committed in transactions or after processing, never automatically",
          "kafka.admin.request.required.acks: is set by Cybersyn and cannot be configured: "
          "records are acknowledged by all in-sync replicas (acks=all); always on",
          "kafka.nonsense: unknown key (expected one of: bootstrap, topic_prefix, partitions, "
          "replication_factor, properties, producer, consumer, admin)"));
}

TEST(ConfigInlineTest, ChildrenOutsideChildrenKey) {
  EXPECT_THAT(ConfigProblemStrings(std::string(kLevels) + R"(
hierarchy:
  textiles:
    title: Textiles
    yarur: {children: {spinning: }}
)"),
              ElementsAre("hierarchy.textiles: leaf at level \"sector\"; every leaf must be at the "
                          "last level \"unit\" (the tree must be 3 levels deep)",
                          "hierarchy.textiles.yarur: unknown key (expected one of: title, "
                          "ack_within, resolve_within, children); child nodes go under "
                          "\"children\""));
}

TEST(ConfigInlineTest, EmptyDocument) {
  EXPECT_THAT(ConfigProblemStrings(""), ElementsAre("levels: required section is missing",
                                                    "hierarchy: required section is missing",
                                                    "indicators: required section is missing"));
  EXPECT_THAT(CheckConfigString("# nothing\n", "x")[0].line, 0);
}

TEST(ConfigInlineTest, ProblemLinesAndColumns) {
  std::vector<ConfigProblem> problems = CheckConfigString("levels: [\n", "x.yaml");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_GT(problems[0].line, 0);
  EXPECT_GT(problems[0].column, 0);
  EXPECT_THAT(problems[0].message, HasSubstr("YAML syntax error"));
}

TEST(ConfigInlineTest, MissingRequiredKeys) {
  EXPECT_THAT(ConfigProblemStrings(R"(
levels:
  - {name: enterprise, ack_within: 15m}
  - {ack_within: 5m, resolve_within: 30m}
hierarchy: {acme: {children: {press: }}}
indicators:
  - {name: output}
)"),
              ElementsAre("levels[0].resolve_within: required key is missing",
                          "levels[1].name: required key is missing",
                          "indicators[0].unit: required key is missing",
                          "indicators[0].rollup: required key is missing"));
}

TEST(ConfigInlineTest, EmptyLists) {
  EXPECT_THAT(ConfigProblemStrings(R"(
levels: []
hierarchy: {}
indicators: []
aggregator: {windows: []}
)"),
              ElementsAre("levels: at least one level is required",
                          "hierarchy: expected a map with one root node (id: {title, children, "
                          "...}), got an empty map",
                          "indicators: at least one indicator is required",
                          "aggregator.windows: expected a non-empty list of window sizes like "
                          "[1m, 1h], got an empty list"));
}

TEST(ConfigInlineTest, WindowsSortedAndBootstrapList) {
  absl::StatusOr<Config> c = LoadConfigString(std::string(kLevels) + R"(
hierarchy: {cl: {children: {y: {children: {s: }}}}}
kafka: {bootstrap: "kafka-1:9092, kafka-2:9092,[::1]:9093", properties: {client.id: x}}
aggregator: {windows: [1h, 1m, 15m]}
listen: {grpc: "0.0.0.0:0", http: "[::]:8080"}
)",
                                              "inline");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->kafka.embedded());
  EXPECT_EQ(c->kafka.properties.at("client.id"), "x");
  EXPECT_THAT(c->aggregator.windows,
              ElementsAre(absl::Minutes(1), absl::Minutes(15), absl::Hours(1)));
  EXPECT_EQ(c->listen.grpc, "0.0.0.0:0");
  EXPECT_EQ(c->hierarchy->leaves().size(), 1u);
  EXPECT_THAT(c->operators, IsEmpty());
}

TEST(ConfigInlineTest, ClientLimits) {
  absl::StatusOr<Config> d = LoadConfigString(std::string(kLevels) + R"(
hierarchy: {cl: {children: {y: {children: {s: }}}}}
)",
                                              "inline");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->listen.limits.max_request_bytes, 64u << 10);
  EXPECT_EQ(d->listen.limits.max_watch_streams, 256);
  EXPECT_EQ(d->listen.limits.max_http_body_bytes, 1u << 20);

  absl::StatusOr<Config> c = LoadConfigString(std::string(kLevels) + R"(
hierarchy: {cl: {children: {y: {children: {s: }}}}}
listen:
  limits: {max_request_bytes: 128KiB, max_streams_per_connection: 10, max_watch_streams: 40,
           max_watch_streams_per_operator: 4, actions_per_second: 0.5, actions_burst: 3,
           max_http_body_bytes: 64KiB}
)",
                                              "inline");
  ASSERT_TRUE(c.ok()) << c.status();
  const ClientLimitsConfig& l = c->listen.limits;
  EXPECT_EQ(l.max_request_bytes, 128u << 10);
  EXPECT_EQ(l.max_streams_per_connection, 10);
  EXPECT_EQ(l.max_watch_streams, 40);
  EXPECT_EQ(l.max_watch_streams_per_operator, 4);
  EXPECT_DOUBLE_EQ(l.actions_per_second, 0.5);
  EXPECT_DOUBLE_EQ(l.actions_burst, 3);
  EXPECT_EQ(l.max_http_body_bytes, 64u << 10);

  EXPECT_THAT(
      ConfigProblemStrings(std::string(kLevels) + R"(
hierarchy: {cl: {children: {y: {children: {s: }}}}}
listen:
  limits: {max_request_bytes: 2GiB, max_watch_streams: 0, actions_burst: 0.5,
           actions_per_second: fast, max_http_body_bytes: 10, max_streams: 5}
)"),
      UnorderedElementsAre("listen.limits.max_streams: unknown key (expected one of: "
                           "max_request_bytes, max_streams_per_connection, max_watch_streams, "
                           "max_watch_streams_per_operator, actions_per_second, actions_burst, "
                           "max_http_body_bytes)",
                           "listen.limits.max_request_bytes: must be at most 1GiB, got 2GiB",
                           "listen.limits.max_watch_streams: must be at least 1, got 0",
                           "listen.limits.actions_per_second: expected a number, got \"fast\"",
                           "listen.limits.actions_burst: must be at least 1, got 0.5",
                           "listen.limits.max_http_body_bytes: must be at least 1KiB, got 10"));
}

TEST(ConfigInlineTest, StringLoaderMessageUsesGivenName) {
  absl::StatusOr<Config> c = LoadConfigString("levels: 3\n", "inline.yaml");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(),
            "inline.yaml: 3 problem(s):\n"
            "  - inline.yaml:1: levels: expected a list of levels, top to bottom, got \"3\"\n"
            "  - inline.yaml: hierarchy: required section is missing\n"
            "  - inline.yaml: indicators: required section is missing");
}

TEST(ConfigInlineTest, DeepTreeWithoutLevelsIsBounded) {
  std::string yaml = "hierarchy:\n";
  std::string indent = "  ";
  for (int i = 0; i < 100; ++i) {
    yaml += indent + "n" + std::to_string(i) + ":\n" + indent + "  children:\n";
    indent += "    ";
  }
  std::vector<std::string> problems = ConfigProblemStrings(yaml);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_THAT(problems[0], HasSubstr(": deeper than 64 levels"));
  EXPECT_EQ(problems[1], "levels: required section is missing");
  EXPECT_EQ(problems[2], "indicators: required section is missing");
}

TEST(ConfigEnumTest, Names) {
  EXPECT_EQ(RollupName(Rollup::kLast), "last");
  EXPECT_EQ(RoleName(Role::kPotentiality), "potentiality");
  EXPECT_EQ(DetectorKindName(DetectorKind::kBocpd), "bocpd");
}

}  // namespace
}  // namespace cybersyn
