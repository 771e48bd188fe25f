#include "common/grpc_server.h"

#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/http_server.h"
#include "common/status.h"
#include "common/tls_config.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"

namespace cybersyn {

absl::StatusOr<GrpcServer> ServeGrpc(const std::string& address,
                                     const std::vector<grpc::Service*>& services,
                                     const GrpcServerOptions& options) {
  ASSIGN_OR_RETURN(auto host_port, SplitHostPort(address));
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> creds,
                   GrpcServerCredentials(options.tls));
  static std::once_flag plugins;
  std::call_once(plugins, [] {
    // Both are process-wide and take effect for builders created afterwards.
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    // Links health.proto's descriptors, which reflection serves for the built-in health service.
    (void)grpc::health::v1::HealthCheckResponse::descriptor();
  });
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (options.configure) options.configure(builder);
  GrpcServer out;
  builder.AddListeningPort(address, creds, &out.port);
  for (grpc::Service* s : services) builder.RegisterService(s);
  out.server = builder.BuildAndStart();
  if (out.server == nullptr || out.port == 0) {
    return ListenError(address, "gRPC");
  }
  out.address = JoinHostPort(host_port.first, out.port);
  return out;
}

}  // namespace cybersyn
