// Hostile input at the service's edge: undecodable requests, huge or
// control-laden values echoed in errors, deeply nested JSON in the readers
// of this layer, and the rate limit on rejection log lines.
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "lcio/client/client.h"
#include "lcio/policy/testing.h"
#include "lcio/server/log.h"
#include "lcio/server/report_log.h"
#include "lcio/server/server.h"
#include "raw_call.h"
#include "test_support.h"

namespace lcio::server {
namespace {

const std::string kDeep = std::string(100000, '[') + std::string(100000, ']');

TEST(QuoteClientValue, CutsEscapesAndKeepsValidText) {
  EXPECT_EQ(QuoteClientValue("Jetson"), "\"Jetson\"");
  EXPECT_EQ(QuoteClientValue("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(QuoteClientValue("a\nb\x1b[31m\"\\"), "\"a\\x0ab\\x1b[31m\\x22\\x5c\"");
  EXPECT_EQ(QuoteClientValue("x\xff\xc3"), "\"x\\xff\\xc3\"");
  EXPECT_EQ(QuoteClientValue("\xc2\x85"), "\"\\xc2\\x85\"");  // U+0085, a C1 control
  const std::string quoted = QuoteClientValue(std::string(60000, 'n'));
  EXPECT_EQ(quoted, "\"" + std::string(64, 'n') + "\"...(60000 bytes)");
  // A cut never splits a character.
  const std::string e_acute = "\xc3\xa9";
  std::string long_text = "n";
  for (int i = 0; i < 40; ++i) long_text += e_acute;
  EXPECT_EQ(
      QuoteClientValue(long_text), "\"n" + [&] {
        std::string s;
        for (int i = 0; i < 31; ++i) s += e_acute;
        return s;
      }() + "\"...(81 bytes)");
}

TEST(BoundMessage, CutsLongMessagesOnACharacterBoundary) {
  EXPECT_EQ(BoundMessage("short"), "short");
  const std::string cut = BoundMessage(std::string(5000, 'm'));
  EXPECT_EQ(cut, std::string(kMaxStatusMessageBytes, 'm') + "...(5000 bytes)");
  EXPECT_EQ(BoundMessage("ab\xc3\xa9", 3), "ab...(4 bytes)");
}

// A fake clock: deterministic, no sleeping.
TEST(LogRateLimiter, AllowsNPerSecondAndCountsTheRest) {
  absl::Time now = absl::FromUnixSeconds(1000);
  LogRateLimiter limiter(10, [&now] { return now; });
  int64_t suppressed = -1;
  int allowed = 0;
  for (int i = 0; i < 1000; ++i) {
    if (limiter.Allow(&suppressed)) {
      ++allowed;
      EXPECT_EQ(suppressed, 0);
    }
  }
  EXPECT_EQ(allowed, 10);
  now += absl::Milliseconds(999);  // same second
  EXPECT_FALSE(limiter.Allow(&suppressed));
  now += absl::Milliseconds(1);
  ASSERT_TRUE(limiter.Allow(&suppressed));
  EXPECT_EQ(suppressed, 991);
  ASSERT_TRUE(limiter.Allow(&suppressed));
  EXPECT_EQ(suppressed, 0);
}

// 100000 nested '[' used to overflow the stack in these readers.
TEST(JsonDepthLimit, TheReportRecordReaderRefusesDeepNesting) {
  auto record = ReportRecordFromJson(kDeep);
  EXPECT_FALSE(record.ok());
}

TEST(JsonDepthLimit, TheClientsJsonRequestReaderRefusesDeepNesting) {
  v1::DecideRequest request;
  const absl::Status s = FromJson("{\"views\": " + kDeep + "}", &request);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "more than 64 levels deep (the limit)")) << s;
}

class InputTest : public ::testing::Test {
 protected:
  // The artifact the server starts with.
  virtual absl::StatusOr<policy::ArtifactMetadata> WritePolicy(const std::string& path) {
    return policy::testing::WriteTestArtifact(path, {});
  }
  void SetUp() override {
    const std::string policy = dir_.File("policy.pt");
    auto written = WritePolicy(policy);
    ASSERT_TRUE(written.ok()) << written.status();
    ServerOptions options;
    options.policy_path = policy;
    options.listen = "127.0.0.1:0";
    options.metrics_listen = "127.0.0.1:0";
    options.torch_device = "cpu";
    options.watch_interval = absl::Seconds(3600);
    options.drain_timeout = absl::Seconds(5);
    options.report_log = dir_.File("reports.log");
    auto app = ServerApp::Start(options);
    ASSERT_TRUE(app.ok()) << app.status();
    app_ = *std::move(app);
    target_ = absl::StrCat("127.0.0.1:", app_->port());
    ClientOptions client_options;
    client_options.target = target_;
    auto client = Client::Create(client_options);
    ASSERT_TRUE(client.ok());
    client_ = *std::move(client);
  }

  static v1::DecideRequest Request() {
    v1::DecideRequest r;
    r.set_conversation_id("raw");
    r.set_prompt("What is on the table?");
    r.set_task("Query");
    for (int v = 0; v < 3; ++v) {
      v1::View* view = r.add_views();
      view->set_name(absl::StrCat("view", v));
      view->set_association(0.5);
    }
    r.mutable_budget()->set_latency_s(30);
    r.mutable_budget()->set_money_usd(0.05);
    return r;
  }

  double Metric(const std::string& name) {
    return test::Metric(test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics")), name);
  }

  test::TempDir dir_;
  std::unique_ptr<ServerApp> app_;
  std::string target_;
  std::unique_ptr<Client> client_;
};

TEST_F(InputTest, UndecodableRequestsAreInvalidArgumentNamingTheProblemAndCounted) {
  v1::DecideRequest request = Request();
  request.set_device("DEVICE");
  std::string invalid_utf8 = request.SerializeAsString();
  invalid_utf8.replace(invalid_utf8.find("DEVICE"), 6, "DEV\xff\xfe\xfd");
  const std::string garbage = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
  const std::string truncated = Request().SerializeAsString().substr(0, 20);

  grpc::Status s = test::RawUnaryCall(target_, "/lcio.v1.Offloader/Decide", invalid_utf8);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "not a valid lcio.v1.DecideRequest"))
      << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "lcio.v1.DecideRequest.device"))
      << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "UTF-8")) << s.error_message();
  for (const std::string& bytes : {garbage, truncated}) {
    s = test::RawUnaryCall(target_, "/lcio.v1.Offloader/Decide", bytes);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_TRUE(absl::StrContains(s.error_message(), "malformed or truncated protobuf"))
        << s.error_message();
  }
  EXPECT_EQ(Metric("lcio_decide_requests_total{code=\"INVALID_ARGUMENT\"}"), 3);
  EXPECT_EQ(Metric("lcio_decide_requests_total{code=\"UNIMPLEMENTED\"}"), 0);

  s = test::RawUnaryCall(target_, "/lcio.v1.Offloader/Report", garbage);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "lcio.v1.ReportRequest")) << s.error_message();
  s = test::RawUnaryCall(target_, "/lcio.v1.Offloader/GetPolicy", garbage);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();

  // A well-formed request sent the same way is decided as usual.
  s = test::RawUnaryCall(target_, "/lcio.v1.Offloader/Decide", Request().SerializeAsString());
  EXPECT_TRUE(s.ok()) << s.error_message();
  v1::PolicyInfo info;
  EXPECT_TRUE(client_->GetPolicy(&info).ok());
}

// A 60 KB name used to come back whole: a status too large for the client
// (RESOURCE_EXHAUSTED, which lcio::Client retried).
TEST_F(InputTest, HugeAndControlCharacterNamesAreQuotedShortAndNotRetried) {
  v1::DecideRequest request = Request();
  request.set_device(std::string(60 << 10, 'd'));
  v1::DecideResponse response;
  absl::Status s = client_->Decide(request, &response);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s.message().substr(0, 200);
  EXPECT_LT(s.message().size(), 512u);
  EXPECT_TRUE(absl::StrContains(s.message(), "device = \"dddd")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "...(61440 bytes)")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "known devices: ")) << s;
  // One call: INVALID_ARGUMENT is not retried.
  EXPECT_EQ(Metric("lcio_decide_requests_total{code=\"INVALID_ARGUMENT\"}"), 1);

  request = Request();
  request.set_network("4G\n{\"level\":\"error\"}\x1b[2J");
  s = client_->Decide(request, &response);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(),
                                "network = \"4G\\x0a{\\x22level\\x22:\\x22error\\x22}\\x1b[2J\""))
      << s;
  for (char c : s.message()) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << s;
}

// Scores that are not numbers are refused (INTERNAL, naming the action), not
// decided on: an argmax over them picked the first action in silence.
class OverflowingPolicyTest : public InputTest {
 protected:
  absl::StatusOr<policy::ArtifactMetadata> WritePolicy(const std::string& path) override {
    return policy::testing::WriteOverflowingTestArtifact(path);
  }
};

TEST_F(OverflowingPolicyTest, ScoresThatAreNotNumbersAreRefusedNotDecidedOn) {
  v1::DecideResponse response;
  const absl::Status status = client_->Decide(Request(), &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "the policy's score for action 0 is inf"))
      << status;
}

}  // namespace
}  // namespace lcio::server
