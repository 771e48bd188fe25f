// TLS on real sockets against a running alerter (real Kafka broker): the gRPC Alerts service with
// server TLS and with mutual TLS (listen.tls), the HTTPS metrics/health endpoint (listen.http_tls),
// and the operator CLI's --ca/--cert/--key. Certificates come from the openssl CLI at test time:
// a CA, a server certificate for 127.0.0.1, a client certificate, and an unrelated CA.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "alerter/alerter_service.h"
#include "common/tls_config.h"
#include "cybersyn/v1/services.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "ingest/ingest_service.h"
#include "tests/testing/real_kafka.h"

namespace cybersyn {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kToken[] = "tls-test-token-7f3a";

int Sh(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TlsE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new fs::path(fs::temp_directory_path() / testing::UniqueName("tls-certs"));
    fs::create_directories(*certs_);
    const std::string d = certs_->string();
    // EC keys: fast to generate. The server certificate names 127.0.0.1 (what clients dial).
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string script = absl::StrCat(
        "set -e; cd ", d, "\n", "openssl req -x509 ", key,
        " -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca\n", "openssl req -x509 ", key,
        " -keyout other.key -out other.pem -days 2 -subj /CN=other\n", "openssl req ", key,
        " -keyout server.key -out server.csr -subj /CN=localhost\n",
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' "
        ">server.ext\n",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile server.ext -out server.pem\n",
        "openssl req ", key, " -keyout client.key -out client.csr -subj /CN=operator\n",
        "printf 'extendedKeyUsage=clientAuth\\n' >client.ext\n",
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile client.ext -out client.pem\n");
    std::ofstream(*certs_ / "gen.sh") << script;
    ASSERT_EQ(Sh(absl::StrCat("sh ", d, "/gen.sh >", d, "/gen.log 2>&1")), 0)
        << Slurp(*certs_ / "gen.log");
  }
  static void TearDownTestSuite() {
    fs::remove_all(*certs_);
    delete certs_;
  }

  static std::string Cert(const std::string& name) { return (*certs_ / name).string(); }

  // Starts an alerter whose gRPC and HTTP endpoints use TLS; `mutual` requires client certs.
  void StartAlerter(bool mutual) {
    auto k = testing::GetRealKafka();
    ASSERT_TRUE(k.ok()) << k.status();
    prefix_ = testing::UniqueName("tls");
    dir_ = fs::temp_directory_path() / prefix_;
    fs::create_directories(dir_);
    const std::string tls =
        absl::StrCat("{cert: \"", Cert("server.pem"), "\", key: \"", Cert("server.key"), "\"",
                     mutual ? absl::StrCat(", client_ca: \"", Cert("ca.pem"), "\"") : "", "}");
    const std::string yaml = absl::StrReplaceAll(R"(
kafka: {bootstrap: "BOOT", topic_prefix: PREFIX, partitions: 1}
levels:
  - {name: enterprise, ack_within: 15m, resolve_within: 2h}
  - {name: unit, ack_within: 5m, resolve_within: 1h}
hierarchy:
  yarur: {children: {spinning: {}}}
indicators:
  - {name: output, unit: t, rollup: sum}
operators:
  - {name: ana, subtree: yarur, token: TOKEN}
listen: {tls: TLS, http_tls: TLS}
alerter: {state_dir: "STATE"}
)",
                                                 {{"BOOT", k->bootstrap},
                                                  {"PREFIX", prefix_},
                                                  {"TOKEN", kToken},
                                                  {"TLS", tls},
                                                  {"STATE", (dir_ / "state").string()}});
    auto cfg = LoadConfigString(yaml, "tls.yaml");
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    ASSERT_TRUE(cfg->listen.tls.has_value() && cfg->listen.http_tls.has_value());
    alerter::AlerterServiceOptions o;
    o.config = std::make_shared<const Config>(std::move(*cfg));
    o.client = {k->bootstrap, {}};
    o.listen_grpc = "127.0.0.1:0";
    o.listen_metrics = "127.0.0.1:0";
    o.heartbeat = absl::Milliseconds(200);
    auto svc = alerter::AlerterService::Start(std::move(o));
    ASSERT_TRUE(svc.ok()) << svc.status();
    svc_ = std::move(*svc);
  }
  void TearDown() override {
    if (svc_) svc_->Stop();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Opens Watch and reads one event (a heartbeat arrives every 200 ms). OK if one arrived, else
  // the stream's status (the handshake failure).
  grpc::Status WatchOnce(const ClientTls& tls) {
    auto creds = GrpcChannelCredentials(tls);
    if (!creds.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, creds.status().ToString());
    auto stub = v1::Alerts::NewStub(grpc::CreateChannel(svc_->grpc_address(), *creds));
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::WatchRequest req;
    auto reader = stub->Watch(&ctx, req);
    v1::WatchEvent e;
    if (reader->Read(&e)) {
      ctx.TryCancel();
      (void)reader->Finish();
      return grpc::Status::OK;
    }
    grpc::Status s = reader->Finish();
    return s.ok() ? grpc::Status(grpc::StatusCode::UNKNOWN, "stream ended without an event") : s;
  }

  // GET /metrics over HTTPS trusting `ca`, presenting `cert`/`key` when given.
  httplib::Result GetMetrics(const std::string& ca, const std::string& cert = "",
                             const std::string& key = "") {
    const auto colon = svc_->metrics_address().rfind(':');
    const std::string host = svc_->metrics_address().substr(0, colon);
    const int port = std::stoi(svc_->metrics_address().substr(colon + 1));
    auto cli = cert.empty() ? std::make_unique<httplib::SSLClient>(host, port)
                            : std::make_unique<httplib::SSLClient>(host, port, cert, key);
    cli->set_ca_cert_path(ca.c_str());
    cli->enable_server_certificate_verification(true);
    cli->set_connection_timeout(5);
    return cli->Get("/metrics");
  }

  // Runs `cybersyn signals` against the alerter with extra flags; returns the exit code.
  int CliSignals(const std::string& flags, std::string* output) {
    const std::string out = (dir_ / "cli.out").string();
    const int rc =
        Sh(absl::StrCat(CYBERSYN_BINARY_DIR, "/cli/cybersyn signals --server ",
                        svc_->grpc_address(), " --token ", kToken, " ", flags, " >", out, " 2>&1"));
    *output = Slurp(out);
    return rc;
  }

  static fs::path* certs_;
  std::string prefix_;
  fs::path dir_;
  std::unique_ptr<alerter::AlerterService> svc_;
};

fs::path* TlsE2eTest::certs_ = nullptr;

TEST_F(TlsE2eTest, ServerTlsRefusesClientsWithoutTheCa) {
  StartAlerter(/*mutual=*/false);
  // Plaintext and a client trusting another CA: the handshake fails, nothing is served.
  EXPECT_EQ(WatchOnce({}).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(WatchOnce({.ca = Cert("other.pem")}).error_code(), grpc::StatusCode::UNAVAILABLE);
  // With the CA, Watch streams.
  const grpc::Status ok = WatchOnce({.ca = Cert("ca.pem")});
  EXPECT_TRUE(ok.ok()) << ok.error_message();

  // HTTPS /metrics: works with the CA, fails with another CA and in plaintext.
  auto r = GetMetrics(Cert("ca.pem"));
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, HasSubstr("cybersyn_alerter_series_tracked"));
  EXPECT_FALSE(GetMetrics(Cert("other.pem")));
  httplib::Client plain("http://" + svc_->metrics_address());
  plain.set_connection_timeout(5);
  plain.set_read_timeout(5);
  auto p = plain.Get("/healthz");
  EXPECT_TRUE(!p || p->status != 200) << "plaintext HTTP answered 200 on an HTTPS port";

  // The CLI: without --ca it cannot connect and says why; with it, it lists.
  std::string out;
  EXPECT_EQ(CliSignals("", &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("--ca"));
  EXPECT_EQ(CliSignals(absl::StrCat("--ca ", Cert("ca.pem")), &out), 0) << out;
  EXPECT_THAT(out, ::testing::Not(HasSubstr(kToken)));
}

TEST_F(TlsE2eTest, MutualTlsRefusesClientsWithoutACertificate) {
  StartAlerter(/*mutual=*/true);
  EXPECT_EQ(WatchOnce({.ca = Cert("ca.pem")}).error_code(), grpc::StatusCode::UNAVAILABLE);
  // A certificate from another CA is refused as well.
  EXPECT_EQ(WatchOnce({.ca = Cert("ca.pem"), .cert = Cert("other.pem"), .key = Cert("other.key")})
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  const grpc::Status ok =
      WatchOnce({.ca = Cert("ca.pem"), .cert = Cert("client.pem"), .key = Cert("client.key")});
  EXPECT_TRUE(ok.ok()) << ok.error_message();

  // HTTPS with client_ca: a client without a certificate gets nothing; with one, metrics.
  EXPECT_FALSE(GetMetrics(Cert("ca.pem")));
  auto r = GetMetrics(Cert("ca.pem"), Cert("client.pem"), Cert("client.key"));
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);

  std::string out;
  EXPECT_EQ(CliSignals(absl::StrCat("--ca ", Cert("ca.pem")), &out), 1) << out;
  EXPECT_EQ(CliSignals(absl::StrCat("--ca ", Cert("ca.pem"), " --cert ", Cert("client.pem"),
                                    " --key ", Cert("client.key")),
                       &out),
            0)
      << out;
  // --cert without --key is a usage error naming both flags.
  EXPECT_EQ(CliSignals(absl::StrCat("--ca ", Cert("ca.pem"), " --cert ", Cert("client.pem")), &out),
            2);
  EXPECT_THAT(out, HasSubstr("--cert and --key"));
}

// The gateway's gRPC Ingest server (devices that push) takes the same listen.tls: with client_ca a
// device must present a certificate from that CA, which is how devices authenticate (no tokens).
TEST_F(TlsE2eTest, GatewayIngestServerRequiresTheDeviceCertificate) {
  auto k = testing::GetRealKafka();
  ASSERT_TRUE(k.ok()) << k.status();
  prefix_ = testing::UniqueName("tls-gw");
  dir_ = fs::temp_directory_path() / prefix_;
  fs::create_directories(dir_);
  const std::string yaml = absl::StrReplaceAll(R"(
kafka: {bootstrap: "BOOT", topic_prefix: PREFIX, partitions: 1}
levels:
  - {name: enterprise, ack_within: 15m, resolve_within: 2h}
  - {name: unit, ack_within: 5m, resolve_within: 1h}
hierarchy:
  yarur: {children: {spinning: {}}}
indicators:
  - {name: output, unit: t, rollup: sum}
listen: {tls: {cert: "CERT", key: "KEY", client_ca: "CA"}}
)",
                                               {{"BOOT", k->bootstrap},
                                                {"PREFIX", prefix_},
                                                {"CERT", Cert("server.pem")},
                                                {"KEY", Cert("server.key")},
                                                {"CA", Cert("ca.pem")}});
  auto cfg = LoadConfigString(yaml, "tls-gateway.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const std::optional<TlsConfig> tls = cfg->listen.tls;
  ingest::GatewayOptions go;
  go.config = std::make_shared<const Config>(std::move(*cfg));
  go.brokers = k->bootstrap;
  go.buffer_dir = (dir_ / "buffer").string();
  auto gw = ingest::Gateway::Start(std::move(go));
  ASSERT_TRUE(gw.ok()) << gw.status();
  ingest::IngestService service(gw->get());
  std::string bound;
  auto server = ingest::StartIngestServer(&service, "127.0.0.1:0", &bound, tls);
  ASSERT_TRUE(server.ok()) << server.status();

  // Publishes one valid record; the summary counts it when the call got through.
  auto publish = [&](const ClientTls& client, uint64_t* accepted) -> grpc::Status {
    auto creds = GrpcChannelCredentials(client);
    if (!creds.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, creds.status().ToString());
    auto stub = v1::Ingest::NewStub(grpc::CreateChannel(bound, *creds));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::PublishSummary summary;
    auto writer = stub->Publish(&ctx, &summary);
    v1::RecordBatch batch;
    v1::Record* r = batch.add_records();
    r->set_node("yarur/spinning");
    r->set_indicator("output");
    r->set_value(4.5);
    r->set_event_time_ms(absl::ToUnixMillis(absl::Now()));
    (void)writer->Write(batch);
    (void)writer->WritesDone();
    grpc::Status s = writer->Finish();
    *accepted = summary.accepted();
    return s;
  };
  uint64_t accepted = 0;
  EXPECT_EQ(publish({}, &accepted).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(publish({.ca = Cert("ca.pem")}, &accepted).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(accepted, 0u);
  const grpc::Status ok = publish(
      {.ca = Cert("ca.pem"), .cert = Cert("client.pem"), .key = Cert("client.key")}, &accepted);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(accepted, 1u);
  (*server)->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace
}  // namespace cybersyn
