# TLS end to end over real sockets (label kafka: the alerter needs the real broker): gRPC with TLS
# and mutual TLS (Alerts, and the gateway's Ingest), HTTPS /metrics, and the CLI's
# --ca/--cert/--key. Certificates are generated at test time with the openssl CLI.
# Runs ${CYBERSYN_BINARY_DIR}/cli/cybersyn (a dependency of the test target).
cybersyn_cc_test(NAME tls_e2e_test SRCS tls_e2e_test.cc
  DEPS cybersyn::alerts_service cybersyn::ingest cybersyn::tls_config cybersyn::testing cybersyn_httplib
  KAFKA TIMEOUT 180)
if(TARGET tls_e2e_test)
  add_dependencies(tls_e2e_test cybersyn)  # runs the real binary
endif()
