// The actor-critic pair PPO and A2C share (SB3's MlpPolicy: separate 64-64
// tanh actor and critic, orthogonal initialisation), the rollout loop, and
// the gradient of one minibatch. The critic has one output per signal:
// reward, then (constrained) each cost.
#pragma once

#include <functional>
#include <vector>

#include "lcio/policy/algorithms.h"
#include "lcio/policy/rollout.h"

namespace lcio::policy {

struct ActorCritic {
  ActorCritic(int obs_size, int num_actions, const std::vector<int>& hidden, int num_signals);
  Mlp actor, critic;
  int num_signals;
  // AccumulateMinibatchGradients' buffers, reused so that an update
  // allocates nothing.
  struct Scratch {
    std::vector<float> obs, logits, grad_logits, values, grad_values, old_log_probs, adv;
    std::vector<int> actions;
    MlpCache actor_cache, critic_cache;
  } scratch;
  std::vector<ParamSpan> Params();
  void ZeroGrad();
};

// Runs n_steps environment steps with actions sampled from the actor,
// then computes every signal's GAE (bootstrapping from the critic).
void CollectRollout(AlgoContext& context, ActorCritic& net, int n_steps, double gamma,
                    double gae_lambda, RolloutBuffer* buffer);

// Policy loss of a minibatch: fills d(loss)/d(logits) from the logits, the
// rows' buffer indices and their (combined, possibly normalised) advantages.
using PolicyLossFn =
    std::function<double(const float* logits, int rows, const int* actions,
                         const float* old_log_probs, const float* advantages, float* grad_logits)>;

// Accumulates the gradients of policy loss + vf_coef * sum over signals of
// mean (V - R)^2 on the rows `indices` of the buffer. Returns the loss.
double AccumulateMinibatchGradients(ActorCritic& net, const RolloutBuffer& buffer,
                                    const std::vector<int>& indices, const float* advantages,
                                    double vf_coef, const PolicyLossFn& policy_loss);

// Advantages of every buffer row with the costs folded in by the current
// multipliers: (A_r - lambda . A_c) / (1 + sum lambda).
std::vector<float> CombinedAdvantages(const AlgoContext& context, const RolloutBuffer& buffer);

// Samples from softmax(logits) with a uniform draw u in [0, 1); writes the
// chosen action's log-probability.
int SampleCategorical(const float* logits, int n, double u, float* log_prob);

Network ExportActor(const ActorCritic& net);

}  // namespace lcio::policy
