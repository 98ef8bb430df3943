// The decision log, exploration and the shadow policy: the sampling rule on
// its own, then the service in process over real gRPC with real (small,
// random-weight) artifacts, reading back the log it wrote.
#include "lcio/data/decision_log.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "absl/time/clock.h"
#include "lcio/client/client.h"
#include "lcio/policy/testing.h"
#include "lcio/server/decision_logger.h"
#include "lcio/server/exploration.h"
#include "lcio/server/server.h"
#include "test_support.h"

namespace lcio::server {
namespace {

using policy::testing::TestArtifactOptions;

TEST(ExplorationTest, ParsesTheFlagAndRefusesBadValuesNamingThem) {
  EXPECT_FALSE(ExploreConfig::Parse("")->enabled());
  EXPECT_FALSE(ExploreConfig::Parse("none")->enabled());
  auto epsilon = ExploreConfig::Parse("epsilon:0.05");
  ASSERT_TRUE(epsilon.ok());
  EXPECT_EQ(epsilon->mode, ExploreConfig::Mode::kEpsilon);
  EXPECT_DOUBLE_EQ(epsilon->parameter, 0.05);
  auto softmax = ExploreConfig::Parse("softmax:0.5");
  ASSERT_TRUE(softmax.ok());
  EXPECT_STREQ(softmax->ModeName(), "softmax");
  for (const char* bad : {"epsilon", "epsilon:1.5", "epsilon:-0.1", "epsilon:x", "softmax:0",
                          "softmax:-1", "softmax:inf", "greedy:1", "epsilon:nan"}) {
    auto refused = ExploreConfig::Parse(bad);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(refused.status().message().find(absl::StrCat("explore = \"", bad, "\"")),
              absl::string_view::npos)
        << refused.status();
  }
}

TEST(ExplorationTest, EpsilonSpreadsOnlyOverAllowedActions) {
  const ExploreConfig config = *ExploreConfig::Parse("epsilon:0.3");
  const std::vector<float> scores = {0.5f, 3.0f, 1.0f, -2.0f};
  const std::vector<bool> allowed = {true, false, true, true};  // the best scorer does not fit
  std::map<int, int> taken;
  constexpr int kDraws = 1000;
  for (int i = 0; i < kDraws; ++i) {
    const ExploreChoice c = Explore(config, scores, allowed, /*greedy=*/2, (i + 0.5) / kDraws);
    ASSERT_EQ(c.probabilities.size(), 4u);
    EXPECT_NEAR(c.probabilities[0], 0.1, 1e-12);
    EXPECT_EQ(c.probabilities[1], 0.0);
    EXPECT_NEAR(c.probabilities[2], 0.8, 1e-12);
    EXPECT_NEAR(c.probabilities[3], 0.1, 1e-12);
    EXPECT_TRUE(allowed[c.action]);
    EXPECT_EQ(c.explored, c.action != 2);
    ++taken[c.action];
  }
  // Evenly spaced draws hit each action in proportion to its probability.
  EXPECT_EQ(taken[0], 100);
  EXPECT_EQ(taken[2], 800);
  EXPECT_EQ(taken[3], 100);
}

TEST(ExplorationTest, SoftmaxWeighsAllowedScoresAndNothingAllowedTakesTheGreedyAction) {
  const ExploreConfig config = *ExploreConfig::Parse("softmax:0.5");
  const std::vector<float> scores = {0.0f, 1.0f, 9.0f};
  const ExploreChoice c = Explore(config, scores, {true, true, false}, 1, 0.0);
  const double e0 = std::exp(-2.0), sum = e0 + 1;  // exp((s - 1) / 0.5) over the allowed
  EXPECT_NEAR(c.probabilities[0], e0 / sum, 1e-12);
  EXPECT_NEAR(c.probabilities[1], 1 / sum, 1e-12);
  EXPECT_EQ(c.probabilities[2], 0.0);
  EXPECT_EQ(c.action, 0);  // u = 0 takes the first action with a positive probability
  EXPECT_TRUE(c.explored);
  // Nothing fits: the shield's cheapest action, with certainty.
  const ExploreChoice none = Explore(config, scores, {false, false, false}, 0, 0.99);
  EXPECT_EQ(none.action, 0);
  EXPECT_EQ(none.probabilities, (std::vector<double>{1, 0, 0}));
  EXPECT_FALSE(none.explored);
  // Exploration off: the greedy action, whatever the draw.
  const ExploreChoice off = Explore(ExploreConfig{}, scores, {}, 1, 0.99);
  EXPECT_EQ(off.action, 1);
  EXPECT_EQ(off.probabilities, (std::vector<double>{0, 1, 0}));
}

// time_utc is written as absl::FormatTime writes it, whatever the order of
// the times (the per-second cache) and their sub-microsecond part.
TEST(DecisionTimeTest, MatchesFormatTimeExactly) {
  auto reference = [](absl::Time t) {
    return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
  };
  std::mt19937_64 rng(7);
  std::vector<absl::Time> times = {absl::UnixEpoch(),
                                   absl::UnixEpoch() - absl::Nanoseconds(1),
                                   absl::UnixEpoch() - absl::Seconds(1) + absl::Nanoseconds(999),
                                   absl::FromUnixSeconds(1798761599) + absl::Nanoseconds(999999999),
                                   absl::FromUnixSeconds(1798761600),
                                   absl::InfiniteFuture(),
                                   absl::InfinitePast()};
  const absl::Time now = absl::Now();
  for (int i = 0; i < 20000; ++i) {
    const int64_t ns = static_cast<int64_t>(rng() % 4000000000ull) - 2000000000;  // +-2 s
    times.push_back(now + absl::Nanoseconds(ns));
    if (i % 10 == 0)
      times.push_back(absl::FromUnixNanos(static_cast<int64_t>(rng() >> 2) - (int64_t{1} << 61)));
  }
  std::string text;
  for (const absl::Time t : times) {
    FormatDecisionTime(t, &text);
    ASSERT_EQ(text, reference(t)) << absl::FormatTime(t);
  }
}

TEST(ExplorationTest, TheDrawIsAFixedFunctionOfTheDecisionId) {
  EXPECT_EQ(ExplorationDraw("c/0/00000000000000ab"), ExplorationDraw("c/0/00000000000000ab"));
  EXPECT_NE(ExplorationDraw("c/0/00000000000000ab"), ExplorationDraw("c/0/00000000000000ac"));
  double sum = 0;
  constexpr int kIds = 10000;
  for (int i = 0; i < kIds; ++i) {
    const double u = ExplorationDraw(absl::StrCat("conv/", i % 7, "/", i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / kIds, 0.5, 0.02);  // a fixed hash: this is deterministic
}

class DecisionLogServiceTest : public ::testing::Test {
 protected:
  void StartServer(std::function<void(ServerOptions&)> tweak = nullptr,
                   const TestArtifactOptions& artifact = {}) {
    policy_path_ = dir_.File("policy.pt");
    auto written = policy::testing::WriteTestArtifact(policy_path_, artifact);
    ASSERT_TRUE(written.ok()) << written.status();
    log_path_ = dir_.File("decisions.jsonl");
    ServerOptions options;
    options.policy_path = policy_path_;
    options.listen = "127.0.0.1:0";
    options.metrics_listen = "127.0.0.1:0";
    options.torch_device = "cpu";
    options.watch_interval = absl::Seconds(3600);
    options.drain_timeout = absl::Seconds(5);
    options.decision_log = log_path_;
    if (tweak) tweak(options);
    auto app = ServerApp::Start(options);
    ASSERT_TRUE(app.ok()) << app.status();
    app_ = *std::move(app);
    ClientOptions client_options;
    client_options.target = absl::StrCat("127.0.0.1:", app_->port());
    auto client = Client::Create(client_options);
    ASSERT_TRUE(client.ok());
    client_ = *std::move(client);
  }

  static v1::DecideRequest Request(const std::string& conversation, int turn, double latency = 30,
                                   double money = 0.05) {
    v1::DecideRequest r;
    r.set_conversation_id(conversation);
    r.set_turn_index(turn);
    r.set_prompt(absl::StrCat("What is on the table, turn ", turn, "?"));
    if (turn % 2 == 0) r.set_task("Query");  // odd turns: inferred
    const double association[3] = {0.9, 0.1, 0.4};
    for (int v = 2; v >= 0; --v) {  // not in the policy's order
      v1::View* view = r.add_views();
      view->set_name(absl::StrCat("view", v));
      view->set_association(association[v]);
    }
    r.mutable_budget()->set_latency_s(latency);
    r.mutable_budget()->set_money_usd(money);
    return r;
  }

  // Stops the server (the log is complete once it has stopped) and reads
  // the log, keyed by decision id.
  std::map<std::string, data::DecisionRecord> StopAndRead() {
    app_->Shutdown();
    std::map<std::string, data::DecisionRecord> records;
    auto scan = data::ScanDecisionLog(
        log_path_, [&](data::DecisionRecord r) { records[r.decision_id] = std::move(r); });
    EXPECT_TRUE(scan.ok()) << scan.status();
    if (scan.ok()) {
      EXPECT_EQ(scan->skipped_lines, 0) << (scan->problems.empty() ? "" : scan->problems[0]);
    }
    return records;
  }

  test::TempDir dir_;
  std::string policy_path_, log_path_;
  std::unique_ptr<ServerApp> app_;
  std::unique_ptr<Client> client_;
};

TEST_F(DecisionLogServiceTest, EveryAnsweredDecideIsLoggedWithWhatItAnswered) {
  StartServer();
  std::map<std::string, v1::DecideResponse> answered;
  std::map<std::string, v1::DecideRequest> asked;
  for (const std::string conversation : {"a", "b"}) {
    double latency = 30, money = 0.05;
    for (int turn = 0; turn < 7; ++turn) {
      const v1::DecideRequest request = Request(conversation, turn, latency, money);
      v1::DecideResponse r;
      ASSERT_TRUE(client_->Decide(request, &r).ok());
      EXPECT_EQ(r.probability(), 1.0);  // no exploration
      EXPECT_FALSE(r.explored());
      latency = r.budget_after().latency_s();
      money = r.budget_after().money_usd();
      answered[r.decision_id()] = r;
      asked[r.decision_id()] = request;
      if (turn == 6) {  // a retry of the last turn is the same decision, not a new record
        v1::DecideResponse again;
        ASSERT_TRUE(client_->Decide(request, &again).ok());
        EXPECT_EQ(again.decision_id(), r.decision_id());
      }
    }
  }
  // An exhausted budget: nothing fits, the cheapest action with certainty.
  v1::DecideResponse broke;
  ASSERT_TRUE(client_->Decide(Request("broke", 0, 0, 0), &broke).ok());
  answered[broke.decision_id()] = broke;
  asked[broke.decision_id()] = Request("broke", 0, 0, 0);
  v1::DecideRequest bad = Request("bad", 0);
  bad.mutable_budget()->set_money_usd(-1);
  v1::DecideResponse refused;
  EXPECT_FALSE(client_->Decide(bad, &refused).ok());  // refused: not logged

  const auto records = StopAndRead();
  ASSERT_EQ(records.size(), answered.size());
  for (const auto& [id, r] : answered) {
    SCOPED_TRACE(id);
    ASSERT_EQ(records.count(id), 1u);
    const data::DecisionRecord& d = records.at(id);
    const v1::DecideRequest& q = asked.at(id);
    EXPECT_EQ(d.schema_version, data::kDecisionLogSchemaVersion);
    EXPECT_EQ(d.policy_version, r.policy_version());
    EXPECT_EQ(d.conversation_id, q.conversation_id());
    EXPECT_EQ(d.turn_index, q.turn_index());
    EXPECT_EQ(d.taken_action, r.action());
    EXPECT_EQ(d.proposed_action, r.proposed_action());
    EXPECT_EQ(d.shield_overridden, r.shield_overridden());
    EXPECT_EQ(d.nothing_fits, r.nothing_fits());
    EXPECT_EQ(data::TakenProbability(d), 1.0);
    EXPECT_EQ(d.exploration.mode, "none");
    EXPECT_FALSE(d.explored);
    EXPECT_EQ(d.expected_latency_s, r.expected_latency_s());
    EXPECT_EQ(d.expected_money_usd, r.expected_money_usd());
    EXPECT_EQ(d.context.task, r.task());
    EXPECT_EQ(d.context.task_inferred, r.task_inferred());
    EXPECT_EQ(d.context.device, r.device());
    EXPECT_EQ(d.context.network, r.network());
    EXPECT_EQ(d.context.view_names, (std::vector<std::string>{"view0", "view1", "view2"}));
    EXPECT_EQ(d.context.association, (std::vector<double>{0.9, 0.1, 0.4}));  // policy order
    EXPECT_EQ(d.context.latency_budget_s, q.budget().latency_s());
    EXPECT_EQ(d.context.money_budget_usd, q.budget().money_usd());
    EXPECT_FALSE(d.context.request_money_budget_usd.has_value());  // no fleet control
    EXPECT_EQ(d.context.history.size(), static_cast<size_t>(std::min(q.turn_index(), 5)));
    ASSERT_EQ(d.actions.size(), 9u);
    int best = 0;
    for (int a = 0; a < 9; ++a)
      if (d.actions[a].score > d.actions[best].score) best = a;
    EXPECT_EQ(d.proposed_action, best);
    if (!d.nothing_fits) {
      EXPECT_TRUE(d.actions[d.taken_action].allowed);
    }
    EXPECT_FALSE(d.shadow.has_value());
  }
  // The history holds the turns the policy saw, as they were answered.
  for (const auto& [id, d] : records) {
    if (d.conversation_id != "a" || d.turn_index != 6) continue;
    for (const auto& [other_id, r] : answered) {
      const v1::DecideRequest& q = asked.at(other_id);
      if (q.conversation_id() == "a" && q.turn_index() >= 1 && q.turn_index() < 6) {
        EXPECT_EQ(d.context.history[q.turn_index() - 1].action, r.action());
      }
    }
  }
}

// With hour-long gathering intervals on the worker and the writer, the
// records still reach the log at shutdown: Stop wakes both (were they left
// to sleep, the 5 s drain deadline would pass and the records be dropped).
TEST_F(DecisionLogServiceTest, ShutdownWritesWhatTheWorkerAndTheWriterAreGathering) {
  StartServer([](ServerOptions& o) {
    o.decision_log_gather_interval = absl::Hours(1);
    o.decision_log_commit_interval = absl::Hours(1);
  });
  std::set<std::string> answered;
  for (const std::string conversation : {"a", "b"})
    for (int turn = 0; turn < 4; ++turn) {
      v1::DecideResponse r;
      ASSERT_TRUE(client_->Decide(Request(conversation, turn), &r).ok());
      answered.insert(r.decision_id());
    }
  const auto records = StopAndRead();
  std::set<std::string> logged;
  for (const auto& [id, record] : records) logged.insert(id);
  EXPECT_EQ(logged, answered);
  for (const auto& [id, d] : records)
    EXPECT_EQ(static_cast<int>(d.context.history.size()), d.turn_index) << id;  // window >= 3
}

// The worker's first batch is taken at once, however long the gathering
// interval (here a century, longer than any machine's uptime: a first batch
// timed from the monotonic clock's epoch would wait it out on every machine).
TEST_F(DecisionLogServiceTest, TheFirstRecordIsWrittenWithoutWaitingForTheGatheringInterval) {
  StartServer([](ServerOptions& o) {
    o.decision_log_gather_interval = absl::Hours(24 * 365 * 100);
    o.decision_log_commit_interval = absl::ZeroDuration();
  });
  v1::DecideResponse r;
  ASSERT_TRUE(client_->Decide(Request("a", 0), &r).ok());
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (test::ReadFile(log_path_).find(r.decision_id()) == std::string::npos &&
         absl::Now() < give_up)
    absl::SleepFor(absl::Milliseconds(10));
  EXPECT_NE(test::ReadFile(log_path_).find(r.decision_id()), std::string::npos)
      << "the record was not written before shutdown";
  const auto records = StopAndRead();
  EXPECT_EQ(records.count(r.decision_id()), 1u);
}

TEST_F(DecisionLogServiceTest, ExplorationSamplesAllowedActionsReproduciblyAndRequestsMayOptOut) {
  StartServer([](ServerOptions& o) { o.explore = "epsilon:0.9"; });
  std::map<std::string, v1::DecideResponse> answered;
  std::set<std::string> opted_out;
  int explored = 0;
  for (int c = 0; c < 30; ++c) {
    // A tight money budget keeps some cloud actions out of reach.
    v1::DecideRequest request = Request(absl::StrCat("e", c), 0, 30, 0.004);
    request.set_no_explore(c % 5 == 4);
    v1::DecideResponse r;
    ASSERT_TRUE(client_->Decide(request, &r).ok());
    answered[r.decision_id()] = r;
    if (request.no_explore()) opted_out.insert(r.decision_id());
    explored += r.explored();
  }
  EXPECT_GT(explored, 0) << "24 requests at epsilon 0.9 and none explored";
  const auto records = StopAndRead();
  ASSERT_EQ(records.size(), answered.size());
  const ExploreConfig config = *ExploreConfig::Parse("epsilon:0.9");
  for (const auto& [id, r] : answered) {
    SCOPED_TRACE(id);
    const data::DecisionRecord& d = records.at(id);
    EXPECT_EQ(d.exploration.mode, "epsilon");
    EXPECT_EQ(d.exploration.parameter, 0.9);
    EXPECT_EQ(d.taken_action, r.action());
    EXPECT_EQ(d.explored, r.explored());
    EXPECT_EQ(data::TakenProbability(d), r.probability());
    EXPECT_TRUE(d.actions[d.taken_action].allowed);
    std::vector<float> scores;
    std::vector<bool> allowed;
    int greedy = -1;
    for (int a = 0; a < static_cast<int>(d.actions.size()); ++a) {
      scores.push_back(static_cast<float>(d.actions[a].score));
      allowed.push_back(d.actions[a].allowed);
      if (!d.actions[a].allowed) {
        EXPECT_EQ(d.actions[a].probability, 0.0);
      }
      if (d.actions[a].allowed && (greedy < 0 || scores[a] > scores[greedy])) greedy = a;
    }
    if (opted_out.count(id) != 0) {
      EXPECT_TRUE(d.exploration.opted_out);
      EXPECT_FALSE(d.explored);
      EXPECT_EQ(r.probability(), 1.0);
      EXPECT_EQ(d.taken_action, greedy);
      continue;
    }
    EXPECT_FALSE(d.exploration.opted_out);
    // The sample is reproduced from the decision id alone.
    const ExploreChoice again = Explore(config, scores, allowed, greedy, ExplorationDraw(id));
    EXPECT_EQ(again.action, d.taken_action);
    for (int a = 0; a < static_cast<int>(d.actions.size()); ++a)
      EXPECT_NEAR(again.probabilities[a], d.actions[a].probability, 1e-12);
  }
}

TEST_F(DecisionLogServiceTest, TheShadowPolicyScoresEveryRequestAfterTheAnswer) {
  // The shadow is the serving artifact's twin: it must agree every time and
  // score exactly as the serving policy did.
  const std::string twin = dir_.File("twin.pt");
  ASSERT_TRUE(policy::testing::WriteTestArtifact(twin, {}).ok());
  StartServer([&](ServerOptions& o) { o.shadow_policy = twin; });
  v1::PolicyInfo info;
  ASSERT_TRUE(client_->GetPolicy(&info).ok());
  EXPECT_FALSE(info.shadow_policy_version().empty());
  EXPECT_EQ(info.shadow_policy_version(), info.policy_version());
  constexpr int kTurns = 6;
  for (int turn = 0; turn < kTurns; ++turn) {
    v1::DecideResponse r;
    ASSERT_TRUE(client_->Decide(Request("s", turn), &r).ok());
  }
  // The shadow's metrics are counted when its batch is scored: wait for
  // them (bounded) before stopping.
  std::map<std::string, double> m;
  for (int i = 0; i < 200; ++i) {
    m = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
    if (test::Metric(m, "lcio_shadow_decisions_total") >= kTurns) break;
    absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_EQ(test::Metric(m, "lcio_shadow_decisions_total"), kTurns);
  EXPECT_EQ(test::Metric(m, "lcio_shadow_agreements_total"), kTurns);
  EXPECT_GE(test::Metric(m, "lcio_shadow_expected_cost_usd_total"), 0);
  EXPECT_EQ(test::Metric(m, absl::StrCat("lcio_shadow_policy_info{version=\"",
                                         info.policy_version(), "\"}")),
            1);
  const auto records = StopAndRead();
  ASSERT_EQ(records.size(), static_cast<size_t>(kTurns));
  for (const auto& [id, d] : records) {
    SCOPED_TRACE(id);
    ASSERT_TRUE(d.shadow.has_value());
    EXPECT_EQ(d.shadow->policy_version, info.policy_version());
    EXPECT_EQ(d.shadow->action, d.taken_action);
    EXPECT_EQ(d.shadow->proposed_action, d.proposed_action);
    for (size_t a = 0; a < d.actions.size(); ++a)
      EXPECT_EQ(d.shadow->scores[a], d.actions[a].score);
    EXPECT_EQ(d.shadow->probabilities[d.taken_action], 1.0);
  }
}

// Under fleet control at its lowest scale nothing fits the lowered money
// budget; the server, and its shadow policy as the server, then take the
// action cheapest in money that fits the request's own budget
// (env::ShieldWithinRequestBudget). On a Raspberry Pi-4B over WiFi the
// shield's own cheapest action is a cloud call, past the request's budget.
TEST_F(DecisionLogServiceTest, UnderALoweredBudgetTheServerAndItsShadowKeepToTheRequests) {
  TestArtifactOptions cloud;
  cloud.favoured_action = 1;  // the plain cloud call
  const std::string twin = dir_.File("twin.pt");
  ASSERT_TRUE(policy::testing::WriteTestArtifact(twin, cloud).ok());
  StartServer(
      [&](ServerOptions& o) {
        o.shadow_policy = twin;
        o.fleet.target = *FleetTarget::Parse("cloud_share:0.3");
        o.fleet.pi = true;
        o.fleet.min_scale = o.fleet.initial_scale = 0.001;
        o.fleet.update_every = o.fleet.window = 1000000000;  // s stays 0.001
      },
      cloud);
  const double request_money = 1e-4;  // local costs about 4e-7 USD there, a cloud call 4.9e-4
  v1::DecideRequest request = Request("lowered", 0, 10, request_money);
  request.set_device("Raspberry Pi-4B");
  request.set_network("WiFi");
  v1::DecideResponse r;
  ASSERT_TRUE(client_->Decide(request, &r).ok());
  EXPECT_FALSE(r.nothing_fits());
  EXPECT_LE(r.expected_money_usd(), request_money);
  std::map<std::string, double> m;
  for (int i = 0; i < 200; ++i) {
    m = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
    if (test::Metric(m, "lcio_shadow_decisions_total") >= 1) break;
    absl::SleepFor(absl::Milliseconds(25));
  }
  const auto records = StopAndRead();
  ASSERT_EQ(records.size(), 1u);
  const data::DecisionRecord& d = records.begin()->second;
  EXPECT_DOUBLE_EQ(d.context.money_budget_usd, 0.001 * request_money);
  EXPECT_EQ(d.context.RequestMoneyBudget(), request_money);
  EXPECT_EQ(d.proposed_action, 1);
  EXPECT_EQ(d.taken_action, 0);  // local, the one action the request's budget pays for
  EXPECT_TRUE(d.shield_overridden);
  EXPECT_FALSE(d.nothing_fits);
  ASSERT_TRUE(d.shadow.has_value());
  EXPECT_EQ(d.shadow->action, d.taken_action);
}

TEST_F(DecisionLogServiceTest, AShadowWhoseScoresAreNotNumbersIsSkippedAndCounted) {
  const std::string shadow = dir_.File("overflow.pt");
  ASSERT_TRUE(policy::testing::WriteOverflowingTestArtifact(shadow).ok());
  StartServer([&](ServerOptions& o) { o.shadow_policy = shadow; });
  constexpr int kTurns = 3;
  for (int turn = 0; turn < kTurns; ++turn) {
    v1::DecideResponse r;
    ASSERT_TRUE(client_->Decide(Request("s", turn), &r).ok());
  }
  const std::string skipped = "lcio_shadow_skipped_total{reason=\"error\"}";
  std::map<std::string, double> m;
  for (int i = 0; i < 200; ++i) {
    m = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
    if (test::Metric(m, skipped) >= kTurns) break;
    absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_EQ(test::Metric(m, skipped), kTurns);
  EXPECT_EQ(test::Metric(m, "lcio_shadow_decisions_total"), 0);
  const auto records = StopAndRead();
  ASSERT_EQ(records.size(), static_cast<size_t>(kTurns));
  for (const auto& [id, d] : records) EXPECT_FALSE(d.shadow.has_value()) << id;
}

TEST_F(DecisionLogServiceTest, AShadowOfAnotherPolicyScoresAsThatPolicyWouldServe) {
  // Serving favours local, the shadow (other weights) the plain cloud call:
  // they never agree, and the shadow's scores must be its own forward pass,
  // checked against a second server that serves the shadow's artifact.
  TestArtifactOptions serving, shadowed;
  serving.favoured_action = 0;
  shadowed.seed = 2;
  shadowed.favoured_action = 1;
  const std::string shadow_path = dir_.File("shadow.pt");
  ASSERT_TRUE(policy::testing::WriteTestArtifact(shadow_path, shadowed).ok());
  StartServer([&](ServerOptions& o) { o.shadow_policy = shadow_path; }, serving);
  // First turns only: a later turn's context holds the serving policy's
  // earlier actions, which the second server would not have taken.
  constexpr int kConversations = 6;
  auto decide_all = [&] {
    for (int c = 0; c < kConversations; ++c) {
      v1::DecideResponse r;
      ASSERT_TRUE(
          client_->Decide(Request(absl::StrCat("c", c), 0, 10 + 5 * c, 0.01 * (c + 1)), &r).ok());
    }
  };
  decide_all();
  std::map<std::string, double> m;
  for (int i = 0; i < 200; ++i) {
    m = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
    if (test::Metric(m, "lcio_shadow_decisions_total") >= kConversations) break;
    absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_EQ(test::Metric(m, "lcio_shadow_decisions_total"), kConversations);
  EXPECT_EQ(test::Metric(m, "lcio_shadow_agreements_total"), 0);
  const auto with_shadow = StopAndRead();

  StartServer([&](ServerOptions& o) { o.decision_log = dir_.File("shadow_serving.jsonl"); },
              shadowed);
  log_path_ = dir_.File("shadow_serving.jsonl");
  decide_all();
  const auto served = StopAndRead();

  ASSERT_EQ(with_shadow.size(), static_cast<size_t>(kConversations));
  ASSERT_EQ(served.size(), static_cast<size_t>(kConversations));
  std::map<std::string, const data::DecisionRecord*> served_by_conversation;
  for (const auto& [id, d] : served) served_by_conversation[d.conversation_id] = &d;
  for (const auto& [id, d] : with_shadow) {
    SCOPED_TRACE(id);
    ASSERT_TRUE(d.shadow.has_value());
    ASSERT_EQ(served_by_conversation.count(d.conversation_id), 1u);
    const data::DecisionRecord& alone = *served_by_conversation.at(d.conversation_id);
    EXPECT_EQ(d.shadow->policy_version, alone.policy_version);
    EXPECT_NE(d.shadow->policy_version, d.policy_version);
    EXPECT_EQ(d.proposed_action, 0);
    EXPECT_EQ(d.shadow->proposed_action, 1);
    EXPECT_EQ(d.shadow->proposed_action, alone.proposed_action);
    EXPECT_EQ(d.shadow->action, alone.taken_action);
    ASSERT_EQ(d.shadow->scores.size(), alone.actions.size());
    for (size_t a = 0; a < alone.actions.size(); ++a) {
      EXPECT_FLOAT_EQ(d.shadow->scores[a], alone.actions[a].score) << "action " << a;
      EXPECT_NE(d.shadow->scores[a], d.actions[a].score) << "action " << a;
      EXPECT_EQ(d.shadow->probabilities[a], alone.actions[a].probability) << "action " << a;
    }
    EXPECT_NEAR(d.shadow->expected_latency_s, alone.expected_latency_s, 1e-9);
    EXPECT_NEAR(d.shadow->expected_money_usd, alone.expected_money_usd, 1e-12);
  }
}

TEST_F(DecisionLogServiceTest, AShadowOfOtherViewsIsSkippedAndCountedNeverBreakingDecide) {
  const std::string other = dir_.File("other.pt");
  TestArtifactOptions options;
  options.view_names = {"left", "right", "top"};
  ASSERT_TRUE(policy::testing::WriteTestArtifact(other, options).ok());
  StartServer([&](ServerOptions& o) { o.shadow_policy = other; });
  for (int turn = 0; turn < 3; ++turn) {
    v1::DecideResponse r;
    ASSERT_TRUE(client_->Decide(Request("x", turn), &r).ok());
  }
  std::map<std::string, double> m;
  for (int i = 0; i < 200; ++i) {
    m = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
    if (test::Metric(m, "lcio_shadow_skipped_total{reason=\"incompatible\"}") >= 3) break;
    absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_EQ(test::Metric(m, "lcio_shadow_skipped_total{reason=\"incompatible\"}"), 3);
  EXPECT_EQ(test::Metric(m, "lcio_shadow_decisions_total"), 0);
  const auto records = StopAndRead();
  ASSERT_EQ(records.size(), 3u);
  for (const auto& [id, d] : records) EXPECT_FALSE(d.shadow.has_value());
}

TEST_F(DecisionLogServiceTest, ABadExploreFlagOrShadowFileStopsTheStart) {
  test::TempDir dir;
  const std::string policy = dir.File("policy.pt");
  ASSERT_TRUE(policy::testing::WriteTestArtifact(policy, {}).ok());
  ServerOptions options;
  options.policy_path = policy;
  options.listen = "127.0.0.1:0";
  options.metrics_listen = "";
  options.torch_device = "cpu";
  options.explore = "epsilon:2";
  auto refused = ServerApp::Start(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("explore = \"epsilon:2\""), absl::string_view::npos)
      << refused.status();
  options.explore = "none";
  options.shadow_policy = dir.File("missing.pt");
  refused = ServerApp::Start(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("shadow_policy"), absl::string_view::npos)
      << refused.status();
}

}  // namespace
}  // namespace lcio::server
