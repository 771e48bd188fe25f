# `cybersyn alerter --opsroom-listen` on the real broker: the Opsroom and Query outside the demo.
# ~15 s.
cybersyn_cc_test(NAME alerter_opsroom_test SRCS alerter_opsroom_test.cc
  DEPS cybersyn::kafka cybersyn::testing cybersyn_httplib nlohmann_json::nlohmann_json
       absl::strings absl::time
  KAFKA TIMEOUT 180)
if(CYBERSYN_BUILD_TESTS)
  add_dependencies(alerter_opsroom_test cybersyn)
endif()
