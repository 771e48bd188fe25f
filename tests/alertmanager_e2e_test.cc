// The Alertmanager bridge against a REAL Alertmanager (Debian prometheus-alertmanager on
// loopback, temp config and storage): `cybersyn demo --alertmanager URL` raises signals, they
// appear in Alertmanager's GET /api/v2/alerts with the bridge's labels; resolving one with the CLI
// makes it disappear (no longer active). And one fault is one alert: a real `cybersyn alerter`
// on the real broker, whose unit's output step also moves its productivity (attribution,
// docs/attribution.md), posts one alert with the index in its annotations, not two.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/alerter_testing.h"
#include "tests/testing/process.h"
#include "tests/testing/real_kafka.h"

namespace cybersyn {
namespace {

using ::testing::HasSubstr;

const std::string kBin = std::string(CYBERSYN_BINARY_DIR) + "/cli/cybersyn";
const char* const kAlertmanager = "/usr/bin/prometheus-alertmanager";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& out, const std::string& err) {
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    freopen(out.c_str(), "w", stdout);
    freopen(err.c_str(), "w", stderr);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

void Stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    absl::SleepFor(absl::Milliseconds(100));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

CliRun Cli(const std::string& dir, const std::string& args) {
  const std::string out = dir + "/cli.out", err = dir + "/cli.err";
  const int rc =
      std::system(absl::StrCat("timeout 30 ", kBin, " ", args, " >", out, " 2>", err).c_str());
  return {WEXITSTATUS(rc), Slurp(out), Slurp(err)};
}

// Active CybersynSignal alerts in Alertmanager.
std::vector<nlohmann::json> ActiveAlerts(httplib::Client& am) {
  std::vector<nlohmann::json> out;
  auto res = am.Get("/api/v2/alerts?active=true&silenced=false&inhibited=false");
  if (!res || res->status != 200) return out;
  for (const auto& a : nlohmann::json::parse(res->body)) {
    if (a["labels"].value("alertname", "") == "CybersynSignal" &&
        a["status"].value("state", "") == "active") {
      out.push_back(a);
    }
  }
  return out;
}

class AlertmanagerE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(kAlertmanager, X_OK), 0)
        << kAlertmanager << " not found: install the Debian package prometheus-alertmanager "
        << "(CYBERSYN_SETUP_EXTRAS=prometheus bash deploy/setup.sh; ./dev.sh test does this)";
    std::string tmpl = ::testing::TempDir() + "/alertmanager_e2e_XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    std::ofstream(dir_ + "/alertmanager.yml") << "route:\n  receiver: blackhole\n"
                                                 "receivers:\n  - name: blackhole\n";
    am_port_ = FreePort();
    am_pid_ = Spawn({kAlertmanager, "--config.file=" + dir_ + "/alertmanager.yml",
                     "--storage.path=" + dir_ + "/am-data",
                     absl::StrCat("--web.listen-address=127.0.0.1:", am_port_),
                     "--cluster.listen-address="},  // no gossip port: a single instance
                    dir_ + "/am.out", dir_ + "/am.err");
    httplib::Client c("127.0.0.1", am_port_);
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    bool ready = false;
    while (!ready && absl::Now() < deadline) {
      auto res = c.Get("/-/ready");
      ready = res && res->status == 200;
      if (!ready) absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_TRUE(ready) << "Alertmanager did not get ready: " << Slurp(dir_ + "/am.err");
  }
  void TearDown() override {
    Stop(demo_pid_);
    Stop(am_pid_);
  }

  std::string dir_;
  int am_port_ = 0;
  pid_t am_pid_ = -1;
  pid_t demo_pid_ = -1;
};

TEST_F(AlertmanagerE2eTest, SignalsAppearInAlertmanagerAndDisappearWhenResolved) {
  const std::string demo_out = dir_ + "/demo.out";
  // Free ports: a demo on the default ones would share them (SO_REUSEPORT) with another test's.
  demo_pid_ = Spawn({kBin, "demo", "--duration", "150s", "--seed", "1", "--listen-grpc",
                     "127.0.0.1:0", "--listen-http", "127.0.0.1:0", "--alertmanager",
                     absl::StrCat("http://127.0.0.1:", am_port_)},
                    demo_out, dir_ + "/demo.err");
  // The banner names the gRPC and metrics addresses (free ports when the defaults are taken).
  const std::vector<std::string> banner = testing::WaitForLogCaptures(
      demo_out, {R"(gRPC\s+(\S+))", R"(metrics\s+http://(\S+)/metrics)"}, absl::Seconds(30));
  const std::string grpc = banner[0], http = banner[1];
  ASSERT_FALSE(grpc.empty()) << Slurp(demo_out) << Slurp(dir_ + "/demo.err");
  EXPECT_THAT(Slurp(demo_out), HasSubstr("Alertmanager    http://127.0.0.1:"));
  const std::string conn = absl::StrCat("--server ", grpc, " --token demo-cl");

  // A signal shows up in Alertmanager with the bridge's labels, and is open in Cybersyn.
  httplib::Client am("127.0.0.1", am_port_);
  std::string id;
  nlohmann::json alert;
  for (const absl::Time d = absl::Now() + absl::Seconds(75); id.empty() && absl::Now() < d;) {
    for (const nlohmann::json& a : ActiveAlerts(am)) {
      // Pick one the CLI lists as open (a unit-level alert may auto-resolve meanwhile).
      const std::string sid = a["labels"].value("signal_id", "");
      CliRun list = Cli(dir_, "signals --json " + conn);
      if (list.code == 0 && list.out.find("\"" + sid + "\"") != std::string::npos) {
        id = sid;
        alert = a;
        break;
      }
    }
    if (id.empty()) absl::SleepFor(absl::Milliseconds(500));
  }
  ASSERT_FALSE(id.empty()) << "no CybersynSignal alert reached Alertmanager\n"
                           << Slurp(demo_out) << Slurp(dir_ + "/demo.err");
  const nlohmann::json& labels = alert["labels"];
  EXPECT_THAT(id, ::testing::StartsWith("sig-"));
  EXPECT_THAT(labels.value("node", ""), ::testing::StartsWith("cl"));
  EXPECT_THAT(labels.value("origin", ""), ::testing::StartsWith("cl/"));
  EXPECT_THAT(labels.value("level", ""),
              ::testing::AnyOf("unit", "enterprise", "sector", "nation"));
  EXPECT_THAT(labels.value("kind", ""),
              ::testing::AnyOf("step", "slope", "transient", "threshold", "no_data"));
  EXPECT_THAT(labels.value("severity", ""), ::testing::AnyOf("warning", "critical"));
  EXPECT_THAT(labels.value("indicator", ""),
              ::testing::AnyOf("output", "capacity", "potential", "energy", "productivity",
                               "latency", "performance"));
  EXPECT_FALSE(alert["annotations"].value("summary", "").empty());

  // Resolve it with the CLI: the bridge ends it (endsAt = now) and Alertmanager drops it.
  CliRun resolve = Cli(dir_, absl::StrCat("resolve ", id, " --reason fixed-by-test ", conn));
  ASSERT_EQ(resolve.code, 0) << resolve.out << resolve.err;
  bool gone = false;
  for (const absl::Time d = absl::Now() + absl::Seconds(30); !gone && absl::Now() < d;) {
    gone = true;
    for (const nlohmann::json& a : ActiveAlerts(am)) {
      if (a["labels"].value("signal_id", "") == id) gone = false;
    }
    if (!gone) absl::SleepFor(absl::Milliseconds(250));
  }
  EXPECT_TRUE(gone) << id << " still active in Alertmanager after it was resolved";

  // The bridge counts its posts.
  const size_t colon = http.rfind(':');
  httplib::Client metrics(http.substr(0, colon), std::stoi(http.substr(colon + 1)));
  auto m = metrics.Get("/metrics");
  ASSERT_TRUE(m);
  std::smatch ok;
  ASSERT_TRUE(std::regex_search(
      m->body, ok, std::regex(R"(cybersyn_alerter_alertmanager_posts_total\{result="ok"\} (\d+))")))
      << m->body.substr(0, 2000);
  EXPECT_GE(std::stoi(ok[1]), 2);
  EXPECT_THAT(m->body, HasSubstr("cybersyn_alerter_alertmanager_posts_total{result=\"failed\"} 0"));
}

// One fault, one alert: the unit's output steps and its productivity moves with it. The alerter
// raises one signal (the index is explained by its base), and Alertmanager receives one alert
// for it, whose annotations name where the fault is also visible; no alert for the index. The
// CLI and the alerter's Opsroom API list the same one signal with the index.
TEST_F(AlertmanagerE2eTest, OneFaultIsOneAlertWithItsAlsoVisibleSeries) {
  auto k = testing::GetRealKafka();
  ASSERT_TRUE(k.ok()) << k.status();
  const std::string prefix = testing::UniqueName("amattr");
  const std::string config = dir_ + "/alerter.yaml";
  std::ofstream(config) << testing::TextilesConfigYaml(
      k->bootstrap, prefix,
      absl::StrCat(R"(
  - {name: capacity, unit: t, rollup: sum, role: capability}
operators:
  - {name: ana, subtree: textiles, token: tok-ana}
alerter:
  state_dir: ")",
                   dir_, R"(/state"
  warmup: 5
  auto_resolve_after: 3
  alertmanager: {url: "http://127.0.0.1:)",
                   am_port_, R"(", resend_interval: 1s}
)"));
  const std::string log = dir_ + "/alerter.log";
  demo_pid_ = Spawn({kBin, "alerter", "--config", config, "--listen-grpc", "127.0.0.1:0",
                     "--metrics", "127.0.0.1:0", "--opsroom-listen", "127.0.0.1:0"},
                    log, dir_ + "/alerter.err");
  const std::vector<std::string> banner =
      testing::WaitForLogCaptures(log, {R"(Opsroom on http://(\S+)/)", R"(gRPC Alerts on (\S+),)"},
                                  absl::Seconds(60), demo_pid_);
  const std::string web = banner[0], grpc = banner[1];
  ASSERT_FALSE(web.empty()) << Slurp(log) << Slurp(dir_ + "/alerter.err");

  // 4 windows after the step: enough to confirm it, too few for hysteresis to resolve it.
  const std::string unit = "textiles/yarur/spinning";
  ASSERT_TRUE(testing::ProduceAttributedStep({k->bootstrap, {}}, prefix + ".aggregates", unit,
                                             1'700'000'000'000, 44)
                  .ok());

  // Alertmanager holds one alert for the unit, with the index among its also-visible series.
  httplib::Client am("127.0.0.1", am_port_);
  std::vector<nlohmann::json> alerts;
  for (const absl::Time d = absl::Now() + absl::Seconds(60); absl::Now() < d;) {
    alerts = ActiveAlerts(am);
    if (!alerts.empty() && alerts[0]["annotations"].contains("also_visible_at")) break;
    absl::SleepFor(absl::Milliseconds(250));
  }
  absl::SleepFor(absl::Seconds(2));  // a second alert, had the index raised one, would be here
  alerts = ActiveAlerts(am);
  ASSERT_EQ(alerts.size(), 1u) << nlohmann::json(alerts).dump(1) << Slurp(log);
  const nlohmann::json& a = alerts[0];
  EXPECT_EQ(a["labels"].value("origin", ""), unit);
  EXPECT_EQ(a["labels"].value("indicator", ""), "output");
  EXPECT_EQ(a["annotations"].value("affected_nodes", ""), unit);
  EXPECT_EQ(a["annotations"].value("also_visible_at", ""),
            "textiles/yarur/spinning productivity (60 s)");
  const std::string id = a["labels"].value("signal_id", "");

  // `cybersyn signals` shows the one row with the index; so does the Opsroom's API.
  CliRun list = Cli(dir_, absl::StrCat("signals --server ", grpc, " --token tok-ana"));
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("textiles/yarur/spinning productivity"));
  EXPECT_THAT(list.out, HasSubstr(id));
  EXPECT_THAT(list.out, HasSubstr("1 signal(s): 1 problem(s)"));
  const size_t colon = web.rfind(':');
  httplib::Client http(web.substr(0, colon), std::stoi(web.substr(colon + 1)));
  auto res = http.Get("/api/signals");
  ASSERT_TRUE(res);
  const nlohmann::json signals = nlohmann::json::parse(res->body)["signals"];
  ASSERT_EQ(signals.size(), 1u) << res->body;
  EXPECT_EQ(signals[0]["also_visible_at"][0]["series"]["indicator"], "productivity");
}

}  // namespace
}  // namespace cybersyn
