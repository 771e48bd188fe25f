#include "cli/embedded_broker_flag.h"

#include "absl/strings/str_cat.h"

namespace cybersyn::cli {

std::string EmbeddedBrokerRefusal(absl::string_view role, absl::string_view config_path) {
  return absl::StrCat(
      role, ": ", config_path, " sets kafka.bootstrap: embedded, and no --brokers were given.\n",
      "  To use a Kafka cluster: --brokers HOST:PORT (or set kafka.bootstrap in the config).\n",
      "  To try the whole system on one machine: cybersyn demo.\n",
      "  For a quick local try of the ", role, " alone: --embedded-broker (a broker inside this ",
      "process; what it holds is gone when the ", role, " exits).\n");
}

std::string EmbeddedBrokerNotice(absl::string_view role, absl::string_view bootstrap) {
  return absl::StrCat(role, ": --embedded-broker: Kafka runs inside this process at ", bootstrap,
                      "; what it holds lives only as long as the ", role, " runs\n");
}

}  // namespace cybersyn::cli
