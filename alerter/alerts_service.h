// AlertsService: the gRPC Alerts API (Watch, List, Acknowledge, Resolve, Silence). Any process
// may serve it: it needs only Kafka, never the alerter's state.
//
// - Watch(subtree, from_cursor) streams <prefix>.signals (read_committed) filtered to signals
//   whose origin node is in the subtree. Each event carries a cursor: the next offset of every
//   partition, "v1:<p>=<offset>,...". Resuming from the last cursor received misses nothing and
//   repeats nothing. Empty cursor = from now. Heartbeats (no event, current cursor) every
//   `heartbeat`. RAISED/UPDATED events of a signal silenced at that moment are muted (skipped);
//   every other transition is delivered.
// - List answers from a materialised view of <prefix>.signals (a background reader from the
//   beginning): the latest state of every signal not yet resolved.
// - Acknowledge/Resolve/Silence check the token and the scope (against the signal's origin node
//   in the view), write a Command to <prefix>.commands keyed by the origin node and return its
//   id; the owning alerter instance applies it (and checks the scope again).
// Every call: "authorization: Bearer <token>" (see authz.h). Tokens are never logged.
//
// Thread-safety: gRPC calls run concurrently; Start/Stop from one thread.
#ifndef CYBERSYN_ALERTER_ALERTS_SERVICE_H_
#define CYBERSYN_ALERTER_ALERTS_SERVICE_H_

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "alerter/authz.h"
#include "alerter/grpc_limits.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/kafka_admin.h"
#include "common/kafka_error.h"
#include "cybersyn/v1/command.pb.h"
#include "cybersyn/v1/services.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace cybersyn {
class KafkaProducer;
}

namespace cybersyn::alerter {

struct AlertsServiceOptions {
  std::shared_ptr<const Config> config;  // required
  KafkaClientOptions client;
  Clock* clock = Clock::Real();
  absl::Duration heartbeat = absl::Seconds(5);
  // How long an action waits for a just-raised signal to reach the List view.
  absl::Duration view_wait = absl::Seconds(5);
  // Watch streams per operator and in all, action rate per operator (grpc_limits.h).
  GrpcLimits limits;
};

// Watch cursors: the next offset to read of every partition of <prefix>.signals.
std::string EncodeCursor(const std::map<int32_t, int64_t>& next_offsets);
absl::StatusOr<std::map<int32_t, int64_t>> DecodeCursor(absl::string_view cursor);

class AlertsService final : public v1::Alerts::Service {
 public:
  explicit AlertsService(AlertsServiceOptions options);
  ~AlertsService() override;

  // Creates the command producer and starts the List view. Topics must exist.
  absl::Status Start();
  void Stop();

  grpc::Status Watch(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                     grpc::ServerWriter<v1::WatchEvent>* writer) override;
  grpc::Status List(grpc::ServerContext* ctx, const v1::ListRequest* req,
                    v1::ListResponse* resp) override;
  grpc::Status Acknowledge(grpc::ServerContext* ctx, const v1::ActRequest* req,
                           v1::ActResponse* resp) override;
  grpc::Status Resolve(grpc::ServerContext* ctx, const v1::ActRequest* req,
                       v1::ActResponse* resp) override;
  grpc::Status Silence(grpc::ServerContext* ctx, const v1::SilenceRequest* req,
                       v1::ActResponse* resp) override;

  // The action behind Acknowledge/Resolve/Silence for callers that authenticated `op` themselves
  // (the Opsroom): looks the signal up in the view (waiting up to view_wait for a just-raised
  // one), checks `op`'s scope against its origin and writes the Command. Returns the command id;
  // NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED (over the operator's action rate) or the
  // Kafka error otherwise.
  absl::StatusOr<std::string> Issue(const OperatorConfig& op, v1::CommandKind kind,
                                    const std::string& signal_id, const std::string& reason,
                                    int64_t silence_for_ms);

 private:
  absl::StatusOr<const OperatorConfig*> Caller(grpc::ServerContext* ctx) const;
  grpc::Status Act(grpc::ServerContext* ctx, v1::CommandKind kind, const std::string& signal_id,
                   const std::string& reason, int64_t silence_for_ms, v1::ActResponse* resp);
  void ViewLoop();

  AlertsServiceOptions opts_;
  TopicNames names_;
  Authorizer authz_;
  StreamLimiter watch_streams_;
  RateLimiter actions_;
  int partitions_ = 0;
  std::unique_ptr<KafkaProducer> producer_;
  std::thread view_thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> seq_{0};
  uint64_t nonce_ = 0;

  mutable absl::Mutex mu_;
  std::map<std::string, v1::Signal> open_ ABSL_GUARDED_BY(mu_);  // the List view
};

// Builds and starts a gRPC server on `address` ("host:port", port 0 = any) with `services`
// (not owned; they outlive the server), with `limits`' message and stream caps. TLS when `tls`
// is set: server cert/key, and with client_ca, clients must present a certificate signed by it
// (mTLS). `*bound_port` gets the port.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartGrpcServer(
    const std::string& address, const std::optional<TlsConfig>& tls,
    const std::vector<grpc::Service*>& services, int* bound_port,
    const GrpcLimits& limits = GrpcLimits{});

// Status conversion at the gRPC boundary (the codes match).
grpc::Status ToGrpc(const absl::Status& s);

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_ALERTS_SERVICE_H_
