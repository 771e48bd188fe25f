#include "opsroom/opsroom.h"

#include <thread>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace cybersyn::opsroom {
namespace {

using ::testing::HasSubstr;

// An in-memory Backend: one signal at cl/a/x, operator "ana" scoped to cl/a.
class FakeBackend : public Backend {
 public:
  FakeBackend() {
    signal_.set_id("sig-1");
    signal_.set_origin_node("cl/a/x");
    signal_.set_current_node("cl/a/x");
    signal_.set_kind(v1::SIGNAL_KIND_STEP);
    signal_.set_state(v1::SIGNAL_STATE_FIRING);
  }
  absl::StatusOr<v1::NodeStatus> Status(const std::string& node, int depth) override {
    v1::NodeStatus s;
    s.set_node("cl");
    s.set_level("nation");
    s.set_worst(v1::SEVERITY_ALERT);
    s.add_children()->set_node("cl/a");
    return s;
  }
  absl::StatusOr<std::vector<v1::Signal>> OpenSignals(const std::string&) override {
    return std::vector<v1::Signal>{signal_};
  }
  absl::StatusOr<v1::SeriesHistoryResponse> Series(const v1::SeriesHistoryRequest& r) override {
    if (r.node() != "cl/a/x") return absl::NotFoundError("unknown node " + r.node());
    v1::SeriesHistoryResponse h;
    h.add_points()->mutable_aggregate()->set_value(42.5);
    return h;
  }
  absl::StatusOr<std::vector<std::pair<std::string, v1::SignalEvent>>> EventsAfter(
      const std::string& cursor, absl::Duration wait) override {
    absl::MutexLock lock(&mu_);
    std::vector<std::pair<std::string, v1::SignalEvent>> out;
    if (cursor.empty()) {
      v1::SignalEvent e;
      *e.mutable_signal() = signal_;
      e.mutable_transition()->set_kind(v1::TRANSITION_KIND_RAISED);
      out.emplace_back("c1", e);
    }
    return out;
  }
  absl::StatusOr<OperatorIdentity> Authenticate(const std::string& token) override {
    if (token == "ana-token") return OperatorIdentity{"ana", "cl/a"};
    if (token == "bo-token") return OperatorIdentity{"bo", "cl/b"};
    return absl::UnauthenticatedError("unknown token");
  }
  absl::StatusOr<std::string> Act(const std::string& token, v1::CommandKind kind,
                                  const std::string& id, const std::string& reason,
                                  absl::Duration) override {
    auto who = Authenticate(token);
    if (!who.ok()) return who.status();
    if (id != "sig-1") return absl::NotFoundError("no signal " + id);
    if (who->subtree != "cl/a") return absl::PermissionDeniedError("outside cl/b");
    absl::MutexLock lock(&mu_);
    acted_.push_back(kind);
    return std::string("cmd-1");
  }
  absl::Mutex mu_;
  std::vector<v1::CommandKind> acted_;
  v1::Signal signal_;
};

class OpsroomTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterOpsroom(server_, &backend_);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  void TearDown() override {
    server_.stop();
    thread_.join();
  }
  httplib::Result Post(const std::string& path, const std::string& token) {
    httplib::Client c("127.0.0.1", port_);
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return c.Post(path.c_str(), h, R"({"reason":"on it"})", "application/json");
  }
  FakeBackend backend_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(OpsroomTest, ServesPageAndAssetsCompiledIn) {
  httplib::Client c("127.0.0.1", port_);
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_THAT(page->body, HasSubstr("<title>Cybersyn Opsroom</title>"));
  EXPECT_THAT(page->get_header_value("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(c.Get("/app.js")->body, HasSubstr("EventSource('/api/events')"));
  EXPECT_THAT(c.Get("/style.css")->body, HasSubstr(".dot.crisis"));
}

// The page runs only its own script: no inline handler from injected markup could run, and no
// response is sniffed into a script. Every route, the page, its assets, the API and errors.
TEST_F(OpsroomTest, EveryResponseCarriesContentSecurityPolicyAndNosniff) {
  httplib::Client c("127.0.0.1", port_);
  for (const char* path : {"/", "/index.html", "/app.js", "/style.css", "/api/status",
                           "/api/signals", "/api/whoami", "/api/series?node=cl/zz&indicator=x"}) {
    SCOPED_TRACE(path);
    auto res = c.Get(path);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->get_header_value("Content-Security-Policy"), kContentSecurityPolicy);
    EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(res->get_header_value("X-Frame-Options"), "DENY");
  }
  auto act = Post("/api/signals/sig-1/ack", "bo-token");
  ASSERT_TRUE(act);
  EXPECT_EQ(act->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_THAT(std::string(kContentSecurityPolicy), HasSubstr("script-src 'self'"));
  EXPECT_THAT(std::string(kContentSecurityPolicy), ::testing::Not(HasSubstr("unsafe-inline")));
}

// Server data reaches the page as text only (the browser test shows it with markup in a title
// and a reason): the script never parses HTML.
TEST_F(OpsroomTest, ScriptNeverParsesHtml) {
  httplib::Client c("127.0.0.1", port_);
  const std::string js = c.Get("/app.js")->body;
  for (const char* sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                           "createContextualFragment", "DOMParser"}) {
    EXPECT_THAT(js, ::testing::Not(HasSubstr(sink))) << sink;
  }
  EXPECT_THAT(js, HasSubstr("createElement"));
  // No inline script or handler in the page either (the policy would block it).
  const std::string page = c.Get("/")->body;
  EXPECT_THAT(page, ::testing::Not(HasSubstr("onclick")));
  EXPECT_THAT(page, ::testing::Not(HasSubstr("<script>")));
}

TEST_F(OpsroomTest, JsonApiUsesProtoFieldNames) {
  httplib::Client c("127.0.0.1", port_);
  auto status = nlohmann::json::parse(c.Get("/api/status")->body);
  EXPECT_EQ(status["node"], "cl");
  EXPECT_EQ(status["worst"], "SEVERITY_ALERT");
  EXPECT_EQ(status["children"][0]["node"], "cl/a");
  auto sigs = nlohmann::json::parse(c.Get("/api/signals")->body);
  EXPECT_EQ(sigs["signals"][0]["origin_node"], "cl/a/x");
  auto series = c.Get("/api/series?node=cl/a/x&indicator=output");
  EXPECT_EQ(nlohmann::json::parse(series->body)["points"][0]["aggregate"]["value"], 42.5);
  auto missing = c.Get("/api/series?node=cl/zz&indicator=output");
  EXPECT_EQ(missing->status, 404);
  EXPECT_THAT(missing->body, HasSubstr("unknown node cl/zz"));
  EXPECT_EQ(c.Get("/api/series?node=cl/a/x")->status, 400);
}

TEST_F(OpsroomTest, ActionsNeedATokenScopedToTheSignal) {
  EXPECT_EQ(Post("/api/signals/sig-1/ack", "")->status, 401);
  EXPECT_EQ(Post("/api/signals/sig-1/ack", "wrong")->status, 401);
  EXPECT_EQ(Post("/api/signals/sig-1/ack", "bo-token")->status, 403);
  auto ok = Post("/api/signals/sig-1/ack", "ana-token");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(nlohmann::json::parse(ok->body)["command_id"], "cmd-1");
  EXPECT_EQ(Post("/api/signals/sig-1/resolve", "ana-token")->status, 200);
  // A silence without a duration is refused before reaching the backend.
  EXPECT_EQ(Post("/api/signals/sig-1/silence", "ana-token")->status, 400);
  absl::MutexLock lock(&backend_.mu_);
  EXPECT_THAT(backend_.acted_,
              ::testing::ElementsAre(v1::COMMAND_KIND_ACKNOWLEDGE, v1::COMMAND_KIND_RESOLVE));
}

TEST_F(OpsroomTest, WhoAmIReportsOperatorAndScope) {
  httplib::Client c("127.0.0.1", port_);
  auto who = c.Get("/api/whoami", {{"Authorization", "Bearer ana-token"}});
  EXPECT_EQ(nlohmann::json::parse(who->body)["subtree"], "cl/a");
  EXPECT_EQ(c.Get("/api/whoami")->status, 401);
}

TEST_F(OpsroomTest, EventStreamCarriesSignalEventsWithCursorIds) {
  httplib::Client c("127.0.0.1", port_);
  std::string received;
  c.Get("/api/events", [&](const char* data, size_t n) {
    received.append(data, n);
    return received.find("\n\n") == std::string::npos;  // stop after the first event
  });
  EXPECT_THAT(received, HasSubstr("event: signal\nid: c1\ndata: {"));
  EXPECT_THAT(received, HasSubstr("\"TRANSITION_KIND_RAISED\""));
}

}  // namespace
}  // namespace cybersyn::opsroom
