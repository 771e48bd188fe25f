// `cybersyn aggregator`: windowed roll-ups through the hierarchy, exactly once (aggregator.h).
// Runs until SIGINT/SIGTERM; serves /metrics, /healthz and /readyz (ready once restored).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "aggregator/aggregator.h"
#include "cli/command.h"
#include "cli/embedded_broker_flag.h"
#include "common/config.h"
#include "common/embedded_broker.h"
#include "common/http_server.h"
#include "common/kafka_stats.h"
#include "common/logging.h"
#include "spdlog/spdlog.h"

namespace cybersyn::cli {
namespace {

struct AggregatorCmdOptions {
  std::string config;
  std::string brokers;
  std::string state_dir;
  std::string metrics;
  std::string instance_id = "aggregator-0";
  std::string log_level = "info";
  bool at_least_once = false;
  bool embedded_broker = false;
  int threads = aggregator::AggregatorOptions{}.processing_threads;
};

std::atomic<aggregator::Aggregator*> g_running{nullptr};
std::atomic<bool> g_stop{false};
extern "C" void HandleStopSignal(int) {
  g_stop.store(true);
  if (aggregator::Aggregator* a = g_running.load(); a != nullptr) a->RequestStop();
}

int RunAggregatorCommand(const AggregatorCmdOptions& o) {
  if (absl::Status s = InitLogging({o.log_level, false}); !s.ok()) {
    std::fprintf(stderr, "aggregator: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  auto config = LoadConfigFile(o.config);
  if (!config.ok()) {
    std::fprintf(stderr, "aggregator: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  auto shared = std::make_shared<Config>(std::move(*config));
  if (!o.brokers.empty()) shared->kafka.bootstrap = o.brokers;
  std::unique_ptr<EmbeddedBroker> embedded;
  if (shared->kafka.embedded()) {
    if (!o.embedded_broker) {
      std::fputs(EmbeddedBrokerRefusal("aggregator", o.config).c_str(), stderr);
      return 2;
    }
    auto b = EmbeddedBroker::Start();
    if (!b.ok()) {
      std::fprintf(stderr, "aggregator: %s\n", std::string(b.status().message()).c_str());
      return 1;
    }
    embedded = *std::move(b);
    shared->kafka.bootstrap = embedded->bootstrap();
    std::fputs(EmbeddedBrokerNotice("aggregator", embedded->bootstrap()).c_str(), stderr);
  }
  auto registry = std::make_shared<prometheus::Registry>();
  HttpServer http(registry, shared->listen.http_tls, shared->listen.limits.max_http_body_bytes);
  const std::string metrics_addr = o.metrics.empty() ? shared->listen.metrics : o.metrics;
  if (metrics_addr != "off") {
    auto bound = http.Start(metrics_addr);
    if (!bound.ok()) {
      std::fprintf(stderr, "aggregator: metrics on %s: %s\n", metrics_addr.c_str(),
                   std::string(bound.status().message()).c_str());
      return 1;
    }
    spdlog::info("[aggregator] metrics at {}://{}/metrics", http.scheme(), *bound);
  }
  aggregator::AggregatorOptions ao;
  ao.config = shared;
  ao.client = KafkaClientFor(shared->kafka, shared->kafka.bootstrap);
  if (embedded) ao.ensure_topics = embedded->ensurer();
  ao.instance_id = o.instance_id;
  ao.state_dir = o.state_dir;
  ao.registry = registry;
  ao.client.stats = std::make_shared<KafkaStats>(*registry);
  ao.exactly_once = !o.at_least_once;
  ao.processing_threads = o.threads;
  ao.on_ready = [&http](bool ready) { http.SetReady(ready); };
  std::signal(SIGINT, HandleStopSignal);
  std::signal(SIGTERM, HandleStopSignal);
  // A runtime failure (e.g. a transaction that could not commit during a rebalance) restarts the
  // role in-process from the committed state, exactly as a process restart would: Kafka is
  // authoritative and RocksDB is a recoverable cache. Only a stop request ends the loop.
  for (int attempt = 0;; ++attempt) {
    auto agg = aggregator::Aggregator::Create(ao);
    if (!agg.ok()) {
      std::fprintf(stderr, "aggregator: %s\n", std::string(agg.status().message()).c_str());
      return 2;
    }
    g_running.store(agg->get());
    if (g_stop.load()) (*agg)->RequestStop();
    absl::Status s = (*agg)->Run();
    g_running.store(nullptr);
    agg->reset();
    if (s.ok() || g_stop.load()) break;
    std::fprintf(stderr, "aggregator: %s; restarting from the committed state\n",
                 s.ToString().c_str());
    absl::SleepFor(absl::Seconds(std::min(1 + attempt, 5)));
  }
  http.Stop();
  return 0;
}

}  // namespace

void AddAggregatorCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<AggregatorCmdOptions>();
  CLI::App* cmd = app.add_subcommand(
      "aggregator", "Window and roll up records through the hierarchy, exactly once");
  cmd->footer(
      "Consumes <prefix>.records as a consumer group member (add instances to scale out),\n"
      "publishes closed windows of every level to <prefix>.aggregates, keeps state in RocksDB\n"
      "backed by a compacted changelog, and dead-letters bad input with its reason.");
  cmd->add_option("--config", o->config, "YAML config file")->required();
  cmd->add_option("--brokers", o->brokers, "Kafka bootstrap servers (overrides kafka.bootstrap)");
  cmd->add_option("--state-dir", o->state_dir,
                  "RocksDB state directory (overrides "
                  "aggregator.state_dir)");
  cmd->add_option("--metrics", o->metrics,
                  "host:port for /metrics and /readyz (default listen.metrics; 'off' disables)");
  cmd->add_option("--instance-id", o->instance_id,
                  "unique per running instance; a restart with the same id fences the old one");
  cmd->add_option("--log-level", o->log_level, "trace|debug|info|warn|error|off");
  cmd->add_option("--threads", o->threads,
                  "threads that parse and window records, partition p on thread p % N (0: all "
                  "on the consumer's thread); more than the instance's partitions is useless")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  cmd->add_flag("--embedded-broker", o->embedded_broker, kEmbeddedBrokerHelp);
  cmd->add_flag("--at-least-once", o->at_least_once,
                "disable transactions (benchmarks only: a crash may double count)");
  cmd->callback([o, &exit_code] { exit_code = RunAggregatorCommand(*o); });
}

}  // namespace cybersyn::cli
