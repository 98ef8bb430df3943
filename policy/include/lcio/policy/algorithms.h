// What the six algorithms share: the environment loop's bookkeeping (episode
// statistics, constraint costs, Lagrange multipliers, progress) and their
// entry points. Internal to the trainer (includes LibTorch through
// networks.h); one file per algorithm implements each entry point.
#pragma once

#include <array>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lcio/env/training_env.h"
#include "lcio/policy/lagrange.h"
#include "lcio/policy/networks.h"
#include "lcio/policy/trainer.h"

namespace lcio::policy {

// Constraint costs per step: the latency and money spent beyond the episode's
// budget, in units of the most expensive action's cost (so both constraints
// have the same scale), plus `violation_cost` on the step that first goes
// past the budget. They sum to the episode's normalised excess (plus the
// violation cost once per budget the episode breaks).
constexpr int kNumCosts = 2;

class AlgoContext {
 public:
  AlgoContext(env::TrainingEnv& env, bool constrained, const TrainOptions& options);

  env::TrainingEnv& env() { return env_; }
  bool constrained() const { return constrained_; }
  int64_t total_steps() const { return total_steps_; }
  int64_t steps() const { return steps_; }
  std::mt19937_64& rng() { return rng_; }
  // The run's options: each algorithm reads its own typed hyperparameters
  // (options().ppo, .a2c, .dqn; the multipliers here read .lagrange).
  const TrainOptions& options() const { return options_; }

  // Costs of one step (kNumCosts numbers).
  void StepCosts(const env::StepResult& result, float* costs) const;
  // Books one environment step: episode statistics, multiplier updates every
  // `lagrange_interval` steps, progress reports. Resets the env when done.
  void Record(const env::StepResult& result);
  // Current multipliers (zeros when unconstrained).
  double lambda(int c) const { return constrained_ ? multipliers_[c].value() : 0.0; }
  double lambda_sum() const { return lambda(0) + lambda(1); }
  void CountGradientStep() { ++gradient_steps_; }

  // Closing report and the summary's training figures.
  TrainSummary Finish();

 private:
  void Report(bool final);
  env::TrainingEnv& env_;
  bool constrained_;
  TrainOptions options_;
  int64_t total_steps_;
  std::mt19937_64 rng_;
  std::vector<LagrangeMultiplier> multipliers_;
  double violation_cost_ = 0;
  std::chrono::steady_clock::time_point start_;

  int64_t steps_ = 0, episodes_ = 0, gradient_steps_ = 0;
  double episode_reward_ = 0, episode_cost_[kNumCosts] = {0, 0};
  int episode_turns_ = 0, episode_overrides_ = 0;
  bool episode_over_ = false;
  // All finished episodes (for the summary) and the windows since the last
  // multiplier update and the last report.
  std::vector<double> episode_rewards_;
  std::vector<std::array<double, kNumCosts>> episode_costs_;
  std::vector<uint8_t> episode_over_budget_;
  std::vector<double> episode_override_share_;  // turns whose proposal the shield replaced
  size_t lagrange_window_start_ = 0, report_window_start_ = 0;
  int64_t last_report_step_ = 0;
};

// The hidden layers of any learner's configuration.
template <typename LearnerConfig>
std::vector<int> HiddenSizes(const LearnerConfig& config) {
  return std::vector<int>(config.hidden_layers, config.hidden_size);
}

// Each returns the network a policy scores with (for DQN, the reward head
// minus the multipliers times the cost heads).
Network TrainPpo(AlgoContext& context);
Network TrainA2c(AlgoContext& context);
Network TrainDqn(AlgoContext& context);

// Pieces exposed for the numerical tests.

// PPO's clipped surrogate plus entropy bonus on a minibatch of policy logits
// (rows x num_actions): returns the loss and writes d(loss)/d(logits).
// loss = -mean(min(r A, clip(r, 1-eps, 1+eps) A)) - ent_coef * mean(H).
double PpoPolicyLoss(const float* logits, int rows, int num_actions, const int* actions,
                     const float* old_log_probs, const float* advantages, double clip_range,
                     double ent_coef, float* grad_logits);
// A2C's policy-gradient loss: -mean(A log pi(a|s)) - ent_coef * mean(H).
double A2cPolicyLoss(const float* logits, int rows, int num_actions, const int* actions,
                     const float* advantages, double ent_coef, float* grad_logits);
// DQN's target r + gamma * (1 - done) * max_a Q_target(s', a) for one row,
// or, constrained, the reward and cost targets at the action maximising
// Q_r - lambda . Q_c in the target network (next_q holds the heads
// [reward A | cost_0 A | cost_1 A ...]).
void DqnTargets(const float* next_q, int num_actions, int num_costs, const double* lambdas,
                double reward, const float* costs, bool done, double gamma, float* targets);
// Combined actor-critic advantage (A_r - sum_c lambda_c A_c) / (1 + sum_c lambda_c).
float CombineAdvantages(float reward_advantage, const float* cost_advantages, const double* lambdas,
                        int num_costs);
// Numerically stable log-softmax of one row.
void LogSoftmax(const float* logits, int n, float* out);

}  // namespace lcio::policy
