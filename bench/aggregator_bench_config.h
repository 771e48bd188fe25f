// The aggregator benchmarks' configuration: the ingest simulator's synthetic hierarchy (nation
// "sim", 5 sectors x 10 enterprises x `units` units x 4 indicators), windows of 1 and 10 minutes
// closed by event time only. Exits with a message when the generated YAML does not load.
//
// Thread-safety: a plain function.
#ifndef CYBERSYN_BENCH_AGGREGATOR_BENCH_CONFIG_H_
#define CYBERSYN_BENCH_AGGREGATOR_BENCH_CONFIG_H_

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/config.h"
#include "ingest/simulator.h"

namespace cybersyn {

inline std::shared_ptr<Config> AggregatorBenchConfig(int units, const std::string& bootstrap,
                                                     const std::string& prefix, int partitions) {
  auto c = LoadConfigString(ingest::SyntheticConfigYaml(5, 10, units, bootstrap), "bench");
  if (!c.ok()) {
    std::fprintf(stderr, "config: %s\n", c.status().ToString().c_str());
    std::exit(1);
  }
  auto config = std::make_shared<Config>(std::move(*c));
  config->kafka.topic_prefix = prefix;
  config->kafka.partitions = partitions;
  config->aggregator.windows = {absl::Minutes(1), absl::Minutes(10)};
  config->aggregator.allowed_lateness = absl::Seconds(30);
  config->aggregator.grace = absl::Seconds(10);
  config->aggregator.idle_advance = absl::Hours(1);  // closing by event time only
  config->aggregator.memory_limit = 64ull << 20;
  return config;
}

}  // namespace cybersyn

#endif  // CYBERSYN_BENCH_AGGREGATOR_BENCH_CONFIG_H_
