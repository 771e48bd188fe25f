// `cybersyn demo`: the whole system in one process on the embedded broker.
// Until the gateway, aggregator and alerter roles are wired in (issue "Operators"), it proves
// the embedded broker path: deployment topics, a transactional round trip of RecordBatches,
// and an outside-visible bootstrap address.
#include <iostream>

#include "absl/strings/str_format.h"
#include "cli/command.h"
#include "common/embedded_broker.h"
#include "common/kafka_admin.h"
#include "common/kafka_selftest.h"

namespace cybersyn::cli {
namespace {

struct DemoArgs {
  int batches = 50;
  int records = 200;
};

int RunDemo(const DemoArgs& args) {
  auto broker = EmbeddedBroker::Start(3);
  if (!broker.ok()) {
    std::cerr << "error: " << broker.status().message() << "\n";
    return 1;
  }
  std::cout << "embedded Kafka (librdkafka mock cluster, 3 brokers) at " << (*broker)->bootstrap()
            << "\n  watch it from another terminal: kcat -b " << (*broker)->bootstrap()
            << " -L\n";
  const TopicNames names("cybersyn");
  const auto specs = DeploymentTopics(names, 8, 1);
  if (absl::Status s = (*broker)->EnsureTopics(specs); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return 1;
  }
  std::cout << "created " << specs.size() << " topics (" << names.records << ", "
            << names.aggregates << ", " << names.signals << ", ...)\n";
  RoundTripOptions opts;
  opts.topic = "cybersyn.selftest";
  opts.batches = args.batches;
  opts.records_per_batch = args.records;
  opts.ensure_topics = (*broker)->ensurer();
  auto result = RunKafkaRoundTrip({(*broker)->bootstrap(), {}}, opts);
  if (!result.ok()) {
    std::cerr << "error: " << result.status().message() << "\n";
    return 1;
  }
  std::cout << absl::StrFormat(
      "published %d RecordBatches (%d records) in one Kafka transaction in %s and read them "
      "back exactly once (read_committed) in %s\n",
      result->batches_sent, result->records_read, absl::FormatDuration(result->produce_time),
      absl::FormatDuration(result->consume_time));
  return 0;
}

}  // namespace

void AddDemoCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* demo = app.add_subcommand(
      "demo", "Run the whole system in one process on an embedded Kafka broker");
  demo->add_option("--batches", args->batches, "RecordBatches in the round trip")
      ->capture_default_str();
  demo->add_option("--records", args->records, "Records per batch")->capture_default_str();
  demo->callback([args, &exit_code] { exit_code = RunDemo(*args); });
}

}  // namespace cybersyn::cli
