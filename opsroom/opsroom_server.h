// OpsroomServer: what a process needs to serve operators besides the Alerts API: a QueryStore
// (the read side), the Query gRPC service over it, and the Opsroom web page + API on its own
// HTTP address (which also answers /metrics, /healthz and /readyz). `cybersyn alerter
// --opsroom-listen ADDR` uses it, so production serves the Opsroom and Query without the demo.
//
//   ASSIGN_OR_RETURN(auto ops, OpsroomServer::Create({config, client, registry}));
//   ... register ops->query_service() on the gRPC server, which also serves Alerts ...
//   ASSIGN_OR_RETURN(std::string addr, ops->Serve("0.0.0.0:8080", alerts_service));
//
// Thread-safety: Create/Serve/Stop from one thread; the services run on their servers' threads.
#ifndef CYBERSYN_OPSROOM_OPSROOM_SERVER_H_
#define CYBERSYN_OPSROOM_OPSROOM_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "alerter/alerts_service.h"
#include "common/config.h"
#include "common/http_server.h"
#include "opsroom/system_backend.h"
#include "prometheus/registry.h"
#include "query/query_service.h"
#include "query/query_store.h"

namespace cybersyn::opsroom {

struct OpsroomServerOptions {
  std::shared_ptr<const Config> config;            // required
  KafkaClientOptions client;                       // where <prefix>.aggregates/.signals live
  std::shared_ptr<prometheus::Registry> registry;  // served on /metrics; null: a new one
};

class OpsroomServer {
 public:
  // Starts the QueryStore (tailing aggregates and signals from their beginning).
  static absl::StatusOr<std::unique_ptr<OpsroomServer>> Create(OpsroomServerOptions options);
  ~OpsroomServer();  // Stop()

  // The Query gRPC service; register it on a gRPC server before that server starts.
  grpc::Service* query_service() { return query_.get(); }
  query::QueryStore* store() { return store_.get(); }

  // Serves the Opsroom on `address` (port 0 = any); commands go through `alerts` (not owned,
  // must outlive this). Returns the bound host:port. REQUIRES: called once.
  absl::StatusOr<std::string> Serve(const std::string& address, alerter::AlertsService* alerts);
  // Stops HTTP, then the QueryStore. Idempotent.
  void Stop();

 private:
  explicit OpsroomServer(OpsroomServerOptions options) : opts_(std::move(options)) {}
  OpsroomServerOptions opts_;
  std::unique_ptr<query::QueryStore> store_;
  std::unique_ptr<query::QueryServiceImpl> query_;
  std::unique_ptr<SystemBackend> backend_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace cybersyn::opsroom

#endif  // CYBERSYN_OPSROOM_OPSROOM_SERVER_H_
