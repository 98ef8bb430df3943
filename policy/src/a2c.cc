// A2C and RC-A2C (Mnih et al. 2016, synchronous; Stable-Baselines3's
// defaults): one RMSprop step per 5-step rollout on the policy gradient with
// GAE(1.0) advantages, no clipping. RC-A2C folds the cost advantages in as
// (A_r - lambda . A_c) / (1 + sum lambda) with a cost critic per constraint.
#include <cmath>
#include <numeric>

#include "lcio/policy/actor_critic.h"

namespace lcio::policy {

double A2cPolicyLoss(const float* logits, int rows, int num_actions, const int* actions,
                     const float* advantages, double ent_coef, float* grad_logits) {
  std::vector<float> log_p(num_actions);
  double loss = 0;
  for (int r = 0; r < rows; ++r) {
    const float* z = logits + static_cast<size_t>(r) * num_actions;
    float* g = grad_logits + static_cast<size_t>(r) * num_actions;
    LogSoftmax(z, num_actions, log_p.data());
    const int a = actions[r];
    const double adv = advantages[r];
    double entropy = 0;
    for (int j = 0; j < num_actions; ++j) entropy -= std::exp(log_p[j]) * log_p[j];
    loss += (-adv * log_p[a] - ent_coef * entropy) / rows;
    for (int j = 0; j < num_actions; ++j) {
      const double p = std::exp(static_cast<double>(log_p[j]));
      double grad = -adv * ((j == a ? 1.0 : 0.0) - p);
      grad += ent_coef * p * (log_p[j] + entropy);
      g[j] = static_cast<float>(grad / rows);
    }
  }
  return loss;
}

Network TrainA2c(AlgoContext& context) {
  env::TrainingEnv& env = context.env();
  const int n_steps = static_cast<int>(context.hp_int("n_steps"));
  const double gamma = context.hp("gamma"), gae_lambda = context.hp("gae_lambda");
  const double ent_coef = context.hp("ent_coef"), vf_coef = context.hp("vf_coef");
  const double max_grad_norm = context.hp("max_grad_norm");
  const bool normalize = context.hp("normalize_advantage") != 0;

  ActorCritic net(env.observation_size(), env.num_actions(), context.HiddenSizes(),
                  context.constrained() ? 1 + kNumCosts : 1);
  const std::vector<ParamSpan> params = net.Params();
  RmsProp optimizer(params, context.hp("learning_rate"), context.hp("rms_prop_alpha"),
                    context.hp("rms_prop_eps"));
  const PolicyLossFn policy_loss = [&](const float* logits, int rows, const int* actions,
                                       const float*, const float* advantages, float* grad_logits) {
    return A2cPolicyLoss(logits, rows, env.num_actions(), actions, advantages, ent_coef,
                         grad_logits);
  };

  RolloutBuffer buffer;
  std::vector<int> indices(n_steps);
  std::iota(indices.begin(), indices.end(), 0);
  while (context.steps() < context.total_steps()) {
    CollectRollout(context, net, n_steps, gamma, gae_lambda, &buffer);
    std::vector<float> advantages = CombinedAdvantages(context, buffer);
    if (normalize && advantages.size() > 1) {
      double mean = 0, var = 0;
      for (float a : advantages) mean += a;
      mean /= advantages.size();
      for (float a : advantages) var += (a - mean) * (a - mean);
      const double sd = std::sqrt(var / (advantages.size() - 1));
      for (float& a : advantages) a = static_cast<float>((a - mean) / (sd + 1e-8));
    }
    net.ZeroGrad();
    AccumulateMinibatchGradients(net, buffer, indices, advantages.data(), vf_coef, policy_loss);
    ClipGradNorm(params, max_grad_norm);
    optimizer.Step();
    context.CountGradientStep();
  }
  return ExportActor(net);
}

}  // namespace lcio::policy
