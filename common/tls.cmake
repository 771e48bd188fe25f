# TLS credentials for gRPC servers and clients from PEM files (listen.tls, --ca/--cert/--key).
cybersyn_cc_library(NAME tls_config SRCS tls_config.cc
  DEPS cybersyn::config gRPC::grpc++ absl::status absl::statusor absl::strings)
set_property(GLOBAL APPEND PROPERTY CYBERSYN_CLI_DEPS cybersyn::tls_config)
cybersyn_cc_test(NAME tls_config_test SRCS tls_config_test.cc DEPS cybersyn::tls_config)
