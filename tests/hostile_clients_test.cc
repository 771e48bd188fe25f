// Hostile clients over real sockets: the Alerts gRPC server (real Kafka behind it) answers
// oversized messages, Watch floods, malformed tokens and cursors, and action floods with clear
// status codes and bounded resources; the HTTP endpoint answers oversized or malformed requests
// with 413/400 and keeps serving.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "alerter/alerts_service.h"
#include "common/http_server.h"
#include "common/kafka_admin.h"
#include "cybersyn/v1/services.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/alerter_testing.h"
#include "tests/testing/real_kafka.h"

namespace cybersyn {
namespace {

using ::testing::HasSubstr;

std::string ConfigYaml(const std::string& bootstrap, const std::string& prefix) {
  return testing::TextilesConfigYaml(bootstrap, prefix, R"(operators:
  - {name: ana, subtree: textiles/yarur, token: tok-ana}
  - {name: bo, subtree: textiles/sumar, token: tok-bo}
  - {name: cy, subtree: textiles, token: tok-cy}
# Tighter than the defaults, so the tests reach them quickly (and the YAML path is exercised).
listen:
  limits: {max_request_bytes: 32KiB, max_watch_streams: 5, max_watch_streams_per_operator: 3,
           actions_per_second: 2, actions_burst: 6}
)");
}

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& authorization) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!authorization.empty()) ctx->AddMetadata("authorization", authorization);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  return ctx;
}

class HostileGrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = testing::GetRealKafka();
    ASSERT_TRUE(k.ok()) << k.status();
    client_ = {k->bootstrap, {}};
    const std::string prefix = testing::UniqueName("hostile");
    auto cfg = LoadConfigString(ConfigYaml(k->bootstrap, prefix), "hostile.yaml");
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    const TopicNames names(prefix);
    ASSERT_TRUE(
        EnsureTopics(client_, {{names.signals, 2, 1, {}}, {names.commands, 2, 1, {}}}).ok());
    alerter::AlertsServiceOptions o;
    o.config = std::make_shared<const Config>(std::move(*cfg));
    o.client = client_;
    o.clock = &clock_;
    o.heartbeat = absl::Milliseconds(200);
    o.view_wait = absl::Milliseconds(1);  // unknown signals answer NOT_FOUND at once
    o.limits = alerter::GrpcLimitsFrom(o.config->listen.limits);
    service_ = std::make_unique<alerter::AlertsService>(o);
    absl::Status started = service_->Start();
    ASSERT_TRUE(started.ok()) << started;
    int port = 0;
    auto server =
        alerter::StartGrpcServer("127.0.0.1:0", std::nullopt, {service_.get()}, &port, o.limits);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::Alerts::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    if (service_) service_->Stop();
  }

  // Opens a Watch stream and waits for its first message (the cursor heartbeat) or its status.
  struct Stream {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader;
    bool open = false;
    grpc::Status status;
  };
  Stream OpenWatch(const std::string& token) {
    Stream s;
    s.ctx = Ctx("Bearer " + token);
    v1::WatchRequest req;
    s.reader = stub_->Watch(s.ctx.get(), req);
    v1::WatchEvent e;
    s.open = s.reader->Read(&e);
    if (!s.open) s.status = s.reader->Finish();
    return s;
  }

  ManualClock clock_;
  KafkaClientOptions client_;
  std::unique_ptr<alerter::AlertsService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Alerts::Stub> stub_;
};

TEST_F(HostileGrpcTest, OversizedRequestIsRefusedAndTheServerGoesOn) {
  v1::ActRequest req;
  req.set_signal_id("sig-x");
  req.set_reason(std::string(40 << 10, 'x'));  // 40 KiB > the configured 32 KiB cap
  v1::ActResponse resp;
  grpc::Status s = stub_->Acknowledge(Ctx("Bearer tok-ana").get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("larger than max"));
  // Under the cap it reaches the handler (NOT_FOUND: no such signal).
  req.set_reason(std::string(16 << 10, 'x'));
  s = stub_->Acknowledge(Ctx("Bearer tok-ana").get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  // A normal request on the same channel still works.
  v1::ListResponse lr;
  EXPECT_TRUE(stub_->List(Ctx("Bearer tok-ana").get(), v1::ListRequest(), &lr).ok());
}

TEST_F(HostileGrpcTest, MalformedTokensAndArgumentsGetClearCodes) {
  v1::ListResponse lr;
  const std::vector<std::string> bad_auth = {"",
                                             "tok-ana",
                                             "Bearer",
                                             "Bearer    ",
                                             "Basic dG9rLWFuYTp4",
                                             "Bearer tok-ana tok-bo",
                                             "Bearer " + std::string(4000, 'A'),
                                             "Bearer tok-an",
                                             "Bearer  tok-ana "};
  for (const std::string& a : bad_auth) {
    grpc::Status s = stub_->List(Ctx(a).get(), v1::ListRequest(), &lr);
    if (a == "Bearer  tok-ana ") {
      // Surrounding spaces are stripped: the token is valid. (Control characters never reach
      // the server: gRPC refuses them as header values on the client.)
      EXPECT_TRUE(s.ok()) << s.error_message();
      continue;
    }
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << "\"" << a.substr(0, 40) << "\"";
    EXPECT_THAT(s.error_message(), ::testing::Not(HasSubstr("tok-ana")));  // never echoed
  }
  // Malformed arguments from an authenticated caller.
  v1::WatchRequest wr;
  wr.set_from_cursor("v1:0=banana");
  auto ctx = Ctx("Bearer tok-ana");
  auto reader = stub_->Watch(ctx.get(), wr);
  v1::WatchEvent e;
  EXPECT_FALSE(reader->Read(&e));
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("cursor: bad entry"));
  v1::ListRequest lreq;
  lreq.set_subtree("textiles/../../etc");
  s = stub_->List(Ctx("Bearer tok-ana").get(), lreq, &lr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::SilenceRequest sreq;
  sreq.set_signal_id("sig-x");
  sreq.set_duration_ms(-5);
  v1::ActResponse ar;
  s = stub_->Silence(Ctx("Bearer tok-ana").get(), sreq, &ar);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::ActRequest areq;  // no signal id
  s = stub_->Resolve(Ctx("Bearer tok-ana").get(), areq, &ar);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(HostileGrpcTest, WatchFloodIsBoundedPerOperatorAndPerServer) {
  std::vector<Stream> ana;
  for (int i = 0; i < 3; ++i) {
    ana.push_back(OpenWatch("tok-ana"));
    ASSERT_TRUE(ana.back().open) << i << ": " << ana.back().status.error_message();
  }
  Stream extra = OpenWatch("tok-ana");
  EXPECT_FALSE(extra.open);
  EXPECT_EQ(extra.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(extra.status.error_message(), HasSubstr("operator ana already has 3 Watch streams"));
  // Other operators fill the server's limit of 5.
  std::vector<Stream> others;
  others.push_back(OpenWatch("tok-bo"));
  others.push_back(OpenWatch("tok-cy"));
  ASSERT_TRUE(others[0].open && others[1].open);
  Stream over = OpenWatch("tok-bo");
  EXPECT_FALSE(over.open);
  EXPECT_EQ(over.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(over.status.error_message(), HasSubstr("too many Watch streams on this server"));
  // A client that goes away frees its slot.
  ana[0].ctx->TryCancel();
  (void)ana[0].reader->Finish();
  Stream again;
  for (int tries = 0; tries < 50; ++tries) {  // the server notices the cancel asynchronously
    again = OpenWatch("tok-ana");
    if (again.open) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(again.open) << again.status.error_message();
  for (Stream* s : {&again, &others[0], &others[1], &ana[1], &ana[2]}) {
    s->ctx->TryCancel();
    (void)s->reader->Finish();
  }
}

TEST_F(HostileGrpcTest, ActionsAreRateLimitedPerOperatorOnTheInjectedClock) {
  auto act = [&](const std::string& token, bool resolve) {
    v1::ActRequest req;
    req.set_signal_id("sig-none");
    v1::ActResponse resp;
    return resolve ? stub_->Resolve(Ctx("Bearer " + token).get(), req, &resp)
                   : stub_->Acknowledge(Ctx("Bearer " + token).get(), req, &resp);
  };
  // The burst (6) passes the limiter (and finds no such signal); acks and resolves share it.
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(act("tok-ana", i % 2).error_code(), grpc::StatusCode::NOT_FOUND) << i;
  }
  grpc::Status s = act("tok-ana", false);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("operator ana: rate limit of 2 per second"));
  EXPECT_EQ(act("tok-ana", true).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Another operator has its own bucket.
  EXPECT_EQ(act("tok-bo", false).error_code(), grpc::StatusCode::NOT_FOUND);
  // One second of the injected clock refills two actions.
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(act("tok-ana", false).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(act("tok-ana", true).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(act("tok-ana", false).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Unauthenticated floods never reach (or drain) anyone's bucket.
  v1::ActRequest req;
  req.set_signal_id("sig-none");
  v1::ActResponse resp;
  EXPECT_EQ(stub_->Acknowledge(Ctx("Bearer nope").get(), req, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

// Raw HTTP over a socket, so malformed requests reach the server unchanged.
std::string RawHttp(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "connect failed";
  }
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and close before reading everything
    sent += n;
  }
  // No half-close: the server answers (and closes) on its own; give up after 3 s of silence.
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, n);
  close(fd);
  return out;
}

TEST(HostileHttpTest, OversizedAndMalformedRequestsAreRefused) {
  HttpServer http(std::make_shared<prometheus::Registry>());
  int posts = 0;
  http.raw().Post("/api/echo", [&](const httplib::Request& req, httplib::Response& res) {
    ++posts;
    res.set_content(std::to_string(req.body.size()), "text/plain");
  });
  auto addr = http.Start("127.0.0.1:0");
  ASSERT_TRUE(addr.ok()) << addr.status();
  const int port = http.port();
  // Over the 1 MiB body cap: 413 from the declared length, before the body is read.
  std::string r =
      RawHttp(port, absl::StrCat("POST /api/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
                                 "Content-Length: ", 64 << 20, "\r\n\r\n", "abc"));
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 413"));
  // Chunked bodies are not accepted at all (cpp-httplib 0.11 would not bound them): 411.
  std::string chunked =
      "POST /api/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: "
      "chunked\r\n\r\n";
  for (int i = 0; i < 24; ++i) {
    absl::StrAppend(&chunked, "10000\r\n", std::string(0x10000, 'y'), "\r\n");
  }
  absl::StrAppend(&chunked, "0\r\n\r\n");
  r = RawHttp(port, chunked);
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 411"));
  // Malformed request line or Content-Length: 400.
  EXPECT_THAT(RawHttp(port, "GARBAGE\r\n\r\n"), HasSubstr("HTTP/1.1 400"));
  EXPECT_THAT(RawHttp(port, "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: banana\r\n\r\n"),
              HasSubstr("HTTP/1.1 400"));
  // Over-long URI: refused, not buffered.
  EXPECT_THAT(RawHttp(port, "GET /" + std::string(64 << 10, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"),
              ::testing::AnyOf(HasSubstr("HTTP/1.1 414"), HasSubstr("HTTP/1.1 400")));
  EXPECT_EQ(posts, 0);
  // The server still answers well-formed requests.
  r = RawHttp(port,
              "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: "
              "close\r\n\r\nabc");
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 200"));
  EXPECT_EQ(posts, 1);
  httplib::Client c("127.0.0.1", port);
  auto h = c.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
}

TEST(HostileHttpTest, ConfiguredBodyLimitApplies) {
  HttpServer http(std::make_shared<prometheus::Registry>(), std::nullopt, /*max_body_bytes=*/4096);
  http.raw().Post("/api/echo", [&](const httplib::Request& req, httplib::Response& res) {
    res.set_content(std::to_string(req.body.size()), "text/plain");
  });
  ASSERT_TRUE(http.Start("127.0.0.1:0").ok());
  const std::string big(5000, 'z');
  std::string r =
      RawHttp(http.port(),
              absl::StrCat("POST /api/echo HTTP/1.1\r\nHost: x\r\n",
                           "Connection: close\r\nContent-Length: ", big.size(), "\r\n\r\n", big));
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 413"));
  EXPECT_THAT(r, HasSubstr("over the limit of 4096 (listen.limits.max_http_body_bytes)"));
  r = RawHttp(http.port(), absl::StrCat("POST /api/echo HTTP/1.1\r\nHost: x\r\n",
                                        "Connection: close\r\nContent-Length: 4000\r\n\r\n",
                                        std::string(4000, 'z')));
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 200"));
}

}  // namespace
}  // namespace cybersyn
