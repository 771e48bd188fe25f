# Full disk: a 24 MiB tmpfs (root only; skipped with the reason otherwise): the state store and
# the real gateway's disk buffer (real broker of the fixture; runs the `cybersyn` binary).
# ~30 s.
cybersyn_cc_test(NAME full_disk_test SRCS full_disk_test.cc
  DEPS cybersyn::store cybersyn::kafka cybersyn::config cybersyn::proto cybersyn::testing
  KAFKA SERIAL TIMEOUT 300)
if(TARGET full_disk_test)
  add_dependencies(full_disk_test cybersyn)  # runs the real binary
endif()
