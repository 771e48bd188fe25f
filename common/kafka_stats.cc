#include "common/kafka_stats.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace cybersyn {
namespace {

prometheus::Family<prometheus::Gauge>& Gauge(prometheus::Registry& r, const char* name,
                                             const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

int64_t Int(const nlohmann::json& j, const char* key, int64_t fallback = -1) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : fallback;
}

}  // namespace

KafkaStats::KafkaStats(prometheus::Registry& r)
    : rtt_(Gauge(r, "cybersyn_kafka_broker_rtt_seconds",
                 "Kafka request round-trip time to the broker over the last statistics interval "
                 "(librdkafka rtt), by quantile")),
      up_(Gauge(r, "cybersyn_kafka_broker_up",
                "1 while the client's connection to the broker is UP")),
      waitresp_(Gauge(r, "cybersyn_kafka_broker_waitresp_requests",
                      "Requests sent to the broker and awaiting its response")),
      outbuf_(Gauge(r, "cybersyn_kafka_broker_outbuf_requests",
                    "Requests queued for the broker, not yet sent")),
      queue_messages_(Gauge(r, "cybersyn_kafka_client_queue_messages",
                            "Messages in the client's producer queue (librdkafka msg_cnt)")),
      queue_bytes_(Gauge(r, "cybersyn_kafka_client_queue_bytes",
                         "Bytes of the messages in the client's producer queue (msg_size)")),
      replyq_(
          Gauge(r, "cybersyn_kafka_client_replyq_events",
                "Events (delivery reports, messages, rebalances) waiting for the role to poll")),
      lag_(Gauge(r, "cybersyn_kafka_consumer_lag_messages",
                 "Messages in the partition not yet handed to the role (last stable offset minus "
                 "the consumed position)")),
      fetchq_(Gauge(r, "cybersyn_kafka_consumer_fetchq_messages",
                    "Messages fetched from the partition and queued, not yet consumed")) {}

void KafkaStats::AddDefaults(const KafkaClientOptions& options,
                             std::map<std::string, std::string>* code) {
  if (options.stats) code->emplace("statistics.interval.ms", std::to_string(kDefaultIntervalMs));
}

absl::StatusOr<std::unique_ptr<KafkaStats::Client>> KafkaStats::Attach(
    const KafkaClientOptions& options, RdKafka::Conf* conf) {
  if (!options.stats) return nullptr;
  std::unique_ptr<Client> cb = options.stats->NewClient();
  std::string err;
  if (conf->set("event_cb", static_cast<RdKafka::EventCb*>(cb.get()), err) !=
      RdKafka::Conf::CONF_OK) {
    return absl::InternalError(absl::StrCat("setting the event callback: ", err));
  }
  return cb;
}

KafkaStats::Client::~Client() {
  if (!name_.empty()) owner_->Forget(name_);
}

void KafkaStats::Client::event_cb(RdKafka::Event& event) {
  switch (event.type()) {
    case RdKafka::Event::EVENT_STATS:
      if (absl::Status s = owner_->Update(event.str(), &name_); !s.ok()) {
        spdlog::warn("kafka statistics: {}", s.ToString());
      }
      break;
    case RdKafka::Event::EVENT_ERROR:
      // What librdkafka printed before an event callback was set; most errors are transient
      // (it retries), fatal ones also surface from the calls.
      spdlog::warn("kafka {}: {}{}", name_.empty() ? "client" : name_, event.str(),
                   event.fatal() ? " (fatal)" : "");
      break;
    case RdKafka::Event::EVENT_LOG: {
      // As the producer's own log callback (kafka_producer.cc): the gateway relies on this
      // experimental setting, and a warning the user can do nothing about is noise.
      if (event.fac() == "CONFWARN" &&
          event.str().find("enable.gapless.guarantee is experimental") != std::string::npos) {
        spdlog::debug("kafka {}: {}", name_, event.str());
        break;
      }
      const int sev = event.severity();
      const auto level = sev <= RdKafka::Event::EVENT_SEVERITY_ERROR     ? spdlog::level::err
                         : sev == RdKafka::Event::EVENT_SEVERITY_WARNING ? spdlog::level::warn
                         : sev <= RdKafka::Event::EVENT_SEVERITY_INFO    ? spdlog::level::info
                                                                         : spdlog::level::debug;
      spdlog::log(level, "kafka {} {}: {}", name_.empty() ? "client" : name_, event.fac(),
                  event.str());
      break;
    }
    default:
      break;
  }
}

void KafkaStats::SetLocked(prometheus::Family<prometheus::Gauge>* family, const Labels& labels,
                           double v, std::vector<Series>* seen) {
  family->Add(labels).Set(v);
  seen->push_back({family, labels});
}

bool KafkaStats::HadLocked(const std::string& client,
                           const prometheus::Family<prometheus::Gauge>* family,
                           const Labels& labels) const {
  auto it = series_.find(client);
  if (it == series_.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(),
                     [&](const Series& s) { return s.family == family && s.labels == labels; });
}

absl::Status KafkaStats::Update(absl::string_view json, std::string* name) {
  nlohmann::json doc = nlohmann::json::parse(json.begin(), json.end(), nullptr,
                                             /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("name") || !doc["name"].is_string()) {
    return absl::InvalidArgumentError("not librdkafka statistics (no \"name\")");
  }
  *name = doc["name"].get<std::string>();
  const std::string& client = *name;
  std::vector<Series> seen;
  absl::MutexLock l(&mu_);
  if (doc.contains("msg_cnt")) {
    SetLocked(&queue_messages_, {{"client", client}}, Int(doc, "msg_cnt", 0), &seen);
    SetLocked(&queue_bytes_, {{"client", client}}, Int(doc, "msg_size", 0), &seen);
  }
  SetLocked(&replyq_, {{"client", client}}, Int(doc, "replyq", 0), &seen);
  if (auto brokers = doc.find("brokers"); brokers != doc.end() && brokers->is_object()) {
    for (const auto& [_, b] : brokers->items()) {
      const int64_t id = Int(b, "nodeid");
      if (id < 0) continue;  // bootstrap and internal pseudo-brokers
      const Labels labels = {{"client", client}, {"broker", absl::StrCat(id)}};
      SetLocked(&up_, labels, b.value("state", "") == "UP" ? 1 : 0, &seen);
      SetLocked(&waitresp_, labels, Int(b, "waitresp_cnt", 0), &seen);
      SetLocked(&outbuf_, labels, Int(b, "outbuf_cnt", 0), &seen);
      auto rtt = b.find("rtt");
      const bool measured = rtt != b.end() && Int(*rtt, "cnt", 0) > 0;
      for (const auto& [q, key] : {std::pair{"0.5", "p50"}, std::pair{"0.99", "p99"}}) {
        Labels ql = labels;
        ql["quantile"] = q;
        if (measured) {
          SetLocked(&rtt_, ql, Int(*rtt, key, 0) / 1e6, &seen);  // microseconds
        } else if (HadLocked(client, &rtt_, ql)) {
          seen.push_back({&rtt_, ql});  // no request this interval: keep the last round trip
        }
      }
    }
  }
  if (auto topics = doc.find("topics"); topics != doc.end() && topics->is_object()) {
    for (const auto& [topic, t] : topics->items()) {
      auto parts = t.find("partitions");
      if (parts == t.end() || !parts->is_object()) continue;
      for (const auto& [_, p] : parts->items()) {
        const int64_t partition = Int(p, "partition");
        // Only partitions this consumer reads: assigned and with a position.
        if (partition < 0 || p.value("fetch_state", "none") == "none" || Int(p, "app_offset") < 0) {
          continue;
        }
        int64_t end = Int(p, "ls_offset");
        if (end < 0) end = Int(p, "hi_offset");
        if (end < 0) continue;
        const Labels labels = {
            {"client", client}, {"topic", topic}, {"partition", absl::StrCat(partition)}};
        SetLocked(&lag_, labels, std::max<int64_t>(0, end - Int(p, "app_offset")), &seen);
        SetLocked(&fetchq_, labels, Int(p, "fetchq_cnt", 0), &seen);
      }
    }
  }
  // Remove what this client had last time and no longer has.
  std::vector<Series>& before = series_[client];
  for (const Series& s : before) {
    const bool kept = std::any_of(seen.begin(), seen.end(), [&](const Series& n) {
      return n.family == s.family && n.labels == s.labels;
    });
    if (!kept) s.family->Remove(&s.family->Add(s.labels));
  }
  before = std::move(seen);
  return absl::OkStatus();
}

void KafkaStats::Forget(const std::string& name) {
  absl::MutexLock l(&mu_);
  auto it = series_.find(name);
  if (it == series_.end()) return;
  for (const Series& s : it->second) s.family->Remove(&s.family->Add(s.labels));
  series_.erase(it);
}

}  // namespace cybersyn
