// The validated fallback in the server: an artifact whose fallback table
// (env::FallbackTable in its metadata, format_version 2) gives some profiles
// and budgets to a fixed action. The service in process over real gRPC, with
// real (small) artifacts and the decision log it writes.
#include "lcio/env/fallback.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <random>

#include "absl/strings/match.h"
#include "fallback_artifact.h"
#include "lcio/client/client.h"
#include "lcio/data/decision_log.h"
#include "lcio/env/profiles.h"
#include "lcio/env/shield.h"
#include "lcio/policy/testing.h"
#include "lcio/server/explain.h"
#include "lcio/server/exploration.h"
#include "lcio/server/server.h"
#include "test_support.h"

namespace lcio::server {
namespace {

using policy::testing::TestArtifactOptions;
using test::WriteFallbackArtifact;

constexpr const char* kDevice = test::kFallbackDevice;
// The table's fixed actions answer on this network; on the other the
// network is served.
constexpr char kFallbackNetwork[] = "Wired";
constexpr char kPolicyNetwork[] = "4G";

env::CostModel Costs(const std::string& network) { return test::FallbackCosts(network); }

env::FallbackEntry Entry(const std::string& network, env::Budget budget, int fixed_action,
                         bool serve_policy) {
  return test::FallbackCell(network, budget, fixed_action, serve_policy);
}

// The cells of the test's table, chosen from the built-in costs so that
// every case tells the fallback from the network:
//   fallback network, generous budget: `fixed` (not the network's choice);
//   fallback network, tight budget: `expensive`, which does not fit, so the
//     shield takes `cheapest` (the network's choice fits there too);
//   policy network, generous budget: the network decides (`network_action`).
struct Cells {
  env::CostModel fallback = Costs(kFallbackNetwork), served = Costs(kPolicyNetwork);
  env::Budget generous{30.0, 0.05}, tight;
  int network_action = -1, fixed = -1, expensive = -1, cheapest = -1;

  env::FallbackTable Table() const {
    return env::FallbackTable({Entry(kFallbackNetwork, generous, fixed, false),
                               Entry(kFallbackNetwork, tight, expensive, false),
                               Entry(kPolicyNetwork, generous, 0, true)});
  }
};

void ChooseCells(Cells* c) {
  const int n = c->fallback.num_actions();
  c->expensive = n - 1;  // cloud with every view
  // Money for a text-only cloud call and the shield's reserve, not for views.
  c->tight = {30.0, 1.5 * c->fallback.money_usd(1) + 4 * c->fallback.money_usd(0)};
  const env::ShieldDecision shielded =
      env::Shield(c->fallback, c->expensive, nullptr, c->tight.latency_s, c->tight.money_usd);
  ASSERT_FALSE(shielded.nothing_fits);
  ASSERT_TRUE(shielded.overridden);
  c->cheapest = shielded.action;
  for (int a = 0; a < n && c->network_action < 0; ++a)
    if (a != c->cheapest && env::Fits(c->fallback, a, c->tight.latency_s, c->tight.money_usd) &&
        env::Fits(c->fallback, a, c->generous.latency_s, c->generous.money_usd) &&
        env::Fits(c->served, a, c->generous.latency_s, c->generous.money_usd))
      c->network_action = a;
  ASSERT_GE(c->network_action, 0) << "no second action fits the tight budget";
  for (int a = n - 1; a >= 0 && c->fixed < 0; --a)
    if (a != c->network_action &&
        env::Fits(c->fallback, a, c->generous.latency_s, c->generous.money_usd))
      c->fixed = a;
  ASSERT_GE(c->fixed, 0);
}

class FallbackServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(ChooseCells(&cells_)); }

  // An artifact with the cells' table; by default the network favours
  // cells_.network_action.
  void StartServer(std::function<void(ServerOptions&)> tweak = nullptr,
                   std::function<void(TestArtifactOptions&)> artifact_tweak = nullptr) {
    TestArtifactOptions artifact;
    artifact.favoured_action = cells_.network_action;
    if (artifact_tweak) artifact_tweak(artifact);
    policy_path_ = dir_.File("policy.pt");
    ASSERT_TRUE(WriteFallbackArtifact(policy_path_, artifact, cells_.Table()).ok());
    auto metadata = policy::ReadArtifactMetadata(policy_path_);
    ASSERT_TRUE(metadata.ok()) << metadata.status();
    ASSERT_EQ(metadata->format_version, 2);
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

  static v1::DecideRequest Request(const std::string& conversation, const std::string& network,
                                   env::Budget budget, bool explain = false) {
    v1::DecideRequest r;
    r.set_conversation_id(conversation);
    r.set_turn_index(0);
    r.set_prompt("What is on the table?");
    r.set_task("Query");
    const double association[3] = {0.9, 0.1, 0.4};
    for (int v = 0; v < 3; ++v) {
      v1::View* view = r.add_views();
      view->set_name(absl::StrCat("view", v));
      view->set_association(association[v]);
    }
    r.set_device(kDevice);
    r.set_network(network);
    r.mutable_budget()->set_latency_s(budget.latency_s);
    r.mutable_budget()->set_money_usd(budget.money_usd);
    r.set_explain(explain);
    return r;
  }

  std::map<std::string, data::DecisionRecord> StopAndRead() {
    app_->Shutdown();
    std::map<std::string, data::DecisionRecord> records;
    auto scan = data::ScanDecisionLog(
        log_path_, [&](data::DecisionRecord r) { records[r.decision_id] = std::move(r); });
    EXPECT_TRUE(scan.ok()) << scan.status();
    if (scan.ok()) {
      EXPECT_EQ(scan->skipped_lines, 0);
    }
    return records;
  }

  Cells cells_;
  test::TempDir dir_;
  std::string policy_path_, log_path_;
  std::unique_ptr<ServerApp> app_;
  std::unique_ptr<Client> client_;
};

bool HasFallbackNote(const v1::DecideResponse& r) {
  return r.warnings_size() > 0 &&
         absl::StartsWith(r.warnings(r.warnings_size() - 1), kFallbackNotePrefix);
}

TEST_F(FallbackServiceTest, GetPolicyCountsTheTablesCells) {
  StartServer();
  v1::PolicyInfo info;
  ASSERT_TRUE(client_->GetPolicy(&info).ok());
  EXPECT_EQ(info.fallback_cells(), 3);
  EXPECT_EQ(info.fallback_policy_cells(), 1);
}

TEST_F(FallbackServiceTest, AFallbackCellIsAnsweredByItsFixedAction) {
  StartServer();
  const v1::DecideRequest request =
      Request("fixed", kFallbackNetwork, cells_.generous, /*explain=*/true);
  v1::DecideResponse r;
  ASSERT_TRUE(client_->Decide(request, &r).ok());
  EXPECT_EQ(r.action(), cells_.fixed);
  EXPECT_EQ(r.proposed_action(), cells_.fixed);
  EXPECT_TRUE(r.fallback_fixed_action());
  EXPECT_FALSE(r.shield_overridden());
  EXPECT_EQ(r.probability(), 1.0);
  // The explanation ranks the fixed action first and says why it answered.
  ASSERT_EQ(r.scores_size(), cells_.fallback.num_actions());
  for (int a = 0; a < r.scores_size(); ++a)
    if (a != cells_.fixed) {
      EXPECT_LT(r.scores(a).score(), r.scores(cells_.fixed).score()) << a;
    }
  ASSERT_TRUE(HasFallbackNote(r));
  EXPECT_NE(r.warnings(r.warnings_size() - 1).find(r.scores(cells_.fixed).description()),
            std::string::npos);
  // A retry without the explanation: the same decision, without the note;
  // another adding it back gets it again.
  v1::DecideRequest plain = request;
  plain.set_explain(false);
  v1::DecideResponse again;
  ASSERT_TRUE(client_->Decide(plain, &again).ok());
  EXPECT_EQ(again.decision_id(), r.decision_id());
  EXPECT_TRUE(again.fallback_fixed_action());
  EXPECT_EQ(again.scores_size(), 0);
  EXPECT_FALSE(HasFallbackNote(again));
  // First answered without it, then asked with it: the stored explanation.
  v1::DecideResponse first, explained;
  ASSERT_TRUE(client_->Decide(Request("later", kFallbackNetwork, cells_.generous), &first).ok());
  EXPECT_FALSE(HasFallbackNote(first));
  ASSERT_TRUE(client_
                  ->Decide(Request("later", kFallbackNetwork, cells_.generous, /*explain=*/true),
                           &explained)
                  .ok());
  EXPECT_EQ(explained.decision_id(), first.decision_id());
  EXPECT_TRUE(HasFallbackNote(explained));
  EXPECT_EQ(explained.warnings_size(), first.warnings_size() + 1);
  // Two decisions (the retries are the same ones), one counter.
  const auto metrics = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
  EXPECT_EQ(test::Metric(metrics, "lcio_fallback_decisions_total"), 2);
  EXPECT_EQ(test::Metric(metrics, "lcio_fallback_substitutions_total"), 0);

  const auto records = StopAndRead();
  ASSERT_EQ(records.count(r.decision_id()), 1u);
  const data::DecisionRecord& d = records.at(r.decision_id());
  EXPECT_EQ(d.taken_action, cells_.fixed);
  EXPECT_EQ(d.proposed_action, cells_.fixed);
  EXPECT_EQ(data::TakenProbability(d), 1.0);
  EXPECT_TRUE(d.fallback);
}

// A fixed-action answer does not run the network (its values would only be
// reassigned): no row reaches a forward pass, and the ranking is 0, -1, -2,
// ... in the fallback's order. A network-served cell runs it; so does a
// fallback answer under softmax exploration, which draws with its values.
TEST_F(FallbackServiceTest, AFixedActionAnswerRunsNoForwardPassUnlessSoftmaxNeedsIt) {
  const auto rows = [this] {
    const auto metrics = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
    return test::Metric(metrics, "lcio_batch_size_sum");
  };
  StartServer();
  v1::DecideResponse r;
  for (int c = 0; c < 5; ++c)
    ASSERT_TRUE(client_
                    ->Decide(Request(absl::StrCat("skip", c), kFallbackNetwork, cells_.generous,
                                     /*explain=*/true),
                             &r)
                    .ok());
  EXPECT_EQ(r.action(), cells_.fixed);
  EXPECT_EQ(rows(), 0);
  ASSERT_EQ(r.scores_size(), cells_.fallback.num_actions());
  std::vector<float> ranked(r.scores_size());
  for (int a = 0; a < r.scores_size(); ++a) ranked[a] = r.scores(a).score();
  EXPECT_EQ(ranked[cells_.fixed], 0.0f);
  std::vector<float> sorted = ranked;
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  for (size_t i = 0; i < sorted.size(); ++i) EXPECT_EQ(sorted[i], -static_cast<float>(i));
  std::vector<float> expected = FallbackRankValues(cells_.fallback.num_actions());
  FallbackRanking(cells_.fallback, cells_.fixed, &expected);
  EXPECT_EQ(ranked, expected);
  ASSERT_TRUE(client_->Decide(Request("net", kPolicyNetwork, cells_.generous), &r).ok());
  EXPECT_FALSE(r.fallback_fixed_action());
  EXPECT_EQ(rows(), 1);
  const auto records = StopAndRead();
  int fallback = 0;
  for (const auto& [id, d] : records)
    if (d.fallback) {
      ++fallback;
      EXPECT_EQ(d.actions[cells_.fixed].score, 0.0);
    }
  EXPECT_EQ(fallback, 5);
  app_.reset();
  std::filesystem::remove(log_path_);

  StartServer([](ServerOptions& o) { o.explore = "softmax:0.5"; });
  ASSERT_TRUE(client_->Decide(Request("soft", kFallbackNetwork, cells_.generous), &r).ok());
  EXPECT_TRUE(r.fallback_fixed_action());
  EXPECT_EQ(rows(), 1);
  v1::DecideRequest opted_out = Request("soft-out", kFallbackNetwork, cells_.generous);
  opted_out.set_no_explore(true);
  ASSERT_TRUE(client_->Decide(opted_out, &r).ok());
  EXPECT_EQ(rows(), 1);  // a request that opts out draws nothing
}

TEST_F(FallbackServiceTest, AValidatedCellIsAnsweredByTheNetwork) {
  StartServer();
  v1::DecideResponse r;
  ASSERT_TRUE(client_->Decide(Request("served", kPolicyNetwork, cells_.generous, true), &r).ok());
  EXPECT_EQ(r.action(), cells_.network_action);
  EXPECT_EQ(r.proposed_action(), cells_.network_action);
  EXPECT_FALSE(r.fallback_fixed_action());
  EXPECT_FALSE(r.shield_overridden());
  EXPECT_FALSE(HasFallbackNote(r));
  const auto metrics = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
  EXPECT_EQ(test::Metric(metrics, "lcio_fallback_decisions_total"), 0);
  const auto records = StopAndRead();
  ASSERT_EQ(records.count(r.decision_id()), 1u);
  EXPECT_FALSE(records.at(r.decision_id()).fallback);
}

TEST_F(FallbackServiceTest, AFixedActionThatDoesNotFitGivesWayToTheCheapestThatDoes) {
  StartServer();
  v1::DecideResponse r;
  ASSERT_TRUE(client_->Decide(Request("tight", kFallbackNetwork, cells_.tight, true), &r).ok());
  EXPECT_TRUE(r.fallback_fixed_action());
  // The fallback's rule (env::FallbackTable::Decide): the fixed action where
  // it fits, else the cheapest that does, as the evaluator's shield makes of
  // a fixed action without scores (the network's favourite fits too, and is
  // not it). The fallback proposes what fits, so the shield does not override.
  EXPECT_EQ(r.proposed_action(), cells_.cheapest);
  EXPECT_NE(cells_.expensive, cells_.cheapest);
  EXPECT_EQ(r.action(), cells_.cheapest);
  EXPECT_NE(r.action(), cells_.network_action);
  EXPECT_FALSE(r.shield_overridden());
  EXPECT_FALSE(r.nothing_fits());
  EXPECT_TRUE(HasFallbackNote(r));
  // Not the shield's override, but an override all the same: counted apart
  // (a fallback whose fixed action never fit read as 0 overrides).
  v1::DecideResponse fits;
  ASSERT_TRUE(client_->Decide(Request("fits", kFallbackNetwork, cells_.generous), &fits).ok());
  const auto metrics = test::ParseMetrics(test::HttpGet(app_->metrics_port(), "/metrics"));
  EXPECT_EQ(test::Metric(metrics, "lcio_fallback_decisions_total"), 2);
  EXPECT_EQ(test::Metric(metrics, "lcio_fallback_substitutions_total"), 1);
  EXPECT_EQ(test::Metric(metrics, "lcio_shield_overrides_total"), 0);
  const auto records = StopAndRead();
  ASSERT_EQ(records.count(r.decision_id()), 1u);
  const data::DecisionRecord& d = records.at(r.decision_id());
  EXPECT_EQ(d.taken_action, cells_.cheapest);
  EXPECT_EQ(d.proposed_action, cells_.cheapest);
  EXPECT_FALSE(d.shield_overridden);
}

// Exploration around a fallback decision: the logged propensities are those
// the server sampled with, reproducible from the log alone (the logged
// scores are the fallback's ranking, so the greedy action is the best
// allowed one as for the network), and a shadow twin agrees.
void CheckExploredFallbackDecisions(const std::string& explore, const Cells& cells,
                                    const std::map<std::string, v1::DecideResponse>& answered,
                                    const std::map<std::string, data::DecisionRecord>& records) {
  const ExploreConfig config = *ExploreConfig::Parse(explore);
  int explored = 0;
  for (const auto& [id, r] : answered) {
    SCOPED_TRACE(id);
    ASSERT_EQ(records.count(id), 1u);
    const data::DecisionRecord& d = records.at(id);
    EXPECT_TRUE(r.fallback_fixed_action());
    EXPECT_EQ(d.proposed_action, cells.fixed);
    EXPECT_EQ(d.taken_action, r.action());
    EXPECT_EQ(data::TakenProbability(d), r.probability());
    EXPECT_GT(r.probability(), 0.0);
    EXPECT_TRUE(d.actions[d.taken_action].allowed);
    explored += d.explored;
    const int n = static_cast<int>(d.actions.size());
    std::vector<float> scores;
    std::vector<bool> allowed;
    int greedy = -1;
    for (int a = 0; a < n; ++a) {
      scores.push_back(static_cast<float>(d.actions[a].score));
      allowed.push_back(d.actions[a].allowed);
      if (d.actions[a].allowed && (greedy < 0 || scores[a] > scores[greedy])) greedy = a;
    }
    EXPECT_EQ(greedy, cells.fixed);  // it fits the generous budget
    // The ranking: the fixed action first, then the others cheapest first.
    auto norm = [&](int a) { return cells.fallback.norm_time(a) + cells.fallback.norm_money(a); };
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b)
        if (a != cells.fixed && b != cells.fixed && norm(a) < norm(b)) {
          EXPECT_GE(scores[a], scores[b]) << a << " vs " << b;
        }
    const ExploreChoice again = Explore(config, scores, allowed, greedy, ExplorationDraw(id));
    EXPECT_EQ(again.action, d.taken_action);
    EXPECT_EQ(again.explored, d.explored);
    for (int a = 0; a < n; ++a)
      EXPECT_NEAR(again.probabilities[a], d.actions[a].probability, 1e-12) << a;
    if (config.mode == ExploreConfig::Mode::kEpsilon) {
      int num_allowed = 0;
      for (bool ok : allowed) num_allowed += ok;
      EXPECT_NEAR(d.actions[cells.fixed].probability,
                  1 - config.parameter + config.parameter / num_allowed, 1e-12);
    }
    ASSERT_TRUE(d.shadow.has_value());  // the artifact's twin, with its own table
    EXPECT_EQ(d.shadow->proposed_action, d.proposed_action);
    EXPECT_EQ(d.shadow->action, d.taken_action);
    for (int a = 0; a < n; ++a) {
      EXPECT_EQ(d.shadow->scores[a], d.actions[a].score) << a;
      EXPECT_NEAR(d.shadow->probabilities[a], d.actions[a].probability, 1e-12) << a;
    }
  }
  if (config.mode == ExploreConfig::Mode::kEpsilon) {
    EXPECT_GT(explored, 0) << answered.size() << " decisions at " << explore << ", none explored";
  }
}

TEST_F(FallbackServiceTest, ExplorationAroundTheFixedActionLogsWhatItSampled) {
  for (const std::string explore : {"epsilon:0.6", "softmax:0.5"}) {
    SCOPED_TRACE(explore);
    const std::string twin = dir_.File("twin.pt");
    // Softmax: a network without a favourite, so the ranking's values spread.
    const bool softmax = explore.rfind("softmax", 0) == 0;
    TestArtifactOptions twin_options;
    twin_options.favoured_action = softmax ? -1 : cells_.network_action;
    ASSERT_TRUE(WriteFallbackArtifact(twin, twin_options, cells_.Table()).ok());
    StartServer(
        [&](ServerOptions& o) {
          o.explore = explore;
          o.shadow_policy = twin;
        },
        [&](TestArtifactOptions& a) { a = twin_options; });
    std::map<std::string, v1::DecideResponse> answered;
    for (int c = 0; c < 24; ++c) {
      v1::DecideResponse r;
      ASSERT_TRUE(
          client_->Decide(Request(absl::StrCat("x", c), kFallbackNetwork, cells_.generous), &r)
              .ok());
      answered[r.decision_id()] = r;
    }
    const auto records = StopAndRead();
    ASSERT_EQ(records.size(), answered.size());
    CheckExploredFallbackDecisions(explore, cells_, answered, records);
    app_.reset();
    std::filesystem::remove(log_path_);  // the next mode's log starts empty
  }
}

// The ranking is the shield's order without scores: whenever some action
// fits, the best allowed action under it is what env::Shield takes for the
// fixed action with no scores; its values are the scores' own.
TEST(FallbackRankingTest, MatchesTheShieldWithoutScores) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  int compared = 0;
  for (const char* network : {"Wired", "WiFi", "5G", "4G"}) {
    const env::CostModel costs = Costs(network);
    const int n = costs.num_actions();
    for (int fixed = 0; fixed < n; ++fixed)
      for (double latency : {2.0, 8.0, 20.0, 30.0, 90.0})
        for (double money : {0.0005, 0.002, 0.01, 0.05}) {
          std::vector<float> scores(n);
          for (float& s : scores) s = uniform(rng);
          std::vector<float> ranked = scores;
          FallbackRanking(costs, fixed, &ranked);
          std::vector<float> a = scores, b = ranked;
          std::sort(a.begin(), a.end());
          std::sort(b.begin(), b.end());
          ASSERT_EQ(a, b) << "not a permutation of the scores";
          ASSERT_EQ(ranked[fixed], *std::max_element(scores.begin(), scores.end()));
          int best = -1;
          for (int x = 0; x < n; ++x)
            if (env::Fits(costs, x, latency, money) && (best < 0 || ranked[x] > ranked[best]))
              best = x;
          if (best < 0) continue;
          ++compared;
          EXPECT_EQ(best, env::Shield(costs, fixed, nullptr, latency, money).action)
              << network << " fixed " << fixed << " budget " << latency << " s " << money;
        }
  }
  EXPECT_GT(compared, 100);
}

// Tied or NaN network values still rank the fallback's answer alone at the
// top, the others strictly below in the shield's cheapness order.
TEST(FallbackRankingTest, TiesAndNaNsStillRankTheAnswerFirst) {
  const env::CostModel costs = Costs("Wired");
  const int n = costs.num_actions();
  for (int fixed = 0; fixed < n; ++fixed) {
    std::vector<float> tied(n, 0.5f);
    FallbackRanking(costs, fixed, &tied);
    EXPECT_EQ(tied[fixed], 0.5f);
    EXPECT_EQ(std::max_element(tied.begin(), tied.end()) - tied.begin(), fixed);
    EXPECT_EQ(std::count(tied.begin(), tied.end(), 0.5f), 1);
    std::vector<float> with_nan(n, 1.0f);
    with_nan[(fixed + 1) % n] = std::numeric_limits<float>::quiet_NaN();
    FallbackRanking(costs, fixed, &with_nan);
    EXPECT_EQ(std::max_element(with_nan.begin(), with_nan.end()) - with_nan.begin(), fixed);
    EXPECT_EQ(
        std::count_if(with_nan.begin(), with_nan.end(), [](float v) { return std::isnan(v); }), 0);
    // Any non-finite value (and every value NaN): finite values, strictly
    // decreasing in the ranking's order, the answer first; so the decision
    // log writes numbers and a softmax stays defined.
    for (float odd :
         {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
          -std::numeric_limits<float>::infinity()}) {
      for (bool all : {false, true}) {
        std::vector<float> v(n, 2.0f);
        if (all)
          std::fill(v.begin(), v.end(), odd);
        else
          v[(fixed + 2) % n] = odd;
        FallbackRanking(costs, fixed, &v);
        for (float x : v) EXPECT_TRUE(std::isfinite(x)) << odd << " all=" << all;
        EXPECT_EQ(std::max_element(v.begin(), v.end()) - v.begin(), fixed);
        std::vector<float> sorted = v;
        std::sort(sorted.begin(), sorted.end());
        EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end()) << "a tie";
      }
    }
    std::vector<float> huge(n, -std::numeric_limits<float>::max());
    FallbackRanking(costs, fixed, &huge);
    for (float x : huge) EXPECT_TRUE(std::isfinite(x));
    EXPECT_EQ(std::max_element(huge.begin(), huge.end()) - huge.begin(), fixed);
  }
}

}  // namespace
}  // namespace lcio::server
