# The Alertmanager bridge against a real Alertmanager (Debian prometheus-alertmanager, the
# `prometheus` extra of deploy/setup.sh) fed by `cybersyn demo --alertmanager`. ~40 s.
cybersyn_cc_test(NAME alertmanager_e2e_test SRCS alertmanager_e2e_test.cc
  DEPS cybersyn_httplib nlohmann_json::nlohmann_json absl::strings absl::time
  LABELS alertmanager TIMEOUT 180)
if(CYBERSYN_BUILD_TESTS)
  add_dependencies(alertmanager_e2e_test cybersyn)
endif()
