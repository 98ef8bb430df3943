#include "lcio/policy/rollout.h"

namespace lcio::policy {

void ComputeGae(const std::vector<float>& rewards, const std::vector<float>& values,
                const std::vector<uint8_t>& dones, float last_value, double gamma, double lambda,
                std::vector<float>* advantages, std::vector<float>* returns) {
  const int n = static_cast<int>(rewards.size());
  advantages->assign(n, 0.0f);
  returns->assign(n, 0.0f);
  double next_advantage = 0;
  double next_value = last_value;
  for (int t = n - 1; t >= 0; --t) {
    const double not_done = dones[t] ? 0.0 : 1.0;
    const double delta = rewards[t] + gamma * next_value * not_done - values[t];
    next_advantage = delta + gamma * lambda * not_done * next_advantage;
    (*advantages)[t] = static_cast<float>(next_advantage);
    (*returns)[t] = static_cast<float>(next_advantage + values[t]);
    next_value = values[t];
  }
}

void RolloutBuffer::Reset(int obs_size_in, int num_signals_in) {
  obs_size = obs_size_in;
  num_signals = num_signals_in;
  observations.clear();
  actions.clear();
  log_probs.clear();
  dones.clear();
  signals.assign(num_signals, {});
  values.assign(num_signals, {});
  advantages.assign(num_signals, {});
  returns.assign(num_signals, {});
}

void RolloutBuffer::Add(const float* obs, int action, float log_prob, const float* signal,
                        const float* value, bool done) {
  observations.insert(observations.end(), obs, obs + obs_size);
  actions.push_back(action);
  log_probs.push_back(log_prob);
  dones.push_back(done ? 1 : 0);
  for (int s = 0; s < num_signals; ++s) {
    signals[s].push_back(signal[s]);
    values[s].push_back(value[s]);
  }
}

void RolloutBuffer::Finish(const float* last_values, double gamma, double lambda) {
  for (int s = 0; s < num_signals; ++s)
    ComputeGae(signals[s], values[s], dones, last_values[s], gamma, lambda, &advantages[s],
               &returns[s]);
}

}  // namespace lcio::policy
