// PPO and RC-PPO (Schulman et al. 2017; Stable-Baselines3's defaults): clipped
// surrogate on minibatches of GAE advantages, several epochs per rollout.
// RC-PPO: a cost critic per constraint, advantages combined as
// (A_r - lambda . A_c) / (1 + sum lambda), multipliers from AlgoContext.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "lcio/env/split.h"
#include "lcio/policy/actor_critic.h"

namespace lcio::policy {

double PpoPolicyLoss(const float* logits, int rows, int num_actions, const int* actions,
                     const float* old_log_probs, const float* advantages, double clip_range,
                     double ent_coef, float* grad_logits) {
  std::vector<float> log_p(num_actions);
  double loss = 0;
  for (int r = 0; r < rows; ++r) {
    const float* z = logits + static_cast<size_t>(r) * num_actions;
    float* g = grad_logits + static_cast<size_t>(r) * num_actions;
    LogSoftmax(z, num_actions, log_p.data());
    const int a = actions[r];
    const double adv = advantages[r];
    const double ratio = std::exp(static_cast<double>(log_p[a]) - old_log_probs[r]);
    const double clipped = std::clamp(ratio, 1.0 - clip_range, 1.0 + clip_range);
    const double surrogate = std::min(ratio * adv, clipped * adv);
    // d(min)/d(ratio): the unclipped branch is active, or the clip is not.
    const bool in_range = ratio >= 1.0 - clip_range && ratio <= 1.0 + clip_range;
    const double d_ratio = (in_range || ratio * adv < clipped * adv) ? adv : 0.0;
    double entropy = 0;
    for (int j = 0; j < num_actions; ++j) entropy -= std::exp(log_p[j]) * log_p[j];
    loss += (-surrogate - ent_coef * entropy) / rows;
    for (int j = 0; j < num_actions; ++j) {
      const double p = std::exp(static_cast<double>(log_p[j]));
      const double d_log_pa = (j == a ? 1.0 : 0.0) - p;  // d log pi(a) / d z_j
      double grad = -d_ratio * ratio * d_log_pa;
      grad += ent_coef * p * (log_p[j] + entropy);  // -ent_coef * dH/dz_j
      g[j] = static_cast<float>(grad / rows);
    }
  }
  return loss;
}

namespace {

void NormaliseInPlace(std::vector<float>* values) {
  const size_t n = values->size();
  if (n < 2) return;
  double mean = 0;
  for (float v : *values) mean += v;
  mean /= n;
  double var = 0;
  for (float v : *values) var += (v - mean) * (v - mean);
  const double sd = std::sqrt(var / (n - 1));  // torch.std is unbiased
  for (float& v : *values) v = static_cast<float>((v - mean) / (sd + 1e-8));
}

}  // namespace

Network TrainPpo(AlgoContext& context) {
  env::TrainingEnv& env = context.env();
  const int n_steps = static_cast<int>(context.hp_int("n_steps"));
  const int batch_size = static_cast<int>(context.hp_int("batch_size"));
  const int n_epochs = static_cast<int>(context.hp_int("n_epochs"));
  const double gamma = context.hp("gamma"), gae_lambda = context.hp("gae_lambda");
  const double clip_range = context.hp("clip_range"), ent_coef = context.hp("ent_coef");
  const double vf_coef = context.hp("vf_coef"), max_grad_norm = context.hp("max_grad_norm");
  const bool normalize = context.hp("normalize_advantage") != 0;

  ActorCritic net(env.observation_size(), env.num_actions(), context.HiddenSizes(),
                  context.constrained() ? 1 + kNumCosts : 1);
  const std::vector<ParamSpan> params = net.Params();
  Adam optimizer(params, context.hp("learning_rate"), context.hp("adam_eps"));
  const PolicyLossFn policy_loss = [&](const float* logits, int rows, const int* actions,
                                       const float* old_log_probs, const float* advantages,
                                       float* grad_logits) {
    return PpoPolicyLoss(logits, rows, env.num_actions(), actions, old_log_probs, advantages,
                         clip_range, ent_coef, grad_logits);
  };

  RolloutBuffer buffer;
  std::vector<int> order(n_steps), indices;
  std::vector<float> minibatch_advantages;
  while (context.steps() < context.total_steps()) {
    CollectRollout(context, net, n_steps, gamma, gae_lambda, &buffer);
    const std::vector<float> advantages = CombinedAdvantages(context, buffer);
    for (int epoch = 0; epoch < n_epochs; ++epoch) {
      std::iota(order.begin(), order.end(), 0);
      for (int i = n_steps - 1; i > 0; --i)  // portable Fisher-Yates
        std::swap(order[i], order[env::UniformIndex(context.rng(), i + 1)]);
      for (int start = 0; start < n_steps; start += batch_size) {
        const int end = std::min(n_steps, start + batch_size);
        indices.assign(order.begin() + start, order.begin() + end);
        minibatch_advantages.resize(indices.size());
        for (size_t r = 0; r < indices.size(); ++r)
          minibatch_advantages[r] = advantages[indices[r]];
        if (normalize) NormaliseInPlace(&minibatch_advantages);
        net.ZeroGrad();
        AccumulateMinibatchGradients(net, buffer, indices, minibatch_advantages.data(), vf_coef,
                                     policy_loss);
        ClipGradNorm(params, max_grad_norm);
        optimizer.Step();
        context.CountGradientStep();
      }
    }
  }
  return ExportActor(net);
}

}  // namespace lcio::policy
