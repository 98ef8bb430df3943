#include "lcio/policy/actor_critic.h"

#include <cmath>

#include "lcio/env/split.h"

namespace lcio::policy {

ActorCritic::ActorCritic(int obs_size, int num_actions, const std::vector<int>& hidden,
                         int num_signals_in)
    : actor(
          [&] {
            std::vector<int> s{obs_size};
            s.insert(s.end(), hidden.begin(), hidden.end());
            s.push_back(num_actions);
            return s;
          }(),
          Activation::kTanh, Mlp::Init::kOrthogonal, 0.01),
      critic(
          [&] {
            std::vector<int> s{obs_size};
            s.insert(s.end(), hidden.begin(), hidden.end());
            s.push_back(num_signals_in);
            return s;
          }(),
          Activation::kTanh, Mlp::Init::kOrthogonal, 1.0),
      num_signals(num_signals_in) {}

std::vector<ParamSpan> ActorCritic::Params() {
  std::vector<ParamSpan> p = actor.Params();
  for (const ParamSpan& s : critic.Params()) p.push_back(s);
  return p;
}

void ActorCritic::ZeroGrad() {
  actor.ZeroGrad();
  critic.ZeroGrad();
}

int SampleCategorical(const float* logits, int n, double u, float* log_prob) {
  float log_p[64];
  std::vector<float> heap;
  float* lp = log_p;
  if (n > 64) {
    heap.resize(n);
    lp = heap.data();
  }
  LogSoftmax(logits, n, lp);
  double cumulative = 0;
  int chosen = n - 1;
  for (int j = 0; j < n; ++j) {
    cumulative += std::exp(static_cast<double>(lp[j]));
    if (u < cumulative) {
      chosen = j;
      break;
    }
  }
  *log_prob = lp[chosen];
  return chosen;
}

void CollectRollout(AlgoContext& context, ActorCritic& net, int n_steps, double gamma,
                    double gae_lambda, RolloutBuffer* buffer) {
  env::TrainingEnv& env = context.env();
  const int obs_size = env.observation_size(), num_actions = env.num_actions();
  const int signals = net.num_signals;
  buffer->Reset(obs_size, signals);
  std::vector<float> obs(obs_size), logits(num_actions), value(signals), signal(signals);
  for (int t = 0; t < n_steps; ++t) {
    env.Observe(obs.data());
    net.actor.Forward(obs.data(), 1, logits.data());
    net.critic.Forward(obs.data(), 1, value.data());
    float log_prob;
    const int action =
        SampleCategorical(logits.data(), num_actions, env::UniformUnit(context.rng()), &log_prob);
    const env::StepResult result = env.Step(action, logits.data());  // ranks a shield's pick
    signal[0] = static_cast<float>(result.reward);
    if (signals > 1) context.StepCosts(result, signal.data() + 1);
    buffer->Add(obs.data(), action, log_prob, signal.data(), value.data(), result.done);
    context.Record(result);  // resets the env at the end of an episode
  }
  env.Observe(obs.data());
  net.critic.Forward(obs.data(), 1, value.data());
  buffer->Finish(value.data(), gamma, gae_lambda);
}

std::vector<float> CombinedAdvantages(const AlgoContext& context, const RolloutBuffer& buffer) {
  const int n = buffer.size();
  std::vector<float> out(n);
  if (buffer.num_signals == 1) return buffer.advantages[0];
  const double lambdas[kNumCosts] = {context.lambda(0), context.lambda(1)};
  for (int t = 0; t < n; ++t) {
    float costs[kNumCosts];
    for (int c = 0; c < kNumCosts; ++c) costs[c] = buffer.advantages[1 + c][t];
    out[t] = CombineAdvantages(buffer.advantages[0][t], costs, lambdas, kNumCosts);
  }
  return out;
}

double AccumulateMinibatchGradients(ActorCritic& net, const RolloutBuffer& buffer,
                                    const std::vector<int>& indices, const float* advantages,
                                    double vf_coef, const PolicyLossFn& policy_loss) {
  const int rows = static_cast<int>(indices.size());
  const int obs_size = buffer.obs_size, num_actions = net.actor.output_size();
  const int signals = net.num_signals;
  auto& [obs, logits, grad_logits, values, grad_values, old_log_probs, adv, actions, actor_cache,
         critic_cache] = net.scratch;
  obs.resize(static_cast<size_t>(rows) * obs_size);
  actions.resize(rows);
  old_log_probs.resize(rows);
  adv.resize(rows);
  for (int r = 0; r < rows; ++r) {
    const int t = indices[r];
    std::copy_n(buffer.observations.data() + static_cast<size_t>(t) * obs_size, obs_size,
                obs.data() + static_cast<size_t>(r) * obs_size);
    actions[r] = buffer.actions[t];
    old_log_probs[r] = buffer.log_probs[t];
    adv[r] = advantages[r];
  }
  logits.resize(static_cast<size_t>(rows) * num_actions);
  grad_logits.resize(logits.size());
  net.actor.Forward(obs.data(), rows, logits.data(), &actor_cache);
  double loss = policy_loss(logits.data(), rows, actions.data(), old_log_probs.data(), adv.data(),
                            grad_logits.data());
  net.actor.Backward(actor_cache, grad_logits.data());

  values.resize(static_cast<size_t>(rows) * signals);
  grad_values.resize(values.size());
  net.critic.Forward(obs.data(), rows, values.data(), &critic_cache);
  for (int r = 0; r < rows; ++r) {
    for (int s = 0; s < signals; ++s) {
      const float diff = values[r * signals + s] - buffer.returns[s][indices[r]];
      loss += vf_coef * diff * diff / rows;
      grad_values[r * signals + s] = static_cast<float>(2.0 * vf_coef * diff / rows);
    }
  }
  net.critic.Backward(critic_cache, grad_values.data());
  return loss;
}

Network ExportActor(const ActorCritic& net) { return net.actor.network(); }

}  // namespace lcio::policy
