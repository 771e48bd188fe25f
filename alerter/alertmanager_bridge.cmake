# Forwarding of signals to a Prometheus Alertmanager (v2 API), wired into the alerter role.
cybersyn_cc_library(NAME alertmanager_bridge SRCS alertmanager_bridge.cc
  DEPS cybersyn::alerter cybersyn::clock cybersyn::config cybersyn::proto cybersyn_httplib
       nlohmann_json::nlohmann_json prometheus-cpp::core spdlog::spdlog absl::status
       absl::statusor absl::strings absl::str_format absl::synchronization absl::time)
cybersyn_cc_test(NAME alertmanager_bridge_test SRCS alertmanager_bridge_test.cc
  DEPS cybersyn::alertmanager_bridge cybersyn_httplib nlohmann_json::nlohmann_json)
# AlerterService (alerter.cmake, included before this file) starts the bridge when configured.
target_link_libraries(cybersyn_alerts_service PUBLIC cybersyn::alertmanager_bridge)
