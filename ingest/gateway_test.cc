#include "ingest/gateway.h"

#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ingest/ingest_service.h"
#include "tests/ingest_testing.h"

namespace cybersyn::ingest {
namespace {

std::string TempDir(const std::string& name) {
  std::string d = ::testing::TempDir() + "/gw-" + name + "-" + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  return d;
}

std::shared_ptr<const Config> MakeConfig() {
  auto c = LoadConfigString(SyntheticConfigYaml(2, 2, 3), "synthetic.yaml");
  EXPECT_TRUE(c.ok()) << c.status();
  auto config = std::make_shared<Config>(*std::move(c));
  config->gateway.batch.linger = absl::Milliseconds(10);
  config->gateway.batch.max_records = 500;
  return config;
}

std::unique_ptr<RecordSource> Sim(const Gateway& g, uint64_t count, uint64_t seed = 5) {
  SimulatorOptions o = *SimulatorPreset("bench");
  o.seed = seed;
  o.start_ms = 1'714'521'600'000;
  o.max_records = count;
  auto src = SimulatorSource(g.config(), o, "sim:test", &g.validator(), Clock::Real());
  EXPECT_TRUE(src.ok()) << src.status();
  return *std::move(src);
}

TEST(GatewayTest, SimulatedRecordsArriveExactlyOnceInOrderOnEmbeddedBroker) {
  GatewayOptions o;
  o.config = MakeConfig();
  o.embedded_broker = true;
  o.buffer_dir = TempDir("roundtrip");
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok()) << g.status();
  auto src = Sim(**g, 20'000);
  auto summary = (*g)->Run(*src, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->accepted, 20'000u);
  ASSERT_TRUE((*g)->Drain(absl::Seconds(30)).ok());
  EXPECT_EQ((*g)->stats().buffer_bytes, 0u);
  EXPECT_EQ((*g)->stats().confirmed, 20'000u);
  auto back =
      testing::ReadRecords({(*g)->bootstrap(), {}}, (*g)->topic(), 20'000, absl::Seconds(30));
  EXPECT_EQ(back.unique.size(), 20'000u);
  EXPECT_EQ(back.duplicates, 0u);
  EXPECT_TRUE(back.keys_match);
  EXPECT_TRUE(back.order_ok);
  // Sequences are 1..N and the records are the simulator's, in order.
  auto sim = Sim(**g, 20'000);
  v1::Record want;
  const Hierarchy::Node* ent;
  RecordError err;
  uint64_t seq = 1;
  for (const auto& [key, r] : back.unique) {
    EXPECT_EQ(key.first, "gw-1");
    ASSERT_EQ(key.second, seq++);
    ASSERT_EQ(sim->Next(&want, &ent, &err), RecordSource::Result::kRecord);
    ASSERT_EQ(r.node(), want.node());
    ASSERT_EQ(r.value(), want.value());
    ASSERT_EQ(r.event_time_ms(), want.event_time_ms());
  }
  (*g)->Stop();
}

// A source that changes its pace mid-run (the demo's replay going live) is paced at the new
// speed from there: 60 s of event time at 600x (0.1 s), then ticks at 60, 61 and 62 s in real
// time (2 s). Paced at the first speed throughout, the run would take 0.1 s.
TEST(GatewayTest, PaceChangeOfTheSourceIsFollowed) {
  GatewayOptions o;
  o.config = MakeConfig();
  o.embedded_broker = true;
  o.buffer_dir = TempDir("pace");
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok()) << g.status();
  SimulatorOptions so = *SimulatorPreset("bench");
  so.start_ms = absl::ToUnixMillis(absl::Now()) - 120'000;
  so.speedup = 600;
  so.realtime_from_ms = so.start_ms + 60'000;
  so.duration = absl::Seconds(63);
  auto src = SimulatorSource((*g)->config(), so, "sim:pace", &(*g)->validator(), Clock::Real());
  ASSERT_TRUE(src.ok()) << src.status();
  const absl::Time t0 = absl::Now();
  auto summary = (*g)->Run(**src, {});
  const absl::Duration took = absl::Now() - t0;
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->accepted, 63u * 48);  // 12 units x 4 indicators per second
  EXPECT_GE(took, absl::Milliseconds(1800)) << "the live part was not paced in real time";
  (*g)->Stop();
}

TEST(GatewayTest, FatalProducerErrorMidStreamResendsInOrderAndLosesNothing) {
  GatewayOptions o;
  o.config = MakeConfig();
  o.embedded_broker = true;
  o.buffer_dir = TempDir("fatal");
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok()) << g.status();
  const uint64_t count = 60'000;
  auto src = Sim(**g, count);
  RunOptions ro;
  ro.rate = 30'000;  // ~2 s of input, so the error hits mid-stream
  absl::StatusOr<RunSummary> summary;
  std::thread run([&] { summary = (*g)->Run(*src, ro); });
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while ((*g)->stats().confirmed < 5'000 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_GE((*g)->stats().confirmed, 5'000u);
  (*g)->InjectProducerFatalErrorForTest();
  run.join();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->accepted, count);
  ASSERT_TRUE((*g)->Drain(absl::Seconds(60)).ok());
  EXPECT_EQ((*g)->stats().producer_recoveries, 1u);
  EXPECT_EQ((*g)->stats().buffer_bytes, 0u);
  auto back =
      testing::ReadRecords({(*g)->bootstrap(), {}}, (*g)->topic(), count, absl::Seconds(30));
  // Resent batches may arrive twice; none may overtake an earlier one of its enterprise.
  EXPECT_EQ(back.unique.size(), count);
  EXPECT_TRUE(back.keys_match);
  EXPECT_TRUE(back.order_ok) << "a later batch overtook an earlier one of its enterprise";
  std::cout << "resent after the fatal error: " << back.duplicates << " duplicate records"
            << std::endl;
  (*g)->Stop();
}

TEST(GatewayTest, UnreachableBrokerBuffersThenBlocksAndRestartResendsEverything) {
  const std::string dir = TempDir("restart");
  GatewayOptions o;
  o.config = MakeConfig();
  o.embedded_broker = true;
  o.buffer_dir = dir;
  o.brokers = "127.0.0.1:1";  // nothing listens there
  o.buffer_max_bytes = 256 << 10;
  {
    auto g = Gateway::Start(o);
    ASSERT_TRUE(g.ok()) << g.status();
    auto src = Sim(**g, 1'000'000);
    std::atomic<bool> cancel{false};
    absl::StatusOr<RunSummary> summary;
    RunOptions ro;
    ro.cancel = &cancel;
    std::thread t([&] { summary = (*g)->Run(*src, ro); });
    absl::SleepFor(absl::Seconds(2));
    const GatewayStats a = (*g)->stats();
    absl::SleepFor(absl::Milliseconds(500));
    const GatewayStats b = (*g)->stats();
    // Blocked on the full buffer: nothing more accepted, nothing dropped.
    EXPECT_EQ(a.accepted, b.accepted);
    EXPECT_GT(b.buffer_bytes, 128u << 10);
    EXPECT_LE(b.buffer_bytes, 600u << 10);
    EXPECT_EQ(b.confirmed, 0u);
    (*g)->Stop(absl::ZeroDuration());
    t.join();
    EXPECT_EQ(summary.status().code(), absl::StatusCode::kCancelled);
  }
  // Restart on a working (embedded) broker: the buffer is resent, then the source resumes.
  o.brokers.clear();
  o.buffer_max_bytes = 0;
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok()) << g.status();
  const uint64_t buffered = (*g)->stats().buffer_records;
  EXPECT_GT(buffered, 1000u);
  auto src = Sim(**g, buffered + 5000);
  auto summary = (*g)->Run(*src, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_TRUE(summary->resumed);
  EXPECT_EQ(summary->accepted, 5000u);
  ASSERT_TRUE((*g)->Drain(absl::Seconds(30)).ok());
  auto back = testing::ReadRecords({(*g)->bootstrap(), {}}, (*g)->topic(), buffered + 5000,
                                   absl::Seconds(30));
  EXPECT_EQ(back.unique.size(), buffered + 5000);
  EXPECT_TRUE(back.order_ok);
  EXPECT_EQ(back.unique.rbegin()->first.second, buffered + 5000);
}

// The gRPC Ingest service answers OK only once the call's records are in the disk buffer (the
// linger here is 30 s, so without the call sealing them they would still be in memory), and a
// full buffer gets a bounded RESOURCE_EXHAUSTED naming it instead of an OK or a hang. Real gRPC
// socket and RocksDB buffer; the broker is unreachable.
TEST(GatewayTest, GrpcOkMeansOnDiskAndAFullBufferAnswersResourceExhausted) {
  auto config = std::make_shared<Config>(*MakeConfig());
  config->gateway.batch.linger = absl::Seconds(30);
  GatewayOptions o;
  o.config = config;
  o.buffer_dir = TempDir("grpc-full");
  o.brokers = "127.0.0.1:1";  // nothing listens there
  o.buffer_max_bytes = 64 << 10;
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok()) << g.status();
  IngestService service(g->get(), absl::Seconds(1));
  std::string bound;
  auto server = StartIngestServer(&service, "127.0.0.1:0", &bound);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::Ingest::NewStub(grpc::CreateChannel(bound, grpc::InsecureChannelCredentials()));
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  int n = 0;
  auto publish = [&](v1::PublishSummary* summary) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto writer = stub->Publish(&ctx, summary);
    v1::RecordBatch batch;
    for (int i = 0; i < 400; ++i, ++n) {
      v1::Record* r = batch.add_records();
      r->set_node(absl::StrCat("sim/s", n % 2, "/e", n / 2 % 2, "/u", n / 4 % 3));
      r->set_indicator("output");
      r->set_value(n);
      r->set_event_time_ms(now_ms - 1000);
    }
    (void)writer->Write(batch);
    (void)writer->WritesDone();
    return writer->Finish();
  };
  uint64_t last_bytes = 0;
  int ok_calls = 0;
  grpc::Status refused;
  for (int call = 0; call < 40; ++call) {
    v1::PublishSummary summary;
    const grpc::Status s = publish(&summary);
    if (!s.ok()) {
      refused = s;
      break;
    }
    ++ok_calls;
    EXPECT_EQ(summary.accepted(), 400u);
    // Acknowledged = written to the disk buffer (its bytes only count written batches).
    const GatewayStats st = (*g)->stats();
    EXPECT_GT(st.buffer_bytes, last_bytes) << "call " << call << " acknowledged before its write";
    last_bytes = st.buffer_bytes;
  }
  std::cout << ok_calls << " calls acknowledged (" << last_bytes << " bytes on disk), then "
            << refused.error_code() << ": " << refused.error_message() << std::endl;
  EXPECT_GE(ok_calls, 2);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(),
              ::testing::HasSubstr("may not be stored, resend them: the gateway buffer is full"));
  EXPECT_EQ((*g)->stats().confirmed, 0u);
  (*server)->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  (*g)->Stop(absl::ZeroDuration());
}

// Without the buffer's WAL (buffer_wal.h): a start that finds the marker of an unclean WAL-less
// run of another input jumps its sequence numbers 2^32 forward, durably, before using any; a
// clean stop flushes and removes the marker, and the next start continues where it ended.
TEST(GatewayTest, WithoutTheWalAStartAfterAnUncleanRunOfAnotherInputJumpsTheSequence) {
  GatewayOptions o;
  o.config = MakeConfig();
  o.embedded_broker = true;
  o.buffer_dir = TempDir("wal-jump");
  o.input.identity = "sim:test";
  std::filesystem::create_directories(o.buffer_dir);
  ASSERT_TRUE(WriteRunMarker(o.buffer_dir, "csv:/crashed/input.csv").ok());
  {
    auto g = Gateway::Start(o);
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_FALSE((*g)->buffer_wal());
    EXPECT_FALSE((*g)->stats().buffer_wal);
    EXPECT_EQ((*g)->stats().next_sequence, kSequenceJump + 1);
    EXPECT_EQ(ReadRunMarker(o.buffer_dir)->value_or("none"), "sim:test");
    auto src = Sim(**g, 2'000);
    auto summary = (*g)->Run(*src, {});
    ASSERT_TRUE(summary.ok()) << summary.status();
    ASSERT_TRUE((*g)->Drain(absl::Seconds(30)).ok());
    auto back =
        testing::ReadRecords({(*g)->bootstrap(), {}}, (*g)->topic(), 2'000, absl::Seconds(30));
    ASSERT_EQ(back.unique.size(), 2'000u);
    EXPECT_EQ(back.unique.begin()->first.second, kSequenceJump + 1);
    EXPECT_EQ(back.unique.rbegin()->first.second, kSequenceJump + 2'000);
    (*g)->Stop();
  }
  EXPECT_FALSE(ReadRunMarker(o.buffer_dir)->has_value()) << "a clean stop keeps the marker";
  // The clean stop flushed what the WAL-less run wrote: no jump, the numbers continue.
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ((*g)->stats().next_sequence, kSequenceJump + 2'001);
  (*g)->Stop();
}

// The same input resuming after an unclean WAL-less run keeps its numbers (it re-reads the records
// the buffer lost with the numbers they had), but a clean stop of it jumps before removing the
// marker: it may have stopped before re-reading as far as the crashed run had sent.
TEST(GatewayTest, WithoutTheWalTheSameInputResumingKeepsItsNumbersAndACleanStopJumps) {
  GatewayOptions o;
  o.config = MakeConfig();
  o.embedded_broker = true;
  o.buffer_dir = TempDir("wal-resume");
  o.input.identity = "sim:test";
  std::filesystem::create_directories(o.buffer_dir);
  ASSERT_TRUE(WriteRunMarker(o.buffer_dir, "sim:test").ok());
  {
    auto g = Gateway::Start(o);
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_EQ((*g)->stats().next_sequence, 1u);
    auto src = Sim(**g, 1'000);
    auto summary = (*g)->Run(*src, {});
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ((*g)->stats().next_sequence, 1'001u);
    (*g)->Stop(absl::Seconds(5));
  }
  EXPECT_FALSE(ReadRunMarker(o.buffer_dir)->has_value());
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ((*g)->stats().next_sequence, kSequenceJump + 1'001);
  (*g)->Stop();
}

TEST(GatewayTest, WithoutTheWalRunTakesOnlyTheDeclaredInputAndFeedIsRefused) {
  GatewayOptions o;
  o.config = MakeConfig();
  o.embedded_broker = true;
  o.buffer_dir = TempDir("wal-refuse");
  o.input.identity = "sim:test";
  o.buffer_wal = BufferWal::kOff;
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok()) << g.status();
  SimulatorOptions so = *SimulatorPreset("bench");
  so.start_ms = 1'714'521'600'000;
  so.max_records = 10;
  auto other = SimulatorSource((*g)->config(), so, "sim:other", &(*g)->validator(), Clock::Real());
  ASSERT_TRUE(other.ok());
  auto run = (*g)->Run(**other, {});
  EXPECT_EQ(run.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(run.status().message(),
              ::testing::HasSubstr("can only run the declared input sim:test from its stored "
                                   "position; got sim:other"));
  v1::Record r;
  r.set_node("sim/s0/e0/u0");
  r.set_indicator("output");
  r.set_value(1);
  r.set_event_time_ms(absl::ToUnixMillis(absl::Now()));
  const absl::Status fed = (*g)->Feed(r);
  EXPECT_EQ(fed.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(fed.message(), ::testing::HasSubstr("pushed records would not survive a crash"));
  // "off" where it could lose records: refused at start.
  GatewayOptions bad = o;
  bad.buffer_dir = TempDir("wal-refuse-2");
  bad.input.grpc = true;
  auto refused = Gateway::Start(bad);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  (*g)->Stop();
}

// Issue 22: a config saying kafka.bootstrap: embedded no longer makes a gateway keep records in a
// broker that dies with it, unless that is asked for.
TEST(GatewayTest, AnEmbeddedBootstrapIsRefusedUnlessAskedFor) {
  GatewayOptions o;
  o.config = MakeConfig();
  ASSERT_TRUE(o.config->kafka.embedded());
  o.buffer_dir = TempDir("embedded-refused");
  auto refused = Gateway::Start(o);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(),
            "gateway: kafka.bootstrap is \"embedded\" and no brokers were given: pass --brokers "
            "HOST:PORT (or set kafka.bootstrap) to publish to a Kafka cluster, or run `cybersyn "
            "demo` to try the whole system on its embedded broker (--embedded-broker starts one "
            "inside this gateway, whose data lives only as long as the process)");
  o.embedded_broker = true;
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok()) << g.status();
  (*g)->Stop();
}

}  // namespace
}  // namespace cybersyn::ingest
