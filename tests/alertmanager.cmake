# The Alertmanager bridge against a real Alertmanager (Debian prometheus-alertmanager, the
# `prometheus` extra of deploy/setup.sh) fed by `cybersyn demo --alertmanager` (~40 s), and by
# `cybersyn alerter` on the real broker for one attributed fault (~15 s).
cybersyn_cc_test(NAME alertmanager_e2e_test SRCS alertmanager_e2e_test.cc
  DEPS cybersyn::kafka cybersyn::testing cybersyn_httplib nlohmann_json::nlohmann_json
       absl::strings absl::time
  LABELS alertmanager KAFKA TIMEOUT 180)
if(CYBERSYN_BUILD_TESTS)
  add_dependencies(alertmanager_e2e_test cybersyn)
endif()
