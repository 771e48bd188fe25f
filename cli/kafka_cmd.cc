// `cybersyn kafka check|topics`: prove a cluster does what the pipeline needs, and create the
// deployment's topics.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command.h"
#include "common/config.h"
#include "common/embedded_broker.h"
#include "common/kafka_admin.h"
#include "common/kafka_selftest.h"

namespace cybersyn::cli {
namespace {

struct KafkaArgs {
  std::string brokers;
  std::string config;
  int batches = 20;
  int records = 100;
};

// Resolves where to connect: --brokers wins, then the config's kafka section, else embedded.
// Starts an embedded broker when asked for one (kept alive in `embedded`).
absl::StatusOr<KafkaClientOptions> ResolveClient(const KafkaArgs& args,
                                                 std::unique_ptr<EmbeddedBroker>& embedded,
                                                 std::string* prefix, int* partitions,
                                                 int* replication) {
  KafkaClientOptions client;
  std::string bootstrap = args.brokers;
  if (!args.config.empty()) {
    auto config = LoadConfigFile(args.config);
    if (!config.ok()) return config.status();
    if (bootstrap.empty()) bootstrap = config->kafka.bootstrap;
    client = KafkaClientFor(config->kafka, "");
    *prefix = config->kafka.topic_prefix;
    *partitions = config->kafka.partitions;
    *replication = config->kafka.replication_factor;
  }
  if (bootstrap.empty() || bootstrap == "embedded") {
    auto broker = EmbeddedBroker::Start();
    if (!broker.ok()) return broker.status();
    embedded = std::move(*broker);
    bootstrap = embedded->bootstrap();
    std::cout << "started the embedded broker (librdkafka mock cluster) at " << bootstrap << "\n";
  }
  client.bootstrap = bootstrap;
  return client;
}

int RunCheck(const KafkaArgs& args) {
  std::unique_ptr<EmbeddedBroker> embedded;
  std::string prefix = "cybersyn";
  int partitions = 8, replication = 1;
  auto client = ResolveClient(args, embedded, &prefix, &partitions, &replication);
  if (!client.ok()) {
    std::cerr << "error: " << client.status().message() << "\n";
    return 1;
  }
  RoundTripOptions opts;
  opts.topic = prefix + ".selftest";
  opts.batches = args.batches;
  opts.records_per_batch = args.records;
  if (embedded) opts.ensure_topics = embedded->ensurer();
  std::cout << "round trip through " << client->bootstrap << ": " << opts.batches
            << " RecordBatches x " << opts.records_per_batch
            << " records, one transaction, read back read_committed\n";
  auto result = RunKafkaRoundTrip(*client, opts);
  if (!result.ok()) {
    std::cerr << "error: " << result.status().message() << "\n"
              << "hint: is a broker listening at " << client->bootstrap
              << "? `deploy/local/kafka.sh start` starts one on loopback.\n";
    return 1;
  }
  std::cout << absl::StrFormat(
      "ok: %d brokers; %d batches (%d records) committed in %s, all read back exactly once in "
      "%s\n",
      result->brokers, result->batches_read, result->records_read,
      absl::FormatDuration(result->produce_time), absl::FormatDuration(result->consume_time));
  return 0;
}

int RunTopics(const KafkaArgs& args) {
  std::unique_ptr<EmbeddedBroker> embedded;
  std::string prefix = "cybersyn";
  int partitions = 8, replication = 1;
  auto client = ResolveClient(args, embedded, &prefix, &partitions, &replication);
  if (!client.ok()) {
    std::cerr << "error: " << client.status().message() << "\n";
    return 1;
  }
  const auto specs = DeploymentTopics(TopicNames(prefix), partitions, replication);
  absl::Status s = embedded ? embedded->EnsureTopics(specs) : EnsureTopics(*client, specs);
  if (!s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return 1;
  }
  for (const auto& t : specs) {
    std::cout << absl::StrFormat("%-36s partitions=%d replication=%d%s\n", t.name, t.partitions,
                                 t.replication_factor,
                                 t.configs.count("cleanup.policy") ? " compacted" : "");
  }
  return 0;
}

}  // namespace

void AddKafkaCheckCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<KafkaArgs>();
  CLI::App* kafka = app.add_subcommand("kafka", "Check a Kafka cluster and create the topics");
  kafka->require_subcommand(1);
  kafka->footer(
      "Where to connect: --brokers, else the config's kafka.bootstrap, else an embedded broker\n"
      "(librdkafka's in-process mock cluster). SASL/SSL settings come from the config's\n"
      "kafka.properties.");
  CLI::App* check = kafka->add_subcommand(
      "check", "Produce RecordBatches in a transaction and read them back (read_committed)");
  check->add_option("--brokers", args->brokers, "host:port[,host:port] or 'embedded'");
  check->add_option("--config", args->config, "Cybersyn YAML config (kafka section)")
      ->check(CLI::ExistingFile);
  check->add_option("--batches", args->batches, "How many batches")->capture_default_str();
  check->add_option("--records", args->records, "Records per batch")->capture_default_str();
  check->callback([args, &exit_code] { exit_code = RunCheck(*args); });
  check->footer("Example: cybersyn kafka check --brokers 127.0.0.1:9092");

  CLI::App* topics = kafka->add_subcommand(
      "topics", "Create the deployment's topics (records, aggregates, signals, changelogs, ...)");
  topics->add_option("--brokers", args->brokers, "host:port[,host:port] or 'embedded'");
  topics->add_option("--config", args->config, "Cybersyn YAML config (prefix, partitions)")
      ->check(CLI::ExistingFile);
  topics->callback([args, &exit_code] { exit_code = RunTopics(*args); });
}

}  // namespace cybersyn::cli
