// cybersyn: one binary, one subcommand per role or operator action.
#include <iostream>

#include "absl/synchronization/mutex.h"
#include "cli/command.h"

int main(int argc, char** argv) {
  // Debian's abseil is built to check lock order on every Mutex::Lock (a global cycle graph):
  // ~110 ns instead of ~40 ns per uncontended lock on the hot paths. The tests keep the check;
  // the production binary does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{
      "Cybersyn: production telemetry from plants to the people who must act on it.\n"
      "Plant gateways publish records to Kafka, aggregators roll them up the hierarchy, the\n"
      "alerter raises algedonic signals that climb a level when nobody answers in time.\n"
      "Run `cybersyn demo` to see it all on an embedded broker; `cybersyn SUBCOMMAND --help`\n"
      "explains each subcommand.",
      "cybersyn"};
  app.set_version_flag("--version", std::string("cybersyn 0.1.0"));
  app.require_subcommand(1);
  app.fallthrough(false);
  int exit_code = 0;
  cybersyn::cli::AddConfigCommand(app, exit_code);
  cybersyn::cli::AddDemoCommand(app, exit_code);
  cybersyn::cli::AddOperatorCommands(app, exit_code);
  cybersyn::cli::AddKafkaCheckCommand(app, exit_code);
  cybersyn::cli::AddBacktestCommand(app, exit_code);
  cybersyn::cli::AddAlerterCommand(app, exit_code);
  cybersyn::cli::AddGatewayCommand(app, exit_code);
  cybersyn::cli::AddAggregatorCommand(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help/--version exit 0; every usage error exits 2 (CLI11 has its own codes).
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
