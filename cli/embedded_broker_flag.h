// The --embedded-broker flag of the standalone roles (gateway, aggregator, alerter). A config
// that says kafka.bootstrap: embedded (as the example configs used to) must not make a role
// start a broker inside itself silently: it would confirm records that are gone when the
// process ends. The roles refuse such a config unless --brokers or --embedded-broker is given;
// `cybersyn demo` keeps its embedded broker as the default.
#ifndef CYBERSYN_CLI_EMBEDDED_BROKER_FLAG_H_
#define CYBERSYN_CLI_EMBEDDED_BROKER_FLAG_H_

#include <string>

#include "absl/strings/string_view.h"

namespace cybersyn::cli {

// The help text of --embedded-broker.
inline constexpr const char* kEmbeddedBrokerHelp =
    "with kafka.bootstrap: embedded, run a Kafka broker inside this process (a quick local try: "
    "what it holds is gone when the process exits; `cybersyn demo` runs the whole system that "
    "way)";

// Why `role` does not start with `config_path`'s kafka.bootstrap: embedded (several lines).
std::string EmbeddedBrokerRefusal(absl::string_view role, absl::string_view config_path);

// What `role` says when it runs with --embedded-broker at `bootstrap`.
std::string EmbeddedBrokerNotice(absl::string_view role, absl::string_view bootstrap);

}  // namespace cybersyn::cli

#endif  // CYBERSYN_CLI_EMBEDDED_BROKER_FLAG_H_
