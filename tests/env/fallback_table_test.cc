// The validated fallback (env/fallback.h): which entry a conversation maps
// to, the table's file form, and that selection serves a candidate only
// where episodes it never trained on show it ahead of the best fixed action.
#include <limits>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lcio/env/baselines.h"
#include "lcio/env/fallback.h"
#include "lcio/env/shield.h"
#include "lcio/env/task_rule.h"
#include "nlohmann/json.hpp"
#include "test_support.h"

namespace lcio::env {
namespace {

// Two profiles of 3 actions: a slow local device on a fast network, and a
// fast device on a slow network.
FallbackEntry Entry(const std::string& device, Budget budget, int fixed, bool serve) {
  FallbackEntry e;
  e.device = device;
  e.network = "n";
  e.budget = budget;
  if (device == "slow-device") {
    e.action_time_s = {12, 2, 4};
    e.action_money_usd = {0, 0.002, 0.004};
  } else {
    e.action_time_s = {1, 9, 18};
    e.action_money_usd = {0, 0.002, 0.004};
  }
  e.fixed_action = fixed;
  e.serve_policy = serve;
  return e;
}

FallbackTable TwoProfiles() {
  return FallbackTable(
      {Entry("slow-device", {30, 0.05}, 1, false), Entry("slow-device", {8, 0.01}, 2, false),
       Entry("fast-device", {30, 0.05}, 0, false), Entry("fast-device", {8, 0.01}, 1, true)});
}

DecisionContext Context(const FallbackEntry& profile, double latency_s, double money_usd) {
  DecisionContext c;
  c.action_time_s = profile.action_time_s;
  c.action_money_usd = profile.action_money_usd;
  c.remaining_latency_s = latency_s;
  c.remaining_money_usd = money_usd;
  return c;
}

TEST(FallbackTable, MapsAConversationToItsProfileAndBudgetOnEveryTurn) {
  const FallbackTable table = TwoProfiles();
  const FallbackEntry slow = Entry("slow-device", {30, 0.05}, 0, false);
  const FallbackEntry fast = Entry("fast-device", {30, 0.05}, 0, false);
  EXPECT_EQ(table.Lookup(Context(slow, 30, 0.05)), 1);
  EXPECT_EQ(table.Lookup(Context(slow, 8, 0.01)), 2);
  EXPECT_EQ(table.Lookup(Context(fast, 30, 0.05)), 0);
  // Nearest, not exact: a 28 s budget is the 30 s entry's.
  EXPECT_EQ(table.Lookup(Context(fast, 28, 0.04)), 0);
  // The network decides where validation showed it ahead.
  EXPECT_EQ(table.Lookup(Context(fast, 8, 0.01)), -1);

  // Later turns of a 30 s conversation: what is left plus what the earlier
  // turns cost is the conversation's budget, so the entry does not change
  // although only 8 s are left (which alone would be the 8 s entry).
  DecisionContext later = Context(slow, 30 - 2 - 4 - 4 - 12, 0.05 - 0.002 - 0.004 - 0.004);
  later.previous_actions = {1, 2, 2, 0};
  later.previous_tasks = {0, 0, 0, 0};
  ASSERT_NEAR(later.remaining_latency_s, 8, 1e-9);
  EXPECT_EQ(table.Lookup(later), 1);
  EXPECT_EQ(table.Nearest(later)->budget.latency_s, 30);

  // A server's context holds the policy's window only; the conversation's
  // earlier actions, given beside it, keep the conversation in its entry.
  // 14 turns of action 1 (2 s, 0.002 USD each) into a 30 s / 0.034 USD
  // conversation leave 2 s and 0.006 USD; a window of the last two turns
  // alone reconstructs 6 s / 0.01 USD, the tight entry.
  DecisionContext windowed = Context(slow, 2, 0.006);
  windowed.previous_actions = {1, 1};
  windowed.previous_tasks = {0, 0};
  EXPECT_EQ(table.Nearest(windowed)->budget.latency_s, 8);
  const std::vector<int> all_turns(14, 1);
  EXPECT_EQ(table.Nearest(windowed, &all_turns)->budget.latency_s, 30);
  EXPECT_EQ(table.Lookup(windowed, &all_turns), 1);

  // A budget off the table's points stays with the profile's own entries:
  // far above the largest, the largest; a money budget of 0, the smallest.
  EXPECT_EQ(table.Nearest(Context(slow, 60, 0.1))->device, "slow-device");
  EXPECT_EQ(table.Lookup(Context(slow, 60, 0.1)), 1);
  EXPECT_EQ(table.Lookup(Context(slow, 200, 0.05)), 1);
  EXPECT_EQ(table.Lookup(Context(fast, 200, 0.5)), 0);
  EXPECT_EQ(table.Lookup(Context(fast, 8, 0)), -1);
  EXPECT_EQ(table.Lookup(Context(slow, 9, 0.01)), 2);
  // A profile the table has no entry of: the entry of nearest relative
  // costs (the slow device's, slightly dearer, at its tight budget).
  FallbackEntry similar = slow;
  for (double& t : similar.action_time_s) t *= 1.05;
  EXPECT_EQ(table.Nearest(Context(similar, 8, 0.01))->device, "slow-device");
  EXPECT_EQ(table.Lookup(Context(similar, 8, 0.01)), 2);

  // No costs, no entry: the network decides.
  DecisionContext unknown;
  EXPECT_EQ(table.Nearest(unknown), nullptr);
  EXPECT_EQ(table.Lookup(unknown), -1);
  EXPECT_EQ(FallbackTable().Lookup(Context(slow, 30, 0.05)), -1);
  // An infinite budget makes every cost relatively free: still an entry.
  EXPECT_NE(table.Nearest(Context(slow, std::numeric_limits<double>::infinity(),
                                  std::numeric_limits<double>::infinity())),
            nullptr);
}

// A lookup for a profile the table does not know scans every entry on every
// decision: 150000 entries cut a server from 15400 to 250 Decides a second.
TEST(FallbackTable, MoreEntriesThanTheBoundAreRefused) {
  const FallbackEntry one = Entry("slow-device", {30, 0.05}, 1, false);
  std::vector<FallbackEntry> entries(FallbackTable::kMaxEntries, one);
  EXPECT_TRUE(FallbackTable(entries).Validate(3, "t.pt").ok());
  auto parsed = FallbackTable::FromJson(FallbackTable(entries).ToJson(), "t.pt");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  entries.push_back(one);
  const FallbackTable too_many(entries);
  const absl::Status invalid = too_many.Validate(3, "t.pt");
  EXPECT_EQ(invalid.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(invalid.message().find("16385 entries: at most 16384"), std::string::npos) << invalid;
  auto refused = FallbackTable::FromJson(too_many.ToJson(), "t.pt");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("16385 entries: at most 16384"), std::string::npos)
      << refused.status();
}

TEST(FallbackTable, RoundTripsThroughJsonAndRefusesBadEntries) {
  FallbackTable table = TwoProfiles();
  auto parsed = FallbackTable::FromJson(table.ToJson(), "t.pt");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->entries().size(), 4u);
  EXPECT_EQ(parsed->entries()[1].fixed_action, 2);
  EXPECT_EQ(parsed->entries()[3].serve_policy, true);
  EXPECT_EQ(parsed->entries()[1].budget.money_usd, 0.01);
  EXPECT_EQ(parsed->Lookup(Context(parsed->entries()[0], 8, 0.01)), 2);
  EXPECT_TRUE(parsed->Validate(3, "t.pt").ok());

  const auto expect_invalid = [](const FallbackTable& t, int actions, const std::string& text) {
    const absl::Status s = t.Validate(actions, "t.pt");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(text), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("t.pt"), std::string::npos) << s.message();
  };
  expect_invalid(table, 4, "the policy has 4 actions");
  expect_invalid(FallbackTable({Entry("fast-device", {30, 0.05}, 3, false)}), 3,
                 "fixed_action = 3");
  expect_invalid(FallbackTable({Entry("fast-device", {0, 0.05}, 1, false)}), 3, "budget");
  FallbackEntry negative = Entry("fast-device", {30, 0.05}, 1, false);
  negative.action_money_usd[2] = -1;
  expect_invalid(FallbackTable({negative}), 3, "action 2");

  EXPECT_FALSE(FallbackTable::FromJson("{\"method\": \"other\", \"entries\": []}", "t").ok());
  EXPECT_FALSE(
      FallbackTable::FromJson("{\"method\": \"validated_fixed_action_fallback\"}", "t").ok());
  EXPECT_FALSE(FallbackTable::FromJson("[1, 2", "t").ok());
  // Malformed entries are refused before anything reads them.
  nlohmann::json j = nlohmann::json::parse(table.ToJson());
  j["entries"][0]["action_money_usd"] = {0.0};
  const auto short_prices = FallbackTable::FromJson(j.dump(), "t.pt");
  EXPECT_NE(short_prices.status().message().find("3 times and 1 prices"), std::string::npos)
      << short_prices.status();
  j = nlohmann::json::parse(table.ToJson());
  j["entries"][1]["fixed_action"] = 1e300;
  EXPECT_NE(FallbackTable::FromJson(j.dump(), "t.pt").status().message().find("fixed_action"),
            std::string::npos);
  j["entries"][1]["fixed_action"] = -1;
  EXPECT_FALSE(FallbackTable::FromJson(j.dump(), "t.pt").ok());
  // Entries keyed by name were read as a list and written back as one.
  j = nlohmann::json::parse(table.ToJson());
  j["entries"] = {{"a", j["entries"][0]}};
  EXPECT_NE(
      FallbackTable::FromJson(j.dump(), "t.pt").status().message().find("entries must be an array"),
      std::string::npos);
}

// The fallback's rule on plain costs is the shield's on the cost model:
// every built-in profile, every proposal, budgets from none to plenty.
TEST(ShieldByCost, DecidesAsTheShieldWithoutScores) {
  const SimulatorConfig config;
  auto actions = ActionTable::Create(3);
  ASSERT_TRUE(actions.ok());
  int compared = 0, overridden = 0;
  for (const ProfilePair& pair : AllProfilePairs(config.catalog)) {
    auto costs = CostModel::Create(config.catalog, pair.device, pair.network, *actions);
    ASSERT_TRUE(costs.ok()) << costs.status();
    DecisionContext c;
    SetActionCosts(*costs, &c);
    for (double latency : {0.0, 0.5, 2.0, 5.0, 8.0, 12.0, 30.0, 1e9})
      for (double money : {0.0, 1e-5, 0.001, 0.004, 0.01, 0.05, 1e9})
        for (int proposed = 0; proposed < actions->size(); ++proposed) {
          const ShieldDecision a = Shield(*costs, proposed, nullptr, latency, money);
          const ShieldDecision b =
              ShieldByCost(c.action_time_s, c.action_money_usd, proposed, latency, money);
          ASSERT_EQ(a.action, b.action) << pair.device << "/" << pair.network << " " << latency
                                        << " s " << money << " USD, proposed " << proposed;
          ASSERT_EQ(a.overridden, b.overridden);
          ASSERT_EQ(a.nothing_fits, b.nothing_fits);
          ++compared;
          overridden += a.overridden;
        }
  }
  EXPECT_EQ(compared, 32 * 8 * 7 * 9);
  EXPECT_GT(overridden, compared / 10);  // the comparison covers replacements
}

// Counts its decisions; always proposes action 2 with scores.
class CountingPolicy : public Policy {
 public:
  std::string name() const override { return "counting"; }
  int Act(const DecisionContext&, std::vector<double>* scores) override {
    ++calls;
    if (scores != nullptr) scores->assign(3, 0.5);
    return 2;
  }
  int calls = 0;
};

TEST(FallbackPolicy, AnswersWithTheFixedActionWithoutScoresAndLetsTheInnerPolicyDecideElsewhere) {
  auto inner = std::make_unique<CountingPolicy>();
  CountingPolicy* counting = inner.get();
  FallbackPolicy policy(std::move(inner), std::make_shared<const FallbackTable>(TwoProfiles()),
                        {7, 8});
  const FallbackEntry fast = Entry("fast-device", {30, 0.05}, 0, false);
  std::vector<double> scores = {1, 2, 3};
  EXPECT_EQ(policy.Act(Context(fast, 30, 0.05), &scores), 0);
  EXPECT_TRUE(scores.empty());  // as env::FixedPolicy
  EXPECT_EQ(counting->calls, 0);
  // The slow device's 8 s cell answers with action 2 (4 s, 0.004 USD). A
  // turn later (action 1 took 2 s and 0.002 USD) it no longer fits beside
  // the shield's reserve of 4 cheapest turns, nothing does, and of what fits
  // outright action 1 is the cheapest: the fallback answers with it, as the
  // shield would replace action 2.
  const FallbackEntry slow = Entry("slow-device", {8, 0.01}, 0, false);
  DecisionContext later = Context(slow, 6, 0.008);
  later.previous_actions = {1};
  later.previous_tasks = {0};
  EXPECT_EQ(TwoProfiles().Lookup(later), 2);
  EXPECT_EQ(TwoProfiles().Decide(later), 1);
  EXPECT_EQ(policy.Act(later, nullptr), 1);
  EXPECT_EQ(policy.Act(Context(fast, 8, 0.01), &scores), 2);
  EXPECT_EQ(scores.size(), 3u);
  EXPECT_EQ(counting->calls, 1);
  EXPECT_EQ(policy.name(), "counting");
  EXPECT_EQ(policy.DecisionModelEpisodes(), (std::vector<int>{7, 8}));
  // Without a table the inner policy decides everywhere.
  FallbackPolicy bare(std::make_unique<CountingPolicy>(), nullptr, {});
  EXPECT_EQ(bare.Act(Context(fast, 30, 0.05), nullptr), 2);
}

// Task a answers well locally, task b in the cloud (testing::TwoTaskDataset):
// deciding per task beats every fixed action.
data::Dataset TwoTaskDataset() {
  return testing::TwoTaskDataset(
      [](int task, int action) { return (task == 0) == (action == 0) ? 9.0 : 1.0; });
}

std::vector<int> Range(int from, int to) {
  std::vector<int> out;
  for (int i = from; i < to; ++i) out.push_back(i);
  return out;
}

FallbackSelectionOptions GenerousBudget() {
  FallbackSelectionOptions o;
  o.budgets = {Budget{1000, 10}};
  return o;
}

TEST(SelectFallback, ServesACandidateOnlyWhereValidationShowsItAhead) {
  const data::Dataset d = TwoTaskDataset();
  const SimulatorConfig config = testing::TwoViewConfig();
  const std::vector<int> training = Range(0, 30), validation = Range(30, 40);
  const int num_pairs = static_cast<int>(AllProfilePairs(config.catalog).size());

  // Per task: local for a, cloud for b. Ahead of every fixed action.
  TaskRulePolicy per_task(TaskRule{{0, 1}}, training);
  std::vector<int> consulted;
  auto table =
      SelectFallback(d, training, validation, config, per_task, GenerousBudget(), &consulted);
  ASSERT_TRUE(table.ok()) << table.status();
  // What a policy behind the table declares: every episode it consulted.
  EXPECT_EQ(consulted, Range(0, 40));
  ASSERT_EQ(static_cast<int>(table->entries().size()), num_pairs);
  for (const FallbackEntry& e : table->entries()) {
    EXPECT_TRUE(e.serve_policy) << e.device << "/" << e.network;
    EXPECT_GT(e.validated_lower_bound, 0);
    EXPECT_GE(e.validated_margin, e.validated_lower_bound);
    EXPECT_EQ(e.action_time_s.size(), 5u);
    EXPECT_EQ(e.budget.latency_s, 1000);
  }
  EXPECT_NE(DescribeFallback(*table, ActionTable::Create(2).value()).find("policy in "),
            std::string::npos);

  // A candidate that is only a fixed action never clears the bar: its
  // margin over the best fixed action is at most zero, and the table names
  // that action.
  TaskRulePolicy local(TaskRule{{0, 0}}, training);
  auto fixed = SelectFallback(d, training, validation, config, local, GenerousBudget());
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  for (const FallbackEntry& e : fixed->entries()) {
    EXPECT_FALSE(e.serve_policy) << e.device << "/" << e.network;
    EXPECT_LE(e.validated_lower_bound, 0);
  }
  // Its lookups answer with each cell's fixed action, not the inner
  // policy's (which here proposes another).
  DecisionContext c;
  SetActionCosts(Simulator::Create(d, training, config).value()->costs(), &c);
  c.remaining_latency_s = 1000;
  c.remaining_money_usd = 10;
  ASSERT_NE(fixed->Nearest(c), nullptr);
  const int cell_action = fixed->Nearest(c)->fixed_action;
  FallbackPolicy served(std::make_unique<FixedPolicy>((cell_action + 1) % 5, "other"),
                        std::make_shared<const FallbackTable>(*fixed), training);
  EXPECT_EQ(served.Act(c, nullptr), cell_action);
}

TEST(SelectFallback, AnchoredKeepsOneActionUnlessValidationConfirmsACellsOwn) {
  // Every answer from the cloud scores 9, a local one 1: with room for it a
  // cloud call is best; where only a local answer fits (money budgets below
  // the cheapest cloud call's 0.001 USD), local is, but no better than the
  // cloud call the shield replaces by it.
  const data::Dataset d =
      testing::TwoTaskDataset([](int, int action) { return action == 0 ? 1.0 : 9.0; });
  const SimulatorConfig config = testing::TwoViewConfig();
  const std::vector<int> training = Range(0, 30), validation = Range(20, 30);
  TaskRulePolicy local(TaskRule{{0, 0}}, Range(0, 20));
  FallbackSelectionOptions options;
  options.budgets = {Budget{1000, 10}, Budget{500, 5}, Budget{1000, 0.0005}};
  auto per_cell = SelectFallback(d, training, validation, config, local, options);
  ASSERT_TRUE(per_cell.ok()) << per_cell.status();
  options.fixed_action_rule = FixedActionRule::kAnchored;
  auto anchored = SelectFallback(d, training, validation, config, local, options);
  ASSERT_TRUE(anchored.ok()) << anchored.status();
  ASSERT_EQ(per_cell->entries().size(), anchored->entries().size());
  // Two generous cells to one tight per profile: the anchor is the generous
  // cells' cloud call. The tight cells chose local on their own, which the
  // validation episodes do not show ahead of the anchor: they answer with
  // the anchor (where it does not fit, the cheapest action that does).
  std::set<int> generous;
  for (size_t i = 0; i < anchored->entries().size(); ++i) {
    const FallbackEntry& p = per_cell->entries()[i];
    const FallbackEntry& a = anchored->entries()[i];
    if (p.budget.money_usd > 1) {
      EXPECT_NE(p.fixed_action, 0) << p.device;
      EXPECT_EQ(a.fixed_action, p.fixed_action) << a.device;
      generous.insert(a.fixed_action);
    } else {
      EXPECT_EQ(p.fixed_action, 0) << p.device;
      EXPECT_NE(a.fixed_action, 0) << a.device;
    }
  }
  ASSERT_EQ(generous.size(), 1u);
  for (const FallbackEntry& a : anchored->entries())
    EXPECT_EQ(a.fixed_action, *generous.begin()) << a.device << " " << a.budget.money_usd;

  // A departure the validation episodes confirm is kept: with one generous
  // budget to two tight ones the anchor is local, and the generous cells'
  // cloud call beats it by far.
  // A tied vote (one generous, one tight cell per profile) takes the lowest
  // action, local, and keeps the same confirmed cloud calls.
  for (const std::vector<Budget>& budgets :
       {std::vector<Budget>{{1000, 10}, {1000, 0.0005}, {1000, 0.0004}},
        std::vector<Budget>{{1000, 10}, {1000, 0.0005}}}) {
    options.budgets = budgets;
    auto confirmed = SelectFallback(d, training, validation, config, local, options);
    ASSERT_TRUE(confirmed.ok()) << confirmed.status();
    for (const FallbackEntry& a : confirmed->entries()) {
      if (a.budget.money_usd > 1)
        EXPECT_NE(a.fixed_action, 0) << a.device << " " << budgets.size();
      else
        EXPECT_EQ(a.fixed_action, 0) << a.device << " " << budgets.size();
    }
  }
  // Anchored needs selection episodes outside the validation ones.
  TaskRulePolicy untrained(TaskRule{{0, 0}}, {});
  auto none_left = SelectFallback(d, validation, validation, config, untrained, options);
  EXPECT_EQ(none_left.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(none_left.status().message().find("anchored needs at least 2"), std::string::npos)
      << none_left.status();

  EXPECT_EQ(*ParseFixedActionRule("anchored"), FixedActionRule::kAnchored);
  EXPECT_EQ(*ParseFixedActionRule(FixedActionRuleName(FixedActionRule::kPerCell)),
            FixedActionRule::kPerCell);
  EXPECT_EQ(ParseFixedActionRule("mode").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SelectFallback, AnchorsPerNetworkOrPerNetworkAndBudgetWhenAsked) {
  // Cloud answers score 9, local ones 1, as above. On the added network
  // "Slow" no cloud call fits any budget here, and under the third budget
  // (0.0005 USD, below the cheapest cloud call) none fits anywhere: those
  // cells choose local on their own, the others (the majority) a cloud call.
  const data::Dataset d =
      testing::TwoTaskDataset([](int, int action) { return action == 0 ? 1.0 : 9.0; });
  SimulatorConfig config = testing::TwoViewConfig();
  config.catalog.networks.push_back({"Slow", {5000, 5000, 5000}});
  const std::vector<int> training = Range(0, 30), validation = Range(20, 30);
  TaskRulePolicy local(TaskRule{{0, 0}}, Range(0, 20));
  FallbackSelectionOptions options;
  options.budgets = {Budget{1000, 10}, Budget{500, 5}, Budget{1000, 0.0005}};
  const auto select = [&](FixedActionRule rule) {
    options.fixed_action_rule = rule;
    auto table = SelectFallback(d, training, validation, config, local, options);
    EXPECT_TRUE(table.ok()) << table.status();
    return table.ok() ? *std::move(table) : FallbackTable();
  };
  const FallbackTable one = select(FixedActionRule::kAnchored);
  const FallbackTable network = select(FixedActionRule::kAnchoredPerNetwork);
  const FallbackTable network_budget = select(FixedActionRule::kAnchoredPerNetworkBudget);
  const size_t cells = 3 * config.catalog.devices.size() * config.catalog.networks.size();
  ASSERT_EQ(one.entries().size(), cells);
  ASSERT_EQ(network.entries().size(), cells);
  ASSERT_EQ(network_budget.entries().size(), cells);
  int slow_cells = 0, tight_cells = 0;
  for (size_t i = 0; i < cells; ++i) {
    const FallbackEntry& a = one.entries()[i];
    const FallbackEntry& n = network.entries()[i];
    const FallbackEntry& nb = network_budget.entries()[i];
    ASSERT_EQ(a.network, n.network);
    const std::string where = absl::StrCat(a.device, " / ", a.network, " / ", a.budget.money_usd);
    // Where local is each cell's own choice it is never confirmed ahead of a
    // cloud call the shield replaces by local: the anchor decides.
    // One anchor for all: the majority's cloud call everywhere.
    EXPECT_NE(a.fixed_action, 0) << where;
    if (a.network == "Slow") {
      ++slow_cells;
      // The Slow network's cells vote local, per network and per budget.
      EXPECT_EQ(n.fixed_action, 0) << where;
      EXPECT_EQ(nb.fixed_action, 0) << where;
    } else if (a.budget.money_usd < 0.001) {
      ++tight_cells;
      // Outvoted within their network by its two generous budgets; the
      // devices of the tight budget alone vote local.
      EXPECT_NE(n.fixed_action, 0) << where;
      EXPECT_EQ(nb.fixed_action, 0) << where;
    } else {
      EXPECT_EQ(n.fixed_action, a.fixed_action) << where;
      EXPECT_EQ(nb.fixed_action, a.fixed_action) << where;
    }
  }
  EXPECT_EQ(slow_cells, 3 * static_cast<int>(config.catalog.devices.size()));
  EXPECT_EQ(tight_cells,
            static_cast<int>(config.catalog.devices.size() * (config.catalog.networks.size() - 1)));
  for (FixedActionRule rule :
       {FixedActionRule::kPerCell, FixedActionRule::kAnchored, FixedActionRule::kAnchoredPerNetwork,
        FixedActionRule::kAnchoredPerNetworkBudget})
    EXPECT_EQ(*ParseFixedActionRule(FixedActionRuleName(rule)), rule);
  EXPECT_EQ(ParseFixedActionRule("anchored_per_device").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SelectFallback, RefusesACandidateThatTrainedOnAValidationEpisode) {
  const data::Dataset d = TwoTaskDataset();
  TaskRulePolicy leaky(TaskRule{{0, 1}}, {3, 35});
  auto table = SelectFallback(d, Range(0, 30), Range(30, 40), testing::TwoViewConfig(), leaky,
                              GenerousBudget());
  EXPECT_EQ(table.status().code(), absl::StatusCode::kFailedPrecondition);
  auto few =
      SelectFallback(d, Range(0, 30), {31}, testing::TwoViewConfig(), leaky, GenerousBudget());
  EXPECT_EQ(few.status().code(), absl::StatusCode::kInvalidArgument);
  FallbackSelectionOptions none;
  TaskRulePolicy clean(TaskRule{{0, 1}}, Range(0, 30));
  EXPECT_EQ(SelectFallback(d, Range(0, 30), Range(30, 40), testing::TwoViewConfig(), clean, none)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// The lookup's per-profile index points into the table's own entries: copies,
// assignments and moves each answer as the original, after it is gone.
TEST(FallbackTable, CopiesAndMovesLookUpAsTheOriginal) {
  const FallbackEntry slow = Entry("slow-device", {30, 0.05}, 1, false);
  const FallbackEntry fast = Entry("fast-device", {30, 0.05}, 0, false);
  const auto expect_same = [&](const FallbackTable& t) {
    EXPECT_EQ(t.Lookup(Context(slow, 30, 0.05)), 1);
    EXPECT_EQ(t.Lookup(Context(slow, 8, 0.01)), 2);
    EXPECT_EQ(t.Lookup(Context(fast, 30, 0.05)), 0);
    EXPECT_EQ(t.Lookup(Context(fast, 8, 0.01)), -1);
  };
  auto original = std::make_unique<FallbackTable>(TwoProfiles());
  FallbackTable copied(*original);
  FallbackTable assigned;
  assigned = *original;
  FallbackTable moved(std::move(*original));
  original.reset();
  expect_same(copied);
  expect_same(assigned);
  expect_same(moved);
  FallbackTable move_assigned;
  move_assigned = std::move(copied);
  expect_same(move_assigned);
}

}  // namespace
}  // namespace lcio::env
