// Access to the real Apache Kafka broker that the CTest fixture `kafka_broker` started
// (deploy/local/kafka.sh). Tests declared KAFKA in CMake get CYBERSYN_TEST_KAFKA_DIR.
#ifndef CYBERSYN_TESTS_TESTING_REAL_KAFKA_H_
#define CYBERSYN_TESTS_TESTING_REAL_KAFKA_H_

#include <string>

#include "absl/status/statusor.h"

namespace cybersyn::testing {

struct RealKafka {
  std::string bootstrap;  // "127.0.0.1:port"
  std::string version;    // e.g. "4.1.1"
  std::string dir;        // broker state dir (data, server.log)
};

// FAILED_PRECONDITION with instructions when the fixture did not run.
absl::StatusOr<RealKafka> GetRealKafka();

// Runs deploy/local/kafka.sh ACTION on the fixture's broker (stop, start, kill, restart):
// for outage and fault tests. Returns the script's exit status as a Status.
absl::Status ControlRealKafka(const std::string& action);

// A topic or group name unique to this test run.
std::string UniqueName(const std::string& base);

}  // namespace cybersyn::testing

#endif  // CYBERSYN_TESTS_TESTING_REAL_KAFKA_H_
