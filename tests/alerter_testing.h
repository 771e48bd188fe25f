// Helpers shared by the alerter's real-broker tests: the small textiles hierarchy they configure
// and a series of window aggregates that ends in a confirmed step.
#ifndef CYBERSYN_TESTS_ALERTER_TESTING_H_
#define CYBERSYN_TESTS_ALERTER_TESTING_H_

#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/kafka_producer.h"
#include "common/status.h"
#include "cybersyn/v1/aggregate.pb.h"

namespace cybersyn::testing {

// kafka, levels (sector > enterprise > unit), hierarchy textiles/{yarur/{spinning, weaving},
// sumar/spinning} and one `output` indicator (actuality), then `rest` (operators, alerter, ...).
inline std::string TextilesConfigYaml(const std::string& bootstrap, const std::string& prefix,
                                      const std::string& rest) {
  return absl::StrCat(absl::StrReplaceAll(R"(
kafka: {bootstrap: "BOOT", topic_prefix: PREFIX, partitions: 2}
levels:
  - {name: sector, ack_within: 1h, resolve_within: 4h}
  - {name: enterprise, ack_within: 15m, resolve_within: 2h}
  - {name: unit, ack_within: 5m, resolve_within: 1h}
hierarchy:
  textiles:
    children:
      yarur: {children: {spinning: {}, weaving: {}}}
      sumar: {children: {spinning: {}}}
indicators:
  - {name: output, unit: t, rollup: sum, role: actuality}
)",
                                          {{"BOOT", bootstrap}, {"PREFIX", prefix}}),
                      rest);
}

// 40 one-minute windows of `node`'s output around 100 (seeded noise) from `start_ms`, then a
// step down to 60 (unfavourable for actuality) for 3 windows: enough to confirm the step, too few
// normal windows after it for hysteresis to resolve it.
inline absl::Status ProduceStep(const KafkaClientOptions& client, const std::string& topic,
                                const std::string& node, int64_t start_ms) {
  ASSIGN_OR_RETURN(auto producer, KafkaProducer::Create({client}));
  std::mt19937 rng(42);
  std::normal_distribution<double> noise(0, 1);
  for (int i = 0; i < 43; ++i) {
    v1::WindowAggregate a;
    a.mutable_series()->set_node(node);
    a.mutable_series()->set_indicator("output");
    a.mutable_series()->set_window_ms(60000);
    a.set_window_start_ms(start_ms + i * 60000);
    a.set_window_end_ms(start_ms + (i + 1) * 60000);
    a.set_value((i < 40 ? 100 : 60) + noise(rng));
    a.set_count(1);
    a.set_closed_at_ms(absl::ToUnixMillis(absl::Now()));
    RETURN_IF_ERROR(producer->Produce(topic, -1, node, a.SerializeAsString()));
  }
  return producer->Flush(absl::Seconds(30));
}

// A unit's output (actuality) steps from ~100 to 85 at window 40 of `windows` one-minute windows
// while its capacity stays ~125, with the derived productivity (output / capacity) after its
// bases in each window, as the aggregator sends them: the output signal explains the index's
// move (docs/attribution.md), so the index raises nothing and is "also visible" on it. Needs a
// `capacity` indicator with role capability in the config.
inline absl::Status ProduceAttributedStep(const KafkaClientOptions& client,
                                          const std::string& topic, const std::string& node,
                                          int64_t start_ms, int windows) {
  ASSIGN_OR_RETURN(auto producer, KafkaProducer::Create({client}));
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0, 1);
  auto produce = [&](const char* indicator, int i, double value) {
    v1::WindowAggregate a;
    a.mutable_series()->set_node(node);
    a.mutable_series()->set_indicator(indicator);
    a.mutable_series()->set_window_ms(60000);
    a.set_window_start_ms(start_ms + i * 60000);
    a.set_window_end_ms(start_ms + (i + 1) * 60000);
    a.set_value(value);
    a.set_count(1);
    a.set_derived(std::string(indicator) == "productivity");
    a.set_closed_at_ms(absl::ToUnixMillis(absl::Now()));
    return producer->Produce(topic, -1, node, a.SerializeAsString());
  };
  for (int i = 0; i < windows; ++i) {
    const double output = (i < 40 ? 100 : 85) + noise(rng);
    const double capacity = 125 + noise(rng);
    RETURN_IF_ERROR(produce("output", i, output));
    RETURN_IF_ERROR(produce("capacity", i, capacity));
    RETURN_IF_ERROR(produce("productivity", i, output / capacity));
  }
  return producer->Flush(absl::Seconds(30));
}

}  // namespace cybersyn::testing

#endif  // CYBERSYN_TESTS_ALERTER_TESTING_H_
