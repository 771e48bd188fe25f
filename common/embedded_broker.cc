#include "common/embedded_broker.h"

#include "absl/strings/str_cat.h"
#include "librdkafka/rdkafka.h"
#include "librdkafka/rdkafka_mock.h"

namespace cybersyn {

absl::StatusOr<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::Start(int brokers) {
  std::unique_ptr<EmbeddedBroker> b(new EmbeddedBroker());
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  // The mock cluster lives inside this (otherwise idle) client handle.
  rd_kafka_conf_set(conf, "client.id", "cybersyn-embedded-broker", err, sizeof(err));
  // The handle never connects anywhere; silence its "no bootstrap.servers" warning.
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
  b->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (b->rk_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(absl::StrCat("embedded broker: ", err));
  }
  b->cluster_ = rd_kafka_mock_cluster_new(b->rk_, brokers);
  if (b->cluster_ == nullptr) {
    return absl::InternalError("embedded broker: could not start librdkafka's mock cluster");
  }
  b->bootstrap_ = rd_kafka_mock_cluster_bootstraps(b->cluster_);
  return b;
}

EmbeddedBroker::~EmbeddedBroker() {
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
  if (rk_ != nullptr) rd_kafka_destroy(rk_);
}

absl::Status EmbeddedBroker::EnsureTopics(const std::vector<TopicSpec>& topics) {
  for (const TopicSpec& t : topics) {
    if (absl::Status s = CreateTopic(t.name, t.partitions); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status EmbeddedBroker::CreateTopic(const std::string& name, int partitions) {
  rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    return absl::InternalError(
        absl::StrCat("embedded broker: create topic ", name, ": ", rd_kafka_err2str(e)));
  }
  return absl::OkStatus();
}

}  // namespace cybersyn
