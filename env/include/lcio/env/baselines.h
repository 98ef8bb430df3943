// Baseline policies: Local, Cloud, Random, every fixed action, Greedy, and
// the Oracle (exhaustive search with full knowledge of the episode).
#pragma once

#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "lcio/env/policy_interface.h"
#include "lcio/env/scorer.h"

namespace lcio::env {

class FixedPolicy : public Policy {
 public:
  FixedPolicy(int action, std::string name) : action_(action), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  int Act(const DecisionContext&, std::vector<double>*) override { return action_; }

 private:
  int action_;
  std::string name_;
};

// Cloud: uniform over the cloud actions. Random: local with probability
// `local_share`, otherwise uniform over the cloud actions.
class RandomPolicy : public Policy {
 public:
  RandomPolicy(std::string name, int num_actions, double local_share)
      : name_(std::move(name)), num_actions_(num_actions), local_share_(local_share) {}
  std::string name() const override { return name_; }
  void BeginEpisode(const data::Episode&, const Budget&, uint64_t seed) override {
    rng_.seed(seed);
  }
  int Act(const DecisionContext&, std::vector<double>*) override;

 private:
  std::string name_;
  int num_actions_;
  double local_share_;
  std::mt19937_64 rng_{1};
};

// The best immediate simulated reward among the actions that keep the
// conversation inside both remaining budgets (cheapest when none does).
// Deciding with a training-side simulator it is a fair baseline; deciding with
// a scorer (`clairvoyant`) it knows the scoring model and is a bound.
class GreedyPolicy : public Policy {
 public:
  explicit GreedyPolicy(std::shared_ptr<const Simulator> simulator);
  GreedyPolicy(std::shared_ptr<const Scorer> model, std::string name, bool clairvoyant);
  std::string name() const override { return name_; }
  void BeginEpisode(const data::Episode& episode, const Budget& budget, uint64_t seed) override;
  int Act(const DecisionContext& context, std::vector<double>* scores) override;
  std::vector<int> DecisionModelEpisodes() const override { return model_->FittedEpisodes(); }
  bool is_bound() const override { return clairvoyant_; }
  int64_t TakeShieldOverrides() override { return std::exchange(overrides_, 0); }

 private:
  int64_t overrides_ = 0;  // best rewards that did not fit
  std::shared_ptr<const Scorer> model_;
  std::string name_;
  bool clairvoyant_;
  std::vector<std::unique_ptr<CachedEstimator>> caches_;  // one per simulator
  int current_ = 0;
};

struct OracleStats {
  int64_t episodes = 0;
  int64_t nodes = 0;
  int64_t infeasible_episodes = 0;  // no sequence fits both budgets
  int64_t truncated_episodes = 0;   // node limit hit: best found so far
};

// Maximises the episode's mean reward over all action sequences subject to
// both budgets, by depth-first branch and bound. When no sequence fits, it
// plays the cheapest action throughout.
class OraclePolicy : public Policy {
 public:
  explicit OraclePolicy(std::shared_ptr<const Simulator> simulator,
                        int64_t node_limit_per_episode = 200'000'000);
  // Plans each episode with the simulator `scorer` scores it with.
  explicit OraclePolicy(std::shared_ptr<const Scorer> scorer,
                        int64_t node_limit_per_episode = 200'000'000);
  std::string name() const override { return "Oracle"; }
  void BeginEpisode(const data::Episode& episode, const Budget& budget, uint64_t seed) override;
  int Act(const DecisionContext& context, std::vector<double>* scores) override;
  std::vector<int> DecisionModelEpisodes() const override { return scorer_->FittedEpisodes(); }
  bool is_bound() const override { return true; }
  const OracleStats& stats() const { return stats_; }
  // The plan of the last BeginEpisode and its total reward.
  const std::vector<int>& plan() const { return plan_; }
  double plan_reward() const { return plan_reward_; }

 private:
  struct Search;
  std::shared_ptr<const Scorer> scorer_;
  int64_t node_limit_;
  std::vector<std::unique_ptr<CachedEstimator>> caches_;  // one per simulator
  int current_ = 0;
  std::vector<int> plan_;
  double plan_reward_ = 0;
  OracleStats stats_;
};

// Local, Cloud, Random, Fixed 0..A-1, Greedy, Oracle (in that order).
std::vector<std::unique_ptr<Policy>> MakeBaselines(std::shared_ptr<const Simulator> simulator,
                                                   bool include_fixed = true,
                                                   bool include_oracle = true);
// What needs no response model: Local, Cloud, Random and (include_fixed)
// Fixed 0..A-1.
std::vector<std::unique_ptr<Policy>> MakeModelFreeBaselines(const ActionTable& actions,
                                                            bool include_fixed);

}  // namespace lcio::env
