// Subcommands of the `cybersyn` binary. Each Add*Command registers one CLI11 subcommand whose
// callback stores its exit code in `exit_code` (0 ok, 1 failure, 2 usage).
#ifndef CYBERSYN_CLI_COMMAND_H_
#define CYBERSYN_CLI_COMMAND_H_

#include "CLI/CLI.hpp"

namespace cybersyn::cli {

void AddConfigCommand(CLI::App& app, int& exit_code);
void AddKafkaCheckCommand(CLI::App& app, int& exit_code);
void AddDemoCommand(CLI::App& app, int& exit_code);
// signals, watch, ack, resolve, silence, series, status.
void AddOperatorCommands(CLI::App& app, int& exit_code);
void AddBacktestCommand(CLI::App& app, int& exit_code);
void AddAlerterCommand(CLI::App& app, int& exit_code);
void AddGatewayCommand(CLI::App& app, int& exit_code);
void AddAggregatorCommand(CLI::App& app, int& exit_code);

}  // namespace cybersyn::cli

#endif  // CYBERSYN_CLI_COMMAND_H_
