// Topic administration: creates the topics a role needs (idempotently) and reads cluster
// metadata. Uses librdkafka's C admin API, which the C++ API lacks.
#ifndef CYBERSYN_COMMON_KAFKA_ADMIN_H_
#define CYBERSYN_COMMON_KAFKA_ADMIN_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kafka_error.h"

struct rd_kafka_s;

namespace cybersyn {

struct TopicSpec {
  std::string name;
  int partitions = 8;
  int replication_factor = 1;
  std::map<std::string, std::string> configs;  // e.g. cleanup.policy=compact
};

// Creates each topic that does not exist yet; existing topics are left as they are.
absl::Status EnsureTopics(const KafkaClientOptions& client, const std::vector<TopicSpec>& topics,
                          absl::Duration timeout = absl::Seconds(30));

// Deletes the named topics (and their data). A topic that does not exist is not an error.
// For benchmarks and tests that fill a broker's disk with throwaway topics.
absl::Status DeleteTopics(const KafkaClientOptions& client, const std::vector<std::string>& names,
                          absl::Duration timeout = absl::Seconds(30));

// The configuration of `topic` as the cluster reports it (defaults included): name -> value
// (entries without a value are left out). NOT_FOUND when the topic does not exist; the error of
// the request otherwise (e.g. PERMISSION_DENIED without DescribeConfigs rights on the topic).
absl::StatusOr<std::map<std::string, std::string>> DescribeTopicConfig(
    const KafkaClientOptions& client, const std::string& topic,
    absl::Duration timeout = absl::Seconds(10));
// The same through an existing client handle (a producer's): no new connection to set up.
absl::StatusOr<std::map<std::string, std::string>> DescribeTopicConfig(
    rd_kafka_s* handle, const std::string& topic, absl::Duration timeout = absl::Seconds(10));

// Creates topics; either EnsureTopics bound to a cluster or an embedded broker's own creator.
using TopicEnsurer = std::function<absl::Status(const std::vector<TopicSpec>&)>;

struct ClusterInfo {
  int brokers = 0;
  std::string controller;
  std::map<std::string, int> topics;  // name -> partitions
};

// Asks the cluster for metadata: proves it answers (used to wait for a broker).
absl::StatusOr<ClusterInfo> DescribeCluster(const KafkaClientOptions& client,
                                            absl::Duration timeout = absl::Seconds(10));

// The topic names of one deployment, from the configured prefix.
struct TopicNames {
  explicit TopicNames(std::string prefix);
  std::string records, deadletter, aggregates, signals, commands;
  std::string Changelog(absl::string_view role) const;  // <prefix>.<role>-changelog
  std::string prefix;
};

// Every topic of one deployment. Records and the aggregator changelog share a partition count
// (state partition i is the changelog of input partition i); changelogs are compacted.
std::vector<TopicSpec> DeploymentTopics(const TopicNames& names, int partitions,
                                        int replication_factor);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_KAFKA_ADMIN_H_
