#include <algorithm>
#include <cmath>

#include "lcio/policy/algorithms.h"

namespace lcio::policy {

AlgoContext::AlgoContext(env::TrainingEnv& env, bool constrained, const TrainOptions& options)
    : env_(env),
      constrained_(constrained),
      options_(options),
      total_steps_(options.timesteps),
      rng_(options.seed),
      start_(std::chrono::steady_clock::now()) {
  if (constrained_) {
    const LagrangeConfig& c = options_.lagrange;
    for (double limit : {c.cost_limit_latency, c.cost_limit_money}) {
      LagrangeOptions o;
      o.limit = limit;
      o.lr = c.lagrange_lr;
      o.kp = c.lagrange_kp;
      o.kd = c.lagrange_kd;
      o.initial = c.lagrange_init;
      o.max_value = c.lagrange_max;
      multipliers_.emplace_back(o);
    }
    violation_cost_ = c.violation_cost;
    env_.set_shield_penalty(c.shield_penalty);
  }
}

void AlgoContext::StepCosts(const env::StepResult& result, float* costs) const {
  const env::ObservationLayout& layout = env_.encoder().layout();
  // The excess prices how far past the budget; the violation cost prices
  // going past at all, so that a small overshoot is not nearly free.
  costs[0] = static_cast<float>(result.excess_latency_s / layout.latency_scale_s +
                                (result.crossed_latency_budget ? violation_cost_ : 0));
  costs[1] = static_cast<float>(result.excess_money_usd / layout.money_scale_usd +
                                (result.crossed_money_budget ? violation_cost_ : 0));
}

void AlgoContext::Record(const env::StepResult& result) {
  ++steps_;
  float costs[kNumCosts];
  StepCosts(result, costs);
  episode_reward_ += result.reward;
  ++episode_turns_;
  if (result.shield_overridden) ++episode_overrides_;
  for (int c = 0; c < kNumCosts; ++c) episode_cost_[c] += costs[c];
  if (result.excess_latency_s > 0 || result.excess_money_usd > 0) episode_over_ = true;
  if (result.done) {
    ++episodes_;
    episode_rewards_.push_back(episode_reward_ / std::max(1, episode_turns_));
    episode_costs_.push_back({episode_cost_[0], episode_cost_[1]});
    episode_over_budget_.push_back(episode_over_ ? 1 : 0);
    episode_override_share_.push_back(static_cast<double>(episode_overrides_) /
                                      std::max(1, episode_turns_));
    episode_reward_ = 0;
    episode_turns_ = 0;
    episode_overrides_ = 0;
    episode_cost_[0] = episode_cost_[1] = 0;
    episode_over_ = false;
    env_.Reset();
  }
  if (constrained_ && steps_ % std::max<int64_t>(1, options_.lagrange.lagrange_interval) == 0 &&
      episode_costs_.size() > lagrange_window_start_) {
    for (int c = 0; c < kNumCosts; ++c) {
      double sum = 0;
      for (size_t e = lagrange_window_start_; e < episode_costs_.size(); ++e)
        sum += episode_costs_[e][c];
      multipliers_[c].Update(sum / (episode_costs_.size() - lagrange_window_start_));
    }
    lagrange_window_start_ = episode_costs_.size();
  }
  if (options_.on_progress && options_.log_every_steps > 0 &&
      steps_ - last_report_step_ >= options_.log_every_steps)
    Report(false);
}

void AlgoContext::Report(bool final) {
  TrainProgress p;
  p.steps = steps_;
  p.total_steps = total_steps_;
  p.episodes = episodes_;
  p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const size_t begin = final
                           ? episode_rewards_.size() -
                                 std::min<size_t>(episode_rewards_.size(),
                                                  std::max<size_t>(1, episode_rewards_.size() / 10))
                           : report_window_start_;
  const size_t n = episode_rewards_.size() - std::min(begin, episode_rewards_.size());
  if (n > 0) {
    for (size_t e = begin; e < episode_rewards_.size(); ++e) {
      p.mean_episode_reward += episode_rewards_[e] / n;
      p.mean_episode_cost_latency += episode_costs_[e][0] / n;
      p.mean_episode_cost_money += episode_costs_[e][1] / n;
      p.share_over_budget += static_cast<double>(episode_over_budget_[e]) / n;
      p.share_shield_overrides += episode_override_share_[e] / n;
    }
  }
  p.shield_in_training = env_.shield_penalty() > 0;
  if (constrained_)
    for (const auto& m : multipliers_) p.multipliers.push_back(m.value());
  report_window_start_ = episode_rewards_.size();
  last_report_step_ = steps_;
  if (options_.on_progress) options_.on_progress(p);
}

TrainSummary AlgoContext::Finish() {
  TrainSummary s;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  s.steps = steps_;
  s.episodes = episodes_;
  s.gradient_steps = gradient_steps_;
  // The last 10% of training episodes.
  const size_t total = episode_rewards_.size();
  const size_t n = std::min(total, std::max<size_t>(1, total / 10));
  for (size_t e = total - n; e < total; ++e) {
    s.mean_episode_reward += episode_rewards_[e] / n;
    s.mean_episode_cost_latency += episode_costs_[e][0] / n;
    s.mean_episode_cost_money += episode_costs_[e][1] / n;
    s.share_over_budget += static_cast<double>(episode_over_budget_[e]) / n;
    s.share_shield_overrides += episode_override_share_[e] / n;
  }
  s.shield_in_training = env_.shield_penalty() > 0;
  if (constrained_)
    for (const auto& m : multipliers_) s.multipliers.push_back(m.value());
  if (options_.on_progress) Report(true);  // over the last 10% of episodes
  return s;
}

float CombineAdvantages(float reward_advantage, const float* cost_advantages, const double* lambdas,
                        int num_costs) {
  double a = reward_advantage, sum = 0;
  for (int c = 0; c < num_costs; ++c) {
    a -= lambdas[c] * cost_advantages[c];
    sum += lambdas[c];
  }
  return static_cast<float>(a / (1.0 + sum));
}

void LogSoftmax(const float* logits, int n, float* out) {
  float max = logits[0];
  for (int j = 1; j < n; ++j) max = std::max(max, logits[j]);
  double sum = 0;
  for (int j = 0; j < n; ++j) sum += std::exp(static_cast<double>(logits[j] - max));
  const float log_sum = static_cast<float>(std::log(sum)) + max;
  for (int j = 0; j < n; ++j) out[j] = logits[j] - log_sum;
}

}  // namespace lcio::policy
