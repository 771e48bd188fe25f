// `cybersyn demo`: the whole system in one process on an embedded Kafka broker: a simulated
// nation (gateway + simulator with faults), the aggregator, the alerter, gRPC (Alerts + Query),
// /metrics and the Opsroom, with a live feed of signal transitions on the terminal.
//
// Timeline: the simulator first replays `--history` of event time at high speed (so detectors
// warm up and faults show within seconds), then the same simulation continues in real time.
// Escalation deadlines are wall clock (the demo config uses 10 s at a unit), so an unanswered
// signal climbs within a minute.
#include <csignal>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "aggregator/aggregator.h"
#include "alerter/alerter_service.h"
#include "alerter/alerts_service.h"
#include "cli/command.h"
#include "cli/feed_format.h"
#include "common/config.h"
#include "common/duration.h"
#include "common/embedded_broker.h"
#include "common/http_server.h"
#include "common/kafka_admin.h"
#include "common/kafka_stats.h"
#include "common/logging.h"
#include "common/status.h"
#include "ingest/gateway.h"
#include "ingest/record_source.h"
#include "ingest/simulator.h"
#include "opsroom/opsroom.h"
#include "opsroom/system_backend.h"
#include "query/query_service.h"
#include "query/query_store.h"

namespace cybersyn::embedded {
std::string_view DemoConfigYaml();
}

namespace cybersyn::cli {
namespace {

std::atomic<bool> g_interrupted{false};
void OnSignal(int) { g_interrupted.store(true); }

struct DemoArgs {
  std::string duration;  // empty = until Ctrl-C
  uint64_t seed = 1;
  std::string brokers;
  std::string config;
  std::string history = "15m";
  double speedup = 30;
  std::string log_level = "warn";
  bool quiet = false;
  bool no_attribution = false;
  std::string alertmanager;  // base URL: forward signals there (alerter.alertmanager.url)
  std::string listen_grpc;   // overrides listen.grpc (port 0 = any)
  std::string listen_http;   // overrides listen.http (port 0 = any)
};

int Fail(const absl::Status& s) {
  std::cerr << "demo: " << s.message() << "\n";
  return 1;
}

int RunDemo(const DemoArgs& args) {
  if (absl::Status s = InitLogging({args.log_level, false}); !s.ok()) return Fail(s);
  absl::Duration duration = absl::InfiniteDuration();
  if (!args.duration.empty()) {
    auto d = ParseDuration(args.duration);
    if (!d.ok()) return Fail(Annotate(d.status(), "--duration"));
    duration = *d;
  }
  auto history = ParseDuration(args.history);
  if (!history.ok()) return Fail(Annotate(history.status(), "--history"));

  absl::StatusOr<Config> loaded =
      args.config.empty() ? LoadConfigString(embedded::DemoConfigYaml(), "demo.yaml (built in)")
                          : LoadConfigFile(args.config);
  if (!loaded.ok()) return Fail(loaded.status());
  // Each demo run gets fresh state directories, removed at exit.
  const std::string root =
      (std::filesystem::temp_directory_path() / absl::StrCat("cybersyn-demo-", ::getpid()))
          .string();
  loaded->aggregator.state_dir = root + "/aggregator";
  loaded->alerter.state_dir = root + "/alerter";
  loaded->gateway.buffer_dir = root + "/gateway";
  loaded->gateway.max_future = absl::Hours(24);
  // The listeners bind without SO_REUSEPORT: a second demo on the default ports fails with
  // "address in use" (docs/operations.md); tests pass :0.
  if (!args.listen_grpc.empty()) loaded->listen.grpc = args.listen_grpc;
  if (!args.listen_http.empty()) loaded->listen.http = args.listen_http;
  if (!args.alertmanager.empty()) {
    if (args.alertmanager.rfind("http://", 0) != 0 && args.alertmanager.rfind("https://", 0) != 0) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "--alertmanager: expected an http:// or https:// URL, got \"", args.alertmanager, "\"")));
    }
    if (!loaded->alerter.alertmanager) loaded->alerter.alertmanager.emplace();
    loaded->alerter.alertmanager->url = args.alertmanager;
  }
  auto config = std::make_shared<const Config>(std::move(*loaded));
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{root};

  // Kafka: embedded unless --brokers (or a config naming a real cluster).
  std::unique_ptr<EmbeddedBroker> embedded;
  KafkaClientOptions client =
      KafkaClientFor(config->kafka, args.brokers.empty() ? config->kafka.bootstrap : args.brokers);
  TopicEnsurer ensure;
  if (client.bootstrap == "embedded") {
    auto b = EmbeddedBroker::Start(3);
    if (!b.ok()) return Fail(b.status());
    embedded = std::move(*b);
    client.bootstrap = embedded->bootstrap();
    ensure = embedded->ensurer();
  } else {
    ensure = [client](const std::vector<TopicSpec>& t) { return EnsureTopics(client, t); };
  }
  const TopicNames names(config->kafka.topic_prefix);
  if (absl::Status s = ensure(
          DeploymentTopics(names, config->kafka.partitions, config->kafka.replication_factor));
      !s.ok()) {
    return Fail(s);
  }
  auto registry = std::make_shared<prometheus::Registry>();
  client.stats = std::make_shared<KafkaStats>(*registry);

  // Roles.
  aggregator::AggregatorOptions aopts;
  aopts.config = config;
  aopts.client = client;
  aopts.instance_id = absl::StrCat("demo-", ::getpid());
  aopts.registry = registry;
  aopts.ensure_topics = ensure;
  aopts.max_batch_time = absl::Milliseconds(200);  // demo scale: latency over throughput
  auto agg = aggregator::Aggregator::Create(aopts);
  if (!agg.ok()) return Fail(agg.status());
  if (absl::Status s = (*agg)->Start(); !s.ok()) return Fail(s);

  alerter::AlerterServiceOptions lopts;
  lopts.config = config;
  lopts.client = client;
  lopts.registry = registry;
  lopts.ensure_topics = ensure;
  lopts.instance_id = absl::StrCat("demo-", ::getpid());
  lopts.attribution = !args.no_attribution;
  auto alerter_svc = alerter::AlerterService::Start(lopts);
  if (!alerter_svc.ok()) return Fail(alerter_svc.status());

  alerter::AlertsServiceOptions sopts;
  sopts.config = config;
  sopts.client = client;
  sopts.limits = alerter::GrpcLimitsFrom(config->listen.limits);
  alerter::AlertsService alerts(sopts);
  if (absl::Status s = alerts.Start(); !s.ok()) return Fail(s);

  auto store = query::QueryStore::Start({config, client, config->kafka.topic_prefix});
  if (!store.ok()) return Fail(store.status());
  query::QueryServiceImpl query_service(config, store->get());

  int grpc_port = 0;
  auto grpc_server = alerter::StartGrpcServer(config->listen.grpc, config->listen.tls,
                                              {&alerts, &query_service}, &grpc_port, sopts.limits);
  std::string grpc_addr =
      absl::StrCat(config->listen.grpc.substr(0, config->listen.grpc.rfind(':')), ":", grpc_port);
  if (!grpc_server.ok()) {
    // The configured port is taken (another demo?): any free port will do.
    grpc_server = alerter::StartGrpcServer("127.0.0.1:0", config->listen.tls,
                                           {&alerts, &query_service}, &grpc_port, sopts.limits);
    if (!grpc_server.ok()) return Fail(grpc_server.status());
    grpc_addr = absl::StrCat("127.0.0.1:", grpc_port);
  }

  opsroom::SystemBackend backend(config, store->get(), &alerts);
  HttpServer http(registry, config->listen.http_tls, config->listen.limits.max_http_body_bytes);
  opsroom::RegisterOpsroom(http.raw(), &backend);
  auto http_addr = http.Start(config->listen.http);
  if (!http_addr.ok()) http_addr = http.Start("127.0.0.1:0");
  if (!http_addr.ok()) return Fail(http_addr.status());
  http.SetReady(true);

  ingest::GatewayOptions gopts;
  gopts.config = config;
  gopts.brokers = client.bootstrap;
  gopts.read_topic_limit = embedded == nullptr;  // the mock cluster answers no DescribeConfigs
  gopts.registry = registry;
  auto gateway = ingest::Gateway::Start(gopts);
  if (!gateway.ok()) return Fail(gateway.status());

  const OperatorConfig* demo_op = config->operators.empty() ? nullptr : &config->operators[0];
  std::cout << "Cybersyn demo: " << config->hierarchy->nodes().size() << " nodes, "
            << config->indicators.size() << " indicators, "
            << config->hierarchy->leaves().size() * config->indicators.size()
            << " simulated series with faults\n"
            << "  Opsroom (web)   http://" << *http_addr << "/\n"
            << "  metrics         http://" << *http_addr << "/metrics\n"
            << "  gRPC            " << grpc_addr << "   (cybersyn signals|watch|status --server "
            << grpc_addr << ")\n"
            << "  Kafka           " << client.bootstrap << "   (kcat -b " << client.bootstrap
            << " -L)\n";
  if (config->alerter.alertmanager) {
    std::cout << "  Alertmanager    " << config->alerter.alertmanager->url
              << "   (signals forwarded to /api/v2/alerts)\n";
  }
  if (demo_op != nullptr) {
    std::cout << "  operator token  " << demo_op->token << "   (" << demo_op->name
              << ", may act on " << demo_op->subtree << "; export CYBERSYN_TOKEN=" << demo_op->token
              << ")\n";
  }
  std::cout << "Signals appear below as they are raised, escalated, acknowledged and resolved. "
               "Ctrl-C stops.\n"
            << std::flush;

  // The simulated plants: one simulation, a fast replay of recent history continuing in real
  // time. The same plants throughout, so the live phase shows only the faults it injects.
  std::atomic<bool> stop_sources{false};
  std::thread sim([&] {
    const int64_t now = absl::ToUnixMillis(absl::Now());
    auto preset = ingest::SimulatorPreset("small");
    if (!preset.ok()) return;
    ingest::SimulatorOptions o = *preset;
    o.seed = args.seed;
    o.start_ms = now - absl::ToInt64Milliseconds(*history);
    o.speedup = args.speedup;
    o.realtime_from_ms = now;
    auto source = ingest::SimulatorSource(*config, o, absl::StrCat("demo-sim-", o.seed),
                                          &(*gateway)->validator(), Clock::Real());
    if (!source.ok()) {
      std::cerr << "demo: simulator: " << source.status().message() << "\n";
      return;
    }
    ingest::RunOptions ro;
    ro.cancel = &stop_sources;
    auto r = (*gateway)->Run(**source, ro);
    if (!r.ok()) std::cerr << "demo: gateway: " << r.status().message() << "\n";
  });

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  const absl::Time start = absl::Now();
  const absl::Time end =
      duration == absl::InfiniteDuration() ? absl::InfiniteFuture() : start + duration;
  int raised = 0, escalated = 0, acknowledged = 0, resolved = 0;
  absl::Duration first_signal = absl::InfiniteDuration(),
                 first_escalation = absl::InfiniteDuration();
  std::string cursor;
  while (!g_interrupted.load() && absl::Now() < end) {
    for (const auto& [c, e] : (*store)->EventsAfter(cursor, absl::Milliseconds(500))) {
      cursor = c;
      switch (e.transition().kind()) {
        case v1::TRANSITION_KIND_RAISED:
          ++raised;
          first_signal = std::min(first_signal, absl::Now() - start);
          break;
        case v1::TRANSITION_KIND_ESCALATED:
          ++escalated;
          first_escalation = std::min(first_escalation, absl::Now() - start);
          break;
        case v1::TRANSITION_KIND_ACKNOWLEDGED:
          ++acknowledged;
          break;
        case v1::TRANSITION_KIND_RESOLVED:
          ++resolved;
          break;
        default:
          break;
      }
      if (!args.quiet) std::cout << FeedLine(e) << "\n" << std::flush;
    }
    if (absl::Status s = (*alerter_svc)->status(); !s.ok()) {
      std::cerr << "demo: alerter stopped: " << s.message() << "\n";
      break;
    }
  }
  std::cout << "\nstopping…\n" << std::flush;
  stop_sources.store(true);
  sim.join();
  // Seal and wait (briefly) for the last deliveries before counting: otherwise the summary shows
  // the final linger's records as accepted but not confirmed.
  (void)(*gateway)->Drain(absl::Seconds(2));
  const ingest::GatewayStats gs = (*gateway)->stats();
  const aggregator::AggregatorCounters ac = (*agg)->counters();
  (*gateway)->Stop(absl::Seconds(2));
  if (grpc_server.ok()) (*grpc_server)->Shutdown(std::chrono::system_clock::now());
  http.Stop();
  alerts.Stop();
  (*store)->Stop();
  (*alerter_svc)->Stop();
  (void)(*agg)->Stop();
  auto fmt = [](absl::Duration d) {
    return d == absl::InfiniteDuration()
               ? std::string("-")
               : absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(100)));
  };
  std::cout << absl::StrFormat(
      "demo summary: records accepted %d, confirmed %d%s; aggregates %d; signals raised %d, "
      "escalations %d, acknowledged %d, resolved %d; first signal after %s, first escalation "
      "after %s\n",
      gs.accepted, gs.confirmed,
      gs.buffer_records == 0 ? ""
                             : absl::StrFormat(" (%d still in the disk buffer)", gs.buffer_records),
      ac.emitted, raised, escalated, acknowledged, resolved, fmt(first_signal),
      fmt(first_escalation));
  return 0;
}

}  // namespace

void AddDemoCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* demo =
      app.add_subcommand("demo", "Run the whole system in one process on an embedded Kafka broker");
  demo->add_option("--duration", args->duration,
                   "stop after this long, e.g. 90s (default: Ctrl-C)");
  demo->add_option("--seed", args->seed,
                   "simulator seed: the same seed gives the same plants and faults")
      ->capture_default_str();
  demo->add_option("--brokers", args->brokers,
                   "run the same roles against a real cluster (host:port,...)");
  demo->add_option("--config", args->config,
                   "config file (default: the built-in deploy/examples/demo.yaml)")
      ->check(CLI::ExistingFile);
  demo->add_option("--history", args->history,
                   "event time replayed quickly at start so detectors warm up")
      ->capture_default_str();
  demo->add_option("--speedup", args->speedup, "speed of the replay")->capture_default_str();
  demo->add_option("--log-level", args->log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  demo->add_flag("--quiet", args->quiet, "no live feed, only the summary");
  demo->add_flag("--no-attribution", args->no_attribution,
                 "every level raises on its own view: no \"also visible at\" (docs/attribution.md; "
                 "for comparison)");
  demo->add_option("--listen-grpc", args->listen_grpc,
                   "gRPC address (default listen.grpc of the config; port 0 = any free port)");
  demo->add_option("--listen-http", args->listen_http,
                   "Opsroom and /metrics address (default listen.http; port 0 = any free port)");
  demo->add_option("--alertmanager", args->alertmanager,
                   "forward signals to this Alertmanager, e.g. http://127.0.0.1:9093");
  demo->footer(
      "What you get: a simulated Chile (2 sectors x 2 enterprises x 2 units, 4 indicators)\n"
      "publishing through a gateway into an embedded Kafka, rolled up by the aggregator and\n"
      "watched by the alerter. Unanswered signals climb unit -> enterprise -> sector -> nation\n"
      "(deadlines 10s..60s). Open the Opsroom URL it prints, or in another terminal:\n"
      "  export CYBERSYN_TOKEN=demo-cl; cybersyn watch; cybersyn signals; cybersyn ack ID");
  demo->callback([args, &exit_code] { exit_code = RunDemo(*args); });
}

}  // namespace cybersyn::cli
