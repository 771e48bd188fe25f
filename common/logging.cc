#include "common/logging.h"

#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace cybersyn {

absl::Status InitLogging(const LoggingOptions& options) {
  const spdlog::level::level_enum level = spdlog::level::from_str(options.level);
  if (level == spdlog::level::off && options.level != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-level: unknown level \"", options.level,
                     "\" (use trace, debug, info, warn, error or off)"));
  }
  auto logger = spdlog::stderr_color_mt("cybersyn");
  spdlog::set_default_logger(logger);
  spdlog::set_level(level);
  if (options.json) {
    spdlog::set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","thread":%t,"msg":"%v"})");
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  return absl::OkStatus();
}

}  // namespace cybersyn
