#include "common/tls_config.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn {
namespace {

using ::testing::HasSubstr;

std::string Write(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / ("tls_config_test_" + name);
  std::ofstream(path) << text;
  return path.string();
}

TEST(TlsConfigTest, NoTlsMeansPlaintext) {
  EXPECT_TRUE(GrpcServerCredentials(std::nullopt).ok());
  EXPECT_TRUE(GrpcChannelCredentials({}).ok());
}

TEST(TlsConfigTest, UnreadableOrNonPemFilesAreNamed) {
  auto s = GrpcServerCredentials(TlsConfig{.cert = "/no/such/server.pem", .key = "/no/key"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("listen.tls.cert"));
  EXPECT_THAT(s.status().message(), HasSubstr("/no/such/server.pem"));

  const std::string der = Write("der", std::string("\x30\x82\x01\x0a", 4));
  auto c = GrpcChannelCredentials({.ca = der});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("not a PEM file"));
  EXPECT_THAT(c.status().message(), HasSubstr("--ca"));
}

TEST(TlsConfigTest, ClientCertificateNeedsKeyAndCa) {
  auto c = GrpcChannelCredentials({.ca = "", .cert = "c.pem", .key = ""});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("both --cert and --key"));
  c = GrpcChannelCredentials({.ca = "", .cert = "c.pem", .key = "k.pem"});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("need --ca"));
}

TEST(TlsConfigTest, KeyContentsNeverAppearInErrors) {
  // A key file that is readable but the cert is not PEM: the error must not echo file contents.
  const std::string secret = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n";
  const std::string key = Write("key", secret);
  const std::string cert = Write("cert", "not a certificate c2VjcmV0");
  auto s = GrpcServerCredentials(TlsConfig{.cert = cert, .key = key});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), ::testing::Not(HasSubstr("c2VjcmV0")));
}

}  // namespace
}  // namespace cybersyn
