// KafkaStats: librdkafka's statistics (`statistics.interval.ms`, a JSON document every interval)
// as Prometheus metrics, so an SRE sees the Kafka clients from inside each role:
//   cybersyn_kafka_broker_rtt_seconds{client, broker, quantile="0.5|0.99"}  request round trip
//       (kept at the last value through intervals without requests)
//   cybersyn_kafka_broker_up{client, broker}                  1 while the connection is UP
//   cybersyn_kafka_broker_waitresp_requests{client, broker}   requests sent, awaiting an answer
//   cybersyn_kafka_broker_outbuf_requests{client, broker}     requests queued, not yet sent
//   cybersyn_kafka_client_queue_messages{client}              messages in the producer's queue
//   cybersyn_kafka_client_queue_bytes{client}                  (msg_cnt, msg_size)
//   cybersyn_kafka_client_replyq_events{client}               events waiting for poll()
//   cybersyn_kafka_consumer_lag_messages{client, topic, partition}
//       messages in the partition not yet handed to the role: last stable offset (high
//       watermark for read_uncommitted) minus the position the role consumed to. librdkafka's
//       own consumer_lag counts from the committed offset, which this code commits through
//       transactions, so it would lag.
//   cybersyn_kafka_consumer_fetchq_messages{client, topic, partition}   pre-fetched, unconsumed
// `client` is librdkafka's handle name (rdkafka#producer-1, unique in the process); `broker` the
// broker's node id. Series of brokers and partitions that leave a client's statistics are removed,
// and all of a client's when it is destroyed, so cardinality stays clients x (brokers + assigned
// partitions).
//
// A KafkaStats is shared by the clients of a process (KafkaClientOptions::stats); each client
// gets its own KafkaStats::Client, an RdKafka::EventCb that also forwards librdkafka's log lines
// and errors to spdlog (librdkafka stops printing them once an event callback is set).
// Thread-safety: KafkaStats is safe for concurrent use; a Client's callbacks run on the thread
// that polls its handle.
#ifndef CYBERSYN_COMMON_KAFKA_STATS_H_
#define CYBERSYN_COMMON_KAFKA_STATS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/kafka_properties.h"
#include "librdkafka/rdkafkacpp.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace cybersyn {

class KafkaStats {
 public:
  // How often clients with statistics emit them, unless the config sets statistics.interval.ms.
  static constexpr int kDefaultIntervalMs = 5000;

  explicit KafkaStats(prometheus::Registry& registry);

  class Client : public RdKafka::EventCb {
   public:
    explicit Client(KafkaStats* owner) : owner_(owner) {}
    ~Client() override;
    void event_cb(RdKafka::Event& event) override;

   private:
    KafkaStats* owner_;
    std::string name_;  // the handle's name, from its first statistics
  };
  std::unique_ptr<Client> NewClient() { return std::make_unique<Client>(this); }

  // For the client wrappers: when `options.stats` is set, adds the statistics interval to the
  // code's defaults (before BuildKafkaConf), then sets the event callback on `conf` and returns
  // it (it must outlive the handle); nullptr without stats.
  static void AddDefaults(const KafkaClientOptions& options,
                          std::map<std::string, std::string>* code);
  static absl::StatusOr<std::unique_ptr<Client>> Attach(const KafkaClientOptions& options,
                                                        RdKafka::Conf* conf);

  // Applies one statistics document of client `name` (its first call names the client).
  // INVALID_ARGUMENT when it is not librdkafka's statistics JSON. Public for tests.
  absl::Status Update(absl::string_view json, std::string* name);
  // Removes every series of client `name`.
  void Forget(const std::string& name);

 private:
  using Labels = std::map<std::string, std::string>;
  struct Series {
    prometheus::Family<prometheus::Gauge>* family;
    Labels labels;
  };
  void SetLocked(prometheus::Family<prometheus::Gauge>* family, const Labels& labels, double v,
                 std::vector<Series>* seen) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether `client`'s previous statistics set this series.
  bool HadLocked(const std::string& client, const prometheus::Family<prometheus::Gauge>* family,
                 const Labels& labels) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  prometheus::Family<prometheus::Gauge>& rtt_;
  prometheus::Family<prometheus::Gauge>& up_;
  prometheus::Family<prometheus::Gauge>& waitresp_;
  prometheus::Family<prometheus::Gauge>& outbuf_;
  prometheus::Family<prometheus::Gauge>& queue_messages_;
  prometheus::Family<prometheus::Gauge>& queue_bytes_;
  prometheus::Family<prometheus::Gauge>& replyq_;
  prometheus::Family<prometheus::Gauge>& lag_;
  prometheus::Family<prometheus::Gauge>& fetchq_;

  absl::Mutex mu_;
  // Per client: the series its last statistics set, to remove those that are gone.
  std::map<std::string, std::vector<Series>> series_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_KAFKA_STATS_H_
