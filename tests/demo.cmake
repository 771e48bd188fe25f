# `cybersyn demo` and the operator CLI, end to end (embedded broker; no Java).
cybersyn_cc_test(NAME demo_e2e_test SRCS demo_e2e_test.cc
  DEPS cybersyn_httplib nlohmann_json::nlohmann_json absl::strings absl::time
  LABELS e2e embedded TIMEOUT 300)
if(CYBERSYN_BUILD_TESTS)
  add_dependencies(demo_e2e_test cybersyn)
endif()
