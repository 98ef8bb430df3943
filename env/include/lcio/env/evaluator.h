// Runs policies over test episodes and reports the reference's five metrics
// plus what users care about: how often, and by how much, budgets are broken.
#pragma once

#include <string>
#include <vector>

#include "lcio/env/policy_interface.h"

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

PolicyResult EvaluatePolicy(const Simulator& simulator, const data::Dataset& dataset,
                            const std::vector<int>& test_episodes, Policy& policy,
                            const EvalOptions& options);

// Mean and standard deviation of each figure over several splits.
struct AggregateResult {
  std::string name;
  bool shielded = false;
  int splits = 0;
  double response = 0, response_sd = 0, association = 0, association_sd = 0;
  double latency_s = 0, latency_sd = 0, money_usd = 0, money_sd = 0, reward = 0, reward_sd = 0;
  double share_over_latency = 0, share_over_money = 0;          // pooled over all episodes
  double mean_excess_latency_s = 0, mean_excess_money_usd = 0;  // means over splits
  int64_t shield_overrides = 0, decisions = 0;
};
// results[split][policy]: the same policies in the same order in each split.
std::vector<AggregateResult> Aggregate(const std::vector<std::vector<PolicyResult>>& results);

std::string ToMarkdown(const std::vector<AggregateResult>& rows, double oracle_reward);
std::string ToJson(const std::vector<AggregateResult>& rows, const std::string& settings_json);

}  // namespace lcio::env
