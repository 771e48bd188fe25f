// Helpers shared by the aggregator's real-broker tests: deterministic input, an independent
// expected computation, and a read_committed reader of the final aggregates.
#ifndef CYBERSYN_TESTS_AGGREGATOR_TESTING_H_
#define CYBERSYN_TESTS_AGGREGATOR_TESTING_H_

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "aggregator/model.h"
#include "aggregator/window_state.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "cybersyn/v1/aggregate.pb.h"
#include "cybersyn/v1/record.pb.h"

namespace cybersyn::aggregator::testing {

// (node, indicator, window_ms, window_start_ms)
using AggKey = std::tuple<std::string, std::string, int64_t, int64_t>;

inline AggKey KeyOf(const v1::WindowAggregate& a) {
  return {a.series().node(), a.series().indicator(), a.series().window_ms(), a.window_start_ms()};
}

// The four-level Chilean test hierarchy (2 sectors x 2 enterprises x 2 units) with A/C/P and a
// mean-rolled indicator, on `partitions` partitions; `aggregator_yaml` is the `aggregator:`
// section's body (indented two spaces), which is what the tests vary.
inline std::string FourLevelConfigYaml(const std::string& prefix, const std::string& bootstrap,
                                       int partitions, const std::string& aggregator_yaml) {
  return absl::StrCat("kafka:\n  bootstrap: \"", bootstrap, "\"\n  topic_prefix: ", prefix,
                      "\n  partitions: ", partitions, R"(
levels:
  - {name: nation, ack_within: 60m, resolve_within: 5h}
  - {name: sector, ack_within: 40m, resolve_within: 4h}
  - {name: enterprise, ack_within: 20m, resolve_within: 3h}
  - {name: unit, ack_within: 10m, resolve_within: 2h}
hierarchy:
  cl:
    children:
      tex:
        children:
          yarur: {children: {spin: {}, weave: {}}}
          sumar: {children: {spin: {}, weave: {}}}
      min:
        children:
          chuqui: {children: {ext: {}, smelt: {}}}
          teniente: {children: {ext: {}, smelt: {}}}
indicators:
  - {name: output, unit: t, rollup: sum, role: actuality}
  - {name: capacity, unit: t, rollup: sum, role: capability}
  - {name: potential, unit: t, rollup: sum, role: potentiality}
  - {name: temp, unit: C, rollup: mean}
aggregator:
)",
                      aggregator_yaml);
}

// Deterministic input: every unit reports every listed indicator once per `step_ms` from t0 for
// `steps` steps, in event-time order, grouped per enterprise into batches of `batch_records`.
struct Input {
  std::vector<v1::RecordBatch> batches;
  size_t records = 0;
};

inline Input MakeInput(const Model& model, const std::vector<std::string>& indicators, int64_t t0,
                       int64_t step_ms, int steps, int batch_records, const std::string& gateway,
                       uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> noise(0, 10);
  Input in;
  std::map<std::string, v1::RecordBatch> open;  // per enterprise
  uint64_t seq = 0;
  const auto& leaves = model.config().hierarchy->leaves();
  for (int s = 0; s < steps; ++s) {
    const int64_t t = t0 + s * step_ms;
    for (const Hierarchy::Node* leaf : leaves) {
      const std::string& ent = leaf->enterprise->path;
      v1::RecordBatch& b = open[ent];
      for (const std::string& ind : indicators) {
        v1::Record* r = b.add_records();
        r->set_node(leaf->path);
        r->set_indicator(ind);
        r->set_value(std::round(noise(rng) * 1000) / 1000 + (ind == "potential" ? 20 : 0));
        r->set_event_time_ms(t);
        r->set_sequence(++seq);
        ++in.records;
      }
      if (b.records_size() >= batch_records) {
        b.set_enterprise(ent);
        b.set_gateway_id(gateway);
        in.batches.push_back(std::move(b));
        b = v1::RecordBatch();
      }
    }
  }
  for (auto& [ent, b] : open) {
    if (b.records_size() == 0) continue;
    b.set_enterprise(ent);
    b.set_gateway_id(gateway);
    in.batches.push_back(std::move(b));
  }
  return in;
}

// The expected stats at every level, computed from the records directly.
inline std::map<AggKey, Stats> ExpectedStats(const Model& model, const Input& in) {
  std::map<AggKey, Stats> out;
  for (const v1::RecordBatch& b : in.batches) {
    for (const v1::Record& r : b.records()) {
      const int ind = model.IndicatorIndex(r.indicator());
      const bool up = model.indicator(ind).rollup != Rollup::kNone;
      for (int w = 0; w < model.num_windows(); ++w) {
        const int64_t size = model.window_ms(w);
        const int64_t start = WindowStart(r.event_time_ms(), size);
        for (int n = model.NodeIndex(r.node()); n >= 0; n = model.node(n).parent) {
          out[{model.path(n), r.indicator(), size, start}].Add(r.value(), r.event_time_ms());
          if (!up) break;
        }
      }
    }
  }
  return out;
}

inline absl::Status ProduceInput(const KafkaClientOptions& client, const std::string& topic,
                                 const Input& in) {
  ProducerOptions po;
  po.client = client;
  po.overrides = {{"linger.ms", "20"}, {"compression.type", "lz4"}};
  auto p = KafkaProducer::Create(po);
  if (!p.ok()) return p.status();
  std::string value;
  for (const v1::RecordBatch& b : in.batches) {
    b.SerializeToString(&value);
    if (auto s = (*p)->Produce(topic, -1, b.enterprise(), value); !s.ok()) return s;
    (*p)->Poll(absl::ZeroDuration());
  }
  return (*p)->Flush(absl::Seconds(60));
}

// Reads `topic` (read_committed) from the beginning; keeps the last aggregate per key. Stops when
// `done(map)` is true and nothing new arrived for `quiet`, or at `timeout`.
template <typename Done>
std::map<AggKey, v1::WindowAggregate> ReadAggregates(const KafkaClientOptions& client,
                                                     const std::string& topic, int partitions,
                                                     Done done, absl::Duration timeout,
                                                     absl::Duration quiet = absl::Seconds(2)) {
  std::map<AggKey, v1::WindowAggregate> out;
  auto c = KafkaConsumer::Create({client});
  if (!c.ok()) return out;
  std::vector<TopicPartitionOffset> tps;
  for (int p = 0; p < partitions; ++p) tps.push_back({topic, p, -2});
  if (!(*c)->Assign(tps).ok()) return out;
  const absl::Time deadline = absl::Now() + timeout;
  absl::Time last_new = absl::Now();
  while (absl::Now() < deadline) {
    auto msgs = (*c)->ConsumeBatch(10000, absl::Milliseconds(200));
    if (!msgs.ok()) break;
    for (const ConsumedMessage& m : *msgs) {
      v1::WindowAggregate a;
      if (!a.ParseFromArray(m.value().data(), static_cast<int>(m.value().size()))) continue;
      out[KeyOf(a)] = a;
      last_new = absl::Now();
    }
    if (msgs->empty() && done(out) && absl::Now() - last_new >= quiet) break;
  }
  return out;
}

// Compares everything but processing time; for exact-equality checks between runs.
inline std::string Canonical(v1::WindowAggregate a) {
  a.clear_closed_at_ms();
  return a.SerializeAsString();
}

}  // namespace cybersyn::aggregator::testing

#endif  // CYBERSYN_TESTS_AGGREGATOR_TESTING_H_
