// Kafka client properties: what each librdkafka client of a role gets, from the config's
// `kafka.properties` (every client) and `kafka.producer` / `kafka.consumer` / `kafka.admin` (one
// kind of client, over `kafka.properties`), layered with what the code sets:
//
//   the code's tuning defaults (linger.ms, compression.type, session.timeout.ms, ...)
//     < kafka.properties < kafka.<kind>           the operator's settings are honoured
//     < the code's pinned keys                    correctness depends on them
//
// Pinned keys (PinnedKeyReason) are refused by the config loader in every section, so
// `cybersyn config check` and a role's start-up name them instead of dropping them silently:
// idempotence, acks, transactions, read_committed, gapless delivery, manual offset commits, group
// membership and assignment, the bootstrap list (kafka.bootstrap). librdkafka's aliases
// (queue.buffering.max.ms for linger.ms, request.required.acks for acks, ...) count as the
// property they stand for.
// Thread-safety: pure functions over values.
#ifndef CYBERSYN_COMMON_KAFKA_PROPERTIES_H_
#define CYBERSYN_COMMON_KAFKA_PROPERTIES_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"

namespace cybersyn {

class KafkaStats;  // common/kafka_stats.h

enum class KafkaClientKind { kProducer, kConsumer, kAdmin };
const char* KafkaClientKindName(KafkaClientKind kind);  // "producer", ...

// Client settings shared by producers, consumers and the admin client: the bootstrap list, the
// properties every client gets (security.protocol, sasl.*, ssl.*, ...) and each kind's own.
struct KafkaClientOptions {
  std::string bootstrap;
  std::map<std::string, std::string> properties;  // kafka.properties
  std::map<std::string, std::string> producer;    // kafka.producer
  std::map<std::string, std::string> consumer;    // kafka.consumer
  std::map<std::string, std::string> admin;       // kafka.admin
  // When set, producers and consumers export librdkafka's statistics through it (every
  // KafkaStats::kDefaultIntervalMs unless statistics.interval.ms is configured).
  std::shared_ptr<KafkaStats> stats;

  const std::map<std::string, std::string>& For(KafkaClientKind kind) const;
};

// The config's kafka sections, connecting to `bootstrap` (the config's kafka.bootstrap, a --brokers
// override or an embedded broker's address).
KafkaClientOptions KafkaClientFor(const KafkaConfig& kafka, std::string bootstrap);

// The name librdkafka documents for `key` (aliases resolved: queue.buffering.max.ms -> linger.ms).
std::string CanonicalKafkaKey(std::string_view key);

// Why the code owns `key` (any alias), or nullptr for a key the operator may set.
const char* PinnedKeyReason(std::string_view key);

struct KafkaSettings {
  std::map<std::string, std::string> values;  // what the client gets (bootstrap.servers included)
  // "linger.ms=10 (kafka.producer) instead of the built-in 20": configured values that replaced
  // the code's defaults, for the start-up log.
  std::vector<std::string> replaced_defaults;
};

// The properties a client of `kind` gets. `code` is what the code asks for: keys with a
// PinnedKeyReason win over the options, the others are defaults that the options override.
KafkaSettings EffectiveKafkaSettings(const KafkaClientOptions& options, KafkaClientKind kind,
                                     const std::map<std::string, std::string>& code);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_KAFKA_PROPERTIES_H_
