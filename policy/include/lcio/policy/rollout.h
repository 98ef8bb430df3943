// On-policy rollout storage and generalised advantage estimation (GAE) for a
// single environment, as Stable-Baselines3 computes them.
#pragma once

#include <cstdint>
#include <vector>

namespace lcio::policy {

// advantages[t] = sum_k (gamma * lambda)^k delta_{t+k} within the episode,
// delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t); returns =
// advantages + values. `dones[t]` is true when step t ended its episode;
// `last_value` bootstraps the step after the rollout (ignored when the last
// step ended its episode).
void ComputeGae(const std::vector<float>& rewards, const std::vector<float>& values,
                const std::vector<uint8_t>& dones, float last_value, double gamma, double lambda,
                std::vector<float>* advantages, std::vector<float>* returns);

// One rollout: observations, actions and, per signal (reward, then each
// constraint cost), rewards, values, advantages and returns.
struct RolloutBuffer {
  int obs_size = 0;
  int num_signals = 1;              // 1 + number of costs
  std::vector<float> observations;  // steps x obs_size
  std::vector<int> actions;
  std::vector<float> log_probs;
  std::vector<uint8_t> dones;
  std::vector<std::vector<float>> signals, values, advantages, returns;  // [signal][step]

  void Reset(int obs_size, int num_signals);
  int size() const { return static_cast<int>(actions.size()); }
  // Appends a step; `signal` and `value` hold num_signals numbers each.
  void Add(const float* obs, int action, float log_prob, const float* signal, const float* value,
           bool done);
  // last_values: one per signal for the observation after the rollout.
  void Finish(const float* last_values, double gamma, double lambda);
};

}  // namespace lcio::policy
