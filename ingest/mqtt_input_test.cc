#include "ingest/mqtt_input.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::ingest {
namespace {

using ::testing::HasSubstr;

TEST(MqttUrlTest, HostPortAndFilter) {
  auto u = ParseMqttUrl("mqtt://broker.plant:1884/plant/+/line3/#");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "broker.plant");
  EXPECT_EQ(u->port, 1884);
  EXPECT_EQ(u->filter, "plant/+/line3/#");
  auto d = ParseMqttUrl("mqtt://10.0.0.5/spBv1.0/#");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->port, 1883);
  auto v6 = ParseMqttUrl("mqtt://[::1]:1885/a");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 1885);
}

TEST(MqttUrlTest, ErrorsNameTheProblemAndTheForm) {
  struct Case {
    const char* url;
    const char* problem;
  } cases[] = {
      {"tcp://b:1883/a", "no mqtt:// scheme"},
      {"mqtt://b:1883", "no topic filter"},
      {"mqtt://b:1883/", "no topic filter"},
      {"mqtt://:1883/a", "no host"},
      {"mqtt://b:http/a", "port \"http\" is not a number from 1 to 65535"},
      {"mqtt://b:70000/a", "port \"70000\" is not a number"},
      {"mqtt://b/a/#/c", "topic filter \"a/#/c\" is not valid"},
      {"mqtt://b/a+/c", "topic filter \"a+/c\" is not valid"},
      {"mqtt://[::1:1883/a", "unclosed ["},
  };
  for (const Case& c : cases) {
    auto u = ParseMqttUrl(c.url);
    ASSERT_FALSE(u.ok()) << c.url;
    EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument) << c.url;
    EXPECT_THAT(u.status().message(), HasSubstr(c.problem)) << c.url;
    EXPECT_THAT(u.status().message(), HasSubstr("expected mqtt://HOST[:PORT]/FILTER")) << c.url;
  }
}

}  // namespace
}  // namespace cybersyn::ingest
