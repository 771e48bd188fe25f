// EmbeddedBroker: librdkafka's built-in mock cluster, a real Kafka-protocol listener on
// loopback, so `cybersyn demo` and quick runs need no Java. Clients talk to it through the
// same code path as to a production cluster (only bootstrap.servers differs); outside tools
// (kcat) can connect to bootstrap() too. Supports idempotent and transactional produce,
// consumer groups and read_committed consumption; it does not compact or persist.
// Thread-safety: immutable after Start; destroy after every client using it is gone.
#ifndef CYBERSYN_COMMON_EMBEDDED_BROKER_H_
#define CYBERSYN_COMMON_EMBEDDED_BROKER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/kafka_admin.h"

struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace cybersyn {

class EmbeddedBroker {
 public:
  // Starts `brokers` mock brokers on loopback with OS-chosen ports.
  static absl::StatusOr<std::unique_ptr<EmbeddedBroker>> Start(int brokers = 1);
  ~EmbeddedBroker();

  // "127.0.0.1:port[,...]", for bootstrap.servers.
  const std::string& bootstrap() const { return bootstrap_; }
  // Creates a topic with the given partition count (replication 1). Clients may also rely on
  // auto-creation, but explicit topics get the partition count we want.
  absl::Status CreateTopic(const std::string& name, int partitions);
  // Creates each topic of `topics` (partitions only; configs such as compaction are ignored
  // because the mock cluster neither compacts nor persists). Existing topics are kept.
  absl::Status EnsureTopics(const std::vector<TopicSpec>& topics);
  TopicEnsurer ensurer() {
    return [this](const std::vector<TopicSpec>& t) { return EnsureTopics(t); };
  }

 private:
  EmbeddedBroker() = default;
  rd_kafka_s* rk_ = nullptr;
  rd_kafka_mock_cluster_s* cluster_ = nullptr;
  std::string bootstrap_;
};

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_EMBEDDED_BROKER_H_
