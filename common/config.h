// Config: the one YAML file every role reads (kafka, levels, hierarchy, indicators, operators,
// listen, aggregator, alerter, gateway). deploy/examples/chile.yaml documents every key.
//
// Loading validates everything and reports every problem at once, each located by its YAML path
// and line ("chile.yaml:42: hierarchy.cl/textiles.ack_within: expected a duration like 15m, got
// \"soon\""), so one `cybersyn config check` run shows all there is to fix.
//
// Operator tokens are resolved at load time (literal, environment variable or file) and held in
// OperatorConfig::token; nothing in this library prints them, and callers must not either.
//
// Thread-safety: Config is a plain value; a const Config may be read from any thread. The
// hierarchy is shared and immutable.
#ifndef CYBERSYN_COMMON_CONFIG_H_
#define CYBERSYN_COMMON_CONFIG_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/hierarchy.h"

namespace cybersyn {

struct KafkaConfig {
  static constexpr std::string_view kEmbedded = "embedded";
  // "embedded" (librdkafka's in-process mock cluster) or "host:port,host:port".
  std::string bootstrap = std::string(kEmbedded);
  std::string topic_prefix = "cybersyn";  // [a-zA-Z0-9._-]+
  int partitions = 8;                     // for topics the system creates
  int replication_factor = 1;
  // librdkafka properties (common/kafka_properties.h): `properties` for every client, then each
  // kind's own section over it. Keys Cybersyn pins for correctness are refused.
  std::map<std::string, std::string> properties;
  std::map<std::string, std::string> producer;
  std::map<std::string, std::string> consumer;
  std::map<std::string, std::string> admin;

  bool embedded() const { return bootstrap == kEmbedded; }
  // "<topic_prefix>.<name>", e.g. Topic("records") == "cybersyn.records".
  std::string Topic(std::string_view name) const;
};

// How a series rolls up from children to parent within one window.
enum class Rollup { kSum, kMean, kMin, kMax, kLast, kNone };
// Beer's triple: productivity = A/C, latency = C/P, performance = A/P.
enum class Role { kNone, kActuality, kCapability, kPotentiality };
enum class DetectorKind { kCyberstride, kEwma, kCusum, kBocpd, kThreshold, kNone };

std::string_view RollupName(Rollup r);              // "sum", ...
std::string_view RoleName(Role r);                  // "none", "actuality", ...
std::string_view DetectorKindName(DetectorKind k);  // "cyberstride", ...

struct DetectorConfig {
  DetectorKind kind = DetectorKind::kCyberstride;
  // Free-form numeric parameters; the detector validates names and ranges.
  std::map<std::string, double> params;
};

struct IndicatorConfig {
  std::string name;  // [a-z0-9_-]+, unique
  std::string unit;  // free text: "t", "kWh", "%"
  std::string description;
  Rollup rollup = Rollup::kSum;
  Role role = Role::kNone;
  // No-data detection: a signal when no value arrives for this long. Unset: disabled.
  std::optional<absl::Duration> expect_every;
  struct Thresholds {  // static limits; min < max when both are set
    std::optional<double> min;
    std::optional<double> max;
  } thresholds;
  DetectorConfig detector;
  // False signals per week this indicator's series may raise (`alert_budget: 1/week`): each
  // series calibrates its signal threshold to it. Unset: the alerter's default.
  std::optional<double> alert_budget;
  // `attribution: on|off` (docs/attribution.md). Off: this indicator's series raise on their own
  // view at every level, and its signals explain no other series.
  bool attribution = true;
};

// An alert budget as written in the config: "<count>/<hour|day|week|month>" ("1/week", "2/day",
// "0.5/month"; a month is 30 days). Returns false signals per week, or InvalidArgument saying
// what was expected.
absl::StatusOr<double> ParseAlertBudget(std::string_view text);

struct OperatorConfig {
  enum class TokenSource { kLiteral, kEnv, kFile };
  std::string name;     // [a-z0-9_-]+, unique
  std::string subtree;  // an existing node path; the operator may act only inside it
  std::string token;    // the resolved secret. NEVER print or log it.
  TokenSource token_source = TokenSource::kLiteral;
  std::string token_ref;  // env var name or file path (empty for literals); safe to print
};

struct TlsConfig {
  std::string cert;       // PEM file
  std::string key;        // PEM file
  std::string client_ca;  // optional: require client certificates signed by this CA
};

// What one server accepts from its clients (`listen.limits`), so a hostile or broken client gets a
// clear status (RESOURCE_EXHAUSTED, 413, ...) instead of the process's memory or threads.
struct ClientLimitsConfig {
  // gRPC Alerts requests are a few hundred bytes; 64 KiB leaves room for long reasons.
  uint64_t max_request_bytes = uint64_t{64} << 10;
  int max_streams_per_connection = 100;  // HTTP/2 streams per gRPC connection
  int max_watch_streams = 256;           // whole process (each holds a Kafka consumer)
  int max_watch_streams_per_operator = 16;
  double actions_per_second = 5;  // Acknowledge/Resolve/Silence per operator; 0 disables
  double actions_burst = 20;
  uint64_t max_http_body_bytes = uint64_t{1} << 20;  // Opsroom and metrics endpoints
};

struct ListenConfig {
  std::string grpc = "127.0.0.1:7070";
  std::string http = "127.0.0.1:8080";  // Opsroom
  std::string metrics = "127.0.0.1:9464";
  std::optional<TlsConfig> tls;       // gRPC server
  std::optional<TlsConfig> http_tls;  // HTTP servers: Opsroom (http) and metrics/health (metrics)
  ClientLimitsConfig limits;
};

struct AggregatorConfig {
  std::vector<absl::Duration> windows = {absl::Minutes(1), absl::Hours(1)};  // ascending
  absl::Duration allowed_lateness = absl::Seconds(30);
  absl::Duration grace = absl::Seconds(10);
  absl::Duration idle_advance = absl::Seconds(30);
  std::string state_dir = "/var/lib/cybersyn/aggregator";
  uint64_t memory_limit = uint64_t{256} << 20;
};

// Optional forwarding of signals to a Prometheus Alertmanager (alerter/alertmanager_bridge.h).
struct AlertmanagerConfig {
  std::string url;  // base URL, e.g. http://alertmanager:9093 (the bridge POSTs /api/v2/alerts)
  absl::Duration resend_interval = absl::Minutes(1);  // re-post open signals this often
  absl::Duration timeout = absl::Seconds(5);          // per HTTP request
};

struct AlerterConfig {
  std::string state_dir = "/var/lib/cybersyn/alerter";
  int warmup = 10;             // observations per series before it may signal
  int auto_resolve_after = 3;  // consecutive normal windows that resolve a signal
  double alert_budget = 1;     // false signals per week per series, unless the indicator says
  uint64_t memory_limit = uint64_t{256} << 20;
  std::optional<AlertmanagerConfig> alertmanager;  // unset: signals are not forwarded
};

// The read side (query/query_store.h): the history `cybersyn series` and the Opsroom show.
struct QueryConfig {
  // Aggregates whose window started more than this before the newest window read, and signals
  // resolved more than this before the newest signal event, are deleted. Open signals stay.
  absl::Duration retention = absl::Hours(24 * 7);
};

struct GatewayConfig {
  std::string id = "gw-1";  // [a-zA-Z0-9._-]+; part of every record's dedup key
  std::string buffer_dir = "/var/lib/cybersyn/gateway";
  uint64_t buffer_max_bytes = uint64_t{1} << 30;
  absl::Duration max_future = absl::Minutes(5);  // records further in the future are rejected
  // Records older than this (relative to the gateway clock) are rejected; zero: no limit (the
  // default: backfills are legitimate).
  absl::Duration max_age = absl::ZeroDuration();
  // Records before this time (epoch ms) are rejected: almost always a unit mistake.
  int64_t min_time_ms = 946'684'800'000;  // 2000-01-01T00:00:00Z
  int max_labels = 16;
  struct Batch {
    int max_records = 1000;
    uint64_t max_bytes = uint64_t{1} << 20;
    absl::Duration linger = absl::Milliseconds(50);
  } batch;
  // Sparkplug B (the MQTT input, docs/ingest.md): which edge node or device feeds which node, and
  // which of its metrics are which indicators. Metrics not listed are ignored.
  struct Sparkplug {
    std::string group;
    std::string edge_node;
    std::string device;                          // empty: the edge node's own metrics
    std::string node;                            // hierarchy path, at or below the enterprise level
    std::map<std::string, std::string> metrics;  // Sparkplug metric name -> indicator
  };
  std::vector<Sparkplug> sparkplug;
};

struct Config {
  std::string source;  // the file (or name) it was loaded from
  KafkaConfig kafka;
  std::shared_ptr<const Hierarchy> hierarchy;  // never null in a loaded Config
  std::vector<IndicatorConfig> indicators;     // in file order
  std::vector<OperatorConfig> operators;       // in file order
  ListenConfig listen;
  AggregatorConfig aggregator;
  AlerterConfig alerter;
  GatewayConfig gateway;
  QueryConfig query;

  const IndicatorConfig* FindIndicator(std::string_view name) const;  // nullptr if none
  const IndicatorConfig* IndicatorWithRole(Role role) const;          // nullptr if none
  // The indicators Beer's derived index `index` is computed from by the aggregator (productivity
  // = actuality / capability, latency = capability / potentiality, performance = actuality /
  // potentiality, by role); empty when `index` is not a derived index or a role is missing.
  std::vector<const IndicatorConfig*> BasesOf(std::string_view index) const;
  // Whether a signal on `explaining` may explain (attribution, docs/attribution.md) a deviation
  // of a series of `explained` (the same indicator at a parent, or a derived index of it): false
  // when either is an indicator with `attribution: off`. Undeclared names (derived indices) are on.
  bool MayAttribute(std::string_view explained, std::string_view explaining) const;
  // The operator holding `token` (constant-time comparison per operator), or nullptr.
  const OperatorConfig* FindOperatorByToken(std::string_view token) const;
};

// One validation problem. `line`/`column` are 1-based, 0 when unknown.
struct ConfigProblem {
  int line = 0;
  int column = 0;
  std::string path;     // YAML key path, e.g. "indicators[2].rollup"; empty for syntax errors
  std::string message;  // e.g. "expected one of sum|mean|min|max|last|none, got \"avg\""
  // "<path>: <message>" (just the message when there is no path).
  std::string ToString() const;
};

// Loads and validates. On any problem returns InvalidArgument with the message
//   <file>: N problem(s):
//     - <file>:<line>: <path>: <problem>
//     - ...
// A file that cannot be read is NotFound / PermissionDenied / InvalidArgument ("<file>: ...").
// Relative token_file and TLS paths are taken relative to the config file's directory.
absl::StatusOr<Config> LoadConfigFile(const std::string& path);
// The same for YAML text; `name_for_messages` stands for the file in messages. Relative paths are
// taken relative to the current directory.
absl::StatusOr<Config> LoadConfigString(std::string_view yaml, std::string_view name_for_messages);

// Every problem in `yaml`, in file order of discovery; empty if it loads.
std::vector<ConfigProblem> CheckConfigString(std::string_view yaml,
                                             std::string_view name_for_messages);
// The same as strings ("<path>: <problem>", without file or line), for tests.
std::vector<std::string> ConfigProblemStrings(std::string_view yaml);

// A small valid config (one root, embedded Kafka) for `cybersyn config example` and tests.
std::string_view MinimalExampleConfig();

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_CONFIG_H_
