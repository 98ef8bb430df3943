// Runs policies over test episodes and reports the reference's five metrics
// plus what users care about: how often, and by how much, budgets are broken.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lcio/env/policy_interface.h"
#include "lcio/env/scorer.h"

namespace lcio::env {

struct EvalOptions {
  Budget budget;
  bool shield = false;  // pass every decision through the budget shield
  uint64_t seed = 1;    // randomised policies draw from MixSeed(seed, episode id)
};

struct EpisodeResult {
  int64_t id = 0;
  int turns = 0;
  double response = 0;     // mean over turns
  double association = 0;  // mean over turns
  double latency_s = 0;    // total
  double money_usd = 0;    // total
  double reward = 0;       // mean over turns
  int shield_overrides = 0;
  std::vector<int> actions;
};

struct PolicyResult {
  std::string name;
  bool shielded = false;
  std::vector<EpisodeResult> episodes;
  // Means over episodes.
  double response = 0, association = 0, latency_s = 0, money_usd = 0, reward = 0;
  double share_over_latency = 0, share_over_money = 0;
  // The reference's violation figure: mean excess over the episodes that
  // exceed the budget (0 when none does).
  double mean_excess_latency_s = 0, mean_excess_money_usd = 0;
  int64_t shield_overrides = 0;
  int64_t decisions = 0;
  double wall_seconds = 0;
};

// Each episode is scored by the simulator `scorer` assigns to it.
PolicyResult EvaluatePolicy(const Scorer& scorer, const data::Dataset& dataset,
                            const std::vector<int>& test_episodes, Policy& policy,
                            const EvalOptions& options);
// One simulator scoring every episode.
PolicyResult EvaluatePolicy(const Simulator& simulator, const data::Dataset& dataset,
                            const std::vector<int>& test_episodes, Policy& policy,
                            const EvalOptions& options);

// FailedPrecondition when `policy` is a decision maker (not a bound) whose
// decision model was fitted on any of `test_episodes`: its figures would
// measure memory, not generalisation.
absl::Status CheckDecisionModelHeldOut(const Policy& policy, const std::vector<int>& test_episodes);

// Mean and standard deviation of each figure over several splits.
struct AggregateResult {
  std::string name;
  bool shielded = false;
  int splits = 0;
  double response = 0, response_sd = 0, association = 0, association_sd = 0;
  double latency_s = 0, latency_sd = 0, money_usd = 0, money_sd = 0, reward = 0, reward_sd = 0;
  double share_over_latency = 0, share_over_money = 0;  // pooled over all episodes
  // Mean excess over the episodes, of all splits, that exceed the budget.
  double mean_excess_latency_s = 0, mean_excess_money_usd = 0;
  int64_t shield_overrides = 0, decisions = 0;
  std::vector<double> reward_by_split;
};
// results[split][policy]: the same policies in the same order in each split.
std::vector<AggregateResult> Aggregate(const std::vector<std::vector<PolicyResult>>& results);

// The paired difference of two rows' rewards over the same splits
// (a - b): its mean and standard error (0 for one split).
struct PairedDifference {
  double mean = 0, standard_error = 0;
};
PairedDifference Compare(const AggregateResult& a, const AggregateResult& b);

std::string ToMarkdown(const std::vector<AggregateResult>& rows, double oracle_reward);

// What a row is to the protocol (docs/evaluation.md).
enum class MethodRole {
  kBaseline,    // Local, each fixed action, Greedy with the training model: to beat
  kReference,   // Cloud, Random: shown, not compared against
  kCandidate,   // trained policies and artifacts
  kBound,       // the Oracle and Greedy deciding with the scorer
  kHindsight,   // a rule chosen on the test side (the task rule in hindsight):
                // a bound, with its worst case reported, never a bar to clear
  kNotHeldOut,  // an artifact trained on the evaluated data, test episodes
                // included: shown, never given a verdict
};
// "baseline", "reference", "candidate", "bound", "hindsight", "not held out".
const char* MethodRoleName(MethodRole role);

// One scorer's aggregated rows with each row's role; `oracle` is the row of
// the Oracle (-1 when none), the 100% of "% of Oracle".
struct ScoredRows {
  std::string scorer;
  bool held_out = false;
  std::vector<AggregateResult> rows;
  std::vector<MethodRole> roles;
  int oracle = -1;
  double oracle_reward() const { return oracle >= 0 ? rows[oracle].reward : 0.0; }
};

// A decision maker's worst case over the held-out scorers: under each, its
// paired margin over the best baseline there (the baseline of highest mean
// reward other than itself; for a baseline, also other than a row with
// identical per-split rewards, such as Local and Fixed 0; a candidate deciding
// exactly like a baseline ties with it); the scorer where that margin is
// smallest wins.
// Rows over a budget in any episode (possible without the shield) are never
// the best baseline, and such a method's verdict is "over budget" whatever
// its margin: the reward has no penalty for the excess, so an unshielded
// cloud call past both budgets looked 141% of the Oracle.
// verdict: "ahead" (margin > 0), "tie" (a shortfall within one standard error),
// "behind" or "over budget".
struct WorstCaseRow {
  std::string name;
  MethodRole role = MethodRole::kCandidate;
  bool shielded = false;
  std::string scorer;
  double reward = 0, percent_of_oracle = 0;  // 0 without an Oracle row (--oracle=false)
  bool has_oracle = false;
  std::string best_baseline;
  PairedDifference margin;
  bool over_budget = false;  // over a budget in some episode (under this scorer's run)
  std::string verdict;
};
// Rows of every baseline, candidate and rule in hindsight, for the shield
// setting `shielded`.
std::vector<WorstCaseRow> WorstCase(const std::vector<ScoredRows>& scorers, bool shielded);
std::string WorstCaseMarkdown(const std::vector<WorstCaseRow>& rows);

// {"settings": ..., "scorers": [{"scorer", "held_out", "methods": [...]}],
//  "worst_case": [...]}
std::string ToJson(const std::vector<ScoredRows>& scorers,
                   const std::vector<WorstCaseRow>& worst_case, const std::string& settings_json);

}  // namespace lcio::env
