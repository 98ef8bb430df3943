// Environment and kNN speed: simulated steps per second on the M4A1 training
// split and on a 1,000,000-turn synthetic training set, and the estimator's
// uncached query time against a brute-force scan of every point (the
// specification), on two query sets: keys a random agent produces (random
// histories of valid actions and tasks) and random lattice keys in
// {-1..3}^width, mostly far from every point (the worst case for pruning).
//
//   build/bench/bench_env [--synthetic_turns=1000000] [--runs=3]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "lcio/data/m4a1.h"
#include "lcio/data/synth.h"
#include "lcio/env/observation.h"
#include "lcio/env/split.h"
#include "lcio/env/training_env.h"

ABSL_FLAG(int64_t, synthetic_turns, 1000000, "turns in the synthetic training set");
ABSL_FLAG(int, runs, 3, "repetitions; medians are reported");
ABSL_FLAG(int64_t, steps, 200000, "environment steps per run on M4A1");
ABSL_FLAG(int64_t, synthetic_steps, 50000, "environment steps per run on the synthetic set");
ABSL_FLAG(int, queries, 400, "uncached kNN queries per query set and run");
ABSL_FLAG(int, brute_force_queries, 20, "of which also answered by brute force");

namespace {

using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Steps a uniformly random agent through the training environment.
double StepsPerSecond(const std::shared_ptr<const lcio::env::Simulator>& sim,
                      const lcio::data::Dataset& data, const lcio::env::Split& split, int64_t steps,
                      int runs) {
  lcio::env::BudgetDistribution budgets;
  budgets.kind = lcio::env::BudgetDistribution::Kind::kUniform;
  std::vector<double> rates;
  for (int r = 0; r < runs; ++r) {
    auto env = lcio::env::TrainingEnv::Create(sim, data, split.train, sim->DefaultLayout(), budgets,
                                              1 + r);
    std::vector<float> obs(env->observation_size());
    std::mt19937_64 rng(r);
    const auto start = Clock::now();
    double sink = 0;
    for (int64_t s = 0; s < steps; ++s) {
      env->Observe(obs.data());
      const auto result = env->Step(static_cast<int>(rng() % env->num_actions()));
      sink += result.reward + obs[0];
      if (result.done) env->Reset();
    }
    rates.push_back(steps / Seconds(start));
    if (sink == 42.4242) std::printf(" ");
  }
  return Median(rates);
}

// Microseconds to encode one observation as the server does (uncached), over
// contexts a random agent reaches on the data: median over runs.
double EncodeMicros(const lcio::env::ObservationEncoder& encoder,
                    const std::vector<lcio::env::DecisionContext>& contexts, int runs) {
  std::vector<double> per_call;
  std::vector<float> obs(encoder.size());
  double sink = 0;
  for (int r = 0; r < runs; ++r) {
    const auto start = Clock::now();
    for (int rep = 0; rep < 20; ++rep)
      for (const auto& context : contexts) {
        encoder.Encode(context, obs.data());
        sink += obs.back();
      }
    per_call.push_back(Seconds(start) * 1e6 / (20.0 * contexts.size()));
  }
  if (sink == 42.4242) std::printf(" ");
  return Median(per_call);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int runs = absl::GetFlag(FLAGS_runs);
  const int64_t steps = absl::GetFlag(FLAGS_steps);
  using namespace lcio;

  auto m4a1 = data::LoadM4A1File(std::string(LCIO_SOURCE_DIR) + "/data/M4A1.json");
  if (!m4a1.ok()) return 1;
  auto split = env::RandomSplit(static_cast<int>(m4a1->episodes.size()), 1, 0.2);
  env::SimulatorConfig config;
  auto m4a1_sim = env::Simulator::Create(*m4a1, split->train, config);
  if (!m4a1_sim.ok()) return 1;
  std::printf("env steps/s, M4A1 training split (%zu episodes): %.0f (median of %d x %lld steps)\n",
              split->train.size(), StepsPerSecond(*m4a1_sim, *m4a1, *split, steps, runs), runs,
              static_cast<long long>(steps));

  {
    // The server encodes every Decide's observation; response features add
    // one uncached kNN query per action.
    std::mt19937_64 rng(5);
    std::vector<env::DecisionContext> contexts;
    for (int i = 0; i < 1000; ++i) {
      const data::Episode& episode = m4a1->episodes[split->train[rng() % split->train.size()]];
      env::EpisodeRun run(**m4a1_sim, episode, env::Budget{30, 0.05});
      const int turn = static_cast<int>(rng() % episode.turns.size());
      for (int t = 0; t < turn; ++t)
        run.Step(static_cast<int>(rng() % (*m4a1_sim)->actions().size()));
      contexts.push_back(run.context());
    }
    env::ObservationLayout layout = (*m4a1_sim)->DefaultLayout();
    auto plain = env::ObservationEncoder::Create(layout);
    layout.response_aware = true;
    layout.response_scale = (*m4a1_sim)->estimator()->mean_value();
    auto aware = env::ObservationEncoder::Create(layout, (*m4a1_sim)->estimator());
    if (!plain.ok() || !aware.ok()) return 1;
    const double plain_us = EncodeMicros(*plain, contexts, runs);
    // Memo hits: the encoder remembers each history window's predictions.
    const double memo_us = EncodeMicros(*aware, contexts, runs);
    // Misses: one pass over the model for all actions of a context.
    const int width = env::ResponseKeyWidth(layout.num_views, layout.time_span);
    const int history = env::HistoryWidth(layout.num_views, layout.time_span);
    const int actions = (*m4a1_sim)->actions().size();
    std::vector<double> suffixes;
    std::vector<double> key(width);
    for (int a = 0; a < actions; ++a) {
      env::EncodeResponseKey((*m4a1_sim)->actions(), layout.time_span, contexts[0], a, key.data());
      suffixes.insert(suffixes.end(), key.begin() + history, key.end());
    }
    std::vector<double> miss_us, predicted(actions);
    double sink = 0;
    for (int r = 0; r < runs; ++r) {
      const auto start = Clock::now();
      for (const auto& context : contexts) {
        env::EncodeHistory((*m4a1_sim)->actions(), layout.time_span, context, key.data());
        (*m4a1_sim)->estimator()->EstimateSharedPrefix(key.data(), history, suffixes.data(),
                                                       actions, predicted.data());
        sink += predicted[0];
      }
      miss_us.push_back(Seconds(start) * 1e6 / contexts.size());
    }
    std::printf(
        "observation encoding, M4A1 (as served, no cache): plain %.2f us; response-aware: %.2f "
        "us per model pass (%d actions, %zu unique keys), %.2f us on a memo hit%s\n",
        plain_us, Median(miss_us), actions, (*m4a1_sim)->estimator()->num_unique_points(), memo_us,
        sink == 42.4242 ? " " : "");
  }

  data::SynthConfig synth;
  synth.min_turns = 2;
  synth.max_turns = 5;
  synth.num_episodes = absl::GetFlag(FLAGS_synthetic_turns) / 3.5;
  const auto gen_start = Clock::now();
  const data::Dataset big = data::GenerateSynthetic(synth);
  std::printf("synthetic set: %zu episodes, %zu turns (generated in %.1f s)\n", big.episodes.size(),
              big.num_turns(), Seconds(gen_start));
  env::Split all;
  for (size_t i = 0; i < big.episodes.size(); ++i) all.train.push_back(static_cast<int>(i));
  env::SimulatorConfig synth_config;
  synth_config.catalog.networks.push_back({"synthetic", {5, 6, 7, 8}});
  synth_config.network = "synthetic";
  const auto fit_start = Clock::now();
  auto sim = env::Simulator::Create(big, all.train, synth_config);
  if (!sim.ok()) return 1;
  std::printf("kNN fit on %zu points (%zu unique keys): %.2f s\n",
              (*sim)->estimator()->num_points(), (*sim)->estimator()->num_unique_points(),
              Seconds(fit_start));
  const int64_t synthetic_steps = absl::GetFlag(FLAGS_synthetic_steps);
  std::printf("env steps/s, 1M-turn synthetic training set: %.0f (median of %d x %lld steps)\n",
              StepsPerSecond(*sim, big, all, synthetic_steps, runs), runs,
              static_cast<long long>(synthetic_steps));

  const auto& est = *(*sim)->estimator();
  const auto& actions = (*sim)->actions();
  const int num_queries = absl::GetFlag(FLAGS_queries);
  const int num_brute = std::min(num_queries, absl::GetFlag(FLAGS_brute_force_queries));
  std::mt19937_64 rng(3);
  std::vector<std::vector<double>> agent_keys(num_queries, std::vector<double>(est.key_width()));
  for (auto& key : agent_keys) {
    env::DecisionContext context;
    const int turn = static_cast<int>(rng() % 5);
    for (int t = 0; t < turn; ++t) {
      context.previous_actions.push_back(static_cast<int>(rng() % actions.size()));
      context.previous_tasks.push_back(static_cast<int>(rng() % synth.num_tasks));
    }
    context.task_index = static_cast<int>(rng() % synth.num_tasks);
    env::EncodeResponseKey(actions, synth_config.time_span, context,
                           static_cast<int>(rng() % actions.size()), key.data());
  }
  std::vector<std::vector<double>> lattice_keys(num_queries, std::vector<double>(est.key_width()));
  for (auto& key : lattice_keys)
    for (double& x : key) x = static_cast<double>(rng() % 5) - 1;

  for (const auto& [name, queries] : {std::pair{"random-agent keys", &agent_keys},
                                      std::pair{"random lattice keys", &lattice_keys}}) {
    std::vector<double> fast_us, brute_us;
    double max_diff = 0;
    for (int r = 0; r < runs; ++r) {
      std::vector<double> fast, brute;
      auto start = Clock::now();
      for (const auto& q : *queries) fast.push_back(est.Estimate(q.data()));
      fast_us.push_back(Seconds(start) * 1e6 / queries->size());
      start = Clock::now();
      for (int i = 0; i < num_brute; ++i)
        brute.push_back(est.EstimateBruteForce((*queries)[i].data()));
      brute_us.push_back(Seconds(start) * 1e6 / num_brute);
      for (int i = 0; i < num_brute; ++i)
        max_diff =
            std::max(max_diff, std::abs(fast[i] - brute[i]) / std::max(1.0, std::abs(brute[i])));
    }
    // A ratio of medians measured in this one run.
    std::printf(
        "kNN query, %s, over %zu points: estimator %.1f us, brute force %.0f us, "
        "ratio %.0fx (max relative difference %.1e)\n",
        name, est.num_points(), Median(fast_us), Median(brute_us),
        Median(brute_us) / Median(fast_us), max_diff);
  }
  return 0;
}
