// Operator commands against a running system (gRPC Alerts + Query on one address):
//   cybersyn signals | watch | ack | resolve | silence | series | status
// --server/--token/--ca/--cert/--key fall back to CYBERSYN_SERVER / CYBERSYN_TOKEN / CYBERSYN_CA /
// CYBERSYN_CERT / CYBERSYN_KEY.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "cli/feed_format.h"
#include "cli/signal_table.h"
#include "common/duration.h"
#include "common/tls_config.h"
#include "cybersyn/v1/services.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"

namespace cybersyn::cli {
namespace {

struct Conn {
  std::string server;
  std::string token;
  std::string ca;
  std::string cert;
  std::string key;
  bool json = false;
};

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

void AddConnOptions(CLI::App* cmd, Conn& c) {
  cmd->add_option("--server", c.server,
                  "gRPC address of a Cybersyn process (env CYBERSYN_SERVER; default "
                  "127.0.0.1:7070, what `cybersyn demo` listens on)");
  cmd->add_option("--token", c.token, "operator token (env CYBERSYN_TOKEN)");
  cmd->add_option("--ca", c.ca, "CA certificate (PEM) when the server uses TLS (env CYBERSYN_CA)");
  cmd->add_option("--cert", c.cert,
                  "client certificate (PEM) when the server requires one (mutual TLS; env "
                  "CYBERSYN_CERT)");
  cmd->add_option("--key", c.key, "private key (PEM) of --cert (env CYBERSYN_KEY)");
}

void Resolve(Conn& c) {
  if (c.server.empty()) c.server = Env("CYBERSYN_SERVER", "127.0.0.1:7070");
  if (c.token.empty()) c.token = Env("CYBERSYN_TOKEN");
  if (c.ca.empty()) c.ca = Env("CYBERSYN_CA");
  if (c.cert.empty()) c.cert = Env("CYBERSYN_CERT");
  if (c.key.empty()) c.key = Env("CYBERSYN_KEY");
}

std::shared_ptr<grpc::Channel> Channel(const Conn& c) {
  auto creds = GrpcChannelCredentials({.ca = c.ca, .cert = c.cert, .key = c.key});
  if (!creds.ok()) {
    // A usage error (bad or missing files): nothing to connect with.
    std::cerr << "error: " << creds.status().message() << "\n";
    std::exit(2);
  }
  return grpc::CreateChannel(c.server, *creds);
}

void Prepare(grpc::ClientContext& ctx, const Conn& c, absl::Duration timeout) {
  if (!c.token.empty()) ctx.AddMetadata("authorization", "Bearer " + c.token);
  if (timeout != absl::InfiniteDuration()) {
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  }
}

// Prints what went wrong and what to do about it; returns the exit code.
int Fail(const grpc::Status& s, const Conn& c) {
  std::cerr << "error: " << s.error_message() << "\n";
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      std::cerr << "hint: cannot reach a Cybersyn server at " << c.server
                << ". Is `cybersyn demo` (or an alerter) running? Set --server or "
                   "CYBERSYN_SERVER.\n";
      std::cerr << "hint: if the server uses TLS (listen.tls), pass its CA with --ca; if it "
                   "requires client certificates, also --cert and --key.\n";
      break;
    case grpc::StatusCode::UNAUTHENTICATED:
      std::cerr << "hint: pass an operator token from the config with --token or "
                   "CYBERSYN_TOKEN (`cybersyn demo` prints one).\n";
      break;
    case grpc::StatusCode::PERMISSION_DENIED:
      std::cerr << "hint: your token is scoped to a subtree; use a token of an operator "
                   "whose subtree contains this node.\n";
      break;
    case grpc::StatusCode::NOT_FOUND:
      std::cerr << "hint: `cybersyn signals` lists signal ids; `cybersyn status` shows the "
                   "nodes.\n";
      break;
    default:
      break;
  }
  return 1;
}

std::string Time(int64_t ms) {
  if (ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(ms), absl::LocalTimeZone());
}

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

int RunSignals(Conn c, const std::string& subtree, const std::vector<std::string>& states) {
  Resolve(c);
  auto stub = v1::Alerts::NewStub(Channel(c));
  grpc::ClientContext ctx;
  Prepare(ctx, c, absl::Seconds(10));
  v1::ListRequest req;
  req.set_subtree(subtree);
  for (const std::string& s : states) {
    v1::SignalState st;
    std::string name = "SIGNAL_STATE_" + s;
    for (char& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (!v1::SignalState_Parse(name, &st)) {
      std::cerr << "error: --state " << s
                << ": expected firing, acknowledged, escalated or resolved\n";
      return 2;
    }
    req.add_states(st);
  }
  v1::ListResponse resp;
  grpc::Status st = stub->List(&ctx, req, &resp);
  if (!st.ok()) return Fail(st, c);
  if (c.json) {
    std::cout << ToJson(resp) << "\n";
    return 0;
  }
  std::cout << SignalsTable({resp.signals().begin(), resp.signals().end()}, Time);
  return 0;
}

int RunWatch(Conn c, const std::string& subtree, std::string cursor, int max_events) {
  Resolve(c);
  auto stub = v1::Alerts::NewStub(Channel(c));
  int seen = 0;
  int failures = 0;
  while (true) {
    grpc::ClientContext ctx;
    Prepare(ctx, c, absl::InfiniteDuration());
    v1::WatchRequest req;
    req.set_subtree(subtree);
    req.set_from_cursor(cursor);
    auto reader = stub->Watch(&ctx, req);
    v1::WatchEvent ev;
    while (reader->Read(&ev)) {
      failures = 0;
      if (!ev.cursor().empty()) cursor = ev.cursor();
      if (ev.heartbeat()) continue;
      std::cout << (c.json ? ToJson(ev.event()) : FeedLine(ev.event())) << std::endl;
      if (max_events > 0 && ++seen >= max_events) {
        ctx.TryCancel();
        return 0;
      }
    }
    grpc::Status st = reader->Finish();
    if (st.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
        st.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
        st.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      return Fail(st, c);
    }
    if (++failures > 30) return Fail(st, c);
    std::cerr << "watch: " << (st.ok() ? "stream ended" : st.error_message())
              << "; reconnecting from cursor " << (cursor.empty() ? "(now)" : cursor) << "\n";
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

int RunAct(Conn c, const std::string& verb, const std::string& id, const std::string& reason,
           const std::string& for_text) {
  Resolve(c);
  auto stub = v1::Alerts::NewStub(Channel(c));
  grpc::ClientContext ctx;
  Prepare(ctx, c, absl::Seconds(10));
  v1::ActResponse resp;
  grpc::Status st;
  if (verb == "silence") {
    auto d = ParseDuration(for_text);
    if (!d.ok()) {
      std::cerr << "error: --for: " << d.status().message() << "\n";
      return 2;
    }
    v1::SilenceRequest req;
    req.set_signal_id(id);
    req.set_duration_ms(absl::ToInt64Milliseconds(*d));
    req.set_reason(reason);
    st = stub->Silence(&ctx, req, &resp);
  } else {
    v1::ActRequest req;
    req.set_signal_id(id);
    req.set_reason(reason);
    st = verb == "ack" ? stub->Acknowledge(&ctx, req, &resp) : stub->Resolve(&ctx, req, &resp);
  }
  if (!st.ok()) return Fail(st, c);
  std::cout << verb << " of " << id << " accepted (command " << resp.command_id()
            << "); `cybersyn watch` shows the transition\n";
  return 0;
}

std::string Sparkline(const std::vector<double>& v) {
  static const char* kBars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  if (v.empty()) return "";
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  std::string out;
  for (double x : v) {
    const int i = *hi == *lo ? 3 : static_cast<int>((x - *lo) / (*hi - *lo) * 7.0 + 0.5);
    out += kBars[std::clamp(i, 0, 7)];
  }
  return out;
}

int RunSeries(Conn c, const std::string& node, const std::string& indicator,
              const std::string& since, const std::string& window) {
  Resolve(c);
  auto stub = v1::Query::NewStub(Channel(c));
  v1::SeriesHistoryRequest req;
  req.set_node(node);
  req.set_indicator(indicator);
  if (!window.empty()) {
    auto w = ParseDuration(window);
    if (!w.ok()) {
      std::cerr << "error: --window: " << w.status().message() << "\n";
      return 2;
    }
    req.set_window_ms(absl::ToInt64Milliseconds(*w));
  }
  if (!since.empty()) {
    auto s = ParseDuration(since);
    if (!s.ok()) {
      std::cerr << "error: --since: " << s.status().message() << "\n";
      return 2;
    }
    req.set_from_ms(absl::ToUnixMillis(absl::Now() - *s));
  }
  grpc::ClientContext ctx;
  Prepare(ctx, c, absl::Seconds(10));
  v1::SeriesHistoryResponse resp;
  grpc::Status st = stub->SeriesHistory(&ctx, req, &resp);
  if (!st.ok()) return Fail(st, c);
  if (c.json) {
    std::cout << ToJson(resp) << "\n";
    return 0;
  }
  std::vector<double> values;
  std::cout << absl::StrFormat("%-19s %12s %8s %12s %12s %12s %s\n", "WINDOW START", "VALUE",
                               "COUNT", "FORECAST", "LOWER", "UPPER", "SIGNALS");
  for (const v1::SeriesPoint& p : resp.points()) {
    values.push_back(p.aggregate().value());
    std::cout << absl::StrFormat(
        "%-19s %12.4g %8d %12s %12s %12s %s\n", Time(p.aggregate().window_start_ms()),
        p.aggregate().value(), p.aggregate().count(),
        p.has_forecast() ? absl::StrFormat("%.4g", p.forecast()) : "-",
        p.has_forecast() ? absl::StrFormat("%.4g", p.forecast_lower()) : "-",
        p.has_forecast() ? absl::StrFormat("%.4g", p.forecast_upper()) : "-",
        absl::StrJoin(p.signal_ids(), ","));
  }
  std::cout << node << " " << indicator << "  " << Sparkline(values) << "  (" << values.size()
            << " windows)\n";
  return 0;
}

int RunStatus(Conn c, const std::string& node, int depth) {
  Resolve(c);
  auto stub = v1::Query::NewStub(Channel(c));
  v1::NodeStatusRequest req;
  req.set_node(node);
  req.set_depth(depth);
  grpc::ClientContext ctx;
  Prepare(ctx, c, absl::Seconds(10));
  v1::NodeStatus resp;
  grpc::Status st = stub->GetStatus(&ctx, req, &resp);
  if (!st.ok()) return Fail(st, c);
  if (c.json) {
    std::cout << ToJson(resp) << "\n";
    return 0;
  }
  std::cout << StatusTree(resp);
  return 0;
}

}  // namespace

void AddOperatorCommands(CLI::App& app, int& exit_code) {
  const char* footer =
      "Connection: --server (CYBERSYN_SERVER, default 127.0.0.1:7070), --token "
      "(CYBERSYN_TOKEN), --ca (CYBERSYN_CA) for TLS, --cert/--key (CYBERSYN_CERT/CYBERSYN_KEY)\n"
      "for mutual TLS.";
  {
    auto c = std::make_shared<Conn>();
    auto subtree = std::make_shared<std::string>();
    auto states = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = app.add_subcommand(
        "signals",
        "List signals (open ones by default) as a table: one row per fault, with the other "
        "nodes and indicators where it is also visible (they raise nothing of their own)");
    AddConnOptions(cmd, *c);
    cmd->add_option("--subtree", *subtree, "only signals that originated under this node");
    cmd->add_option("--state", *states, "firing|acknowledged|escalated|resolved (repeatable)");
    cmd->add_flag("--json", c->json, "print JSON instead of a table");
    cmd->footer(footer);
    cmd->callback([=, &exit_code] { exit_code = RunSignals(*c, *subtree, *states); });
  }
  {
    auto c = std::make_shared<Conn>();
    auto subtree = std::make_shared<std::string>();
    auto from = std::make_shared<std::string>();
    auto max = std::make_shared<int>(0);
    CLI::App* cmd = app.add_subcommand(
        "watch", "Follow signal transitions live; reconnects and resumes without gaps");
    AddConnOptions(cmd, *c);
    cmd->add_option("--subtree", *subtree, "only this part of the tree (default: your scope)");
    cmd->add_option("--from", *from, "resume after this cursor (printed with --json)");
    cmd->add_option("--max-events", *max, "exit after this many events (0 = never)");
    cmd->add_flag("--json", c->json, "one JSON SignalEvent per line");
    cmd->footer(footer);
    cmd->callback([=, &exit_code] { exit_code = RunWatch(*c, *subtree, *from, *max); });
  }
  for (const char* verb : {"ack", "resolve", "silence"}) {
    auto c = std::make_shared<Conn>();
    auto id = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    auto for_text = std::make_shared<std::string>();
    const std::string v = verb;
    const char* help = v == "ack" ? "Acknowledge a signal: someone is on it (stops the ack "
                                    "deadline, not the resolve deadline)"
                       : v == "resolve"
                           ? "Resolve a signal: it is fixed"
                           : "Mute a signal's delivery for a while (detection goes on)";
    CLI::App* cmd = app.add_subcommand(v, help);
    AddConnOptions(cmd, *c);
    cmd->add_option("ID", *id, "signal id (from `cybersyn signals`)")->required();
    cmd->add_option("--reason", *reason, "why; recorded in the signal's history");
    if (v == "silence") cmd->add_option("--for", *for_text, "how long, e.g. 30m or 2h")->required();
    cmd->footer(footer);
    cmd->callback([=, &exit_code] { exit_code = RunAct(*c, v, *id, *reason, *for_text); });
  }
  {
    auto c = std::make_shared<Conn>();
    auto node = std::make_shared<std::string>();
    auto indicator = std::make_shared<std::string>();
    auto since = std::make_shared<std::string>();
    auto window = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand(
        "series", "Closed windows of one series with the detector's forecast, and a sparkline");
    AddConnOptions(cmd, *c);
    cmd->add_option("NODE", *node, "node path, e.g. cl/textiles/yarur/spinning")->required();
    cmd->add_option("INDICATOR", *indicator, "indicator name, e.g. output")->required();
    cmd->add_option("--since", *since, "only windows newer than this, e.g. 1h");
    cmd->add_option("--window", *window, "window size (default: the smallest configured)");
    cmd->add_flag("--json", c->json, "print JSON");
    cmd->footer(footer);
    cmd->callback(
        [=, &exit_code] { exit_code = RunSeries(*c, *node, *indicator, *since, *window); });
  }
  {
    auto c = std::make_shared<Conn>();
    auto node = std::make_shared<std::string>();
    auto depth = std::make_shared<int>(8);
    CLI::App* cmd = app.add_subcommand(
        "status",
        "The tree under a node with each node's worst open signal, its open problems (rewards "
        "apart), the faults also visible there, and its last values");
    AddConnOptions(cmd, *c);
    cmd->add_option("NODE", *node, "node path (default: your token's subtree)");
    cmd->add_option("--depth", *depth, "levels below NODE to show")->capture_default_str();
    cmd->add_flag("--json", c->json, "print JSON");
    cmd->footer(footer);
    cmd->callback([=, &exit_code] { exit_code = RunStatus(*c, *node, *depth); });
  }
}

}  // namespace cybersyn::cli
