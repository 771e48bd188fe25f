#include "common/kafka_properties.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace cybersyn {

const char* KafkaClientKindName(KafkaClientKind kind) {
  switch (kind) {
    case KafkaClientKind::kProducer:
      return "producer";
    case KafkaClientKind::kConsumer:
      return "consumer";
    case KafkaClientKind::kAdmin:
      return "admin";
  }
  return "?";
}

const std::map<std::string, std::string>& KafkaClientOptions::For(KafkaClientKind kind) const {
  switch (kind) {
    case KafkaClientKind::kProducer:
      return producer;
    case KafkaClientKind::kConsumer:
      return consumer;
    case KafkaClientKind::kAdmin:
      break;
  }
  return admin;
}

KafkaClientOptions KafkaClientFor(const KafkaConfig& kafka, std::string bootstrap) {
  return KafkaClientOptions{std::move(bootstrap), kafka.properties, kafka.producer, kafka.consumer,
                            kafka.admin};
}

std::string CanonicalKafkaKey(std::string_view key) {
  // librdkafka's CONFIGURATION.md, "Alias for".
  static const auto* const kAliases = new std::map<std::string_view, std::string_view>{
      {"metadata.broker.list", "bootstrap.servers"},
      {"queue.buffering.max.ms", "linger.ms"},
      {"request.required.acks", "acks"},
      {"compression.codec", "compression.type"},
      {"delivery.timeout.ms", "message.timeout.ms"},
      {"max.in.flight", "max.in.flight.requests.per.connection"},
      {"message.send.max.retries", "retries"},
      {"auto.commit.enable", "enable.auto.commit"},
  };
  auto it = kAliases->find(key);
  return std::string(it == kAliases->end() ? key : it->second);
}

const char* PinnedKeyReason(std::string_view key) {
  static const auto* const kPinned = new std::map<std::string, const char*>{
      {"bootstrap.servers", "set kafka.bootstrap instead"},
      {"enable.idempotence",
       "producers are idempotent (no duplicates or reordering on retries); always on"},
      {"acks", "records are acknowledged by all in-sync replicas (acks=all); always on"},
      {"transactional.id",
       "each aggregator/alerter derives its transactional id from --instance-id (zombie fencing)"},
      {"isolation.level", "consumers read only committed transactions (read_committed)"},
      {"enable.gapless.guarantee",
       "the gateway needs per-enterprise order across failed batches; always on"},
      {"enable.auto.commit",
       "offsets are committed in transactions or after processing, never automatically"},
      {"enable.auto.offset.store", "offsets are stored by the code after processing"},
      {"auto.offset.reset", "a new group reads from the earliest offset, so nothing is skipped"},
      {"enable.partition.eof", "state restore relies on the code's own setting"},
      {"group.id", "consumer groups are named from kafka.topic_prefix and the role"},
      {"group.instance.id", "static membership uses --instance-id"},
      {"partition.assignment.strategy",
       "the roles rebalance cooperatively and co-partition their inputs themselves (see "
       "docs/stream.md)"},
      {"group.protocol", "the roles rely on the classic group protocol's rebalance callbacks"},
  };
  auto it = kPinned->find(CanonicalKafkaKey(key));
  return it == kPinned->end() ? nullptr : it->second;
}

KafkaSettings EffectiveKafkaSettings(const KafkaClientOptions& options, KafkaClientKind kind,
                                     const std::map<std::string, std::string>& code) {
  KafkaSettings out;
  std::map<std::string, std::string> pinned, defaults;
  for (const auto& [k, v] : code) {
    const std::string key = CanonicalKafkaKey(k);
    (PinnedKeyReason(key) != nullptr ? pinned : defaults)[key] = v;
  }
  out.values = defaults;
  auto layer = [&](const std::map<std::string, std::string>& props, const std::string& section) {
    for (const auto& [k, v] : props) {
      const std::string key = CanonicalKafkaKey(k);
      if (pinned.count(key))
        continue;  // the config loader refuses these; programmatic callers
                   // get the code's value too
      auto d = defaults.find(key);
      if (d != defaults.end() && d->second != v) {
        std::erase_if(out.replaced_defaults,
                      [&](const std::string& s) { return s.starts_with(absl::StrCat(key, "=")); });
        out.replaced_defaults.push_back(
            absl::StrCat(key, "=", v, " (", section, ") instead of the built-in ", d->second));
      }
      out.values[key] = v;
    }
  };
  layer(options.properties, "kafka.properties");
  layer(options.For(kind), absl::StrCat("kafka.", KafkaClientKindName(kind)));
  for (auto& [k, v] : pinned) out.values[k] = std::move(v);
  if (!options.bootstrap.empty()) out.values["bootstrap.servers"] = options.bootstrap;
  return out;
}

}  // namespace cybersyn
