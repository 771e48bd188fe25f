# Full disk: a 24 MiB tmpfs (root only; skipped with the reason otherwise): the state store and
# the real gateway's disk buffer (real broker of the fixture; build the `cybersyn` target too).
# ~30 s.
cybersyn_cc_test(NAME full_disk_test SRCS full_disk_test.cc
  DEPS cybersyn::store cybersyn::kafka cybersyn::config cybersyn::proto cybersyn::testing
  KAFKA SERIAL TIMEOUT 300)
