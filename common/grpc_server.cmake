# Every gRPC server: health service, reflection, no SO_REUSEPORT (common/grpc_server.h).
cybersyn_cc_library(NAME grpc_server SRCS grpc_server.cc
  DEPS cybersyn::tls_config cybersyn::observability cybersyn::status cybersyn::proto gRPC::grpc++
       gRPC::grpc++_reflection absl::status absl::statusor absl::strings)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::grpc_server)
cybersyn_cc_test(NAME grpc_server_test SRCS grpc_server_test.cc DEPS cybersyn::grpc_server)
