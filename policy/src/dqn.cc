// DQN and RC-DQN (Mnih et al. 2015; Stable-Baselines3's defaults): replay
// buffer, epsilon-greedy with a linear schedule, target network, Huber loss.
// RC-DQN adds one cost Q-head per constraint on the same trunk, acts on
// Q_r - lambda . Q_c, and bootstraps every head at the action that maximises
// that combination in the target network.
#include <algorithm>
#include <cmath>

#include "lcio/env/split.h"
#include "lcio/policy/algorithms.h"

namespace lcio::policy {

namespace {

int ArgmaxCombined(const float* q, int num_actions, int num_costs, const double* lambdas) {
  int best = 0;
  double best_value = -INFINITY;
  for (int a = 0; a < num_actions; ++a) {
    double v = q[a];
    for (int c = 0; c < num_costs; ++c) v -= lambdas[c] * q[(1 + c) * num_actions + a];
    if (v > best_value) {
      best_value = v;
      best = a;
    }
  }
  return best;
}

}  // namespace

void DqnTargets(const float* next_q, int num_actions, int num_costs, const double* lambdas,
                double reward, const float* costs, bool done, double gamma, float* targets) {
  const int a = ArgmaxCombined(next_q, num_actions, num_costs, lambdas);
  const double bootstrap = done ? 0.0 : gamma;
  targets[0] = static_cast<float>(reward + bootstrap * next_q[a]);
  for (int c = 0; c < num_costs; ++c)
    targets[1 + c] = static_cast<float>(costs[c] + bootstrap * next_q[(1 + c) * num_actions + a]);
}

Network TrainDqn(AlgoContext& context) {
  env::TrainingEnv& env = context.env();
  const int obs_size = env.observation_size(), num_actions = env.num_actions();
  const int num_costs = context.constrained() ? kNumCosts : 0;
  const int heads = 1 + num_costs;
  const int64_t total = context.total_steps();
  const DqnConfig& c = context.options().dqn;
  const int64_t capacity = std::max<int64_t>(1, std::min<int64_t>(c.buffer_size, total));
  const int64_t learning_starts = c.learning_starts;
  const int batch_size = c.batch_size;
  const int64_t train_freq = std::max<int64_t>(1, c.train_freq);
  const int64_t gradient_steps = c.gradient_steps;
  const int64_t target_update = std::max<int64_t>(1, c.target_update_interval);
  const double tau = c.tau, gamma = c.gamma;
  const double eps_start = c.exploration_initial_eps;
  const double eps_end = c.exploration_final_eps;
  const double eps_fraction = c.exploration_fraction;
  const double max_grad_norm = c.max_grad_norm;

  std::vector<int> sizes{obs_size};
  for (int h : HiddenSizes(c)) sizes.push_back(h);
  sizes.push_back(num_actions * heads);
  Mlp q_net(sizes, Activation::kRelu, Mlp::Init::kTorchDefault);
  Mlp target_net(sizes, Activation::kRelu, Mlp::Init::kTorchDefault);
  target_net.CopyFrom(q_net);
  const std::vector<ParamSpan> params = q_net.Params();
  Adam optimizer(params, c.learning_rate, c.adam_eps);

  // Replay buffer (ring).
  std::vector<float> obs_buf(capacity * obs_size), next_obs_buf(capacity * obs_size);
  std::vector<float> reward_buf(capacity), cost_buf(capacity * std::max(1, num_costs));
  std::vector<int> action_buf(capacity);
  std::vector<uint8_t> done_buf(capacity);
  int64_t stored = 0, cursor = 0;

  std::vector<float> obs(obs_size), q(num_actions * heads);
  std::vector<float> batch_obs, batch_next, next_q, q_batch, grad;
  std::vector<int> rows(batch_size);
  MlpCache cache;
  double lambdas[kNumCosts] = {0, 0};
  while (context.steps() < total) {
    const double progress = static_cast<double>(context.steps()) / total;
    const double eps = eps_fraction > 0 && progress < eps_fraction
                           ? eps_start + (eps_end - eps_start) * progress / eps_fraction
                           : eps_end;
    for (int c = 0; c < num_costs; ++c) lambdas[c] = context.lambda(c);
    env.Observe(obs.data());
    int action;
    if (env::UniformUnit(context.rng()) < eps) {
      action = static_cast<int>(env::UniformIndex(context.rng(), num_actions));
    } else {
      q_net.Forward(obs.data(), 1, q.data());
      action = ArgmaxCombined(q.data(), num_actions, num_costs, lambdas);
    }
    // With shield_penalty the shield's replacement is the cheapest fitting action: the
    // proposal, not the replacement, is what the replay buffer learns about.
    const env::StepResult result = env.Step(action);
    std::copy(obs.begin(), obs.end(), obs_buf.begin() + cursor * obs_size);
    if (!result.done)
      env.Observe(next_obs_buf.data() + cursor * obs_size);  // else never read
    else
      std::fill_n(next_obs_buf.begin() + cursor * obs_size, obs_size, 0.0f);
    action_buf[cursor] = action;
    reward_buf[cursor] = static_cast<float>(result.reward);
    if (num_costs > 0) context.StepCosts(result, cost_buf.data() + cursor * num_costs);
    done_buf[cursor] = result.done ? 1 : 0;
    cursor = (cursor + 1) % capacity;
    stored = std::min(stored + 1, capacity);
    context.Record(result);

    const int64_t step = context.steps();
    if (step > learning_starts && step % train_freq == 0) {
      for (int64_t g = 0; g < gradient_steps; ++g) {
        const int width = num_actions * heads;
        batch_obs.resize(static_cast<size_t>(batch_size) * obs_size);
        batch_next.resize(batch_obs.size());
        for (int r = 0; r < batch_size; ++r) {
          rows[r] = static_cast<int>(env::UniformIndex(context.rng(), stored));
          std::copy_n(obs_buf.data() + static_cast<size_t>(rows[r]) * obs_size, obs_size,
                      batch_obs.data() + static_cast<size_t>(r) * obs_size);
          std::copy_n(next_obs_buf.data() + static_cast<size_t>(rows[r]) * obs_size, obs_size,
                      batch_next.data() + static_cast<size_t>(r) * obs_size);
        }
        next_q.resize(static_cast<size_t>(batch_size) * width);
        q_batch.resize(next_q.size());
        grad.assign(next_q.size(), 0.0f);
        target_net.Forward(batch_next.data(), batch_size, next_q.data());
        q_net.Forward(batch_obs.data(), batch_size, q_batch.data(), &cache);
        float targets[1 + kNumCosts];
        for (int r = 0; r < batch_size; ++r) {
          const int i = rows[r];
          DqnTargets(next_q.data() + static_cast<size_t>(r) * width, num_actions, num_costs,
                     lambdas, reward_buf[i], cost_buf.data() + static_cast<size_t>(i) * num_costs,
                     done_buf[i] != 0, gamma, targets);
          for (int h = 0; h < heads; ++h) {
            const size_t k = static_cast<size_t>(r) * width + h * num_actions + action_buf[i];
            const double diff = q_batch[k] - targets[h];
            // Huber (smooth L1, beta 1), mean over the batch.
            grad[k] = static_cast<float>(std::clamp(diff, -1.0, 1.0) / batch_size);
          }
        }
        q_net.ZeroGrad();
        q_net.Backward(cache, grad.data());
        ClipGradNorm(params, max_grad_norm);
        optimizer.Step();
        context.CountGradientStep();
      }
    }
    if (step % target_update == 0) target_net.SoftUpdateFrom(q_net, tau);
  }

  // Export: the reward head, minus lambda times each cost head, folded into
  // the last layer (the hidden layers are shared).
  Network out = q_net.network();
  const int last = out.num_layers() - 1;
  const int in = out.sizes[last], width = out.sizes[last + 1];
  const std::vector<float>& w = out.weights[last];  // [in][width]
  const std::vector<float>& b = out.biases[last];
  std::vector<float> w_out(static_cast<size_t>(in) * num_actions),
      b_out(b.begin(), b.begin() + num_actions);
  for (int i = 0; i < in; ++i)
    std::copy_n(w.begin() + static_cast<ptrdiff_t>(i) * width, num_actions,
                w_out.begin() + static_cast<ptrdiff_t>(i) * num_actions);
  for (int c = 0; c < num_costs; ++c) {
    const double lambda = context.lambda(c);
    for (int a = 0; a < num_actions; ++a) {
      const int column = (1 + c) * num_actions + a;
      for (int i = 0; i < in; ++i)
        w_out[static_cast<size_t>(i) * num_actions + a] -=
            static_cast<float>(lambda * w[static_cast<size_t>(i) * width + column]);
      b_out[a] -= static_cast<float>(lambda * b[column]);
    }
  }
  out.weights[last] = std::move(w_out);
  out.biases[last] = std::move(b_out);
  out.sizes.back() = num_actions;
  return out;
}

}  // namespace lcio::policy
