// ServeGrpc: how every gRPC server of the system is built, so each one has what an SRE expects:
//   - the standard health service (grpc.health.v1.Health, "" = SERVING while the server runs),
//     which Kubernetes gRPC probes and grpc-health-probe ask;
//   - server reflection (grpc.reflection.v1alpha), so `grpcurl list` and `grpcurl describe`
//     work without the .proto files;
//   - no SO_REUSEPORT: a second process on a port in use fails with "address in use" instead of
//     silently taking half the connections (gRPC turns SO_REUSEPORT on by default).
// Thread-safety: ServeGrpc may be called from any thread; the first call turns on the health and
// reflection plugins for the whole process.
#ifndef CYBERSYN_COMMON_GRPC_SERVER_H_
#define CYBERSYN_COMMON_GRPC_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace cybersyn {

struct GrpcServerOptions {
  std::optional<TlsConfig> tls;  // listen.tls; plaintext when unset
  // Extra builder settings (message and stream caps), applied before the services are added.
  std::function<void(grpc::ServerBuilder&)> configure;
};

struct GrpcServer {
  std::unique_ptr<grpc::Server> server;
  std::string address;  // the bound "host:port"
  int port = 0;
};

// Builds and starts a server on `address` ("host:port", port 0 = any free port) with `services`
// (not owned; they must outlive the server). UNAVAILABLE names the address and why it cannot be
// bound ("address in use"); TLS problems name the files.
absl::StatusOr<GrpcServer> ServeGrpc(const std::string& address,
                                     const std::vector<grpc::Service*>& services,
                                     const GrpcServerOptions& options = {});

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_GRPC_SERVER_H_
