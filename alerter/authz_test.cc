#include "alerter/authz.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::alerter {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kYaml[] = R"(
levels:
  - {name: sector, ack_within: 30m, resolve_within: 2h}
  - {name: enterprise, ack_within: 15m, resolve_within: 1h}
  - {name: unit, ack_within: 5m, resolve_within: 30m}
hierarchy:
  textiles:
    children:
      yarur: {children: {spinning: {}, weaving: {}}}
      sumar: {children: {spinning: {}}}
indicators:
  - {name: output, unit: t, rollup: sum}
operators:
  - {name: chief, subtree: textiles, token: tok-chief}
  - {name: ana, subtree: textiles/yarur, token: tok-ana}
  - {name: bo, subtree: textiles/sumar, token: s3cret-bo}
)";

class AuthzTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = LoadConfigString(kYaml, "authz.yaml");
    ASSERT_TRUE(c.ok()) << c.status();
    authz_ = std::make_unique<Authorizer>(std::make_shared<const Config>(std::move(*c)));
  }
  const OperatorConfig& Op(const std::string& token) {
    auto op = authz_->Authenticate("Bearer " + token);
    EXPECT_TRUE(op.ok()) << op.status();
    return **op;
  }
  std::unique_ptr<Authorizer> authz_;
};

TEST_F(AuthzTest, BearerTokenNamesTheOperator) {
  EXPECT_EQ(Op("tok-ana").name, "ana");
  auto lower = authz_->Authenticate("bearer tok-chief");
  ASSERT_TRUE(lower.ok());
  EXPECT_EQ((*lower)->name, "chief");
}

TEST_F(AuthzTest, MissingMalformedOrUnknownTokensAreUnauthenticated) {
  for (const char* header : {"", "tok-ana", "Basic dG9rLWFuYQ==", "Bearer ", "Bearer    ",
                             "Bearer tok-anna", "Bearer s3cret"}) {
    auto r = authz_->Authenticate(header);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << header;
  }
}

TEST_F(AuthzTest, StatusesNeverContainTheToken) {
  auto r = authz_->Authenticate("Bearer s3cret-bx");
  EXPECT_THAT(r.status().message(), Not(HasSubstr("s3cret")));
  auto denied = authz_->CheckAct(Op("s3cret-bo"), "textiles/yarur/spinning");
  EXPECT_THAT(denied.message(), Not(HasSubstr("s3cret")));
  EXPECT_THAT(denied.message(), HasSubstr("bo"));
}

TEST_F(AuthzTest, ActingIsAllowedOnSignalsThatOriginatedInTheSubtree) {
  EXPECT_TRUE(authz_->CheckAct(Op("tok-ana"), "textiles/yarur/spinning").ok());
  EXPECT_TRUE(authz_->CheckAct(Op("tok-ana"), "textiles/yarur").ok());
  EXPECT_TRUE(authz_->CheckAct(Op("tok-chief"), "textiles/sumar/spinning").ok());
  auto denied = authz_->CheckAct(Op("tok-ana"), "textiles/sumar/spinning");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.message(), HasSubstr("scoped to textiles/yarur"));
  EXPECT_EQ(authz_->CheckAct(Op("tok-ana"), "textiles").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(AuthzTest, WatchSubtreeMustBeInsideTheScope) {
  auto whole = authz_->ResolveSubtree(Op("tok-ana"), "");
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(*whole, "textiles/yarur");
  auto unit = authz_->ResolveSubtree(Op("tok-ana"), "textiles/yarur/weaving");
  ASSERT_TRUE(unit.ok());
  EXPECT_EQ(*unit, "textiles/yarur/weaving");
  EXPECT_EQ(authz_->ResolveSubtree(Op("tok-ana"), "textiles").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(authz_->ResolveSubtree(Op("tok-ana"), "textiles/sumar").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(authz_->ResolveSubtree(Op("tok-ana"), "textiles/nope").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cybersyn::alerter
