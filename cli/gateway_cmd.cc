// `cybersyn gateway`: the plant edge. Reads csv / json-lines / the simulator (and gRPC pushes),
// validates, and publishes to Kafka through the store-and-forward disk buffer.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/command.h"
#include "cli/embedded_broker_flag.h"
#include "common/config.h"
#include "common/duration.h"
#include "common/http_server.h"
#include "common/time_grammar.h"
#include "ingest/gateway.h"
#include "ingest/ingest_service.h"
#include "ingest/mqtt_input.h"
#include "ingest/record_source.h"
#include "ingest/reject_file.h"
#include "ingest/simulator.h"

namespace cybersyn::cli {
namespace {

std::atomic<bool> g_cancel{false};
void OnSignal(int) { g_cancel.store(true); }

struct GatewayFlags {
  std::string config;
  std::string gateway_id;
  std::string input;
  std::string listen_grpc;
  std::string brokers;
  std::string buffer_dir;
  std::string buffer_max_bytes;
  std::string on_error = "skip";
  std::string truth;
  std::string metrics;
  std::string start;
  std::string duration;
  std::string drain_timeout = "0";
  std::string buffer_wal = "auto";
  std::string reject_file;
  int64_t from_line = 0;
  bool embedded_broker = false;
  uint64_t seed = 0;
  bool seed_set = false;
  double rate = 0;
  uint64_t count = 0;
  int max_printed_errors = 1000;
};

int RunGateway(const GatewayFlags& f) {
  auto loaded = LoadConfigFile(f.config);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", std::string(loaded.status().message()).c_str());
    return 1;
  }
  if (!f.gateway_id.empty()) {
    // Each gateway of a deployment needs its own id (it is part of every record's dedup key);
    // compose and Kubernetes give it per container while sharing one config file.
    const bool valid = absl::c_all_of(f.gateway_id, [](char c) {
      return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    });
    if (!valid) {
      std::fprintf(stderr, "--gateway-id: must match [a-zA-Z0-9._-]+, got \"%s\"\n",
                   f.gateway_id.c_str());
      return 2;
    }
    loaded->gateway.id = f.gateway_id;
  }
  auto config = std::make_shared<const Config>(*std::move(loaded));
  if (f.brokers.empty() && config->kafka.embedded() && !f.embedded_broker) {
    std::fputs(EmbeddedBrokerRefusal("gateway", f.config).c_str(), stderr);
    return 2;
  }
  if (f.input.empty() && f.listen_grpc.empty()) {
    std::fprintf(stderr, "gateway: give --input and/or --listen-grpc\n");
    return 2;
  }
  ingest::GatewayOptions go;
  go.config = config;
  go.brokers = f.brokers;
  go.buffer_dir = f.buffer_dir;
  if (!f.buffer_max_bytes.empty()) {
    auto b = ParseByteSize(f.buffer_max_bytes);
    if (!b.ok()) {
      std::fprintf(stderr, "--buffer-max-bytes: %s\n", std::string(b.status().message()).c_str());
      return 2;
    }
    go.buffer_max_bytes = *b;
  }
  absl::Duration drain_timeout = absl::InfiniteDuration();
  if (f.drain_timeout != "0") {
    auto d = ParseDuration(f.drain_timeout);
    if (!d.ok()) {
      std::fprintf(stderr, "--drain-timeout: %s\n", std::string(d.status().message()).c_str());
      return 2;
    }
    drain_timeout = *d;
  }
  // The source, before the gateway: whether its buffer may skip the WAL depends on it.
  ingest::RecordValidator validator(*config, Clock::Real());
  go.validator = &validator;  // the gateway keeps it at the message limit
  go.embedded_broker = f.embedded_broker;
  const std::string buffer_dir = f.buffer_dir.empty() ? config->gateway.buffer_dir : f.buffer_dir;
  std::unique_ptr<ingest::RejectFile> rejects;
  std::unique_ptr<ingest::RecordSource> source;
  std::optional<ingest::MqttUrl> mqtt_url;
  if (absl::StartsWith(f.input, "mqtt:")) {
    auto u = ingest::ParseMqttUrl(f.input);
    if (!u.ok()) {
      std::fprintf(stderr, "--input: %s\n", std::string(u.status().message()).c_str());
      return 2;
    }
    mqtt_url = *std::move(u);
    // Rejected payload lines are JSON lines: fixed, the file is a `jsonl:` input.
    const std::string path =
        f.reject_file.empty()
            ? absl::StrCat(buffer_dir, "/rejected/", ingest::RejectFileName("mqtt", "jsonl"))
            : f.reject_file;
    rejects = std::make_unique<ingest::RejectFile>(path);
  } else if (!f.input.empty()) {
    const size_t colon = f.input.find(':');
    const std::string kind = colon == std::string::npos ? "" : f.input.substr(0, colon);
    const std::string arg = colon == std::string::npos ? "" : f.input.substr(colon + 1);
    if (kind == "csv" || kind == "jsonl") {
      auto s = ingest::OpenFileSource(
          kind == "csv" ? ingest::InputFormat::kCsv : ingest::InputFormat::kJsonLines, arg,
          &validator);
      if (!s.ok()) {
        std::fprintf(stderr, "--input: %s\n", std::string(s.status().message()).c_str());
        return 1;
      }
      source = *std::move(s);
      // Rejected lines, as they were read: fixed, the file is a new input of the same format.
      std::string path = f.reject_file;
      if (path.empty()) {
        const std::string stem =
            arg == "-" ? std::string("stdin") : std::filesystem::path(arg).stem().string();
        path = absl::StrCat(buffer_dir, "/rejected/", ingest::RejectFileName(stem, kind));
      }
      rejects = std::make_unique<ingest::RejectFile>(path);
    } else if (kind == "sim") {
      auto o = ingest::LoadSimulatorOptions(arg);
      if (!o.ok()) {
        std::fprintf(stderr, "--input: %s\n", std::string(o.status().message()).c_str());
        return 2;
      }
      if (f.seed_set) o->seed = f.seed;
      if (f.count > 0) o->max_records = f.count;
      if (!f.duration.empty()) {
        auto d = ParseDuration(f.duration);
        if (!d.ok()) {
          std::fprintf(stderr, "--duration: %s\n", std::string(d.status().message()).c_str());
          return 2;
        }
        o->duration = *d;
      }
      if (!f.start.empty()) {
        auto t = ParseEventTime(f.start);
        if (!t.ok()) {
          std::fprintf(stderr, "--start: %s\n", std::string(t.status().message()).c_str());
          return 2;
        }
        o->start_ms = t->ms;
      }
      // Only a run with a fixed start is reproducible, hence resumable after a restart.
      std::string identity;
      if (o->start_ms != 0) {
        identity =
            absl::StrCat("sim:", arg, ":seed=", o->seed, ":start=", o->start_ms,
                         ":count=", o->max_records, ":duration=", DurationToString(o->duration));
      }
      auto s = ingest::SimulatorSource(*config, *o, identity, &validator, Clock::Real());
      if (!s.ok()) {
        std::fprintf(stderr, "--input: %s\n", std::string(s.status().message()).c_str());
        return 2;
      }
      source = *std::move(s);
    } else {
      std::fprintf(stderr,
                   "--input: expected csv:PATH, jsonl:PATH, sim:PRESET_OR_PATH or "
                   "mqtt://HOST[:PORT]/FILTER, got \"%s\"\n",
                   f.input.c_str());
      return 2;
    }
  }

  ingest::BufferWalInput wal_input;
  wal_input.grpc = !f.listen_grpc.empty();
  wal_input.mqtt = mqtt_url.has_value();
  if (source != nullptr) {
    wal_input.identity = source->Identity();
    wal_input.paced = f.rate > 0 || source->speedup() > 0;
  }
  auto buffer_wal = ingest::ParseBufferWal(f.buffer_wal);
  if (!buffer_wal.ok()) {
    std::fprintf(stderr, "--buffer-wal: %s\n", std::string(buffer_wal.status().message()).c_str());
    return 2;
  }
  go.buffer_wal = *buffer_wal;
  go.input = wal_input;

  ingest::RunOptions ro;
  ro.on_error = f.on_error == "stop" ? ingest::OnError::kStop : ingest::OnError::kSkip;
  ro.rate = f.rate;
  ro.cancel = &g_cancel;
  ro.from_line = f.from_line;

  auto gateway = ingest::Gateway::Start(go);
  if (!gateway.ok()) {
    std::fprintf(stderr, "gateway: %s\n", gateway.status().ToString().c_str());
    return absl::IsInvalidArgument(gateway.status()) ? 2 : 1;
  }
  if (f.embedded_broker && f.brokers.empty() && config->kafka.embedded()) {
    std::fputs(EmbeddedBrokerNotice("gateway", (*gateway)->bootstrap()).c_str(), stderr);
  }
  ingest::Gateway& g = **gateway;
  std::fprintf(stderr, "gateway: id %s; disk buffer write-ahead log %s (%s)\n",
               config->gateway.id.c_str(), g.buffer_wal() ? "on" : "off",
               g.buffer_wal_reason().c_str());
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  std::unique_ptr<HttpServer> http;
  if (!f.metrics.empty()) {
    http = std::make_unique<HttpServer>(g.registry(), config->listen.http_tls,
                                        config->listen.limits.max_http_body_bytes);
    auto bound = http->Start(f.metrics);
    if (!bound.ok()) {
      std::fprintf(stderr, "--metrics: %s\n", bound.status().ToString().c_str());
      return 1;
    }
    http->SetReady(true);
    std::fprintf(stderr, "gateway: metrics at %s://%s/metrics\n", http->scheme(), bound->c_str());
  }
  std::unique_ptr<ingest::IngestService> service;
  std::unique_ptr<grpc::Server> server;
  if (!f.listen_grpc.empty()) {
    service = std::make_unique<ingest::IngestService>(&g);
    std::string bound;
    auto s = ingest::StartIngestServer(service.get(), f.listen_grpc, &bound, config->listen.tls);
    if (!s.ok()) {
      std::fprintf(stderr, "--listen-grpc: %s\n", s.status().ToString().c_str());
      return 1;
    }
    server = *std::move(s);
    std::fprintf(stderr, "gateway: gRPC Ingest on %s\n", bound.c_str());
    if (absl::Status st = g.StartPublishing(); !st.ok()) {
      std::fprintf(stderr, "gateway: %s\n", st.ToString().c_str());
      return 1;
    }
  }

  const bool tty = ::isatty(STDERR_FILENO) == 1;
  int exit_code = 0;
  int printed = 0;
  bool reject_write_failed = false;
  ro.report = [&](const ingest::RecordError& e) {
    const std::string line = e.ToString();
    if (printed++ < f.max_printed_errors) {
      std::fprintf(stderr, "%s%s\n", tty ? "\r\033[K" : "", line.c_str());
    }
    if (rejects != nullptr && !reject_write_failed) {
      if (absl::Status s = rejects->Append(line, e.raw_line, e.header_line); !s.ok()) {
        std::fprintf(stderr, "gateway: reject file: %s\n", s.ToString().c_str());
        reject_write_failed = true;
      }
    }
  };
  std::unique_ptr<ingest::MqttInput> mqtt;
  if (mqtt_url.has_value()) {
    ingest::MqttInputOptions mo;
    mo.url = *mqtt_url;
    // The broker keeps this session's messages while the gateway is down: one id per gateway.
    mo.client_id = absl::StrCat("cybersyn-gateway-", config->gateway.id);
    mo.report = ro.report;
    auto m = ingest::MqttInput::Start(&g, mo);
    if (!m.ok()) {
      std::fprintf(stderr, "--input: %s\n", std::string(m.status().message()).c_str());
      return 1;
    }
    mqtt = *std::move(m);
    std::fprintf(stderr, "gateway: MQTT input %s:%d, topic filter %s, client id %s\n",
                 mqtt_url->host.c_str(), mqtt_url->port, mqtt_url->filter.c_str(),
                 mo.client_id.c_str());
  }

  // Progress on a terminal.
  std::atomic<bool> progress_done{false};
  std::thread progress;
  if (tty && source != nullptr) {
    progress = std::thread([&] {
      uint64_t last = 0;
      absl::Time last_t = absl::Now();
      while (!progress_done.load()) {
        absl::SleepFor(absl::Milliseconds(500));
        const ingest::GatewayStats s = g.stats();
        const absl::Time now = absl::Now();
        const double rate = (s.accepted - last) / absl::ToDoubleSeconds(now - last_t);
        last = s.accepted;
        last_t = now;
        std::fprintf(stderr,
                     "\r\033[K%.0f records/s  accepted %llu  sent %llu  buffered %llu  "
                     "rejected %llu  %s",
                     rate, static_cast<unsigned long long>(s.accepted),
                     static_cast<unsigned long long>(s.confirmed),
                     static_cast<unsigned long long>(s.buffer_records),
                     static_cast<unsigned long long>(s.rejected),
                     s.connected ? "" : "(broker unreachable)");
        std::fflush(stderr);
      }
      std::fprintf(stderr, "\r\033[K");
    });
  }

  if (source != nullptr) {
    auto summary = g.Run(*source, ro);
    if (!summary.ok()) {
      std::fprintf(stderr, "gateway: %s\n", std::string(summary.status().message()).c_str());
      exit_code = 1;
    } else {
      if (summary->stopped_on_error || summary->bad_header) exit_code = 1;
      if (!f.truth.empty()) {
        if (const ingest::Simulator* sim = ingest::SimulatorOf(*source); sim != nullptr) {
          if (absl::Status s = ingest::Simulator::WriteTruthCsv(sim->faults(), f.truth); !s.ok()) {
            std::fprintf(stderr, "--truth: %s\n", s.ToString().c_str());
            exit_code = 1;
          }
        }
      }
      std::string reasons;
      for (const auto& [r, n] : summary->rejected_by_reason) {
        absl::StrAppend(&reasons, reasons.empty() ? " (" : ", ", r, ": ", n);
      }
      if (!reasons.empty()) reasons += ")";
      std::fprintf(
          stderr, "%sgateway: read %llu, accepted %llu, rejected %llu%s%s%s\n",
          tty ? "\r\033[K" : "", static_cast<unsigned long long>(summary->read),
          static_cast<unsigned long long>(summary->accepted),
          static_cast<unsigned long long>(summary->rejected), reasons.c_str(),
          summary->resumed ? ", resumed after a restart" : "",
          summary->stopped_on_error ? ", stopped at the first error (--on-error=stop)" : "");
    }
  }
  if ((server != nullptr || mqtt != nullptr) && !g_cancel.load()) {
    while (!g_cancel.load()) absl::SleepFor(absl::Milliseconds(200));
  }
  if (server != nullptr) server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  if (mqtt != nullptr) {
    mqtt->Stop();
    const ingest::MqttInputStats ms = mqtt->stats();
    std::fprintf(
        stderr,
        "gateway: MQTT: %llu messages, %llu records accepted, %llu rejected, %llu lost; "
        "PUBACK-to-disk window max %.3f ms, mean %.3f ms\n",
        static_cast<unsigned long long>(ms.messages), static_cast<unsigned long long>(ms.records),
        static_cast<unsigned long long>(ms.rejected), static_cast<unsigned long long>(ms.lost),
        ms.window_max_us / 1e3, ms.messages == 0 ? 0.0 : ms.window_total_us / 1e3 / ms.messages);
    if (ms.duplicates + ms.rebirths + ms.stops + ms.ignored_metrics > 0) {
      std::fprintf(stderr,
                   "gateway: Sparkplug B: %llu redelivered messages dropped, %llu rebirth "
                   "requests, %llu deaths, %llu metrics not mapped in the config\n",
                   static_cast<unsigned long long>(ms.duplicates),
                   static_cast<unsigned long long>(ms.rebirths),
                   static_cast<unsigned long long>(ms.stops),
                   static_cast<unsigned long long>(ms.ignored_metrics));
    }
  }
  // Wait for the broker to confirm what was read (interruptible: the buffer keeps the rest).
  if (exit_code == 0 || source != nullptr) {
    const absl::Time deadline = absl::Now() + drain_timeout;
    while (!g_cancel.load()) {
      absl::Status s = g.Drain(absl::Milliseconds(500));
      if (s.ok()) break;
      if (!absl::IsDeadlineExceeded(s)) {
        std::fprintf(stderr, "gateway: %s\n", s.ToString().c_str());
        break;
      }
      if (absl::Now() >= deadline) break;
    }
  }
  progress_done.store(true);
  if (progress.joinable()) progress.join();
  const ingest::GatewayStats s = g.stats();
  g.Stop(absl::Seconds(2));
  std::fprintf(stderr, "gateway: confirmed %llu records; %llu still buffered in the disk buffer\n",
               static_cast<unsigned long long>(s.confirmed),
               static_cast<unsigned long long>(s.buffer_records));
  if (rejects != nullptr && rejects->records() > 0) {
    std::fprintf(stderr,
                 "gateway: %llu rejected lines are in %s; fix them there and send that file as a "
                 "new input (docs/ingest.md)\n",
                 static_cast<unsigned long long>(rejects->records()), rejects->path().c_str());
  }
  if (s.set_aside > 0) {
    std::fprintf(stderr,
                 "gateway: %llu records could not be sent and are set aside in %s; fix them and "
                 "send that file with --input jsonl:FILE (docs/ingest.md)\n",
                 static_cast<unsigned long long>(s.set_aside), s.set_aside_path.c_str());
  }
  if (http != nullptr) http->Stop();
  return exit_code;
}

}  // namespace

void AddGatewayCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<GatewayFlags>();
  CLI::App* cmd = app.add_subcommand(
      "gateway", "Plant gateway: validate records and publish them to Kafka, losing none");
  cmd->footer(
      "Reads csv / json-lines / simulated plants (and gRPC pushes), validates at the edge and\n"
      "publishes RecordBatches per enterprise to <prefix>.records through a store-and-forward\n"
      "disk buffer (nothing is lost while Kafka is away; a restart resumes from the buffer).\n"
      "A file input resumes after what an earlier run read, and refuses when the file changed\n"
      "before that point (--from-line N re-reads from line N). Rejected lines go to a reject\n"
      "file to fix and resend. Needs a Kafka cluster (--brokers, or kafka.bootstrap); see\n"
      "--embedded-broker and `cybersyn demo` for trying it without one.\n"
      "Formats: docs/ingest.md.");
  cmd->add_option("--config", flags->config, "YAML config file")->required();
  cmd->add_option("--gateway-id", flags->gateway_id,
                  "this gateway's id (overrides gateway.id; env CYBERSYN_GATEWAY_ID); unique per "
                  "gateway of a deployment")
      ->envname("CYBERSYN_GATEWAY_ID");
  cmd->add_option(
      "--input", flags->input,
      "csv:PATH | jsonl:PATH (PATH '-' = stdin) | sim:small | sim:bench | sim:FILE.yaml | "
      "mqtt://HOST[:PORT]/FILTER (Sparkplug B on spBv1.0/ topics, mapped by gateway.sparkplug; "
      "JSON records on others; QoS 1, persistent session; runs until "
      "SIGINT/SIGTERM)");
  cmd->add_option("--listen-grpc", flags->listen_grpc,
                  "serve the gRPC Ingest service on HOST:PORT (runs until SIGINT/SIGTERM)");
  cmd->add_option("--brokers", flags->brokers, "Kafka bootstrap servers (overrides the config)");
  cmd->add_flag("--embedded-broker", flags->embedded_broker, kEmbeddedBrokerHelp);
  cmd->add_option("--buffer-dir", flags->buffer_dir, "disk buffer directory (default: config)");
  cmd->add_option("--buffer-max-bytes", flags->buffer_max_bytes,
                  "disk buffer bound, e.g. 256MiB; when full the source is blocked");
  cmd->add_option("--buffer-wal", flags->buffer_wal,
                  "the disk buffer's RocksDB write-ahead log: auto (default: off when the input "
                  "is a csv:/jsonl: file or sim: with --start, unpaced, without --listen-grpc: "
                  "after a crash it is re-read from the buffer's last flush instead) | on | off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  cmd->add_option("--on-error", flags->on_error, "skip (default; report and go on) | stop")
      ->check(CLI::IsMember({"skip", "stop"}));
  cmd->add_option("--reject-file", flags->reject_file,
                  "csv:/jsonl: write rejected lines here, each after a '# why' comment, to fix "
                  "and send as a new input (default: BUFFER_DIR/rejected/NAME-TIME.EXT; the path "
                  "is printed at the end)");
  cmd->add_option("--from-line", flags->from_line,
                  "csv:/jsonl: read the file from line N instead of resuming where the last run "
                  "stopped; lines sent before get new sequence numbers (new records downstream)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--truth", flags->truth, "sim: write the injected faults (CSV) here");
  cmd->add_option_function<uint64_t>(
      "--seed", [flags](uint64_t s) { flags->seed = s, flags->seed_set = true; },
      "sim: random seed");
  cmd->add_option("--rate", flags->rate, "wall-clock records/s limit (0 = as the source allows)");
  cmd->add_option("--duration", flags->duration, "sim: event-time span, e.g. 1h");
  cmd->add_option("--count", flags->count, "sim: number of records");
  cmd->add_option("--start", flags->start,
                  "sim: event time of the first record (RFC 3339 or epoch ms); fixed starts make "
                  "a run resumable after a restart");
  cmd->add_option("--metrics", flags->metrics, "serve /metrics on HOST:PORT");
  cmd->add_option("--drain-timeout", flags->drain_timeout,
                  "at the end, wait this long for the broker to confirm (0 = until confirmed)");
  cmd->callback([flags, &exit_code] { exit_code = RunGateway(*flags); });
}

}  // namespace cybersyn::cli
