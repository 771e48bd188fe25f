if(TARGET cybersyn_aggregator)
  # A scribbled-over state store is detected at start and rebuilt from the changelog. ~30 s
  # (~15 s under ASan, label fast: the CI's ASan+UBSan step runs it too).
  cybersyn_cc_test(NAME store_corruption_test SRCS store_corruption_test.cc
    DEPS cybersyn::aggregator cybersyn::config cybersyn::testing LABELS fast KAFKA TIMEOUT 300)
endif()
