// AlerterService: the whole alerter role in one object, so `cybersyn alerter` and `cybersyn demo`
// run the same code: the exactly-once Alerter processor, the Alerts gRPC service (optional) and
// the /metrics + health HTTP endpoint (optional).
//
//   AlerterServiceOptions o;
//   o.config = config; o.client = {bootstrap, props};
//   o.listen_grpc = "127.0.0.1:0";  // "" = no gRPC
//   ASSIGN_OR_RETURN(auto svc, AlerterService::Start(std::move(o)));
//   ... svc->grpc_address() ...
//   svc->Stop();
//
// Thread-safety: Start/Stop from one thread; accessors from any after Start.
#ifndef CYBERSYN_ALERTER_ALERTER_SERVICE_H_
#define CYBERSYN_ALERTER_ALERTER_SERVICE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "alerter/alerter.h"
#include "alerter/alertmanager_bridge.h"
#include "alerter/alerts_service.h"
#include "common/http_server.h"

namespace cybersyn::alerter {

struct AlerterServiceOptions {
  std::shared_ptr<const Config> config;  // required
  KafkaClientOptions client;             // bootstrap (the embedded broker's, in the demo)
  std::string state_dir;                 // "" = config.alerter.state_dir
  std::string listen_grpc;               // "" = do not serve Alerts; port 0 = any
  std::string listen_metrics;            // "" = no HTTP endpoint; port 0 = any
  Clock* clock = Clock::Real();
  std::string instance_id = "0";
  TopicEnsurer ensure_topics;                      // empty: EnsureTopics on `client`
  std::shared_ptr<prometheus::Registry> registry;  // null: a registry of its own
  absl::Duration heartbeat = absl::Seconds(5);     // Watch heartbeats
  bool run_processor = true;                       // false: serve the Alerts API only
  bool attribution = true;  // false: no attribution (docs/attribution.md), for comparisons
  // More services on the same gRPC server (e.g. Query, when the Opsroom is served); not owned.
  std::vector<grpc::Service*> extra_grpc_services;
};

class AlerterService {
 public:
  static absl::StatusOr<std::unique_ptr<AlerterService>> Start(AlerterServiceOptions options);
  ~AlerterService();  // Stop()
  // Stops gRPC (cancelling watchers), the processor and HTTP. Idempotent.
  void Stop();

  std::string grpc_address() const { return grpc_address_; }        // "" when not serving
  std::string metrics_address() const { return metrics_address_; }  // "" when not serving
  Alerter* alerter() { return alerter_.get(); }                     // null without processor
  AlertsService* alerts() { return alerts_.get(); }                 // null without gRPC
  AlertmanagerBridge* alertmanager() { return bridge_.get(); }      // null unless configured
  // OK while healthy; the processor's fatal error otherwise.
  absl::Status status() const;
  // After a processor failure (e.g. its consumer fenced after a broker outage longer than the
  // session timeout, a known librdkafka behaviour with static membership): stops the processor
  // and starts a new one from the committed state, exactly as a process restart would (Kafka is
  // authoritative), while gRPC watchers and HTTP stay up. Same thread as Start/Stop.
  absl::Status RestartProcessor();

 private:
  AlerterService() = default;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<AlertmanagerBridge> bridge_;  // declared before alerter_: outlives it
  std::unique_ptr<Alerter> alerter_;
  AlerterOptions alerter_options_;  // for RestartProcessor
  std::unique_ptr<AlertsService> alerts_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<HttpServer> http_;
  std::string grpc_address_, metrics_address_;
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_ALERTER_SERVICE_H_
