#include "common/kafka_error.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace cybersyn {

absl::Status KafkaStatus(RdKafka::ErrorCode code, absl::string_view what) {
  if (code == RdKafka::ERR_NO_ERROR) return absl::OkStatus();
  std::string msg =
      absl::StrCat(what, ": ", RdKafka::err2str(code), " (", static_cast<int>(code), ")");
  switch (code) {
    case RdKafka::ERR__TIMED_OUT:
    case RdKafka::ERR_REQUEST_TIMED_OUT:
    case RdKafka::ERR__TIMED_OUT_QUEUE:
      return absl::DeadlineExceededError(msg);
    case RdKafka::ERR__QUEUE_FULL:
      return absl::ResourceExhaustedError(msg);
    case RdKafka::ERR__TRANSPORT:
    case RdKafka::ERR__ALL_BROKERS_DOWN:
    case RdKafka::ERR__RESOLVE:
    case RdKafka::ERR_BROKER_NOT_AVAILABLE:
    case RdKafka::ERR_LEADER_NOT_AVAILABLE:
    case RdKafka::ERR_NOT_LEADER_FOR_PARTITION:
    case RdKafka::ERR_COORDINATOR_NOT_AVAILABLE:
    case RdKafka::ERR_NOT_COORDINATOR:
    case RdKafka::ERR_UNSTABLE_OFFSET_COMMIT:  // a transaction's offsets still pending
      return absl::UnavailableError(msg);
    case RdKafka::ERR_MSG_SIZE_TOO_LARGE:
    case RdKafka::ERR__MSG_TIMED_OUT:
      return code == RdKafka::ERR__MSG_TIMED_OUT ? absl::DeadlineExceededError(msg)
                                                 : absl::InvalidArgumentError(msg);
    case RdKafka::ERR__INVALID_ARG:
    case RdKafka::ERR_INVALID_MSG:
    case RdKafka::ERR_INVALID_CONFIG:
    case RdKafka::ERR__UNKNOWN_TOPIC:
    case RdKafka::ERR_UNKNOWN_TOPIC_OR_PART:
      return absl::InvalidArgumentError(msg);
    case RdKafka::ERR__FENCED:
    case RdKafka::ERR_PRODUCER_FENCED:
    case RdKafka::ERR_INVALID_PRODUCER_EPOCH:
    case RdKafka::ERR__FATAL:
      return absl::FailedPreconditionError(msg);
    case RdKafka::ERR__STATE:
      return absl::FailedPreconditionError(msg);
    case RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED:
    case RdKafka::ERR_GROUP_AUTHORIZATION_FAILED:
    case RdKafka::ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RdKafka::ERR_CLUSTER_AUTHORIZATION_FAILED:
      return absl::PermissionDeniedError(msg);
    case RdKafka::ERR__AUTHENTICATION:
    case RdKafka::ERR_SASL_AUTHENTICATION_FAILED:
      return absl::UnauthenticatedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::Status KafkaStatus(RdKafka::Error* error, absl::string_view what) {
  if (error == nullptr) return absl::OkStatus();
  std::unique_ptr<RdKafka::Error> owned(error);
  absl::Status base = KafkaStatus(owned->code(), what);
  std::string msg = absl::StrCat(what, ": ", owned->str());
  if (owned->txn_requires_abort()) return absl::AbortedError(msg);
  if (owned->is_fatal()) return absl::FailedPreconditionError(absl::StrCat(msg, " (fatal)"));
  if (owned->is_retriable()) return absl::UnavailableError(absl::StrCat(msg, " (retriable)"));
  return absl::Status(base.code(), msg);
}

absl::Status BuildKafkaConf(const KafkaClientOptions& options, KafkaClientKind kind,
                            const std::map<std::string, std::string>& code, RdKafka::Conf* conf) {
  const KafkaSettings settings = EffectiveKafkaSettings(options, kind, code);
  for (const std::string& r : settings.replaced_defaults) {
    spdlog::info("kafka {}: {}", KafkaClientKindName(kind), r);
  }
  std::string err;
  for (const auto& [k, v] : settings.values) {
    if (conf->set(k, v, err) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka property ", k, "=", v, ": ", err));
    }
  }
  return absl::OkStatus();
}

}  // namespace cybersyn
