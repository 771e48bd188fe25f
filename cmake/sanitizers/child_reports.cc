// Linked into the integration tests of the sanitizer builds (not into `cybersyn`): before main,
// points the sanitizers of every process this test starts at files
// CYBERSYN_SANITIZER_REPORTS_DIR/<test>.<pid> (log_path, appended to any *_OPTIONS already set),
// which the CTest fixture sanitizer_reports fails on (cmake/sanitizers/reports.sh). A test may
// kill a child and ignore how it ended, or delete its log; the report still fails the run. This
// process's own runtime has read its options already, so its reports stay on stderr.
#include <stdlib.h>
#include <sys/stat.h>

#include <string>

namespace {

const bool kChildReports = [] {
  ::mkdir(CYBERSYN_SANITIZER_REPORTS_DIR, 0755);  // normally made by the fixture
  const std::string path = std::string("log_path=") + CYBERSYN_SANITIZER_REPORTS_DIR + "/" +
                           program_invocation_short_name;
  for (const char* var : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS"}) {
    const char* old = ::getenv(var);
    const std::string value = old != nullptr && *old != '\0' ? old + (":" + path) : path;
    ::setenv(var, value.c_str(), 1);
  }
  return true;
}();

}  // namespace
