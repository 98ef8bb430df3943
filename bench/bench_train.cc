// Training wall time: --timesteps steps of each algorithm (one LibTorch
// thread), median of --runs seeded runs, on the training side of split 1 of
// the embedded M4A1 with the reference settings. Reports training time only
// (the simulator's kNN fit and the data loading are excluded) beside the
// original implementation's 11-48 s per 30000 steps.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/split.h"
#include "lcio/policy/trainer.h"

ABSL_FLAG(int64_t, timesteps, 30000, "environment steps per run");
ABSL_FLAG(int, runs, 3, "seeded runs per algorithm (median reported)");
ABSL_FLAG(std::string, algos, "ppo,a2c,dqn,rc-ppo,rc-a2c,rc-dqn", "algorithms to time");
ABSL_FLAG(std::string, data, LCIO_SOURCE_DIR "/data/M4A1.json", "M4A1 file");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using namespace lcio;
  auto dataset = data::LoadM4A1File(absl::GetFlag(FLAGS_data));
  if (!dataset.ok()) {
    std::cerr << dataset.status() << "\n";
    return 2;
  }
  auto split = env::RandomSplit(static_cast<int>(dataset->episodes.size()), 1, 0.2);
  if (!split.ok()) {
    std::cerr << split.status() << "\n";
    return 2;
  }
  // The original's figures (shared/reference/README.md), seconds per 30000 steps.
  const std::vector<std::pair<std::string, double>> original = {{"ppo", 43.9},    {"a2c", 32.4},
                                                                {"dqn", 11.2},    {"rc-ppo", 47.7},
                                                                {"rc-a2c", 40.9}, {"rc-dqn", 38.6}};
  std::cout
      << "| algo | median s | min s | max s | steps/s | gradient steps | original s | speed-up |\n"
         "|---|---|---|---|---|---|---|---|\n";
  const std::vector<std::string> algos = absl::StrSplit(absl::GetFlag(FLAGS_algos), ',');
  for (const std::string& algo : algos) {
    std::vector<double> seconds;
    int64_t steps = 0, gradient_steps = 0;
    for (int run = 0; run < absl::GetFlag(FLAGS_runs); ++run) {
      policy::TrainOptions options;
      options.algo = algo;
      options.timesteps = absl::GetFlag(FLAGS_timesteps);
      options.seed = 1 + run;
      options.torch_threads = 1;
      options.device = "cpu";
      auto result = policy::Train(*dataset, split->train, env::SimulatorConfig(), options);
      if (!result.ok()) {
        std::cerr << algo << ": " << result.status() << "\n";
        return 2;
      }
      seconds.push_back(result->summary.seconds);
      steps = result->summary.steps;
      gradient_steps = result->summary.gradient_steps;
    }
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2];
    double reference = 0;
    for (const auto& [name, s] : original)
      if (name == algo) reference = s * absl::GetFlag(FLAGS_timesteps) / 30000.0;
    std::cout << absl::StrFormat("| %s | %.3f | %.3f | %.3f | %.0f | %lld | %s | %s |\n", algo,
                                 median, seconds.front(), seconds.back(), steps / median,
                                 static_cast<long long>(gradient_steps),
                                 reference > 0 ? absl::StrFormat("%.1f", reference) : "-",
                                 reference > 0 ? absl::StrFormat("%.0fx", reference / median) : "-")
              << std::flush;
  }
  return 0;
}
