// `cybersyn alerter --opsroom-listen` outside the demo, on the real Kafka broker: the alerter
// process serves the Opsroom (page + API, reading its own QueryStore) and the Query gRPC service
// beside Alerts. A step in a unit's output raises a signal that the Opsroom lists; the Opsroom's
// ack goes through; `cybersyn status` (Query over gRPC) answers.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/kafka_producer.h"
#include "common/status.h"
#include "cybersyn/v1/aggregate.pb.h"
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
constexpr char kUnit[] = "textiles/yarur/spinning";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(AlerterOpsroomTest, AlerterServesTheOpsroomAndQuery) {
  auto k = testing::GetRealKafka();
  ASSERT_TRUE(k.ok()) << k.status();
  const std::string prefix = testing::UniqueName("opsr");
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / prefix;
  std::filesystem::create_directories(dir);
  const std::string config = (dir / "alerter.yaml").string();
  std::ofstream(config) << absl::StrReplaceAll(
      R"(
kafka: {bootstrap: "BOOT", topic_prefix: PREFIX, partitions: 2}
levels:
  - {name: sector, ack_within: 1h, resolve_within: 4h}
  - {name: enterprise, ack_within: 15m, resolve_within: 2h}
  - {name: unit, ack_within: 5m, resolve_within: 1h}
hierarchy:
  textiles:
    children:
      yarur: {children: {spinning: {}, weaving: {}}}
indicators:
  - {name: output, unit: t, rollup: sum}
operators:
  - {name: ana, subtree: textiles/yarur, token: tok-ana}
alerter: {state_dir: "STATE", warmup: 5, auto_resolve_after: 3}
)",
      {{"BOOT", k->bootstrap}, {"PREFIX", prefix}, {"STATE", (dir / "state").string()}});
  const std::string log = (dir / "alerter.log").string();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    freopen(log.c_str(), "w", stdout);
    dup2(fileno(stdout), 2);
    execl(kBin.c_str(), kBin.c_str(), "alerter", "--config", config.c_str(), "--listen-grpc",
          "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--opsroom-listen", "127.0.0.1:0",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  struct Reap {
    pid_t pid;
    ~Reap() {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
  } reap{child};

  const std::vector<std::string> banner = testing::WaitForLogCaptures(
      log, {R"(Opsroom on http://(\S+)/)", R"(gRPC Alerts on (\S+),)"}, absl::Seconds(60), child);
  const std::string web = banner[0], grpc = banner[1];
  ASSERT_FALSE(web.empty()) << Slurp(log);
  const size_t colon = web.rfind(':');
  httplib::Client http(web.substr(0, colon), std::stoi(web.substr(colon + 1)));
  http.set_default_headers({{"Authorization", "Bearer tok-ana"}});

  auto page = http.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_THAT(page->body, HasSubstr("<title>Cybersyn Opsroom</title>"));
  auto who = http.Get("/api/whoami");
  ASSERT_TRUE(who);
  EXPECT_EQ(nlohmann::json::parse(who->body)["name"], "ana");

  // A step raises a signal; the Opsroom's list (from the alerter's own QueryStore) shows it.
  ASSERT_TRUE(
      testing::ProduceStep({k->bootstrap, {}}, prefix + ".aggregates", kUnit, 1'700'000'000'000)
          .ok());
  std::string id;
  for (const absl::Time d = absl::Now() + absl::Seconds(60); id.empty() && absl::Now() < d;) {
    auto res = http.Get("/api/signals");
    if (res && res->status == 200) {
      for (const auto& s : nlohmann::json::parse(res->body).value("signals", nlohmann::json())) {
        if (s["origin_node"] == kUnit) id = s["id"];
      }
    }
    if (id.empty()) absl::SleepFor(absl::Milliseconds(300));
  }
  ASSERT_FALSE(id.empty()) << Slurp(log);

  // Acknowledge from the Opsroom; the alerter applies it and the Opsroom shows it.
  auto ack = http.Post(absl::StrCat("/api/signals/", id, "/ack"), R"({"reason":"on it"})",
                       "application/json");
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->status, 200) << ack->body;
  bool acknowledged = false;
  for (const absl::Time d = absl::Now() + absl::Seconds(30); !acknowledged && absl::Now() < d;) {
    auto res = http.Get("/api/signals");
    if (res && res->status == 200) {
      for (const auto& s : nlohmann::json::parse(res->body).value("signals", nlohmann::json())) {
        if (s["id"] == id && s.value("state", "") == "SIGNAL_STATE_ACKNOWLEDGED") {
          acknowledged = true;
        }
      }
    }
    if (!acknowledged) absl::SleepFor(absl::Milliseconds(300));
  }
  EXPECT_TRUE(acknowledged) << id;

  // The Query service answers on the alerter's gRPC address.
  const std::string out = (dir / "status.out").string();
  const int rc = std::system(absl::StrCat("timeout 30 ", kBin, " status textiles/yarur --server ",
                                          grpc, " --token tok-ana >", out, " 2>&1")
                                 .c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 0) << Slurp(out);
  EXPECT_THAT(Slurp(out), HasSubstr(kUnit));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cybersyn
