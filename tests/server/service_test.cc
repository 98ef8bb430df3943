// The service in process over real gRPC on 127.0.0.1 (ephemeral ports), with
// real (small, random-weight) policy artifacts.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "lcio/client/client.h"
#include "lcio/env/profiles.h"
#include "lcio/env/shield.h"
#include "lcio/policy/inference.h"
#include "lcio/policy/testing.h"
#include "lcio/server/metrics.h"
#include "lcio/server/report_log.h"
#include "lcio/server/server.h"
#include "lcio/server/serving_policy.h"
#include "lcio/v1/offloader.grpc.pb.h"
#include "lcio/version.h"
#include "test_support.h"

namespace lcio::server {
namespace {

using policy::testing::TestArtifactOptions;

class ServiceTest : public ::testing::Test {
 protected:
  void StartServer(const TestArtifactOptions& artifact = {},
                   std::function<void(ServerOptions&)> tweak = nullptr) {
    policy_path_ = dir_.File("policy.pt");
    auto written = policy::testing::WriteTestArtifact(policy_path_, artifact);
    ASSERT_TRUE(written.ok()) << written.status();
    ServerOptions options;
    options.policy_path = policy_path_;
    options.listen = "127.0.0.1:0";
    options.metrics_listen = "127.0.0.1:0";
    options.torch_device = "cpu";
    options.watch_interval = absl::Seconds(3600);  // reloads are explicit here
    options.drain_timeout = absl::Seconds(5);
    if (tweak) tweak(options);
    auto app = ServerApp::Start(options);
    ASSERT_TRUE(app.ok()) << app.status();
    app_ = *std::move(app);
    ASSERT_TRUE(app_->policy_loaded());
    ClientOptions client_options;
    client_options.target = absl::StrCat("127.0.0.1:", app_->port());
    auto client = Client::Create(client_options);
    ASSERT_TRUE(client.ok());
    client_ = *std::move(client);
  }

  // Replaces the policy file atomically and reloads it now.
  void SwapPolicy(const TestArtifactOptions& artifact) {
    const std::string next = dir_.File("next.pt");
    auto written = policy::testing::WriteTestArtifact(next, artifact);
    ASSERT_TRUE(written.ok()) << written.status();
    test::ReplaceFile(next, policy_path_);
    ASSERT_TRUE(app_->Reload("test").ok());
  }

  static v1::DecideRequest Request(const std::string& conversation, int turn, double latency = 30,
                                   double money = 0.05) {
    v1::DecideRequest r;
    r.set_conversation_id(conversation);
    r.set_turn_index(turn);
    r.set_prompt(absl::StrCat("What is on the table, turn ", turn, "?"));
    r.set_task("Query");
    const double association[3] = {0.9, 0.1, 0.4};
    for (int v = 0; v < 3; ++v) {
      v1::View* view = r.add_views();
      view->set_name(absl::StrCat("view", v));
      view->set_association(association[v]);
    }
    r.mutable_budget()->set_latency_s(latency);
    r.mutable_budget()->set_money_usd(money);
    r.set_explain(true);
    return r;
  }

  static std::vector<double> Scores(const v1::DecideResponse& r) {
    std::vector<double> s;
    for (const auto& a : r.scores()) s.push_back(a.score());
    return s;
  }

  test::TempDir dir_;
  std::string policy_path_;
  std::unique_ptr<ServerApp> app_;
  std::unique_ptr<Client> client_;
};

TEST_F(ServiceTest, GetPolicyDescribesTheServingArtifact) {
  StartServer();
  v1::PolicyInfo info;
  ASSERT_TRUE(client_->GetPolicy(&info).ok());
  EXPECT_EQ(info.view_names_size(), 3);
  EXPECT_EQ(info.tasks_size(), 4);
  EXPECT_EQ(info.actions_size(), 9);
  EXPECT_EQ(info.actions(8).description(), "cloud+{0,1,2}");
  EXPECT_EQ(info.history_window(), 5);
  EXPECT_EQ(info.default_device(), "Jetson TX2");
  EXPECT_EQ(info.torch_device(), "cpu");
  EXPECT_FALSE(info.policy_version().empty());
  auto health = client_->Health("lcio.v1.Offloader");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, "SERVING");
}

TEST_F(ServiceTest, AConversationEndToEnd) {
  StartServer();
  double latency = 30, money = 0.05;
  std::set<std::string> ids;
  std::vector<std::vector<double>> turn_scores;
  for (int turn = 0; turn < 7; ++turn) {
    v1::DecideResponse r;
    ASSERT_TRUE(client_->Decide(Request("conv", turn, latency, money), &r).ok());
    EXPECT_TRUE(ids.insert(r.decision_id()).second);
    // conversation/turn/16 lowercase hex digits
    const std::string prefix = absl::StrCat("conv/", turn, "/");
    ASSERT_EQ(r.decision_id().size(), prefix.size() + 16) << r.decision_id();
    EXPECT_EQ(r.decision_id().substr(0, prefix.size()), prefix);
    EXPECT_EQ(r.decision_id().find_first_not_of("0123456789abcdef", prefix.size()),
              std::string::npos)
        << r.decision_id();
    ASSERT_EQ(r.scores_size(), 9);  // explain: every action's score
    // The action table's order (action_table.h): local, then subsets by size.
    static const char* const kDescriptions[9] = {"local",       "cloud",       "cloud+{0}",
                                                 "cloud+{1}",   "cloud+{2}",   "cloud+{0,1}",
                                                 "cloud+{0,2}", "cloud+{1,2}", "cloud+{0,1,2}"};
    for (int a = 0; a < 9; ++a) {
      ASSERT_EQ(r.scores(a).action(), a);
      EXPECT_EQ(r.scores(a).description(), kDescriptions[a]);
    }
    EXPECT_EQ(r.target(), r.action() == 0 ? v1::TARGET_LOCAL : v1::TARGET_CLOUD);
    EXPECT_EQ(r.llm(), r.action() == 0 ? "local-3.8B" : "cloud");
    EXPECT_EQ(r.task(), "Query");
    EXPECT_FALSE(r.task_inferred());
    EXPECT_NEAR(r.budget_after().latency_s(), latency - r.expected_latency_s(), 1e-12);
    EXPECT_NEAR(r.budget_after().money_usd(), money - r.expected_money_usd(), 1e-12);
    // Without an override the policy's best-scoring action is taken.
    if (!r.shield_overridden()) {
      for (const auto& s : r.scores()) EXPECT_LE(s.score(), r.scores(r.action()).score());
    }
    latency = r.budget_after().latency_s();
    money = r.budget_after().money_usd();
    turn_scores.push_back(Scores(r));
  }
  // Same prompt features and task each turn: the scores move with the
  // history and the shrinking budget.
  EXPECT_NE(turn_scores[0], turn_scores[1]);
  EXPECT_NE(turn_scores[5], turn_scores[6]);
}

// Explanations quote the response model's predictions of a response-aware
// policy (what its observation held), and nothing for a policy without them.
// A profile_aware policy observes each request's own device and network: the
// scores the server returns are the artifact's network on the observation
// encoded with that network's costs (a built-in one and one added by
// --profiles at serve time), not the training profile's.
// A --profiles file that is empty or not a regular file is refused with its
// reason (an empty one read as "no profiles" in silence; a directory reads as
// empty); a missing one is NOT_FOUND.
TEST(ProfilesFile, IsReadWholeOrRefusedWithItsReason) {
  test::TempDir dir;
  test::WriteFile(dir.File("empty.json"), "");
  auto empty = ServingPolicy::ReadProfilesFile(dir.File("empty.json"));
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("is empty"), std::string::npos) << empty.status();
  auto directory = ServingPolicy::ReadProfilesFile(dir.path());
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(directory.status().message().find("not a regular file"), std::string::npos)
      << directory.status();
  EXPECT_EQ(ServingPolicy::ReadProfilesFile(dir.File("missing.json")).status().code(),
            absl::StatusCode::kNotFound);
  test::WriteFile(dir.File("ok.json"), R"({"devices": []})");
  auto ok = ServingPolicy::ReadProfilesFile(dir.File("ok.json"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, R"({"devices": []})");
}

TEST_F(ServiceTest, AProfileAwarePolicyObservesTheRequestsNetwork) {
  const std::string profiles = dir_.File("profiles.json");
  test::WriteFile(profiles, R"({"networks": [{"name": "Satellite",
                                              "cloud_time_s": [1.5, 25.0, 27.0, 29.0]}]})");
  TestArtifactOptions artifact;
  artifact.profile_aware = true;
  StartServer(artifact, [&](ServerOptions& o) { o.profiles_path = profiles; });
  auto engine = policy::InferenceEngine::Load(policy_path_, "cpu");
  ASSERT_TRUE(engine.ok()) << engine.status();
  const env::ObservationEncoder& encoder = (*engine)->encoder();
  ASSERT_TRUE(encoder.layout().profile_aware);
  env::ProfileCatalog catalog = env::ProfileCatalog::BuiltIn();
  ASSERT_TRUE(catalog.MergeJsonFile(profiles).ok());
  // What the policy scores for the first turn of Request() costed under `network`.
  auto expected_scores = [&](const std::string& network) {
    env::DecisionContext context;
    context.task_index = 2;  // Query
    context.association = {0.9, 0.1, 0.4};
    context.remaining_latency_s = 30;
    context.remaining_money_usd = 0.05;
    env::SetActionCosts(
        env::CostModel::Create(catalog, "Jetson TX2", network, encoder.actions()).value(),
        &context);
    EXPECT_TRUE(encoder.Check(context).ok());
    std::vector<float> row(encoder.size()), scores(encoder.actions().size());
    encoder.Encode(context, row.data());
    EXPECT_TRUE((*engine)->Score(row.data(), 1, scores.data()).ok());
    return std::vector<double>(scores.begin(), scores.end());
  };
  const std::vector<double> wired = expected_scores("Wired");
  for (const std::string network : {"4G", "Satellite"}) {
    v1::DecideRequest request = Request(absl::StrCat("profile-", network), 0);
    request.set_network(network);
    v1::DecideResponse r;
    ASSERT_TRUE(client_->Decide(request, &r).ok()) << network;
    EXPECT_EQ(r.network(), network);
    const std::vector<double> got = Scores(r), expected = expected_scores(network);
    ASSERT_EQ(got.size(), expected.size());
    double differs_from_wired = 0;
    for (size_t a = 0; a < got.size(); ++a) {
      EXPECT_NEAR(got[a], expected[a], 1e-4) << network << " action " << a;
      differs_from_wired = std::max(differs_from_wired, std::abs(got[a] - wired[a]));
    }
    EXPECT_GT(differs_from_wired, 1e-3) << network;
  }
  app_.reset();
}

TEST_F(ServiceTest, ExplanationsQuoteTheResponseModel) {
  TestArtifactOptions artifact;
  artifact.response_aware = true;
  StartServer(artifact);
  v1::DecideResponse r;
  ASSERT_TRUE(client_->Decide(Request("predicted", 0), &r).ok());
  ASSERT_EQ(r.scores_size(), 9);
  for (int a = 0; a < 9; ++a) {
    ASSERT_TRUE(r.scores(a).has_predicted_response()) << a;
    // Query is task 2; the model holds this exact first-turn key.
    EXPECT_NEAR(r.scores(a).predicted_response(), policy::testing::TestPredictedResponse(2, a),
                1e-4)
        << a;
  }
  app_.reset();
  StartServer();
  ASSERT_TRUE(client_->Decide(Request("plain", 0), &r).ok());
  ASSERT_EQ(r.scores_size(), 9);
  for (const auto& score : r.scores()) EXPECT_FALSE(score.has_predicted_response());
}

TEST_F(ServiceTest, DecisionsDependOnTheHistory) {
  StartServer();
  // Stateless requests: identical turn 2 except for the earlier actions.
  v1::DecideRequest a = Request("h1", 2), b = Request("h2", 2);
  for (int action : {0, 0}) {
    auto* t = a.mutable_history()->add_turns();
    t->set_action(action);
    t->set_task("Query");
  }
  for (int action : {8, 8}) {
    auto* t = b.mutable_history()->add_turns();
    t->set_action(action);
    t->set_task("Query");
  }
  v1::DecideResponse ra, rb;
  ASSERT_TRUE(client_->Decide(a, &ra).ok());
  ASSERT_TRUE(client_->Decide(b, &rb).ok());
  EXPECT_NE(Scores(ra), Scores(rb));
}

TEST_F(ServiceTest, DecisionsDependOnTheBudget) {
  StartServer();
  v1::DecideResponse rich, poor;
  ASSERT_TRUE(client_->Decide(Request("b1", 0, 30, 0.05), &rich).ok());
  ASSERT_TRUE(client_->Decide(Request("b2", 0, 3, 0.001), &poor).ok());
  EXPECT_NE(Scores(rich), Scores(poor));
}

TEST_F(ServiceTest, AnExhaustedBudgetYieldsTheCheapestAction) {
  TestArtifactOptions artifact;
  artifact.favoured_action = 8;  // the policy always wants the most expensive action
  StartServer(artifact);
  v1::DecideResponse generous;
  ASSERT_TRUE(client_->Decide(Request("x1", 0, 1000, 10), &generous).ok());
  EXPECT_EQ(generous.action(), 8);
  EXPECT_FALSE(generous.shield_overridden());

  v1::DecideResponse broke;
  ASSERT_TRUE(client_->Decide(Request("x2", 0, 0, 0), &broke).ok());
  auto actions = env::ActionTable::Create(3);
  auto costs =
      env::CostModel::Create(env::ProfileCatalog::BuiltIn(), "Jetson TX2", "Wired", *actions);
  ASSERT_TRUE(costs.ok());
  EXPECT_EQ(broke.proposed_action(), 8);
  EXPECT_TRUE(broke.shield_overridden());
  EXPECT_TRUE(broke.nothing_fits());
  EXPECT_EQ(broke.action(), env::CheapestAction(*costs));
  for (const auto& s : broke.scores()) EXPECT_FALSE(s.fits_budget());
}

TEST_F(ServiceTest, TheShieldReplacesAnActionThatDoesNotFit) {
  TestArtifactOptions artifact;
  artifact.favoured_action = 8;
  StartServer(artifact);
  auto actions = env::ActionTable::Create(3);
  auto costs =
      env::CostModel::Create(env::ProfileCatalog::BuiltIn(), "Jetson TX2", "Wired", *actions);
  // Enough for a text-only cloud call, not for three views.
  const double money = costs->money_usd(1) * 1.5, latency = 1000;
  v1::DecideResponse r;
  ASSERT_TRUE(client_->Decide(Request("s", 0, latency, money), &r).ok());
  EXPECT_TRUE(r.shield_overridden());
  EXPECT_FALSE(r.nothing_fits());
  EXPECT_TRUE(env::Fits(*costs, r.action(), latency, money));
  EXPECT_LE(r.expected_money_usd(), money);
}

TEST_F(ServiceTest, StatelessHistoryGivesTheSameDecisionsAsTheServerStore) {
  StartServer();
  v1::ConversationHistory history;
  for (int turn = 0; turn < 7; ++turn) {
    v1::DecideResponse stored, stateless;
    ASSERT_TRUE(client_->Decide(Request("stored", turn), &stored).ok());
    v1::DecideRequest r = Request("stateless", turn);
    *r.mutable_history() = history;
    ASSERT_TRUE(client_->Decide(r, &stateless).ok());
    EXPECT_EQ(stored.action(), stateless.action()) << "turn " << turn;
    EXPECT_EQ(Scores(stored), Scores(stateless)) << "turn " << turn;
    auto* t = history.add_turns();
    t->set_action(stored.action());
    t->set_task(stored.task());
  }
}

TEST_F(ServiceTest, RepeatingTheLastTurnReturnsTheSameDecision) {
  StartServer();
  v1::DecideResponse first, again;
  ASSERT_TRUE(client_->Decide(Request("r", 0), &first).ok());
  ASSERT_TRUE(client_->Decide(Request("r", 0), &again).ok());
  EXPECT_EQ(first.decision_id(), again.decision_id());
  // The whole answer: the first was sent as the bytes the store keeps, the
  // retry from the stored message.
  EXPECT_EQ(first.SerializeAsString(), again.SerializeAsString());
  v1::DecideResponse next;
  ASSERT_TRUE(client_->Decide(Request("r", 1), &next).ok());
}

TEST_F(ServiceTest, OutOfOrderTurnsGetFailedPrecondition) {
  StartServer();
  v1::DecideResponse r;
  absl::Status skipped = client_->Decide(Request("o", 1), &r);
  EXPECT_EQ(skipped.code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(client_->Decide(Request("o", 0), &r).ok());
  absl::Status ahead = client_->Decide(Request("o", 3), &r);
  EXPECT_EQ(ahead.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(ahead.message().find("next turn of this conversation is 1"), std::string::npos)
      << ahead;
  ASSERT_TRUE(client_->Decide(Request("o", 1), &r).ok());  // the failure changed nothing
}

TEST_F(ServiceTest, ExpiredConversationsAreForgotten) {
  StartServer({}, [](ServerOptions& o) { o.conversation_idle = absl::Milliseconds(200); });
  v1::DecideResponse r;
  ASSERT_TRUE(client_->Decide(Request("e", 0), &r).ok());
  absl::SleepFor(absl::Milliseconds(600));
  absl::Status expired = client_->Decide(Request("e", 1), &r);
  EXPECT_EQ(expired.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(expired.message().find("no history"), std::string::npos) << expired;
  EXPECT_TRUE(client_->Decide(Request("e", 0), &r).ok());  // it can start again
}

TEST_F(ServiceTest, TheTaskIsInferredWhenNotGiven) {
  StartServer();
  v1::DecideRequest request = Request("t", 0);
  request.clear_task();
  request.set_prompt("Recommendation request 2");  // a prompt the classifier was trained on
  v1::DecideResponse r;
  ASSERT_TRUE(client_->Decide(request, &r).ok());
  EXPECT_TRUE(r.task_inferred());
  EXPECT_EQ(r.task(), "Recommendation");
  EXPECT_GT(r.task_confidence(), 0.0);
  EXPECT_LE(r.task_confidence(), 1.0);
  request.set_conversation_id("t2");
  request.set_prompt("zqx unseen words entirely \xe2\x9c\x93");
  ASSERT_TRUE(client_->Decide(request, &r).ok());
  EXPECT_TRUE(r.task_inferred());
}

TEST_F(ServiceTest, BadInputIsInvalidArgumentOverGrpc) {
  StartServer();
  v1::DecideRequest request = Request("bad", 0);
  request.mutable_views(1)->set_association(7);
  v1::DecideResponse r;
  absl::Status s = client_->Decide(request, &r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("views[1].association"), std::string::npos);
  // Oversized message (under the transport limit): INVALID_ARGUMENT, not a crash.
  request = Request("bad", 0);
  request.set_prompt(std::string(200000, 'p'));
  s = client_->Decide(request, &r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  // The conversation did not start.
  EXPECT_TRUE(client_->Decide(Request("bad", 0), &r).ok());
}

TEST_F(ServiceTest, MetricsCountWhatWasSent) {
  StartServer();
  v1::DecideResponse r;
  int ok = 0;
  for (int turn = 0; turn < 5; ++turn, ++ok)
    ASSERT_TRUE(client_->Decide(Request("m", turn), &r).ok());
  for (int i = 0; i < 3; ++i) {
    v1::DecideRequest bad = Request("m", 5);
    bad.set_prompt("");
    EXPECT_FALSE(client_->Decide(bad, &r).ok());
  }
  EXPECT_EQ(client_->Decide(Request("m", 9), &r).code(), absl::StatusCode::kFailedPrecondition);
  const auto metrics = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
  ASSERT_FALSE(metrics.empty());
  EXPECT_EQ(test::Metric(metrics, "lcio_decide_requests_total{code=\"OK\"}"), ok);
  EXPECT_EQ(test::Metric(metrics, "lcio_decide_requests_total{code=\"INVALID_ARGUMENT\"}"), 3);
  EXPECT_EQ(test::Metric(metrics, "lcio_decide_requests_total{code=\"FAILED_PRECONDITION\"}"), 1);
  EXPECT_EQ(test::Metric(metrics, "lcio_decide_latency_seconds_count"), ok + 4);
  EXPECT_EQ(test::Metric(metrics, "lcio_decisions_total{target=\"local\"}") +
                test::Metric(metrics, "lcio_decisions_total{target=\"cloud\"}"),
            ok);
  EXPECT_EQ(test::Metric(metrics, "lcio_policy_loaded"), 1);
  EXPECT_EQ(test::Metric(metrics, "lcio_policy_reloads_total{result=\"ok\"}"), 1);
  EXPECT_EQ(test::Metric(metrics, "lcio_inflight_requests"), 0);
  EXPECT_GE(test::Metric(metrics, "lcio_batch_size_count"), 1);
  EXPECT_GE(test::Metric(metrics, "lcio_policy_inference_seconds_count"), 1);
  v1::PolicyInfo info;
  ASSERT_TRUE(client_->GetPolicy(&info).ok());
  EXPECT_EQ(test::Metric(metrics, absl::StrCat("lcio_policy_info{algo=\"test\",version=\"",
                                               info.policy_version(), "\"}")),
            1);
}

// Concurrent callers get the decisions a lone caller gets in every batching
// mode (auto: on the CPU each row is scored on its own call's thread; on:
// rows are batched; off), and every scored row is counted once in
// lcio_batch_size.
TEST_F(ServiceTest, ConcurrentCallersGetALoneCallersDecisionsInEveryBatchingMode) {
  constexpr int kCallers = 8, kTurns = 4;
  for (MicroBatching mode : {MicroBatching::kAuto, MicroBatching::kOn, MicroBatching::kOff}) {
    SCOPED_TRACE(MicroBatchingName(mode));
    StartServer({}, [mode](ServerOptions& o) {
      o.micro_batching = mode;
      o.batch_wait = absl::Milliseconds(5);
    });
    auto conversation = [&](const std::string& prefix, int caller) {
      std::vector<std::vector<double>> scores;
      for (int turn = 0; turn < kTurns; ++turn) {
        v1::DecideResponse r;
        // Budgets differ by caller, so the callers' rows differ.
        const absl::Status status = client_->Decide(
            Request(absl::StrCat(prefix, caller), turn, 5 + 3 * caller, 0.002 * (caller + 1)), &r);
        EXPECT_TRUE(status.ok()) << status;
        scores.push_back(Scores(r));
      }
      return scores;
    };
    std::vector<std::vector<std::vector<double>>> alone(kCallers), together(kCallers);
    for (int c = 0; c < kCallers; ++c) alone[c] = conversation("alone", c);
    std::vector<std::thread> callers;
    for (int c = 0; c < kCallers; ++c)
      callers.emplace_back([&, c] { together[c] = conversation("together", c); });
    for (std::thread& t : callers) t.join();
    EXPECT_EQ(together, alone);
    const auto metrics = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
    const double rows = 2 * kCallers * kTurns;
    EXPECT_EQ(test::Metric(metrics, "lcio_batch_size_sum"), rows);
    // Unbatched, each row is its own forward pass. (Whether rows share a
    // batch under `on` depends on timing; micro_batcher_test.cc gathers them
    // deterministically.)
    if (mode != MicroBatching::kOn) {
      EXPECT_EQ(test::Metric(metrics, "lcio_batch_size_count"), rows);
    }
    app_.reset();
  }
}

// With batching on, a forming batch waits (here up to 30 s) while any admitted
// call is announced but has not submitted its row: every call refused or
// replayed after its announcement must withdraw it, or every later batch would
// wait the whole batch_wait. A lone call after such calls is answered at once.
TEST_F(ServiceTest, RefusedAndReplayedCallsLeaveNoAnnouncementBehind) {
  StartServer({}, [](ServerOptions& o) {
    o.micro_batching = MicroBatching::kOn;
    o.batch_wait = absl::Seconds(30);
  });
  v1::DecideResponse r;
  ASSERT_TRUE(client_->Decide(Request("w", 0), &r).ok());
  v1::DecideRequest bad = Request("w", 1);
  bad.set_prompt("");
  EXPECT_EQ(client_->Decide(bad, &r).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->Decide(Request("w", 7), &r).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(client_->Decide(Request("w", 0), &r).ok());  // a replay of the stored answer
  const absl::Time start = absl::Now();
  EXPECT_TRUE(client_->Decide(Request("w", 1), &r).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

// Peers that connect to /metrics and send nothing hold a CivetWeb worker each
// until its request timeout: a few of them must not block a scrape.
TEST_F(ServiceTest, HalfOpenConnectionsDoNotBlockMetrics) {
  StartServer();
  std::vector<std::unique_ptr<test::IdleConnection>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<test::IdleConnection>(app_->metrics_port()));
    ASSERT_TRUE(idle.back()->connected());
  }
  // Bounded by HttpGet's socket timeout (5 s), far below CivetWeb's default
  // request timeout (30 s) that used to hold both workers.
  const auto metrics = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
  EXPECT_EQ(test::Metric(metrics, "lcio_policy_loaded"), 1);
}

// --metrics_basic_auth_file: /metrics answers only with the credentials.
TEST_F(ServiceTest, MetricsCanRequireBasicAuthentication) {
  test::WriteFile(dir_.File("metrics.auth"), "scraper:s3cret\n");
  StartServer({},
              [this](ServerOptions& o) { o.metrics_basic_auth_file = dir_.File("metrics.auth"); });
  const int port = app_->metrics_port();
  auto loaded = [](const std::string& body) {
    return test::Metric(test::ParseMetrics(body), "lcio_policy_loaded");
  };
  EXPECT_EQ(loaded(test::HttpGet(port, "/metrics")), -1);
  EXPECT_EQ(
      loaded(test::HttpGet(port, "/metrics", "Authorization: Basic c2NyYXBlcjp3cm9uZw==\r\n")),
      -1);  // scraper:wrong
  EXPECT_EQ(
      loaded(test::HttpGet(port, "/metrics", "Authorization: Basic c2NyYXBlcjpzM2NyZXQ=\r\n")),
      1);  // scraper:s3cret
  app_.reset();
  test::WriteFile(dir_.File("metrics.auth"), "no colon here\n");
  ServerOptions options;
  options.policy_path = policy_path_;
  options.listen = "127.0.0.1:0";
  options.metrics_listen = "127.0.0.1:0";
  options.metrics_basic_auth_file = dir_.File("metrics.auth");
  const auto refused = ServerApp::Start(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
}

TEST_F(ServiceTest, HotReloadSwapsGoodArtifactsAndKeepsServingOnBadOnes) {
  StartServer();
  v1::PolicyInfo before, after;
  ASSERT_TRUE(client_->GetPolicy(&before).ok());
  TestArtifactOptions other;
  other.seed = 2;
  const std::string next = dir_.File("next.pt");
  ASSERT_TRUE(policy::testing::WriteTestArtifact(next, other).ok());
  test::ReplaceFile(next, policy_path_);
  ASSERT_TRUE(app_->Reload("test").ok());
  ASSERT_TRUE(client_->GetPolicy(&after).ok());
  EXPECT_NE(before.policy_version(), after.policy_version());

  test::WriteFile(dir_.File("bad.pt"), "not an artifact");
  test::ReplaceFile(dir_.File("bad.pt"), policy_path_);
  EXPECT_FALSE(app_->Reload("test").ok());
  v1::PolicyInfo still;
  ASSERT_TRUE(client_->GetPolicy(&still).ok());
  EXPECT_EQ(still.policy_version(), after.policy_version());
  v1::DecideResponse r;
  ASSERT_TRUE(client_->Decide(Request("after-bad", 0), &r).ok());
  EXPECT_EQ(r.policy_version(), after.policy_version());
  const auto metrics = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
  EXPECT_EQ(test::Metric(metrics, "lcio_policy_reloads_total{result=\"ok\"}"), 2);
  EXPECT_EQ(test::Metric(metrics, "lcio_policy_reloads_total{result=\"error\"}"), 1);
}

// A training_config whose budget_distribution.kind is not a string threw
// from json::value() on the watcher thread: the reload ended the server.
// Such fields only inform (the largest training budget): read as absent.
TEST_F(ServiceTest, AMetadataFieldOfAnUnexpectedTypeNeverEndsTheServer) {
  StartServer();
  v1::PolicyInfo before;
  ASSERT_TRUE(client_->GetPolicy(&before).ok());
  int conversation = 0;
  for (const char* config :
       {R"({"budget_distribution": {"kind": 1, "high": {"latency_s": 60}}})",
        R"({"budget_distribution": {"kind": null, "high": {"latency_s": "60"}}})",
        R"({"budget_distribution": {"kind": {"fixed": true}, "fixed": [1]}})"}) {
    TestArtifactOptions odd;
    odd.seed = 3;
    odd.training_config_json = config;
    const std::string next = dir_.File("odd.pt");
    ASSERT_TRUE(policy::testing::WriteTestArtifact(next, odd).ok());
    // What such a policy serves: the training budget is the reference one.
    auto engine = policy::InferenceEngine::Load(next, "cpu");
    ASSERT_TRUE(engine.ok()) << engine.status();
    auto serving = ServingPolicy::Create(*std::move(engine), "", 64);
    ASSERT_TRUE(serving.ok()) << config << ": " << serving.status();
    test::ReplaceFile(next, policy_path_);
    EXPECT_TRUE(app_->Reload("test").ok()) << config;
    v1::DecideResponse r;
    ASSERT_TRUE(client_->Decide(Request(absl::StrCat("odd", ++conversation), 0), &r).ok())
        << config;
  }
}

TEST_F(ServiceTest, ReportAppendsDurableRecords) {
  StartServer({}, [this](ServerOptions& o) { o.report_log = dir_.File("reports.log"); });
  v1::ReportRequest report;
  report.set_conversation_id("rep");
  report.set_turn_index(0);
  report.set_prompt("What is on the table?");
  report.set_task("Query");
  report.set_target(v1::TARGET_CLOUD);
  report.add_uploaded_views("view1");
  for (double a : {0.2, 0.7, 0.1}) report.add_association(a);
  report.set_answer("a red cup");
  report.set_score(0.9);
  report.set_interaction_time_s(2.0);
  report.set_usage_cost_usd(0.005);
  v1::ReportResponse response;
  ASSERT_TRUE(client_->Report(report, &response).ok());
  EXPECT_EQ(response.record(), 1u);
  auto contents = ReadReportLog(dir_.File("reports.log"));
  ASSERT_TRUE(contents.ok());
  ASSERT_EQ(contents->records.size(), 1u);
  EXPECT_EQ(contents->records[0].uploaded_views, std::vector<int>({1}));
  EXPECT_EQ(contents->records[0].answer, "a red cup");
  // Scores are on M4A1's scale (its data reaches 9), not [0, 1].
  report.set_score(3);
  ASSERT_TRUE(client_->Report(report, &response).ok());
  contents = ReadReportLog(dir_.File("reports.log"));
  ASSERT_TRUE(contents.ok());
  ASSERT_EQ(contents->records.size(), 2u);
  EXPECT_EQ(contents->records[1].score, 3.0);
  report.set_score(-1);
  EXPECT_EQ(client_->Report(report, &response).code(), absl::StatusCode::kInvalidArgument);
}

v1::ReportRequest ValidReport() {
  v1::ReportRequest report;
  report.set_conversation_id("caps");
  report.set_turn_index(0);
  report.set_prompt("What is on the table?");
  report.set_task("Query");
  report.set_target(v1::TARGET_LOCAL);
  for (double a : {0.2, 0.7, 0.1}) report.add_association(a);
  report.set_answer("a red cup");
  return report;
}

TEST_F(ServiceTest, ReportRefusesValuesAboveTheirCapsAndRecordsAboveTheSizeCap) {
  StartServer({}, [this](ServerOptions& o) { o.report_log = dir_.File("reports.log"); });
  v1::ReportResponse response;
  auto refused = [&](const v1::ReportRequest& r, const std::string& field) {
    const absl::Status s = client_->Report(r, &response);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field << ": " << s;
    EXPECT_NE(s.message().find(field), absl::string_view::npos) << s;
  };
  v1::ReportRequest r = ValidReport();
  r.set_score(1e308);
  refused(r, "score = 1e+308: must be <= 1000");
  r = ValidReport();
  r.set_interaction_time_s(2e6);
  refused(r, "interaction_time_s");
  r = ValidReport();
  r.set_usage_cost_usd(1e300);
  refused(r, "usage_cost_usd");
  r = ValidReport();
  r.set_answer(std::string(100 << 10, 'a'));  // under the answer limit, over the record's
  refused(r, "--report_max_record_bytes");
  r = ValidReport();
  r.set_score(1000);
  r.set_interaction_time_s(1e6);
  r.set_usage_cost_usd(1e6);
  ASSERT_TRUE(client_->Report(r, &response).ok());  // the caps themselves are allowed
  auto contents = ReadReportLog(dir_.File("reports.log"));
  ASSERT_TRUE(contents.ok());
  EXPECT_EQ(contents->records.size(), 1u);
}

TEST_F(ServiceTest, ReportBelowTheDiskFloorIsResourceExhaustedAndCounted) {
  StartServer({}, [this](ServerOptions& o) {
    o.report_log = dir_.File("reports.log");
    o.report_min_free_bytes = int64_t{1} << 62;  // more than any disk has
  });
  v1::ReportResponse response;
  EXPECT_EQ(client_->Report(ValidReport(), &response).code(), absl::StatusCode::kResourceExhausted);
  v1::DecideResponse decided;
  EXPECT_TRUE(client_->Decide(Request("floor", 0), &decided).ok());
  const auto metrics = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
  EXPECT_EQ(test::Metric(metrics, "lcio_reports_rejected_total{reason=\"disk_space\"}"), 1);
  EXPECT_EQ(test::Metric(metrics, "lcio_reports_total"), 0);
}

TEST_F(ServiceTest, ReportWithoutALogIsFailedPrecondition) {
  StartServer();
  v1::ReportResponse response;
  EXPECT_EQ(client_->Report(v1::ReportRequest(), &response).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ServiceTest, TlsAndMutualTls) {
  test::Certificates certs;
  ASSERT_TRUE(test::MakeCertificates(dir_.path(), &certs)) << "openssl failed";
  StartServer({}, [&](ServerOptions& o) {
    o.tls_cert = certs.server_cert;
    o.tls_key = certs.server_key;
    o.tls_client_ca = certs.ca_cert;
  });
  const std::string target = absl::StrCat("127.0.0.1:", app_->port());
  auto connect = [&](const std::string& ca, const std::string& cert, const std::string& key) {
    ClientOptions o;
    o.target = target;
    o.tls_ca = ca;
    o.tls_cert = cert;
    o.tls_key = key;
    o.max_attempts = 1;
    o.timeout = absl::Seconds(3);
    auto client = Client::Create(o);
    EXPECT_TRUE(client.ok());
    v1::PolicyInfo info;
    return (*client)->GetPolicy(&info);
  };
  EXPECT_TRUE(connect(certs.ca_cert, certs.client_cert, certs.client_key).ok());
  EXPECT_FALSE(connect(certs.ca_cert, "", "").ok());  // no client certificate
  EXPECT_FALSE(connect(certs.other_ca_cert, certs.client_cert, certs.client_key).ok());
  EXPECT_FALSE(connect("", "", "").ok());  // plaintext to a TLS port
}

TEST_F(ServiceTest, ServerSideTlsWithoutClientCertificates) {
  test::Certificates certs;
  ASSERT_TRUE(test::MakeCertificates(dir_.path(), &certs)) << "openssl failed";
  StartServer({}, [&](ServerOptions& o) {
    o.tls_cert = certs.server_cert;
    o.tls_key = certs.server_key;
  });
  ClientOptions o;
  o.target = absl::StrCat("127.0.0.1:", app_->port());
  o.tls_ca = certs.ca_cert;
  auto client = Client::Create(o);
  v1::DecideResponse r;
  EXPECT_TRUE((*client)->Decide(Request("tls", 0), &r).ok());
}

TEST_F(ServiceTest, OverloadGetsResourceExhaustedAndTheServerKeepsServing) {
  // No call may be in flight: every Decide is refused at admission, queued nowhere.
  StartServer({}, [](ServerOptions& o) { o.max_inflight = 0; });
  v1::DecideResponse r;
  const absl::Status s = client_->Decide(Request("busy", 0), &r);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(std::string(s.message()).find("max_inflight"), std::string::npos) << s;
  // Refused calls never touched the conversation: with capacity restored the
  // conversation still starts at turn 0.
  app_.reset();
  StartServer();
  EXPECT_TRUE(client_->Decide(Request("busy", 0), &r).ok());
}

TEST_F(ServiceTest, AnExpiredDeadlineIsDeadlineExceededNotAHang) {
  StartServer();
  ClientOptions hurried;
  hurried.target = absl::StrCat("127.0.0.1:", app_->port());
  hurried.timeout = absl::Microseconds(1);
  hurried.max_attempts = 1;
  auto client = Client::Create(hurried);
  ASSERT_TRUE(client.ok());
  v1::DecideResponse r;
  const absl::Status s = (*client)->Decide(Request("late", 0), &r);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  // The server is unharmed.
  EXPECT_TRUE(client_->Decide(Request("on-time", 0), &r).ok());
}

// A reload to a policy with fewer actions (2 views: 5) and tasks (3) while a
// conversation is open: its next turn is refused with FAILED_PRECONDITION and
// a restart hint (not INVALID_ARGUMENT about history the client never sent),
// and the restart at turn 0 works.
TEST_F(ServiceTest, AReloadToASmallerPolicyAsksOpenConversationsToRestart) {
  TestArtifactOptions first;
  first.favoured_action = 8;  // cloud+{0,1,2}: not an action of a 2-view policy
  StartServer(first);
  v1::DecideResponse r;
  for (int turn = 0; turn < 2; ++turn)
    ASSERT_TRUE(client_->Decide(Request("open", turn, 1000, 10), &r).ok());
  ASSERT_EQ(r.action(), 8);
  TestArtifactOptions smaller;
  smaller.num_views = 2;
  smaller.tasks = {"Assistive System", "Message Editing", "Recommendation"};
  smaller.seed = 2;
  ASSERT_NO_FATAL_FAILURE(SwapPolicy(smaller));
  auto request = [](int turn) {
    v1::DecideRequest q = Request("open", turn);
    q.set_task("Recommendation");
    q.mutable_views()->RemoveLast();
    return q;
  };
  const absl::Status next = client_->Decide(request(2), &r);
  EXPECT_EQ(next.code(), absl::StatusCode::kFailedPrecondition) << next;
  EXPECT_NE(next.message().find("restart the conversation at turn_index 0"), std::string::npos)
      << next;
  // Repeating it changes nothing.
  EXPECT_EQ(client_->Decide(request(2), &r).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(client_->Decide(request(0), &r).ok());
  ASSERT_TRUE(client_->Decide(request(1), &r).ok());
  EXPECT_EQ(r.scores_size(), 5);
}

// A reload to a policy of the same shape whose indices mean other things
// (views and tasks in another order) remaps the stored history by name: the
// next turn is decided exactly as a stateless request carrying the history
// in the new policy's terms. With other names (a task it does not know) the
// conversation must restart.
TEST_F(ServiceTest, AReloadToASameShapePolicyNeverReinterpretsHistory) {
  StartServer();
  v1::DecideResponse r;
  struct Turn {
    bool cloud;
    std::set<std::string> views;
  };
  std::vector<Turn> decided;
  for (int turn = 0; turn < 3; ++turn) {
    v1::DecideRequest q = Request("same-shape", turn);
    ASSERT_TRUE(client_->Decide(q, &r).ok());
    Turn t{r.target() == v1::TARGET_CLOUD, {}};
    for (const auto& view : r.upload()) t.views.insert(view.name());
    decided.push_back(t);
  }
  TestArtifactOptions reordered;
  reordered.view_names = {"view2", "view0", "view1"};
  reordered.tasks = {"Recommendation", "Query", "Message Editing", "Assistive System"};
  reordered.seed = 2;
  ASSERT_NO_FATAL_FAILURE(SwapPolicy(reordered));
  v1::PolicyInfo info;
  ASSERT_TRUE(client_->GetPolicy(&info).ok());
  v1::DecideRequest stateless = Request("stateless", 3);
  for (const Turn& t : decided) {
    int index = -1;
    for (const auto& action : info.actions()) {
      std::set<std::string> views;
      for (int v : action.views()) views.insert(info.view_names(v));
      if (action.cloud() == t.cloud && views == t.views) index = action.index();
    }
    ASSERT_GE(index, 0);
    auto* h = stateless.mutable_history()->add_turns();
    h->set_action(index);
    h->set_task("Query");
  }
  v1::DecideResponse stored, expected;
  ASSERT_TRUE(client_->Decide(Request("same-shape", 3), &stored).ok());
  ASSERT_TRUE(client_->Decide(stateless, &expected).ok());
  EXPECT_EQ(Scores(stored), Scores(expected));
  EXPECT_EQ(stored.action(), expected.action());

  TestArtifactOptions renamed;
  renamed.tasks = {"Alpha", "Beta", "Gamma", "Delta"};
  renamed.seed = 3;
  ASSERT_NO_FATAL_FAILURE(SwapPolicy(renamed));
  v1::DecideRequest q = Request("same-shape", 4);
  q.set_task("Alpha");
  const absl::Status refused = client_->Decide(q, &r);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_NE(refused.message().find("task \"Query\""), std::string::npos) << refused;
  q = Request("same-shape", 0);
  q.set_task("Alpha");
  EXPECT_TRUE(client_->Decide(q, &r).ok());
}

// Under mutual TLS, a conversation belongs to the client certificate that
// started it: another client that knows its id gets PERMISSION_DENIED.
TEST_F(ServiceTest, UnderMutualTlsConversationsAreBoundToTheClientIdentity) {
  test::Certificates certs;
  ASSERT_TRUE(test::MakeCertificates(dir_.path(), &certs)) << "openssl failed";
  std::string other_cert, other_key;
  ASSERT_TRUE(test::MakeClientCertificate(dir_.path(), certs, "lcio-other-client", &other_cert,
                                          &other_key));
  StartServer({}, [&](ServerOptions& o) {
    o.tls_cert = certs.server_cert;
    o.tls_key = certs.server_key;
    o.tls_client_ca = certs.ca_cert;
  });
  auto connect = [&](const std::string& cert, const std::string& key) {
    ClientOptions o;
    o.target = absl::StrCat("127.0.0.1:", app_->port());
    o.tls_ca = certs.ca_cert;
    o.tls_cert = cert;
    o.tls_key = key;
    o.max_attempts = 1;
    auto client = Client::Create(o);
    EXPECT_TRUE(client.ok());
    return *std::move(client);
  };
  auto owner = connect(certs.client_cert, certs.client_key);
  auto other = connect(other_cert, other_key);
  v1::DecideResponse r;
  ASSERT_TRUE(owner->Decide(Request("mine", 0), &r).ok());
  const absl::Status stolen = other->Decide(Request("mine", 1), &r);
  EXPECT_EQ(stolen.code(), absl::StatusCode::kPermissionDenied) << stolen;
  EXPECT_EQ(other->Decide(Request("mine", 0), &r).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(other->Decide(Request("theirs", 0), &r).ok());
  EXPECT_TRUE(owner->Decide(Request("mine", 1), &r).ok());
}

// Identity for retries is the decision-relevant fields: toggling explain on a
// retry used to fail (FAILED_PRECONDITION: the bytes differed).
TEST_F(ServiceTest, ARetryMayAddOrDropTheExplanation) {
  StartServer();
  v1::DecideRequest request = Request("explain-retry", 0);
  request.set_explain(false);
  v1::DecideResponse plain, explained, plain_again;
  ASSERT_TRUE(client_->Decide(request, &plain).ok());
  EXPECT_EQ(plain.scores_size(), 0);
  request.set_explain(true);
  ASSERT_TRUE(client_->Decide(request, &explained).ok());
  EXPECT_EQ(explained.decision_id(), plain.decision_id());
  EXPECT_EQ(explained.action(), plain.action());
  EXPECT_EQ(explained.scores_size(), 9);
  request.set_explain(false);
  ASSERT_TRUE(client_->Decide(request, &plain_again).ok());
  EXPECT_EQ(plain_again.decision_id(), plain.decision_id());
  EXPECT_EQ(plain_again.scores_size(), 0);
  // A decision-relevant change is still not a retry.
  request.mutable_budget()->set_latency_s(29);
  v1::DecideResponse other;
  EXPECT_EQ(client_->Decide(request, &other).code(), absl::StatusCode::kFailedPrecondition);
}

// A decision answered without its explanation is stored with what the
// explanation needs: a retry asking for it gets exactly the explanation the
// decision had, from the policy that decided it even after a reload, as if
// it had been asked for the first time.
TEST_F(ServiceTest, ARetryAddingTheExplanationGetsTheDecisionsOwn) {
  TestArtifactOptions artifact;
  artifact.response_aware = true;  // predicted responses are explained too
  StartServer(artifact);
  auto same_except_id = [](v1::DecideResponse a, v1::DecideResponse b) {
    EXPECT_NE(a.decision_id(), b.decision_id());
    a.clear_decision_id();
    b.clear_decision_id();
    EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString()) << a.DebugString() << b.DebugString();
  };
  for (int turn = 0; turn < 3; ++turn) {
    // "asked": explained from the start; "later": the same turn of another
    // conversation, answered plainly, then retried with explain.
    v1::DecideRequest asked = Request("asked", turn, 20 - turn, 0.004);
    v1::DecideRequest later = Request("later", turn, 20 - turn, 0.004);
    later.set_explain(false);
    v1::DecideResponse explained, plain, retried;
    ASSERT_TRUE(client_->Decide(asked, &explained).ok());
    ASSERT_EQ(explained.scores_size(), 9);
    ASSERT_TRUE(client_->Decide(later, &plain).ok());
    EXPECT_EQ(plain.scores_size(), 0);
    later.set_explain(true);
    ASSERT_TRUE(client_->Decide(later, &retried).ok());
    EXPECT_EQ(retried.decision_id(), plain.decision_id());
    same_except_id(explained, retried);
    EXPECT_TRUE(std::any_of(retried.scores().begin(), retried.scores().end(),
                            [](const v1::ActionScore& a) { return !a.fits_budget(); }));
  }
  // After a reload the retry still explains with the policy that decided.
  v1::DecideRequest before = Request("before", 0);
  before.set_explain(false);
  v1::DecideResponse plain, reference, retried;
  ASSERT_TRUE(client_->Decide(before, &plain).ok());
  ASSERT_TRUE(client_->Decide(Request("reference", 0), &reference).ok());
  TestArtifactOptions other = artifact;
  other.seed = 7;
  ASSERT_NO_FATAL_FAILURE(SwapPolicy(other));
  before.set_explain(true);
  ASSERT_TRUE(client_->Decide(before, &retried).ok());
  EXPECT_EQ(retried.decision_id(), plain.decision_id());
  EXPECT_EQ(retried.policy_version(), reference.policy_version());
  same_except_id(reference, retried);
  v1::DecideResponse fresh;
  ASSERT_TRUE(client_->Decide(Request("fresh", 0), &fresh).ok());
  EXPECT_NE(fresh.policy_version(), reference.policy_version());
}

TEST_F(ServiceTest, ExplanationsGiveProbabilitiesCostsAndTheBindingBudget) {
  StartServer();
  v1::DecideResponse r;
  // Enough time, too little money for any cloud call.
  ASSERT_TRUE(client_->Decide(Request("why", 0, 30, 0.0001), &r).ok());
  ASSERT_EQ(r.scores_size(), 9);
  double total = 0, best = -1;
  int most_probable = -1;
  for (const v1::ActionScore& s : r.scores()) {
    EXPECT_GE(s.probability(), 0);
    EXPECT_LE(s.probability(), 1);
    total += s.probability();
    if (s.probability() > best) best = s.probability(), most_probable = s.action();
    if (s.fits_budget())
      EXPECT_EQ(s.binding_constraint(), "") << s.description();
    else
      EXPECT_TRUE(absl::StrContains(s.binding_constraint(), "money")) << s.description();
    EXPECT_GE(s.expected_money_usd(), 0);
  }
  EXPECT_NEAR(total, 1, 1e-6);
  EXPECT_EQ(most_probable, r.proposed_action());  // the policy takes its most probable action
  EXPECT_FALSE(r.scores(8).fits_budget());        // cloud with every view
  // Too little time for the cloud (money plenty): the latency budget binds.
  ASSERT_TRUE(client_->Decide(Request("why-time", 0, 0.5, 1), &r).ok());
  EXPECT_EQ(r.scores(8).binding_constraint(), "latency");
}

TEST_F(ServiceTest, BudgetsAboveTheTrainingRangeAreDecidedFlaggedAndCounted) {
  StartServer();
  v1::PolicyInfo info;
  ASSERT_TRUE(client_->GetPolicy(&info).ok());
  ASSERT_GT(info.training_budget_max().latency_s(), 0);
  ASSERT_GT(info.reference_budget().money_usd(), 0);
  v1::DecideResponse r;
  ASSERT_TRUE(client_->Decide(Request("inside", 0), &r).ok());
  EXPECT_FALSE(r.budget_outside_training());
  EXPECT_EQ(r.warnings_size(), 0);
  ASSERT_TRUE(client_->Decide(Request("huge", 0, 30000, 5), &r).ok());
  EXPECT_TRUE(r.budget_outside_training());
  ASSERT_EQ(r.warnings_size(), 2);
  EXPECT_TRUE(absl::StrContains(r.warnings(0), "budget.latency_s = 30000")) << r.warnings(0);
  EXPECT_TRUE(absl::StrContains(r.warnings(1), "budget.money_usd = 5")) << r.warnings(1);
  ASSERT_TRUE(client_->Decide(Request("rich", 0, 30, 5), &r).ok());
  EXPECT_EQ(r.warnings_size(), 1);
  const auto metrics = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
  EXPECT_EQ(
      test::Metric(metrics, "lcio_decide_budget_outside_training_total{budget=\"latency_s\"}"), 1);
  EXPECT_EQ(
      test::Metric(metrics, "lcio_decide_budget_outside_training_total{budget=\"money_usd\"}"), 2);
}

TEST_F(ServiceTest, GetPolicyAndMetricsNameTheServerVersion) {
  StartServer();
  v1::PolicyInfo info;
  ASSERT_TRUE(client_->GetPolicy(&info).ok());
  EXPECT_EQ(info.server_version(), LCIO_VERSION);
  const auto metrics = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
  EXPECT_EQ(test::Metric(metrics, absl::StrCat("lcio_build_info{version=\"", LCIO_VERSION, "\"}")),
            1);
}

TEST_F(ServiceTest, ListenAddressesAreValidatedNamingFlagValueAndRule) {
  EXPECT_TRUE(ValidateListenAddress("listen", "0.0.0.0:50051").ok());
  EXPECT_TRUE(ValidateListenAddress("listen", "[::]:0").ok());
  EXPECT_TRUE(ValidateListenAddress("listen", "localhost:65535").ok());
  EXPECT_TRUE(ValidateListenAddress("listen", "unix:/tmp/lcio.sock").ok());
  for (const char* bad : {"50811", ":50051", "0.0.0.0:", "0.0.0.0:65536", "0.0.0.0:http",
                          "::1:50051", "0.0.0.0:-1", "host name:1"}) {
    const absl::Status s = ValidateListenAddress("metrics_listen", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StrContains(s.message(), absl::StrCat("metrics_listen = \"", bad, "\"")))
        << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "HOST:PORT")) << s;
  }
  // Debian 12's CivetWeb has no IPv6: such an address used to pass this
  // check and fail to bind with "null context when constructing CivetServer".
  const absl::Status v6 = ValidateListenAddress("metrics_listen", "[::1]:0");
  if (Metrics::ServesIpv6()) {
    EXPECT_TRUE(v6.ok()) << v6;
  } else {
    EXPECT_EQ(v6.code(), absl::StatusCode::kInvalidArgument) << v6;
    EXPECT_TRUE(absl::StrContains(v6.message(), "(CivetWeb) has no IPv6")) << v6;
    EXPECT_FALSE(absl::StrContains(v6.message(), "[::]:50051")) << v6;
  }
  ServerOptions options;
  options.listen = "50811";
  options.metrics_listen = "";
  auto app = ServerApp::Start(options);
  ASSERT_FALSE(app.ok());
  EXPECT_TRUE(absl::StrContains(app.status().message(), "listen = \"50811\"")) << app.status();
}

// A missing report-log directory used to be fatal while a missing policy is
// waited for; the directory is now created.
TEST_F(ServiceTest, TheReportLogsMissingDirectoryIsCreated) {
  const std::string log = dir_.File("not/yet/there/reports.log");
  StartServer({}, [&](ServerOptions& o) { o.report_log = log; });
  v1::ReportRequest report;
  report.set_conversation_id("dir");
  report.set_turn_index(0);
  report.set_prompt("What is on the table?");
  report.set_task("Query");
  report.set_target(v1::TARGET_LOCAL);
  for (double a : {0.2, 0.7, 0.1}) report.add_association(a);
  v1::ReportResponse response;
  ASSERT_TRUE(client_->Report(report, &response).ok());
  EXPECT_TRUE(absl::StrContains(test::ReadFile(log), "\"conversation_id\":\"dir\""));
}

// The decision log's too (the container's entrypoint made it with `mkdir -p`,
// whose entry nothing synced).
TEST_F(ServiceTest, TheDecisionLogsMissingDirectoryIsCreated) {
  const std::string log = dir_.File("not/there/either/decisions.jsonl");
  StartServer({}, [&](ServerOptions& o) { o.decision_log = log; });
  v1::DecideResponse response;
  ASSERT_TRUE(client_->Decide(Request("dir", 0), &response).ok());
  app_.reset();  // flushes the decision log
  EXPECT_TRUE(absl::StrContains(test::ReadFile(log), response.decision_id()));
}

// lcio::Client balances over every address of its target: with gRPC's
// default pick_first every call went to the first server.
TEST_F(ServiceTest, TheClientSpreadsCallsOverEveryAddress) {
  StartServer();
  ServerOptions options;
  options.policy_path = policy_path_;
  options.listen = "127.0.0.1:0";
  options.metrics_listen = "";
  options.torch_device = "cpu";
  auto second = ServerApp::Start(options);
  ASSERT_TRUE(second.ok()) << second.status();
  ClientOptions client_options;
  client_options.target =
      absl::StrCat("ipv4:127.0.0.1:", app_->port(), ",127.0.0.1:", (*second)->port());
  auto client = Client::Create(client_options);
  ASSERT_TRUE(client.ok());
  // round_robin uses the addresses whose connection is ready: on a loaded
  // machine the second may connect after the first calls, so calls go on (at
  // most 200) until one lands there. pick_first sends every one to the first.
  v1::DecideResponse r;
  int calls = 0;
  double on_first = 0;
  while (calls < 200) {
    for (int i = 0; i < 20; ++i, ++calls)
      ASSERT_TRUE((*client)->Decide(Request(absl::StrCat("rr", calls), 0), &r).ok());
    const auto first = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
    on_first = test::Metric(first, "lcio_decide_requests_total{code=\"OK\"}");
    if (on_first < calls) break;
  }
  EXPECT_GT(on_first, 0);
  EXPECT_LT(on_first, calls);  // the rest went to the second server
}

// A server restarted on its port: the client's retries used to run out in
// tens of milliseconds while gRPC's reconnect backoff held the channel down
// for a second or more; a retry now waits (within its attempt's timeout) for
// the channel to connect, and the reconnect backoff is capped at 1 s.
TEST_F(ServiceTest, TheClientReachesAServerRestartedOnItsPort) {
  StartServer();
  const int port = app_->port();
  v1::DecideResponse r;
  ASSERT_TRUE(client_->Decide(Request("restart", 0), &r).ok());
  app_->Shutdown();
  app_.reset();
  // Failed reconnects while it is down grow the channel's backoff.
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(
        client_->DecideOnce(Request(absl::StrCat("down", i), 0), &r, absl::Milliseconds(300)).ok());
    absl::SleepFor(absl::Milliseconds(300));
  }
  // Down, a call fails in about one reconnect backoff per retry, not 3 x 5 s.
  absl::Time start = absl::Now();
  EXPECT_EQ(client_->Decide(Request("down", 0), &r).code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  ServerOptions options;
  options.policy_path = policy_path_;
  options.listen = absl::StrCat("127.0.0.1:", port);
  options.metrics_listen = "";
  options.torch_device = "cpu";
  auto again = ServerApp::Start(options);
  ASSERT_TRUE(again.ok()) << again.status();
  app_ = *std::move(again);
  start = absl::Now();
  const absl::Status status = client_->Decide(Request("restarted", 0), &r);
  EXPECT_TRUE(status.ok()) << status << " after " << absl::Now() - start;
}

// A peer that accepts connections and never answers: without a bound on
// the whole call a caller waited max_attempts x timeout.
TEST(ClientOptionsTest, TheTotalTimeoutBoundsTheWholeCall) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 16), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  ClientOptions options;
  options.target = absl::StrCat("127.0.0.1:", ntohs(address.sin_port));
  options.timeout = absl::Seconds(2);
  options.max_attempts = 3;
  options.total_timeout = absl::Milliseconds(800);
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  v1::PolicyInfo info;
  const absl::Time start = absl::Now();
  const absl::Status status = (*client)->GetPolicy(&info);
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_GE(took, absl::Milliseconds(700));
  EXPECT_LT(took, absl::Milliseconds(1600)) << "3 attempts of 2 s would take 6 s";
  ::close(listener);
}

// A server (or proxy) whose status message is longer than gRPC lets
// metadata be: the client sees RESOURCE_EXHAUSTED "received ... metadata size
// exceeds limit", which is not load and is as long the next time.
TEST(ClientOptionsTest, AStatusTooLongForMetadataIsNotRetriedAsLoad) {
  class LongRefusals : public v1::Offloader::Service {
   public:
    std::atomic<int> calls{0};
    grpc::Status GetPolicy(grpc::ServerContext*, const v1::GetPolicyRequest*,
                           v1::PolicyInfo*) override {
      ++calls;
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(20000, 'x'));
    }
  } service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ClientOptions options;
  options.target = absl::StrCat("127.0.0.1:", port);
  options.timeout = absl::Seconds(5);
  options.max_attempts = 3;
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  v1::PolicyInfo info;
  const absl::Status status = (*client)->GetPolicy(&info);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(service.calls.load(), 1) << status;
  server->Shutdown();
}

TEST(ClientOptionsTest, OptionsThatCannotWorkAreRefusedNamingThem) {
  const std::pair<std::function<void(ClientOptions&)>, std::string> cases[] = {
      {[](ClientOptions& o) { o.timeout = absl::ZeroDuration(); }, "timeout = 0: must be > 0"},
      {[](ClientOptions& o) { o.total_timeout = absl::Seconds(-1); },
       "total_timeout = -1s: must be > 0"},
      {[](ClientOptions& o) { o.max_attempts = 0; }, "max_attempts = 0: must be >= 1"},
      {[](ClientOptions& o) { o.max_backoff = absl::InfiniteDuration(); },
       "max_backoff = inf: must be finite and >= 0"},
      // Silently plaintext before.
      {[](ClientOptions& o) { o.tls_server_name = "lcio.example"; },
       "tls_cert, tls_key and tls_server_name need tls_ca"},
      {[](ClientOptions& o) { o.tls_cert = "cert.pem"; }, "need tls_ca"},
  };
  for (const auto& [change, message] : cases) {
    ClientOptions options;
    change(options);
    auto client = Client::Create(options);
    ASSERT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument) << message;
    EXPECT_NE(client.status().message().find(message), std::string::npos) << client.status();
  }
}

}  // namespace
}  // namespace lcio::server
