// `cybersyn alerter`: the alerter role (signals, escalation, Alerts gRPC API, /metrics).
#include <algorithm>
#include <csignal>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "alerter/alerter_service.h"
#include "cli/command.h"
#include "cli/embedded_broker_flag.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/duration.h"
#include "common/embedded_broker.h"
#include "common/kafka_stats.h"
#include "common/logging.h"
#include "opsroom/opsroom_server.h"

namespace cybersyn::cli {
namespace {

struct AlerterArgs {
  std::string config;
  std::string brokers;
  std::string state_dir;
  std::string listen_grpc;
  std::string metrics;
  std::string opsroom_listen;  // "" = no Opsroom / Query service
  std::string instance_id = "0";
  std::string clock_offset;  // test-only: shifts the alerter's clock
  std::string log_level = "info";
  bool embedded_broker = false;
};

// The real clock shifted by a fixed offset (`--clock-offset-for-test`), so a process test can
// let deadlines pass without waiting.
class OffsetClock : public Clock {
 public:
  explicit OffsetClock(absl::Duration offset) : offset_(offset) {}
  absl::Time Now() const override { return absl::Now() + offset_; }

 private:
  absl::Duration offset_;
};

absl::Notification* g_stop = nullptr;
extern "C" void OnSignal(int) {
  if (g_stop != nullptr && !g_stop->HasBeenNotified()) g_stop->Notify();
}

int RunAlerter(const AlerterArgs& a) {
  if (absl::Status s = InitLogging({a.log_level, false}); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return 2;
  }
  auto config = LoadConfigFile(a.config);
  if (!config.ok()) {
    std::cerr << "error: " << config.status().message() << "\n";
    return 1;
  }
  if (!a.brokers.empty()) config->kafka.bootstrap = a.brokers;
  std::unique_ptr<EmbeddedBroker> embedded;
  if (config->kafka.embedded()) {
    if (!a.embedded_broker) {
      std::cerr << EmbeddedBrokerRefusal("alerter", a.config);
      return 2;
    }
    auto b = EmbeddedBroker::Start();
    if (!b.ok()) {
      std::cerr << "error: " << b.status().message() << "\n";
      return 1;
    }
    embedded = *std::move(b);
    config->kafka.bootstrap = embedded->bootstrap();
    std::cerr << EmbeddedBrokerNotice("alerter", embedded->bootstrap());
  }
  // Declared before the service, so destroyed after it (a never-freed clock read as a leak).
  std::unique_ptr<OffsetClock> offset_clock;
  Clock* clock = Clock::Real();
  if (!a.clock_offset.empty()) {
    auto d = ParseDuration(a.clock_offset);
    if (!d.ok()) {
      std::cerr << "error: --clock-offset-for-test: " << d.status().message() << "\n";
      return 2;
    }
    offset_clock = std::make_unique<OffsetClock>(*d);
    clock = offset_clock.get();
  }
  alerter::AlerterServiceOptions o;
  o.client = KafkaClientFor(config->kafka, config->kafka.bootstrap);
  if (embedded) o.ensure_topics = embedded->ensurer();
  o.state_dir = a.state_dir;
  o.listen_grpc = a.listen_grpc.empty() ? config->listen.grpc : a.listen_grpc;
  o.listen_metrics = a.metrics.empty() ? config->listen.metrics : a.metrics;
  o.clock = clock;
  o.instance_id = a.instance_id;
  const char* scheme = config->listen.http_tls ? "https" : "http";
  o.config = std::make_shared<const Config>(std::move(*config));
  o.registry = std::make_shared<prometheus::Registry>();
  o.client.stats = std::make_shared<KafkaStats>(*o.registry);
  // Optional: the Opsroom on its own address and the Query service beside Alerts on gRPC.
  std::unique_ptr<opsroom::OpsroomServer> ops;
  if (!a.opsroom_listen.empty()) {
    auto created = opsroom::OpsroomServer::Create({o.config, o.client, o.registry});
    if (!created.ok()) {
      std::cerr << "error: " << created.status().message() << "\n";
      return 1;
    }
    ops = std::move(*created);
    o.extra_grpc_services.push_back(ops->query_service());
  }
  auto svc = alerter::AlerterService::Start(std::move(o));
  if (!svc.ok()) {
    std::cerr << "error: " << svc.status().message() << "\n";
    return 1;
  }
  if (ops != nullptr) {
    auto addr = ops->Serve(a.opsroom_listen, (*svc)->alerts());
    if (!addr.ok()) {
      std::cerr << "error: --opsroom-listen " << a.opsroom_listen << ": " << addr.status().message()
                << "\n";
      (*svc)->Stop();
      return 1;
    }
    std::cout << "Opsroom on " << scheme << "://" << *addr << "/ (Query service on gRPC)\n";
  }
  std::cout << "alerter running: gRPC Alerts on " << (*svc)->grpc_address() << ", metrics on "
            << scheme << "://" << (*svc)->metrics_address() << "/metrics" << std::endl;
  absl::Notification stop;
  g_stop = &stop;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  int rc = 0;
  // A runtime failure restarts the processor in-process from the committed state, as the
  // aggregator does; only a failure to start it again (e.g. state dir unusable) ends the process.
  int restarts = 0;
  while (!stop.WaitForNotificationWithTimeout(absl::Milliseconds(200))) {
    if (absl::Status s = (*svc)->status(); !s.ok()) {
      std::cerr << "alerter: " << s.message() << "; restarting from the committed state"
                << std::endl;
      absl::SleepFor(absl::Seconds(std::min(1 + restarts++, 5)));
      if (stop.HasBeenNotified()) break;
      if (absl::Status r = (*svc)->RestartProcessor(); !r.ok()) {
        std::cerr << "error: restarting the alerter: " << r.message() << "\n";
        rc = 1;
        break;
      }
    }
  }
  if (ops != nullptr) ops->Stop();  // HTTP first: its actions go through svc's Alerts service
  (*svc)->Stop();
  return rc;
}

}  // namespace

void AddAlerterCommand(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<AlerterArgs>();
  CLI::App* cmd = app.add_subcommand(
      "alerter", "Forecast every series, raise algedonic signals and escalate them");
  cmd->footer(
      "Detects anomalies in <prefix>.aggregates, raises and escalates signals to\n"
      "<prefix>.signals, applies operator commands, serves the Alerts gRPC API and /metrics.");
  cmd->add_option("--config", a->config, "YAML config file")->required();
  cmd->add_option("--brokers", a->brokers, "Kafka bootstrap servers (overrides the config)");
  cmd->add_flag("--embedded-broker", a->embedded_broker, kEmbeddedBrokerHelp);
  cmd->add_option("--state-dir", a->state_dir, "RocksDB state directory (overrides the config)");
  cmd->add_option("--listen-grpc", a->listen_grpc, "Alerts gRPC address (default listen.grpc)");
  cmd->add_option("--metrics", a->metrics, "/metrics address (default listen.metrics)");
  cmd->add_option("--opsroom-listen", a->opsroom_listen,
                  "also serve the Opsroom web page here (e.g. 0.0.0.0:8080, the config's "
                  "listen.http) and the Query service on the gRPC address; default: off");
  cmd->add_option("--instance-id", a->instance_id,
                  "Stable id of this instance (part of the Kafka transactional.id)")
      ->capture_default_str();
  cmd->add_option("--log-level", a->log_level, "trace|debug|info|warn|error")
      ->capture_default_str();
  cmd->add_option("--clock-offset-for-test", a->clock_offset,
                  "Testing only: run the clock this far ahead (e.g. 10m)")
      ->group("");
  cmd->callback([a, &exit_code] { exit_code = RunAlerter(*a); });
}

}  // namespace cybersyn::cli
