# Per-key token buckets on an injected clock (operator action rate limits).
cybersyn_cc_library(NAME rate_limiter SRCS rate_limiter.cc
  DEPS cybersyn::clock absl::status absl::strings absl::str_format absl::synchronization
       absl::flat_hash_map)
cybersyn_cc_test(NAME rate_limiter_test SRCS rate_limiter_test.cc DEPS cybersyn::rate_limiter)
