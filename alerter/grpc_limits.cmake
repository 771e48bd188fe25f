# Limits a gRPC front end puts on its clients (message sizes, Watch streams, action rates).
cybersyn_cc_library(NAME grpc_limits SRCS grpc_limits.cc
  DEPS cybersyn::rate_limiter cybersyn::config gRPC::grpc++ absl::status absl::statusor absl::strings
       absl::synchronization absl::flat_hash_map)
cybersyn_cc_test(NAME grpc_limits_test SRCS grpc_limits_test.cc DEPS cybersyn::grpc_limits)
