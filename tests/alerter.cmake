# The alerter against the real broker: gRPC end to end and kill -9 of the real binary
# (${CYBERSYN_BINARY_DIR}/cli/cybersyn: build the `cybersyn` target too).
cybersyn_cc_test(NAME alerter_e2e_test SRCS alerter_e2e_test.cc
  DEPS cybersyn::alerts_service cybersyn::kafka cybersyn::store cybersyn::testing KAFKA TIMEOUT 300)
# Attribution across two alerter instances (in one process) on the real broker.
cybersyn_cc_test(NAME attribution_e2e_test SRCS attribution_e2e_test.cc
  DEPS cybersyn::alerter cybersyn::kafka cybersyn::testing KAFKA TIMEOUT 180)
