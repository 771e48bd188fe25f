// The alerter against the real Kafka broker: gRPC end to end (watch, act, authorisation, resume
// from a cursor) and an escalation deadline that passes while the alerter process is kill -9'd.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "alerter/alerter_service.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "common/rocksdb_store.h"
#include "common/status.h"
#include "cybersyn/v1/aggregate.pb.h"
#include "cybersyn/v1/services.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/alerter_testing.h"
#include "tests/testing/real_kafka.h"

namespace cybersyn {
namespace {

constexpr char kUnit[] = "textiles/yarur/spinning";

std::string ConfigYaml(const std::string& bootstrap, const std::string& prefix,
                       const std::string& state_dir) {
  return testing::TextilesConfigYaml(bootstrap, prefix,
                                     absl::StrCat(R"(operators:
  - {name: ana, subtree: textiles/yarur, token: tok-ana}
  - {name: bo, subtree: textiles/sumar, token: tok-bo}
alerter: {state_dir: ")",
                                                  state_dir, R"(", warmup: 5, auto_resolve_after: 3}
)"));
}

using testing::ProduceStep;

class AlerterE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = testing::GetRealKafka();
    ASSERT_TRUE(k.ok()) << k.status();
    client_ = {k->bootstrap, {}};
    prefix_ = testing::UniqueName("alrt");
    dir_ = std::filesystem::temp_directory_path() / prefix_;
    std::filesystem::create_directories(dir_);
    yaml_ = ConfigYaml(k->bootstrap, prefix_, (dir_ / "state").string());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  KafkaClientOptions client_;
  std::string prefix_;
  std::filesystem::path dir_;
  std::string yaml_;
};

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("authorization", "Bearer " + token);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return ctx;
}

// Reads watch events until `pred` accepts one (returned) or the stream ends / times out.
std::optional<v1::WatchEvent> ReadUntil(grpc::ClientReader<v1::WatchEvent>* r,
                                        const std::function<bool(const v1::WatchEvent&)>& pred,
                                        std::vector<v1::WatchEvent>* seen = nullptr) {
  v1::WatchEvent e;
  while (r->Read(&e)) {
    if (seen != nullptr && !e.heartbeat()) seen->push_back(e);
    if (pred(e)) return e;
  }
  return std::nullopt;
}

TEST_F(AlerterE2eTest, OperatorWatchesAcknowledgesAndResumesFromCursor) {
  auto cfg = LoadConfigString(yaml_, "e2e.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const TopicNames names(prefix_);
  alerter::AlerterServiceOptions o;
  o.config = std::make_shared<const Config>(std::move(*cfg));
  o.client = client_;
  o.listen_grpc = "127.0.0.1:0";
  o.listen_metrics = "127.0.0.1:0";
  o.heartbeat = absl::Milliseconds(200);
  auto svc = alerter::AlerterService::Start(o);
  ASSERT_TRUE(svc.ok()) << svc.status();
  auto channel = grpc::CreateChannel((*svc)->grpc_address(), grpc::InsecureChannelCredentials());
  auto stub = v1::Alerts::NewStub(channel);

  // Authorisation first: unknown token, another enterprise's scope.
  {
    v1::ListResponse lr;
    v1::ListRequest req;
    EXPECT_EQ(stub->List(Ctx("nope").get(), req, &lr).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    req.set_subtree("textiles/yarur");
    EXPECT_EQ(stub->List(Ctx("tok-bo").get(), req, &lr).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    auto bo_ctx = Ctx("tok-bo");
    v1::WatchRequest wr;
    wr.set_subtree("textiles/yarur");
    auto bo_watch = stub->Watch(bo_ctx.get(), wr);
    v1::WatchEvent e;
    EXPECT_FALSE(bo_watch->Read(&e));
    EXPECT_EQ(bo_watch->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }

  auto ana_ctx = Ctx("tok-ana");
  v1::WatchRequest wr;
  wr.set_subtree("textiles/yarur");
  auto watch = stub->Watch(ana_ctx.get(), wr);
  auto hb = ReadUntil(watch.get(), [](const v1::WatchEvent& e) { return e.heartbeat(); });
  ASSERT_TRUE(hb.has_value());
  EXPECT_THAT(hb->cursor(), ::testing::StartsWith("v1:"));

  const absl::Time produced = absl::Now();
  ASSERT_TRUE(ProduceStep(client_, names.aggregates, kUnit, 1'700'000'000'000).ok());
  // A step in another enterprise: must not reach ana's stream.
  ASSERT_TRUE(
      ProduceStep(client_, names.aggregates, "textiles/sumar/spinning", 1'700'000'000'000).ok());
  std::vector<v1::WatchEvent> seen;
  auto raised = ReadUntil(
      watch.get(),
      [](const v1::WatchEvent& e) {
        return e.event().transition().kind() == v1::TRANSITION_KIND_RAISED;
      },
      &seen);
  ASSERT_TRUE(raised.has_value()) << "no RAISED event";
  std::cout << "window -> watcher latency (incl. producing 86 windows): "
            << absl::FormatDuration(absl::Now() - produced) << std::endl;
  const v1::Signal& sig = raised->event().signal();
  EXPECT_EQ(sig.origin_node(), kUnit);
  EXPECT_EQ(sig.current_node(), kUnit);
  EXPECT_NE(sig.kind(), v1::SIGNAL_KIND_REWARD);
  EXPECT_NE(sig.severity(), v1::SEVERITY_REWARD);
  EXPECT_EQ(sig.series().indicator(), "output");
  EXPECT_GT(sig.ack_deadline_ms(), 0);
  EXPECT_GE(sig.window_start_ms(), 1'700'000'000'000 + 40 * 60000);
  const std::string cursor_after_raise = raised->cursor();
  for (const auto& e : seen) EXPECT_EQ(e.event().signal().origin_node(), kUnit);

  // Disconnect; act while disconnected.
  ana_ctx->TryCancel();
  (void)watch->Finish();

  // bo may not act on ana's signal; unknown tokens are refused.
  v1::ActRequest ack;
  ack.set_signal_id(sig.id());
  ack.set_reason("on it");
  v1::ActResponse resp;
  EXPECT_EQ(stub->Acknowledge(Ctx("tok-bo").get(), ack, &resp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(stub->Acknowledge(Ctx("tok-anna").get(), ack, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status st = stub->Acknowledge(Ctx("tok-ana").get(), ack, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_FALSE(resp.command_id().empty());

  // Resume from the cursor: the next event is the acknowledgement, nothing repeated or missed.
  auto ctx2 = Ctx("tok-ana");
  v1::WatchRequest wr2;
  wr2.set_subtree("textiles/yarur");
  wr2.set_from_cursor(cursor_after_raise);
  auto watch2 = stub->Watch(ctx2.get(), wr2);
  std::vector<v1::WatchEvent> resumed;
  auto acked = ReadUntil(
      watch2.get(),
      [](const v1::WatchEvent& e) {
        return e.event().transition().kind() == v1::TRANSITION_KIND_ACKNOWLEDGED;
      },
      &resumed);
  ASSERT_TRUE(acked.has_value());
  EXPECT_EQ(acked->event().signal().id(), sig.id());
  EXPECT_EQ(acked->event().transition().actor(), "ana");
  EXPECT_EQ(acked->event().signal().state(), v1::SIGNAL_STATE_ACKNOWLEDGED);
  for (const auto& e : resumed) {
    EXPECT_NE(e.event().transition().kind(), v1::TRANSITION_KIND_RAISED)
        << "an event before the cursor was repeated";
    EXPECT_EQ(e.event().signal().origin_node(), kUnit);
  }
  // Everything between the raise and the ack (e.g. UPDATED) in one stream equals the other:
  // the resumed stream begins exactly after the cursor.
  ctx2->TryCancel();
  (void)watch2->Finish();

  // List shows the acknowledged signal to ana, nothing of yarur to bo's scope.
  v1::ListRequest lreq;
  v1::ListResponse lresp;
  ASSERT_TRUE(stub->List(Ctx("tok-ana").get(), lreq, &lresp).ok());
  bool listed = false;
  for (const auto& s : lresp.signals()) {
    listed |= s.id() == sig.id();
    EXPECT_TRUE(Hierarchy::PathIsInSubtree(s.origin_node(), "textiles/yarur"));
  }
  EXPECT_TRUE(listed);
  ASSERT_TRUE((*svc)->status().ok()) << (*svc)->status();
  EXPECT_GE((*svc)->alerter()->stats().aggregates, 86u);

  // The processor restarts in-process (what `cybersyn alerter` does after a runtime failure such
  // as a fenced consumer): the new one restores the open signal from the changelog and applies
  // the next command; the gRPC server stays up throughout.
  ASSERT_TRUE((*svc)->RestartProcessor().ok());
  v1::ActRequest resolve;
  resolve.set_signal_id(sig.id());
  resolve.set_reason("fixed");
  st = stub->Resolve(Ctx("tok-ana").get(), resolve, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto ctx3 = Ctx("tok-ana");
  v1::WatchRequest wr3;
  wr3.set_subtree("textiles/yarur");
  wr3.set_from_cursor(acked->cursor());
  auto watch3 = stub->Watch(ctx3.get(), wr3);
  auto resolved = ReadUntil(watch3.get(), [](const v1::WatchEvent& e) {
    return e.event().transition().kind() == v1::TRANSITION_KIND_RESOLVED;
  });
  ASSERT_TRUE(resolved.has_value()) << "the restarted processor did not resolve the signal";
  EXPECT_EQ(resolved->event().signal().id(), sig.id());
  EXPECT_EQ(resolved->event().transition().actor(), "ana");
  ctx3->TryCancel();
  (void)watch3->Finish();
  EXPECT_TRUE((*svc)->status().ok()) << (*svc)->status();
  (*svc)->Stop();
}

// --- kill -9 ----------------------------------------------------------------------------------

pid_t Spawn(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = freopen(log.c_str(), "a", stdout);
    (void)f;
    dup2(fileno(stdout), 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// The `cybersyn` binary these tests run: $CYBERSYN_ALERTER_BIN (e.g. an older build, to show a
// test fails there) or the one built beside them.
std::string Binary() {
  if (const char* b = std::getenv("CYBERSYN_ALERTER_BIN"); b != nullptr && *b) return b;
  return CYBERSYN_BINARY_DIR "/cli/cybersyn";
}

// Reads <prefix>.signals (read_committed) from the beginning of both partitions.
class SignalReader {
 public:
  SignalReader(const KafkaClientOptions& client, const TopicNames& names) {
    auto c = KafkaConsumer::Create({client});
    EXPECT_TRUE(c.ok());
    reader_ = std::move(*c);
    // Topics are created by the child; wait for them before assigning.
    const absl::Time t0 = absl::Now();
    while (absl::Now() - t0 < absl::Seconds(60)) {
      auto info = DescribeCluster(client);
      if (info.ok() && info->topics.contains(names.signals)) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    EXPECT_TRUE(reader_->Assign({{names.signals, 0, -2}, {names.signals, 1, -2}}).ok());
  }
  bool ReadUntil(const std::function<bool()>& done, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!done() && absl::Now() < deadline) {
      auto msgs = reader_->ConsumeBatch(100, absl::Milliseconds(200));
      if (!msgs.ok()) continue;
      for (const auto& m : *msgs) {
        v1::SignalEvent e;
        if (e.ParseFromArray(m.value().data(), static_cast<int>(m.value().size()))) {
          events.push_back(e);
        }
      }
    }
    return done();
  }
  int Count(v1::TransitionKind k) const {
    return static_cast<int>(std::count_if(
        events.begin(), events.end(), [&](const auto& e) { return e.transition().kind() == k; }));
  }
  std::vector<v1::SignalEvent> events;

 private:
  std::unique_ptr<KafkaConsumer> reader_;
};

// Issue 19, bug 3, on the real process and store: an open signal whose local entry no longer
// decodes was dropped silently at restore (the signal vanished: an operator's acknowledgement
// then found nothing). Now the partition is rebuilt from the changelog and the signal is there.
TEST_F(AlerterE2eTest, CorruptOpenSignalInTheLocalStoreIsRebuiltNotDropped) {
  const std::string config_path = (dir_ / "alerter.yaml").string();
  std::ofstream(config_path) << yaml_;
  const std::string log = (dir_ / "alerter.log").string();
  const std::vector<std::string> args = {Binary(),    "alerter",       "--config",
                                         config_path, "--listen-grpc", "127.0.0.1:0",
                                         "--metrics", "127.0.0.1:0"};
  pid_t child = Spawn(args, log);
  ASSERT_GT(child, 0);
  const TopicNames names(prefix_);
  SignalReader signals(client_, names);
  ASSERT_TRUE(ProduceStep(client_, names.aggregates, kUnit, 1'700'000'000'000).ok());
  ASSERT_TRUE(signals.ReadUntil([&] { return signals.Count(v1::TRANSITION_KIND_RAISED) >= 1; },
                                absl::Seconds(90)))
      << "no signal raised; see " << log;
  const std::string id = signals.events[0].signal().id();
  int wstatus = 0;
  kill(child, SIGTERM);  // a clean stop: the store is closed and complete
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);

  // Damage the open signal's local entry (whatever the store's key layout).
  {
    RocksDbOptions ro;
    ro.path = (dir_ / "state").string();
    auto store = RocksDbStore::Open(ro);
    ASSERT_TRUE(store.ok()) << store.status();
    WriteBatch wb;
    ASSERT_TRUE((*store)
                    ->Scan("",
                           [&](absl::string_view k, absl::string_view) {
                             if (absl::StrContains(k, absl::StrCat("s/", id))) {
                               wb.Put(k, "\x07garbage");
                             }
                             return true;
                           })
                    .ok());
    ASSERT_EQ(wb.size(), 1u) << "the signal's entry is not in the local store";
    ASSERT_TRUE((*store)->Write(wb).ok());
    ASSERT_TRUE((*store)->Flush().ok());
  }

  child = Spawn(args, log);
  ASSERT_GT(child, 0);
  v1::Command ack;
  ack.set_id("ack-after-corruption");
  ack.set_kind(v1::COMMAND_KIND_ACKNOWLEDGE);
  ack.set_signal_id(id);
  ack.set_operator_id("ana");
  ack.set_reason("still there?");
  {
    auto p = KafkaProducer::Create({client_});
    ASSERT_TRUE(p.ok());
    ASSERT_TRUE((*p)->Produce(names.commands, -1, kUnit, ack.SerializeAsString()).ok());
    ASSERT_TRUE((*p)->Flush(absl::Seconds(30)).ok());
  }
  const bool acked = signals.ReadUntil(
      [&] { return signals.Count(v1::TRANSITION_KIND_ACKNOWLEDGED) >= 1; }, absl::Seconds(60));
  kill(child, SIGTERM);
  waitpid(child, &wstatus, 0);
  EXPECT_TRUE(acked) << "the open signal was lost at restore; see " << log;
  std::ifstream logf(log);
  const std::string text((std::istreambuf_iterator<char>(logf)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, ::testing::HasSubstr("rebuilding the task from its changelog"));
}

TEST_F(AlerterE2eTest, EscalationDeadlinePassingWhileKilledFiresOnceAfterRestart) {
  const std::string config_path = (dir_ / "alerter.yaml").string();
  std::ofstream(config_path) << yaml_;
  const std::string log = (dir_ / "alerter.log").string();
  const std::string bin = Binary();
  ASSERT_TRUE(std::filesystem::exists(bin)) << bin << " missing: build the cybersyn target";
  const std::vector<std::string> base = {bin,         "alerter",       "--config",
                                         config_path, "--listen-grpc", "127.0.0.1:0",
                                         "--metrics", "127.0.0.1:0"};
  pid_t child = Spawn(base, log);
  ASSERT_GT(child, 0);
  const TopicNames names(prefix_);

  // Read <prefix>.signals (read_committed) from the beginning.
  auto reader = KafkaConsumer::Create({client_});
  ASSERT_TRUE(reader.ok());
  std::vector<v1::SignalEvent> events;
  auto read_until = [&](const std::function<bool()>& done, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!done() && absl::Now() < deadline) {
      auto msgs = (*reader)->ConsumeBatch(100, absl::Milliseconds(200));
      if (!msgs.ok()) continue;
      for (const auto& m : *msgs) {
        v1::SignalEvent e;
        if (e.ParseFromArray(m.value().data(), static_cast<int>(m.value().size()))) {
          events.push_back(e);
        }
      }
    }
    return done();
  };
  auto count = [&](v1::TransitionKind k) {
    return std::count_if(events.begin(), events.end(),
                         [&](const v1::SignalEvent& e) { return e.transition().kind() == k; });
  };
  // Topics are created by the child; wait for them before assigning.
  const absl::Time t0 = absl::Now();
  while (absl::Now() - t0 < absl::Seconds(60)) {
    auto info = DescribeCluster(client_);
    if (info.ok() && info->topics.contains(names.signals)) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_TRUE((*reader)->Assign({{names.signals, 0, -2}, {names.signals, 1, -2}}).ok());
  ASSERT_TRUE(ProduceStep(client_, names.aggregates, kUnit, 1'700'000'000'000).ok());
  ASSERT_TRUE(read_until([&] { return count(v1::TRANSITION_KIND_RAISED) >= 1; }, absl::Seconds(90)))
      << "no signal raised; see " << log;

  ASSERT_EQ(kill(child, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  EXPECT_TRUE(WIFSIGNALED(wstatus));
  EXPECT_EQ(count(v1::TRANSITION_KIND_ESCALATED), 0);

  // While it is down, the unit's 5m ack deadline passes (the restarted process runs 6m ahead).
  std::vector<std::string> again = base;
  again.push_back("--clock-offset-for-test");
  again.push_back("6m");
  child = Spawn(again, log);
  ASSERT_GT(child, 0);
  ASSERT_TRUE(
      read_until([&] { return count(v1::TRANSITION_KIND_ESCALATED) >= 1; }, absl::Seconds(90)))
      << "no escalation after restart; see " << log;
  // Give a duplicate every chance to show up.
  read_until([] { return false; }, absl::Seconds(5));
  kill(child, SIGTERM);
  waitpid(child, &wstatus, 0);

  EXPECT_EQ(count(v1::TRANSITION_KIND_ESCALATED), 1);
  EXPECT_EQ(count(v1::TRANSITION_KIND_RAISED), 1);
  for (const auto& e : events) {
    if (e.transition().kind() != v1::TRANSITION_KIND_ESCALATED) continue;
    EXPECT_EQ(e.transition().from_node(), kUnit);
    EXPECT_EQ(e.transition().to_node(), "textiles/yarur");
    EXPECT_EQ(e.signal().state(), v1::SIGNAL_STATE_ESCALATED);
    EXPECT_EQ(e.signal().current_level_name(), "enterprise");
    EXPECT_EQ(e.transition().actor(), "system");
  }
}

}  // namespace
}  // namespace cybersyn
