// Environment and kNN speed: simulated steps per second on the M4A1 training
// split and on a 1,000,000-turn synthetic training set, and k-d tree query
// time against a brute-force scan of every point (the specification).
//
//   build/bench/bench_env [--synthetic_turns=1000000] [--runs=5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "lcio/data/m4a1.h"
#include "lcio/data/synth.h"
#include "lcio/env/split.h"
#include "lcio/env/training_env.h"

ABSL_FLAG(int64_t, synthetic_turns, 1000000, "turns in the synthetic training set");
ABSL_FLAG(int, runs, 5, "repetitions; medians are reported");
ABSL_FLAG(int64_t, steps, 200000, "environment steps per run");

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
double StepsPerSecond(const lcio::data::Dataset& data, const lcio::env::Split& split,
                      const lcio::env::SimulatorConfig& config, int64_t steps, int runs) {
  auto sim = lcio::env::Simulator::Create(data, split.train, config);
  if (!sim.ok()) {
    std::fprintf(stderr, "%s\n", std::string(sim.status().message()).c_str());
    std::exit(1);
  }
  lcio::env::BudgetDistribution budgets;
  budgets.kind = lcio::env::BudgetDistribution::Kind::kUniform;
  std::vector<double> rates;
  for (int r = 0; r < runs; ++r) {
    auto env = lcio::env::TrainingEnv::Create(*sim, data, split.train, (*sim)->DefaultLayout(),
                                              budgets, 1 + r);
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
  std::printf("env steps/s, M4A1 training split (%zu episodes): %.0f (median of %d x %lld steps)\n",
              split->train.size(), StepsPerSecond(*m4a1, *split, config, steps, runs), runs,
              static_cast<long long>(steps));

  data::SynthConfig synth;
  synth.min_turns = 2;
  synth.max_turns = 5;
  synth.num_episodes = absl::GetFlag(FLAGS_synthetic_turns) / 3.5;
  const auto gen_start = Clock::now();
  const data::Dataset big = data::GenerateSynthetic(synth);
  std::printf("synthetic set: %zu episodes, %zu turns (generated in %.1f s)\n",
              big.episodes.size(), big.num_turns(), Seconds(gen_start));
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
  std::printf("env steps/s, 1M-turn synthetic training set: %.0f (median of %d x %lld steps)\n",
              StepsPerSecond(big, all, synth_config, steps, runs), runs,
              static_cast<long long>(steps));

  // kNN queries: random keys in the data's value range, uncached.
  const auto& est = *(*sim)->estimator();
  std::mt19937_64 rng(3);
  std::vector<std::vector<double>> queries(200, std::vector<double>(est.key_width()));
  for (auto& q : queries)
    for (double& x : q) x = static_cast<double>(rng() % 5) - 1;
  std::vector<double> tree_us, brute_us;
  double max_diff = 0;
  for (int r = 0; r < runs; ++r) {
    auto start = Clock::now();
    std::vector<double> a, b;
    for (const auto& q : queries) a.push_back(est.Estimate(q.data()));
    tree_us.push_back(Seconds(start) * 1e6 / queries.size());
    start = Clock::now();
    for (size_t i = 0; i < 20; ++i) b.push_back(est.EstimateBruteForce(queries[i].data()));
    brute_us.push_back(Seconds(start) * 1e6 / 20);
    for (size_t i = 0; i < b.size(); ++i)
      max_diff = std::max(max_diff, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
  }
  std::printf("kNN query over %zu points: tree %.1f us, brute force %.0f us, ratio %.0fx "
              "(max relative difference %.1e)\n",
              est.num_points(), Median(tree_us), Median(brute_us),
              Median(brute_us) / Median(tree_us), max_diff);
  return 0;
}
