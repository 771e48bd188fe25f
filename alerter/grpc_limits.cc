#include "alerter/grpc_limits.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"

namespace cybersyn::alerter {

GrpcLimits GrpcLimitsFrom(const ClientLimitsConfig& c) {
  GrpcLimits l;
  l.max_receive_message_bytes = static_cast<int>(c.max_request_bytes);  // <= 1 GiB (config)
  l.max_concurrent_streams_per_connection = c.max_streams_per_connection;
  l.max_watch_streams = c.max_watch_streams;
  l.max_watch_streams_per_operator = c.max_watch_streams_per_operator;
  l.actions = {c.actions_per_second, c.actions_burst};
  return l;
}

void ApplyGrpcLimits(const GrpcLimits& limits, grpc::ServerBuilder* builder) {
  builder->SetMaxReceiveMessageSize(limits.max_receive_message_bytes);
  builder->SetMaxSendMessageSize(limits.max_send_message_bytes);
  builder->AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                              limits.max_concurrent_streams_per_connection);
}

StreamLimiter::StreamLimiter(int max_total, int max_per_key)
    : max_total_(max_total), max_per_key_(max_per_key) {}

StreamLimiter::Lease::~Lease() { owner_->Release(key_); }

absl::StatusOr<std::unique_ptr<StreamLimiter::Lease>> StreamLimiter::Acquire(
    const std::string& key) {
  absl::MutexLock l(&mu_);
  if (total_ >= max_total_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many Watch streams on this server (limit ", max_total_, ")"));
  }
  int& mine = per_key_[key];
  if (mine >= max_per_key_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "operator ", key, " already has ", mine, " Watch streams open (limit ", max_per_key_, ")"));
  }
  ++mine;
  ++total_;
  return std::unique_ptr<Lease>(new Lease(this, key));
}

void StreamLimiter::Release(const std::string& key) {
  absl::MutexLock l(&mu_);
  --total_;
  auto it = per_key_.find(key);
  if (it != per_key_.end() && --it->second <= 0) per_key_.erase(it);
}

int StreamLimiter::active() const {
  absl::MutexLock l(&mu_);
  return total_;
}

}  // namespace cybersyn::alerter
