#include "common/http_server.h"

#include "absl/strings/str_cat.h"
#include "common/build_info.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "prometheus/counter.h"

namespace cybersyn {
namespace {

using ::testing::HasSubstr;

TEST(HttpServerTest, ServesMetricsHealthAndReadiness) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& family = prometheus::BuildCounter()
                     .Name("cybersyn_test_records_total")
                     .Help("Records seen by the test.")
                     .Register(*registry);
  family.Add({{"reason", "ok"}}).Increment(3);
  HttpServer server(registry);
  auto addr = server.Start("127.0.0.1:0");
  ASSERT_TRUE(addr.ok()) << addr.status();
  httplib::Client client("127.0.0.1", server.port());
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->body, HasSubstr("cybersyn_test_records_total{reason=\"ok\"} 3"));
  EXPECT_THAT(metrics->body, HasSubstr("cybersyn_build_info{"));
  EXPECT_THAT(metrics->body, HasSubstr(absl::StrCat("version=\"", GetBuildInfo().version, "\"")));
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  EXPECT_EQ(client.Get("/readyz")->status, 503);
  server.SetReady(true);
  EXPECT_EQ(client.Get("/readyz")->status, 200);
  EXPECT_EQ(client.Get("/nope")->status, 404);
  server.Stop();
}

TEST(HttpServerTest, SecondServerOnAPortInUseFailsWithAddressInUse) {
  HttpServer first(std::make_shared<prometheus::Registry>());
  auto addr = first.Start("127.0.0.1:0");
  ASSERT_TRUE(addr.ok()) << addr.status();
  HttpServer second(std::make_shared<prometheus::Registry>());
  auto again = second.Start(*addr);
  ASSERT_FALSE(again.ok()) << "a second server bound " << *addr << ": SO_REUSEPORT is on";
  EXPECT_EQ(again.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(again.status().message()),
              HasSubstr("HTTP: cannot listen on " + *addr + ": address in use"));
  // The first one still serves.
  httplib::Client client("127.0.0.1", first.port());
  EXPECT_EQ(client.Get("/healthz")->status, 200);
}

TEST(HttpServerTest, BadAddressIsInvalidArgument) {
  HttpServer server(std::make_shared<prometheus::Registry>());
  auto addr = server.Start("localhost");
  ASSERT_FALSE(addr.ok());
  EXPECT_EQ(addr.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(addr.status().message()),
              HasSubstr("expected an address like 127.0.0.1:9464, got \"localhost\""));
}

}  // namespace
}  // namespace cybersyn
