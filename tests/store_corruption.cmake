if(TARGET cybersyn_aggregator)
  # A scribbled-over state store is detected at start and rebuilt from the changelog. ~30 s.
  cybersyn_cc_test(NAME store_corruption_test SRCS store_corruption_test.cc
    DEPS cybersyn::aggregator cybersyn::config cybersyn::testing KAFKA TIMEOUT 300)
endif()
