// Logging: spdlog configured once per process. Lines are "time level [component] message
// key=value ...", readable by people and parseable by log shippers; `json` switches to one JSON
// object per line. Never log tokens or record payloads.
#ifndef CYBERSYN_COMMON_LOGGING_H_
#define CYBERSYN_COMMON_LOGGING_H_

#include <string>

#include "absl/status/status.h"

namespace cybersyn {

struct LoggingOptions {
  std::string level = "info";  // trace | debug | info | warn | error | off
  bool json = false;
};

// INVALID_ARGUMENT for an unknown level, naming the valid ones.
absl::Status InitLogging(const LoggingOptions& options);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_LOGGING_H_
