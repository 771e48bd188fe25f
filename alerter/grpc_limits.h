// GrpcLimits: what one gRPC front end accepts from clients, so a hostile or broken client gets a
// clear status instead of the server's memory, threads or Kafka consumers.
//   - message sizes: ApplyGrpcLimits sets the server's receive/send caps (an oversized request
//     fails with RESOURCE_EXHAUSTED before any handler runs) and the per-connection HTTP/2
//     stream cap;
//   - Watch streams: every stream holds a Kafka consumer, so StreamLimiter caps the streams of
//     one operator and of the whole process (RESOURCE_EXHAUSTED naming which limit);
//   - actions: Acknowledge/Resolve/Silence per operator go through a RateLimiter
//     (common/rate_limiter.h) built from `actions`.
// Thread-safety: StreamLimiter is safe for concurrent use; a Lease belongs to one thread.
#ifndef CYBERSYN_ALERTER_GRPC_LIMITS_H_
#define CYBERSYN_ALERTER_GRPC_LIMITS_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/config.h"
#include "common/rate_limiter.h"

namespace grpc {
class ServerBuilder;
}

namespace cybersyn::alerter {

struct GrpcLimits {  // defaults: those of `listen.limits` (ClientLimitsConfig)
  int max_receive_message_bytes = static_cast<int>(ClientLimitsConfig{}.max_request_bytes);
  int max_send_message_bytes = 16 << 20;  // a List of many signals
  int max_concurrent_streams_per_connection = ClientLimitsConfig{}.max_streams_per_connection;
  int max_watch_streams = ClientLimitsConfig{}.max_watch_streams;
  int max_watch_streams_per_operator = ClientLimitsConfig{}.max_watch_streams_per_operator;
  RateLimit actions{ClientLimitsConfig{}.actions_per_second,
                    ClientLimitsConfig{}.actions_burst};  // per operator
};

// The limits configured under `listen.limits` (defaults as above).
GrpcLimits GrpcLimitsFrom(const ClientLimitsConfig& config);

// Sets message-size and stream caps on `builder` (before BuildAndStart).
void ApplyGrpcLimits(const GrpcLimits& limits, grpc::ServerBuilder* builder);

class StreamLimiter {
 public:
  StreamLimiter(int max_total, int max_per_key);

  // Holds one stream slot until destroyed.
  class Lease {
   public:
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

   private:
    friend class StreamLimiter;
    Lease(StreamLimiter* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    StreamLimiter* owner_;
    std::string key_;
  };

  // A slot for `key` (an operator name), or RESOURCE_EXHAUSTED naming the limit hit.
  absl::StatusOr<std::unique_ptr<Lease>> Acquire(const std::string& key);
  int active() const;

 private:
  void Release(const std::string& key);
  const int max_total_, max_per_key_;
  mutable absl::Mutex mu_;
  int total_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int> per_key_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_GRPC_LIMITS_H_
