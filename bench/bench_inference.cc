// Inference benchmark: scores batches of 1, 8, 32 and 64 observations through
// each of the engine's paths (the TorchScript interpreter, the kernels'
// forward Network::Forward, and the automatic choice) for an MLP of the
// trainer's default shape on M4A1's observation, and prints a Markdown table
// of medians over --reps timed repetitions.
#include <ATen/Parallel.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lcio/policy/inference.h"
#include "lcio/policy/testing.h"

ABSL_FLAG(int, threads, 1, "LibTorch intra-op threads (the server's default is 1)");
ABSL_FLAG(int, reps, 7, "timed repetitions per cell (the median is reported)");
ABSL_FLAG(double, rep_ms, 60, "target duration of one repetition, milliseconds");
ABSL_FLAG(std::string, hidden, "64,64", "hidden layer widths");
ABSL_FLAG(std::string, activation, "tanh", "tanh or relu");
ABSL_FLAG(bool, wall_clock, false,
          "time with the wall clock instead of this thread's CPU time (CPU time is robust to "
          "other processes sharing the cores; with --threads=1 all work runs on this thread)");

namespace {

using Clock = std::chrono::steady_clock;
using lcio::policy::ScoringPath;

double MedianMicrosPerCall(const lcio::policy::InferenceEngine& engine, ScoringPath path,
                           const std::vector<float>& obs, int n, std::vector<float>& scores) {
  const bool wall = absl::GetFlag(FLAGS_wall_clock);
  auto now_us = [wall] {
    if (wall)
      return std::chrono::duration<double, std::micro>(Clock::now().time_since_epoch()).count();
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
  };
  auto run = [&](int calls) {
    const double start = now_us();
    for (int i = 0; i < calls; ++i)
      if (!engine.ScoreWith(path, obs.data(), n, scores.data()).ok()) std::abort();
    return now_us() - start;
  };
  run(50);  // warm-up (allocator, caches, the interpreter's first-run optimisation)
  int calls = 64;
  while (run(calls) < absl::GetFlag(FLAGS_rep_ms) * 1000 / 4 && calls < (1 << 24)) calls *= 2;
  calls = std::max(1, static_cast<int>(calls * 4));
  std::vector<double> per_call;
  for (int r = 0; r < absl::GetFlag(FLAGS_reps); ++r) per_call.push_back(run(calls) / calls);
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  at::set_num_threads(absl::GetFlag(FLAGS_threads));
  lcio::policy::testing::TestArtifactOptions options;  // M4A1: 3 views, 4 tasks, span 5
  options.hidden.clear();
  for (absl::string_view width : absl::StrSplit(absl::GetFlag(FLAGS_hidden), ','))
    options.hidden.push_back(std::stoi(std::string(width)));
  options.activation = absl::GetFlag(FLAGS_activation);
  const std::string path =
      (std::filesystem::temp_directory_path() / absl::StrCat("bench_inference_", getpid(), ".pt"))
          .string();
  auto written = lcio::policy::testing::WriteTestArtifact(path, options);
  if (!written.ok()) {
    std::fprintf(stderr, "%s\n", written.status().ToString().c_str());
    return 1;
  }
  auto engine = lcio::policy::InferenceEngine::Load(path, "cpu");
  std::filesystem::remove(path);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().ToString().c_str());
    return 1;
  }
  const int d = (*engine)->observation_size(), a = (*engine)->num_actions();
  std::printf(
      "network: %s, activation %s, %d actions; LibTorch threads %d; median of %d reps; %s\n\n",
      absl::StrCat(d, "-", absl::GetFlag(FLAGS_hidden), "-", a).c_str(), options.activation.c_str(),
      a, at::get_num_threads(), absl::GetFlag(FLAGS_reps),
      absl::GetFlag(FLAGS_wall_clock) ? "wall clock" : "thread CPU time");
  std::printf(
      "| batch | path | us per call | us per observation | observations/s | vs TorchScript |\n");
  std::printf("|---:|---|---:|---:|---:|---:|\n");
  const std::pair<ScoringPath, const char*> paths[] = {
      {ScoringPath::kTorchScript, "TorchScript"},
      {ScoringPath::kCpuLoops, "kernels (Network::Forward)"},
      {ScoringPath::kAuto, "auto (Score)"}};
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (int n : {1, 8, 32, 64}) {
    std::vector<float> obs(static_cast<size_t>(n) * d), scores(static_cast<size_t>(n) * a);
    for (float& x : obs) x = uniform(rng) < 0.5f ? 0.0f : uniform(rng);
    double torchscript = 0;
    for (const auto& [scoring, name] : paths) {
      const double us = MedianMicrosPerCall(**engine, scoring, obs, n, scores);
      if (scoring == ScoringPath::kTorchScript) torchscript = us;
      std::printf("| %d | %s | %.2f | %.3f | %.0f | %.1fx |\n", n, name, us, us / n, n * 1e6 / us,
                  torchscript / us);
    }
  }
  return 0;
}
