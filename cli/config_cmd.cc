// `cybersyn config check FILE` and `cybersyn config example`: validate a configuration and show
// what it means (the tree with its deadlines, indicators, operator scopes), or print a minimal one
// to start from. Tokens are never printed, nor librdkafka property values (they may be secrets).
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "cli/command.h"
#include "common/config.h"
#include "common/duration.h"
#include "common/hierarchy.h"
#include "common/time_grammar.h"

namespace cybersyn::cli {
namespace {

constexpr char kConfigHelp[] =
    "Check and explain the one YAML file every role reads.\n"
    "Sections (deploy/examples/chile.yaml documents every key; demo.yaml is the demo's):\n"
    "  kafka       bootstrap (\"embedded\" or host:port,...), topic_prefix, partitions,\n"
    "              replication_factor, properties (passed to librdkafka)\n"
    "  levels      (required) the levels top to bottom, each {name, ack_within, resolve_within};\n"
    "              one must be named enterprise; a signal not acknowledged/resolved in time\n"
    "              climbs to the parent node\n"
    "  hierarchy   (required) one root; nodes are `id: {title, ack_within, resolve_within,\n"
    "              children}`; every leaf (unit) sits at the last level; paths like\n"
    "              cl/textiles/yarur/spinning\n"
    "  indicators  (required) list of {name, unit, rollup (sum|mean|min|max|last|none), role\n"
    "              (actuality|capability|potentiality), expect_every, thresholds {min, max},\n"
    "              detector {kind, params}, alert_budget (false signals per series, e.g.\n"
    "              1/week or 2/day: each series calibrates its threshold to it), attribution\n"
    "              (on|off, default on: one signal per fault, the series it moves listed on it)}\n"
    "  operators   list of {name, subtree, one of token | token_env | token_file}\n"
    "  listen      grpc, http (Opsroom), metrics addresses as host:port; tls (gRPC) and "
    "http_tls\n"
    "              (HTTP) {cert, key, client_ca}\n"
    "  aggregator  windows, allowed_lateness, grace, idle_advance, state_dir, memory_limit\n"
    "  alerter     state_dir, warmup, auto_resolve_after, memory_limit, alert_budget\n"
    "              (the indicators' default, 1/week)\n"
    "  gateway     id, buffer_dir, buffer_max_bytes, max_future, max_age, min_time, max_labels,\n"
    "              batch {max_records, max_bytes, linger}, sparkplug (list of {group,\n"
    "              edge_node, device, node, metrics {SPARKPLUG_METRIC: indicator}})\n"
    "  query       retention (history the Opsroom and `series` keep; default 7d)\n"
    "Durations: 500ms, 30s, 15m, 4h, 1d, 1h30m. Sizes: 1000, 64KB, 256MiB, 1GiB.";

// Left-aligned columns separated by two spaces.
class Table {
 public:
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out, std::string_view indent) const {
    std::vector<size_t> widths;
    for (const auto& row : rows_) {
      widths.resize(std::max(widths.size(), row.size()));
      for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    }
    for (const auto& row : rows_) {
      std::string line(indent);
      for (size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out << line << "\n";
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string Deadline(absl::Duration d, bool overridden) {
  return DurationToString(d) + (overridden ? "*" : "");
}

std::string FormatNumber(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

void PrintKafka(const Config& c, std::ostream& out) {
  out << "kafka\n";
  if (c.kafka.embedded()) {
    out << "  bootstrap     embedded (in-process librdkafka mock cluster)\n";
  } else {
    out << "  bootstrap     " << c.kafka.bootstrap << "\n";
  }
  out << "  topics        " << c.kafka.Topic("*") << " (" << c.kafka.partitions
      << " partitions, replication " << c.kafka.replication_factor << ")\n";
  for (const auto& [section, props] :
       {std::pair<const char*, const std::map<std::string, std::string>*>{"properties",
                                                                          &c.kafka.properties},
        {"producer", &c.kafka.producer},
        {"consumer", &c.kafka.consumer},
        {"admin", &c.kafka.admin}}) {
    if (props->empty()) continue;
    std::string keys;
    for (const auto& [key, value] : *props) keys += (keys.empty() ? "" : ", ") + key;
    out << "  " << absl::StrFormat("%-14s", section) << keys << " (values not shown)\n";
  }
}

void PrintHierarchy(const Config& c, std::ostream& out) {
  const Hierarchy& h = *c.hierarchy;
  out << "\nhierarchy: " << h.levels().size() << " levels, " << h.nodes().size() << " nodes, "
      << h.leaves().size() << " units  (* = node override)\n";
  Table tree;
  tree.Add({"NODE", "TITLE", "LEVEL", "ACK WITHIN", "RESOLVE WITHIN"});
  for (const Hierarchy::Node* n : h.nodes()) {
    tree.Add({std::string(2 * n->depth, ' ') + n->id, n->title, n->level,
              Deadline(n->ack_within, n->ack_within_overridden),
              Deadline(n->resolve_within, n->resolve_within_overridden)});
  }
  tree.Print(out, "  ");
}

void PrintIndicators(const Config& c, std::ostream& out) {
  out << "\nindicators: " << c.indicators.size() << "\n";
  Table indicators;
  indicators.Add(
      {"NAME", "UNIT", "ROLLUP", "ROLE", "DETECTOR", "EXPECT EVERY", "THRESHOLDS", "ATTRIBUTION"});
  for (const IndicatorConfig& ind : c.indicators) {
    std::string detector(DetectorKindName(ind.detector.kind));
    if (!ind.detector.params.empty()) {
      std::string params;
      for (const auto& [k, v] : ind.detector.params) {
        params += (params.empty() ? "" : ", ") + k + "=" + FormatNumber(v);
      }
      detector += " (" + params + ")";
    }
    std::string thresholds = "-";
    if (ind.thresholds.min && ind.thresholds.max) {
      thresholds = FormatNumber(*ind.thresholds.min) + ".." + FormatNumber(*ind.thresholds.max);
    } else if (ind.thresholds.min) {
      thresholds = ">= " + FormatNumber(*ind.thresholds.min);
    } else if (ind.thresholds.max) {
      thresholds = "<= " + FormatNumber(*ind.thresholds.max);
    }
    indicators.Add({ind.name, ind.unit, std::string(RollupName(ind.rollup)),
                    ind.role == Role::kNone ? "-" : std::string(RoleName(ind.role)), detector,
                    ind.expect_every ? DurationToString(*ind.expect_every) : "-", thresholds,
                    ind.attribution ? "on" : "off"});
  }
  indicators.Print(out, "  ");
}

void PrintOperators(const Config& c, std::ostream& out) {
  out << "\noperators: " << c.operators.size() << " (tokens are never shown)\n";
  if (!c.operators.empty()) {
    Table operators;
    operators.Add({"NAME", "SCOPE", "TOKEN FROM"});
    for (const OperatorConfig& op : c.operators) {
      std::string source;
      switch (op.token_source) {
        case OperatorConfig::TokenSource::kLiteral:
          source = "literal in the file";
          break;
        case OperatorConfig::TokenSource::kEnv:
          source = "env " + op.token_ref;
          break;
        case OperatorConfig::TokenSource::kFile:
          source = "file " + op.token_ref;
          break;
      }
      operators.Add({op.name, op.subtree, source});
    }
    operators.Print(out, "  ");
  }
}

void PrintRoles(const Config& c, std::ostream& out) {
  out << "\nlisten\n";
  out << "  grpc " << c.listen.grpc << ", http (Opsroom) " << c.listen.http << ", metrics "
      << c.listen.metrics << ", tls " << (c.listen.tls ? "on" : "off") << ", http_tls "
      << (c.listen.http_tls ? "on" : "off") << "\n";

  std::string windows;
  for (absl::Duration w : c.aggregator.windows) {
    windows += (windows.empty() ? "" : ", ") + DurationToString(w);
  }
  out << "\naggregator\n"
      << "  windows " << windows << "; allowed lateness "
      << DurationToString(c.aggregator.allowed_lateness) << "; grace "
      << DurationToString(c.aggregator.grace) << "; idle advance "
      << DurationToString(c.aggregator.idle_advance) << "\n"
      << "  state " << c.aggregator.state_dir << " (memory "
      << ByteSizeToString(c.aggregator.memory_limit) << ")\n";
  out << "\nalerter\n"
      << "  warmup " << c.alerter.warmup << " observations; auto-resolve after "
      << c.alerter.auto_resolve_after << " normal windows\n"
      << "  state " << c.alerter.state_dir << " (memory "
      << ByteSizeToString(c.alerter.memory_limit) << ")\n";
  out << "\ngateway " << c.gateway.id << "\n"
      << "  buffer " << c.gateway.buffer_dir << " (max "
      << ByteSizeToString(c.gateway.buffer_max_bytes) << "); max future "
      << DurationToString(c.gateway.max_future) << "; max age "
      << (c.gateway.max_age > absl::ZeroDuration() ? DurationToString(c.gateway.max_age) : "off")
      << "; min time " << FormatEventTime(c.gateway.min_time_ms) << "; max labels "
      << c.gateway.max_labels << "\n"
      << "  batch " << c.gateway.batch.max_records << " records / "
      << ByteSizeToString(c.gateway.batch.max_bytes) << " / linger "
      << DurationToString(c.gateway.batch.linger) << "\n";
  for (const GatewayConfig::Sparkplug& sp : c.gateway.sparkplug) {
    out << "  sparkplug " << sp.group << "/" << sp.edge_node
        << (sp.device.empty() ? "" : "/" + sp.device) << " -> " << sp.node << ":";
    for (const auto& [metric, indicator] : sp.metrics) out << " " << metric << "=" << indicator;
    out << "\n";
  }
  out << "\nquery\n"
      << "  retention " << DurationToString(c.query.retention) << "\n";
}

void PrintSummary(const Config& c, std::ostream& out) {
  out << c.source << ": OK\n\n";
  PrintKafka(c, out);
  PrintHierarchy(c, out);
  PrintIndicators(c, out);
  PrintOperators(c, out);
  PrintRoles(c, out);
}

int RunCheck(const std::string& file) {
  absl::StatusOr<Config> config = LoadConfigFile(file);
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 1;
  }
  PrintSummary(*config, std::cout);
  return 0;
}

}  // namespace

void AddConfigCommand(CLI::App& app, int& exit_code) {
  CLI::App* config = app.add_subcommand("config", "Check and explain a configuration file");
  config->footer(kConfigHelp);
  config->require_subcommand(1);

  auto file = std::make_shared<std::string>();
  CLI::App* check = config->add_subcommand(
      "check",
      "Validate FILE and list every problem at once (file:line: key.path: problem; exit 1),\n"
      "or print what it configures: the tree with each node's level and deadlines, the\n"
      "indicators, operator scopes (never tokens), Kafka and listen addresses (exit 0).\n"
      "token_env variables must be set and token_file files readable, as at startup.");
  check->add_option("FILE", *file, "the YAML configuration, e.g. deploy/examples/chile.yaml")
      ->required();
  check->callback([file, &exit_code] { exit_code = RunCheck(*file); });

  CLI::App* example = config->add_subcommand(
      "example", "Print a minimal valid configuration to start from (redirect it to a file)");
  example->callback([&exit_code] {
    std::cout << MinimalExampleConfig();
    exit_code = 0;
  });
}

}  // namespace cybersyn::cli
