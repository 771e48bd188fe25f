#include "tests/testing/real_kafka.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cybersyn::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

}  // namespace

absl::StatusOr<RealKafka> GetRealKafka() {
  const char* dir = std::getenv("CYBERSYN_TEST_KAFKA_DIR");
  if (dir == nullptr || *dir == '\0') {
    return absl::FailedPreconditionError(
        "CYBERSYN_TEST_KAFKA_DIR is not set: run this test through ctest (fixture kafka_broker "
        "starts deploy/local/kafka.sh), or start a broker with `deploy/local/kafka.sh start "
        "--dir D` and export CYBERSYN_TEST_KAFKA_DIR=D");
  }
  RealKafka k;
  k.dir = dir;
  k.bootstrap = ReadFile(k.dir + "/bootstrap");
  k.version = ReadFile(k.dir + "/version");
  if (k.bootstrap.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no bootstrap file in ", k.dir, ": did kafka_broker_start fail?"));
  }
  return k;
}

absl::Status ControlRealKafka(const std::string& action) {
  const char* dir = std::getenv("CYBERSYN_TEST_KAFKA_DIR");
  if (dir == nullptr) return absl::FailedPreconditionError("CYBERSYN_TEST_KAFKA_DIR is not set");
  const std::string cmd = absl::StrCat(CYBERSYN_SOURCE_DIR, "/deploy/local/kafka.sh ", action,
                                       " --dir ", dir, " >/dev/null");
  const int rc = std::system(cmd.c_str());
  if (rc != 0) return absl::InternalError(absl::StrCat("`", cmd, "` exited with ", rc));
  return absl::OkStatus();
}

std::string UniqueName(const std::string& base) {
  return absl::StrCat(base, "-", ::getpid(), "-", absl::ToUnixMicros(absl::Now()));
}

}  // namespace cybersyn::testing
