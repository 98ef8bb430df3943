// Numerical checks of the trainer's pieces: GAE and returns by hand, the
// hand-written network gradients and optimisers against LibTorch, PPO's
// clipped loss and A2C's loss against autograd, DQN targets, multipliers.
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "lcio/env/split.h"
#include "lcio/env/training_env.h"
#include "lcio/policy/algorithms.h"
#include "lcio/policy/lagrange.h"
#include "lcio/policy/networks.h"
#include "lcio/policy/rollout.h"
#include "test_support.h"

namespace lcio::policy {
namespace {

TEST(Gae, MatchesHandComputedValuesAcrossAnEpisodeBoundary) {
  // gamma 0.9, lambda 0.8; step 1 ends an episode; the rollout is cut after step 2.
  const std::vector<float> rewards{1, 2, 3}, values{0.5f, 0.5f, 0.5f};
  const std::vector<uint8_t> dones{0, 1, 0};
  std::vector<float> adv, ret;
  ComputeGae(rewards, values, dones, /*last_value=*/1.0f, 0.9, 0.8, &adv, &ret);
  // t=2: delta = 3 + 0.9 * 1.0 - 0.5 = 3.4
  // t=1: delta = 2 - 0.5 = 1.5 (terminal: no bootstrap, no carry)
  // t=0: delta = 1 + 0.9 * 0.5 - 0.5 = 0.95; A = 0.95 + 0.9 * 0.8 * 1.5 = 2.03
  EXPECT_NEAR(adv[2], 3.4, 1e-6);
  EXPECT_NEAR(adv[1], 1.5, 1e-6);
  EXPECT_NEAR(adv[0], 2.03, 1e-6);
  EXPECT_NEAR(ret[2], 3.9, 1e-6);
  EXPECT_NEAR(ret[1], 2.0, 1e-6);
  EXPECT_NEAR(ret[0], 2.53, 1e-6);
}

TEST(Gae, LambdaOneGivesDiscountedReturns) {
  const std::vector<float> rewards{1, 1, 1}, values{0, 0, 0};
  const std::vector<uint8_t> dones{0, 0, 1};
  std::vector<float> adv, ret;
  ComputeGae(rewards, values, dones, 100.0f, 0.5, 1.0, &adv, &ret);
  EXPECT_NEAR(ret[2], 1.0, 1e-6);   // terminal: last_value ignored
  EXPECT_NEAR(ret[1], 1.5, 1e-6);   // 1 + 0.5
  EXPECT_NEAR(ret[0], 1.75, 1e-6);  // 1 + 0.5 + 0.25
}

// The hand-written backward pass against LibTorch autograd.
void CheckMlpGradients(Activation activation, Mlp::Init init) {
  torch::manual_seed(3);
  Mlp net({7, 16, 16, 5}, activation, init, 0.5);
  const int rows = 6;
  torch::Tensor x = torch::randn({rows, 7});
  x.index_put_({0, 2}, 0.0f);  // exercise the zero-skipping paths
  torch::Tensor upstream = torch::randn({rows, 5});
  std::vector<float> out(rows * 5);
  MlpCache cache;
  net.Forward(x.data_ptr<float>(), rows, out.data(), &cache);
  net.ZeroGrad();
  net.Backward(cache, upstream.data_ptr<float>());

  std::vector<torch::Tensor> w, b;
  torch::Tensor h = x;
  for (int l = 0; l < net.num_layers(); ++l) {
    w.push_back(net.WeightOutIn(l).clone().requires_grad_(true));
    b.push_back(net.Bias(l).clone().requires_grad_(true));
    h = torch::addmm(b[l], h, w[l].t());
    if (l + 1 < net.num_layers())
      h = activation == Activation::kTanh ? torch::tanh(h) : torch::relu(h);
  }
  (h * upstream).sum().backward();
  EXPECT_TRUE(torch::allclose(h.detach(), torch::from_blob(out.data(), {rows, 5}), 1e-5, 1e-5));
  const std::vector<ParamSpan> spans = net.Params();
  for (int l = 0; l < net.num_layers(); ++l) {
    const ParamSpan& ws = spans[2 * l];
    const ParamSpan& bs = spans[2 * l + 1];
    // Stored [in, out]: compare with autograd's [out, in] transposed.
    torch::Tensor gw = torch::from_blob(ws.grad, {w[l].size(1), w[l].size(0)}).t();
    torch::Tensor gb = torch::from_blob(bs.grad, {bs.size});
    EXPECT_TRUE(torch::allclose(gw, w[l].grad(), 1e-4, 1e-5)) << "layer " << l;
    EXPECT_TRUE(torch::allclose(gb, b[l].grad(), 1e-4, 1e-5)) << "layer " << l;
  }
}

TEST(Mlp, TanhGradientsMatchAutograd) {
  CheckMlpGradients(Activation::kTanh, Mlp::Init::kOrthogonal);
}
TEST(Mlp, ReluGradientsMatchAutograd) {
  CheckMlpGradients(Activation::kRelu, Mlp::Init::kTorchDefault);
}

TEST(Mlp, SameSeedSameWeights) {
  torch::manual_seed(11);
  Mlp a({5, 8, 3}, Activation::kTanh, Mlp::Init::kOrthogonal);
  torch::manual_seed(11);
  Mlp b({5, 8, 3}, Activation::kTanh, Mlp::Init::kOrthogonal);
  EXPECT_TRUE(torch::equal(a.WeightOutIn(0), b.WeightOutIn(0)));
  EXPECT_TRUE(torch::equal(a.WeightOutIn(1), b.WeightOutIn(1)));
}

// Our optimisers and clipping against torch.optim on the same gradients.
template <typename Ours, typename Theirs>
void CheckOptimizer(const std::function<Ours(std::vector<ParamSpan>)>& make_ours,
                    const std::function<Theirs(std::vector<torch::Tensor>)>& make_theirs) {
  torch::manual_seed(5);
  torch::Tensor ours = torch::randn({10});
  torch::Tensor theirs = ours.clone().requires_grad_(true);
  torch::Tensor grad = torch::zeros({10});
  Ours opt = make_ours({{ours.data_ptr<float>(), grad.data_ptr<float>(), 10}});
  Theirs ref = make_theirs({theirs});
  for (int step = 0; step < 5; ++step) {
    torch::Tensor g = torch::randn({10});
    grad.copy_(g);
    opt.Step();
    theirs.mutable_grad() = g.clone();
    ref.step();
  }
  EXPECT_TRUE(torch::allclose(ours, theirs.detach(), 1e-5, 1e-6));
}

TEST(Optimizers, AdamMatchesTorch) {
  CheckOptimizer<Adam, torch::optim::Adam>(
      [](std::vector<ParamSpan> p) { return Adam(p, 0.01, 1e-5); },
      [](std::vector<torch::Tensor> p) {
        return torch::optim::Adam(p, torch::optim::AdamOptions(0.01).eps(1e-5));
      });
}

TEST(Optimizers, RmsPropMatchesTorch) {
  CheckOptimizer<RmsProp, torch::optim::RMSprop>(
      [](std::vector<ParamSpan> p) { return RmsProp(p, 0.01, 0.99, 1e-5); },
      [](std::vector<torch::Tensor> p) {
        return torch::optim::RMSprop(p, torch::optim::RMSpropOptions(0.01).alpha(0.99).eps(1e-5));
      });
}

TEST(Optimizers, ClipGradNormMatchesTorch) {
  torch::manual_seed(8);
  torch::Tensor g1 = torch::randn({4}) * 3, g2 = torch::randn({3}) * 3;
  torch::Tensor p1 = torch::zeros({4}, torch::requires_grad()),
                p2 = torch::zeros({3}, torch::requires_grad());
  p1.mutable_grad() = g1.clone();
  p2.mutable_grad() = g2.clone();
  const double theirs = torch::nn::utils::clip_grad_norm_(std::vector<torch::Tensor>{p1, p2}, 1.0);
  std::vector<float> dummy(7);
  const double ours = ClipGradNorm(
      {{dummy.data(), g1.data_ptr<float>(), 4}, {dummy.data() + 4, g2.data_ptr<float>(), 3}}, 1.0);
  EXPECT_NEAR(ours, theirs, 1e-4);
  EXPECT_TRUE(torch::allclose(g1, p1.grad(), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(g2, p2.grad(), 1e-5, 1e-6));
}

// PPO's clipped surrogate against the same formula under autograd, with
// ratios inside and outside the clip range and both advantage signs.
TEST(PpoLoss, MatchesAutograd) {
  torch::manual_seed(21);
  const int rows = 8, actions = 4;
  torch::Tensor logits = torch::randn({rows, actions}) * 2;
  std::vector<int> a{0, 1, 2, 3, 0, 1, 2, 3};
  torch::Tensor adv = torch::tensor({1.0f, -1.0f, 0.5f, -2.0f, 1.5f, 0.3f, -0.7f, 2.0f});
  // Old log-probs shifted so some ratios leave [0.8, 1.2].
  torch::Tensor index = torch::tensor(std::vector<int64_t>(a.begin(), a.end())).unsqueeze(1);
  torch::Tensor current = torch::log_softmax(logits, 1).gather(1, index).squeeze(1);
  torch::Tensor old = current + torch::tensor({0.0f, 0.5f, -0.5f, 0.05f, -0.3f, 0.3f, 0.0f, 0.4f});
  const double clip = 0.2, ent = 0.01;
  std::vector<float> grad(rows * actions);
  const double loss =
      PpoPolicyLoss(logits.data_ptr<float>(), rows, actions, a.data(), old.data_ptr<float>(),
                    adv.data_ptr<float>(), clip, ent, grad.data());
  torch::Tensor z = logits.clone().requires_grad_(true);
  torch::Tensor lp = torch::log_softmax(z, 1);
  torch::Tensor ratio = torch::exp(lp.gather(1, index).squeeze(1) - old);
  torch::Tensor surrogate = torch::min(ratio * adv, torch::clamp(ratio, 1 - clip, 1 + clip) * adv);
  torch::Tensor entropy = -(lp.exp() * lp).sum(1);
  torch::Tensor ref = -surrogate.mean() - ent * entropy.mean();
  ref.backward();
  EXPECT_NEAR(loss, ref.item<double>(), 1e-5);
  EXPECT_TRUE(
      torch::allclose(torch::from_blob(grad.data(), {rows, actions}), z.grad(), 1e-4, 1e-6));
  // Some rows are clipped (zero policy gradient apart from the entropy term).
  EXPECT_GT((ratio > 1 + clip).logical_or(ratio < 1 - clip).sum().item<int>(), 0);
}

TEST(A2cLoss, MatchesAutograd) {
  torch::manual_seed(22);
  const int rows = 5, actions = 3;
  torch::Tensor logits = torch::randn({rows, actions});
  std::vector<int> a{0, 2, 1, 1, 0};
  torch::Tensor adv = torch::tensor({0.5f, -1.0f, 2.0f, 0.0f, -0.3f});
  std::vector<float> grad(rows * actions);
  const double loss = A2cPolicyLoss(logits.data_ptr<float>(), rows, actions, a.data(),
                                    adv.data_ptr<float>(), 0.05, grad.data());
  torch::Tensor z = logits.clone().requires_grad_(true);
  torch::Tensor lp = torch::log_softmax(z, 1);
  torch::Tensor index = torch::tensor(std::vector<int64_t>(a.begin(), a.end())).unsqueeze(1);
  torch::Tensor ref =
      -(adv * lp.gather(1, index).squeeze(1)).mean() - 0.05 * (-(lp.exp() * lp).sum(1)).mean();
  ref.backward();
  EXPECT_NEAR(loss, ref.item<double>(), 1e-5);
  EXPECT_TRUE(
      torch::allclose(torch::from_blob(grad.data(), {rows, actions}), z.grad(), 1e-4, 1e-6));
}

TEST(DqnTarget, UnconstrainedIsRewardPlusDiscountedMax) {
  const float next_q[3] = {1.0f, 4.0f, 2.0f};
  float target[1];
  DqnTargets(next_q, 3, 0, nullptr, 0.5, nullptr, false, 0.9, target);
  EXPECT_NEAR(target[0], 0.5 + 0.9 * 4.0, 1e-6);
  DqnTargets(next_q, 3, 0, nullptr, 0.5, nullptr, true, 0.9, target);
  EXPECT_NEAR(target[0], 0.5, 1e-6);  // terminal: no bootstrap
}

TEST(DqnTarget, ConstrainedBootstrapsAtTheLagrangianArgmax) {
  // Heads: reward [1, 4, 2], latency cost [0, 3, 0], money cost [0, 0, 1].
  const float next_q[9] = {1, 4, 2, 0, 3, 0, 0, 0, 1};
  const double lambdas[2] = {1.5, 0.5};
  const float costs[2] = {0.25f, 0.0f};
  float target[3];
  // Combined: [1, 4 - 4.5, 2 - 0.5] = [1, -0.5, 1.5] -> action 2.
  DqnTargets(next_q, 3, 2, lambdas, 0.5, costs, false, 0.9, target);
  EXPECT_NEAR(target[0], 0.5 + 0.9 * 2, 1e-6);
  EXPECT_NEAR(target[1], 0.25 + 0.9 * 0, 1e-6);
  EXPECT_NEAR(target[2], 0.0 + 0.9 * 1, 1e-6);
  // With zero multipliers the reward argmax (action 1) is used for every head.
  const double zero[2] = {0, 0};
  DqnTargets(next_q, 3, 2, zero, 0.5, costs, false, 0.9, target);
  EXPECT_NEAR(target[0], 0.5 + 0.9 * 4, 1e-6);
  EXPECT_NEAR(target[1], 0.25 + 0.9 * 3, 1e-6);
}

TEST(Lagrange, ProjectedGradientAscentStaysNonNegative) {
  LagrangeOptions o;
  o.limit = 1.0;
  o.lr = 0.5;
  LagrangeMultiplier m(o);
  EXPECT_DOUBLE_EQ(m.value(), 0.0);
  EXPECT_DOUBLE_EQ(m.Update(3.0), 1.0);  // 0 + 0.5 * (3 - 1)
  EXPECT_DOUBLE_EQ(m.Update(2.0), 1.5);  // + 0.5 * (2 - 1)
  EXPECT_DOUBLE_EQ(m.Update(0.0), 1.0);  // - 0.5
  EXPECT_DOUBLE_EQ(m.Update(0.0), 0.5);
  EXPECT_DOUBLE_EQ(m.Update(0.0), 0.0);
  EXPECT_DOUBLE_EQ(m.Update(0.0), 0.0);  // projected: never below 0
  EXPECT_DOUBLE_EQ(m.Update(1.0), 0.0);  // on the limit: no change
  EXPECT_DOUBLE_EQ(m.Update(1.4), 0.2);
}

TEST(Lagrange, PidTermsAndCeiling) {
  LagrangeOptions o;
  o.limit = 0.0;
  o.lr = 1.0;
  o.kp = 2.0;
  o.kd = 1.0;
  o.max_value = 10;
  LagrangeMultiplier m(o);
  EXPECT_DOUBLE_EQ(m.Update(1.0), 2.0 + 1.0);        // P 2, I 1, no D on the first step
  EXPECT_DOUBLE_EQ(m.Update(2.0), 4.0 + 3.0 + 1.0);  // P 4, I 3, D (2 - 1)
  EXPECT_DOUBLE_EQ(m.Update(100.0), 10.0);           // ceiling
}

TEST(StepCosts, ExcessInActionCostUnitsPlusTheViolationCostOnTheCrossingStep) {
  const data::Dataset& d = lcio::testing::EmbeddedDataset();
  auto split = env::RandomSplit(static_cast<int>(d.episodes.size()), 1, 0.2);
  ASSERT_TRUE(split.ok());
  auto sim = env::Simulator::Create(d, split->train, env::SimulatorConfig{});
  ASSERT_TRUE(sim.ok());
  auto training_env = env::TrainingEnv::Create(*sim, d, split->train, (*sim)->DefaultLayout(),
                                               env::BudgetDistribution{}, 5);
  ASSERT_TRUE(training_env.ok());
  const env::ObservationLayout& layout = training_env->encoder().layout();
  TrainOptions options;
  options.lagrange.cost_limit_latency = 0.01;
  options.lagrange.cost_limit_money = 0.01;
  options.lagrange.violation_cost = 0.25;
  AlgoContext context(*training_env, /*constrained=*/true, options);
  env::StepResult step;
  step.excess_latency_s = 2 * layout.latency_scale_s;
  step.excess_money_usd = 0.5 * layout.money_scale_usd;
  float costs[kNumCosts];
  context.StepCosts(step, costs);  // already over: the excess alone
  EXPECT_FLOAT_EQ(costs[0], 2.0f);
  EXPECT_FLOAT_EQ(costs[1], 0.5f);
  step.crossed_latency_budget = true;  // this step goes past the latency budget
  context.StepCosts(step, costs);
  EXPECT_FLOAT_EQ(costs[0], 2.25f);
  EXPECT_FLOAT_EQ(costs[1], 0.5f);
  step.crossed_money_budget = true;
  context.StepCosts(step, costs);
  EXPECT_FLOAT_EQ(costs[1], 0.75f);
  options.lagrange.violation_cost = 0;  // the default: excess only
  AlgoContext excess_only(*training_env, true, options);
  excess_only.StepCosts(step, costs);
  EXPECT_FLOAT_EQ(costs[0], 2.0f);
  EXPECT_FLOAT_EQ(costs[1], 0.5f);
}

TEST(CombineAdvantages, FoldsCostsWithMultipliers) {
  const float costs[2] = {1.0f, 2.0f};
  const double lambdas[2] = {0.5, 1.5};
  EXPECT_NEAR(CombineAdvantages(3.0f, costs, lambdas, 2), (3.0 - 0.5 - 3.0) / 3.0, 1e-6);
  const double zero[2] = {0, 0};
  EXPECT_NEAR(CombineAdvantages(3.0f, costs, zero, 2), 3.0, 1e-6);
}

}  // namespace
}  // namespace lcio::policy
