# When a series counts as silent (the alerter's no-data signals).
cybersyn_cc_library(NAME no_data SRCS no_data.cc DEPS cybersyn::config absl::time)
cybersyn_cc_test(NAME no_data_test SRCS no_data_test.cc DEPS cybersyn::no_data)
# The alerter (alerter.cmake, included before this file) uses it.
target_link_libraries(cybersyn_alerter PUBLIC cybersyn::no_data)
