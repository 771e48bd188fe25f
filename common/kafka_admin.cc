#include "common/kafka_admin.h"

#include <algorithm>
#include <functional>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "librdkafka/rdkafka.h"

namespace cybersyn {
namespace {

struct RkDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using RkPtr = std::unique_ptr<rd_kafka_t, RkDeleter>;

absl::StatusOr<RkPtr> NewHandle(const KafkaClientOptions& client) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) -> absl::Status {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka property ", k, "=", v, ": ", err));
    }
    return absl::OkStatus();
  };
  absl::Status s = absl::OkStatus();
  for (const auto& [k, v] : EffectiveKafkaSettings(client, KafkaClientKind::kAdmin, {}).values) {
    if (s.ok()) s = set(k, v);
  }
  if (!s.ok()) {
    rd_kafka_conf_destroy(conf);
    return s;
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(absl::StrCat("creating admin client: ", err));
  }
  return RkPtr(rk);
}

}  // namespace

TopicNames::TopicNames(std::string p)
    : records(p + ".records"),
      deadletter(p + ".deadletter"),
      aggregates(p + ".aggregates"),
      signals(p + ".signals"),
      commands(p + ".commands"),
      prefix(std::move(p)) {}

std::string TopicNames::Changelog(absl::string_view role) const {
  return absl::StrCat(prefix, ".", role, "-changelog");
}

std::vector<TopicSpec> DeploymentTopics(const TopicNames& names, int partitions,
                                        int replication_factor) {
  const std::map<std::string, std::string> compact = {{"cleanup.policy", "compact"},
                                                      {"min.compaction.lag.ms", "60000"}};
  const std::map<std::string, std::string> week = {{"retention.ms", "604800000"}};
  return {
      {names.records, partitions, replication_factor, week},
      {names.deadletter, partitions, replication_factor, week},
      {names.aggregates, partitions, replication_factor, week},
      {names.signals, partitions, replication_factor, {{"retention.ms", "-1"}}},
      {names.commands, partitions, replication_factor, week},
      {names.Changelog("aggregator"), partitions, replication_factor, compact},
      {names.Changelog("alerter"), partitions, replication_factor, compact},
  };
}

namespace {

// Runs one topic admin request, which `issue` sends on the given options and queue, and checks
// each topic's result; `also_ok` counts as success (the topic already exists / is already gone).
// `verb` names the operation in errors ("create", "delete").
absl::Status RunTopicAdmin(
    rd_kafka_t* rk, rd_kafka_admin_op_t op, absl::string_view verb, rd_kafka_resp_err_t also_ok,
    absl::Duration timeout,
    const std::function<void(rd_kafka_AdminOptions_t*, rd_kafka_queue_t*)>& issue) {
  char err[512];
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk, op);
  rd_kafka_AdminOptions_set_operation_timeout(
      opts, static_cast<int>(absl::ToInt64Milliseconds(timeout)), err, sizeof(err));
  issue(opts, queue);
  rd_kafka_event_t* ev =
      rd_kafka_queue_poll(queue, static_cast<int>(absl::ToInt64Milliseconds(timeout)) + 5000);
  absl::Status status = absl::OkStatus();
  if (ev == nullptr) {
    status = absl::DeadlineExceededError(absl::StrCat(verb, " topics: no answer from the cluster"));
  } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status =
        absl::UnavailableError(absl::StrCat(verb, " topics: ", rd_kafka_event_error_string(ev)));
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        op == RD_KAFKA_ADMIN_OP_CREATETOPICS
            ? rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n)
            : rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
    for (size_t i = 0; i < n && status.ok(); ++i) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != also_ok) {
        status = KafkaStatus(static_cast<RdKafka::ErrorCode>(e),
                             absl::StrCat(verb, " topic ", rd_kafka_topic_result_name(results[i])));
      }
    }
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(queue);
  return status;
}

}  // namespace

absl::Status DeleteTopics(const KafkaClientOptions& client, const std::vector<std::string>& names,
                          absl::Duration timeout) {
  if (names.empty()) return absl::OkStatus();
  auto rk_or = NewHandle(client);
  if (!rk_or.ok()) return rk_or.status();
  rd_kafka_t* rk = rk_or->get();
  std::vector<rd_kafka_DeleteTopic_t*> topics;
  for (const std::string& n : names) topics.push_back(rd_kafka_DeleteTopic_new(n.c_str()));
  absl::Status status = RunTopicAdmin(
      rk, RD_KAFKA_ADMIN_OP_DELETETOPICS, "delete", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
      timeout, [&](rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* queue) {
        rd_kafka_DeleteTopics(rk, topics.data(), topics.size(), opts, queue);
      });
  rd_kafka_DeleteTopic_destroy_array(topics.data(), topics.size());
  return status;
}

absl::Status EnsureTopics(const KafkaClientOptions& client, const std::vector<TopicSpec>& requested,
                          absl::Duration timeout) {
  // Only ask to create what is missing: cheaper, and works against clusters that do not
  // implement CreateTopics (librdkafka's mock cluster) once the topics exist.
  std::vector<TopicSpec> topics;
  auto info = DescribeCluster(client, std::min(timeout, absl::Seconds(10)));
  for (const TopicSpec& t : requested) {
    if (!info.ok() || !info->topics.count(t.name)) topics.push_back(t);
  }
  if (topics.empty()) return absl::OkStatus();
  auto rk_or = NewHandle(client);
  if (!rk_or.ok()) return rk_or.status();
  rd_kafka_t* rk = rk_or->get();
  char err[512];
  std::vector<rd_kafka_NewTopic_t*> new_topics;
  for (const TopicSpec& t : topics) {
    rd_kafka_NewTopic_t* nt =
        rd_kafka_NewTopic_new(t.name.c_str(), t.partitions, t.replication_factor, err, sizeof(err));
    if (nt == nullptr) {
      rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size());
      return absl::InvalidArgumentError(absl::StrCat("topic ", t.name, ": ", err));
    }
    for (const auto& [k, v] : t.configs) rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str());
    new_topics.push_back(nt);
  }
  absl::Status status = RunTopicAdmin(
      rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, "create", RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS, timeout,
      [&](rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* queue) {
        rd_kafka_CreateTopics(rk, new_topics.data(), new_topics.size(), opts, queue);
      });
  rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size());
  if (!status.ok()) return status;
  // The controller answers before every broker's metadata shows the topic: wait until it does,
  // so a caller that looks the topic up next (partition counts, Assign) does not race it.
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    auto seen = DescribeCluster(client, std::min(timeout, absl::Seconds(10)));
    bool all = seen.ok();
    for (size_t i = 0; all && i < topics.size(); ++i) all = seen->topics.count(topics[i].name) > 0;
    if (all) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("create topics: created, but not in the cluster's metadata after ",
                       absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::StatusOr<std::map<std::string, std::string>> DescribeTopicConfig(
    const KafkaClientOptions& client, const std::string& topic, absl::Duration timeout) {
  auto rk_or = NewHandle(client);
  if (!rk_or.ok()) return rk_or.status();
  return DescribeTopicConfig(rk_or->get(), topic, timeout);
}

absl::StatusOr<std::map<std::string, std::string>> DescribeTopicConfig(rd_kafka_t* rk,
                                                                       const std::string& topic,
                                                                       absl::Duration timeout) {
  const std::string what = absl::StrCat("describe the configuration of topic ", topic);
  char err[512];
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  rd_kafka_AdminOptions_set_request_timeout(
      opts, static_cast<int>(absl::ToInt64Milliseconds(timeout)), err, sizeof(err));
  rd_kafka_ConfigResource_t* resource =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  rd_kafka_DescribeConfigs(rk, &resource, 1, opts, queue);
  rd_kafka_event_t* ev =
      rd_kafka_queue_poll(queue, static_cast<int>(absl::ToInt64Milliseconds(timeout)) + 5000);
  absl::StatusOr<std::map<std::string, std::string>> result;
  if (ev == nullptr) {
    result = absl::DeadlineExceededError(absl::StrCat(what, ": no answer from the cluster"));
  } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    result = KafkaStatus(static_cast<RdKafka::ErrorCode>(rd_kafka_event_error(ev)),
                         absl::StrCat(what, " (", rd_kafka_event_error_string(ev), ")"));
  } else {
    size_t n = 0;
    const rd_kafka_ConfigResource_t** rs =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
    if (n != 1) {
      result = absl::InternalError(absl::StrCat(what, ": ", n, " resources in the answer"));
    } else if (rd_kafka_resp_err_t e = rd_kafka_ConfigResource_error(rs[0]);
               e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
      result = absl::NotFoundError(absl::StrCat(what, ": no such topic"));
    } else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      result = KafkaStatus(static_cast<RdKafka::ErrorCode>(e), what);
    } else {
      std::map<std::string, std::string> configs;
      size_t entries = 0;
      const rd_kafka_ConfigEntry_t** es = rd_kafka_ConfigResource_configs(rs[0], &entries);
      for (size_t i = 0; i < entries; ++i) {
        const char* value = rd_kafka_ConfigEntry_value(es[i]);
        if (value != nullptr) configs[rd_kafka_ConfigEntry_name(es[i])] = value;
      }
      result = std::move(configs);
    }
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_ConfigResource_destroy(resource);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(queue);
  return result;
}

absl::StatusOr<ClusterInfo> DescribeCluster(const KafkaClientOptions& client,
                                            absl::Duration timeout) {
  auto rk_or = NewHandle(client);
  if (!rk_or.ok()) return rk_or.status();
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk_or->get(), 1, nullptr, &md,
                                            static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaStatus(static_cast<RdKafka::ErrorCode>(e),
                       absl::StrCat("metadata from ", client.bootstrap));
  }
  ClusterInfo info;
  info.brokers = md->broker_cnt;
  for (int i = 0; i < md->topic_cnt; ++i) {
    info.topics[md->topics[i].topic] = md->topics[i].partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  return info;
}

}  // namespace cybersyn
