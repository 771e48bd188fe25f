# Shared test support (only linked into tests).
if(CYBERSYN_BUILD_TESTS)
  cybersyn_cc_library(NAME testing SRCS testing/real_kafka.cc
    DEPS absl::status absl::statusor absl::strings absl::time)
  target_compile_definitions(cybersyn_testing PRIVATE CYBERSYN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
