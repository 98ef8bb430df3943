// Load-time benchmark: writes a synthetic M4A1-schema file of about
// --target_mb megabytes to a temp dir, then reports the median of --runs
// LoadM4A1File timings and the throughput in MB/s.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "lcio/data/m4a1.h"
#include "lcio/data/synth.h"

ABSL_FLAG(double, target_mb, 100, "approximate size of the synthetic file in MB (1e6 bytes)");
ABSL_FLAG(int, runs, 5, "number of timed loads (the median is reported)");
ABSL_FLAG(int, views, 3, "views per episode");
ABSL_FLAG(int, tasks, 4, "task categories");
ABSL_FLAG(uint64_t, seed, 1, "generator seed");
ABSL_FLAG(bool, pretty, true, "indent the file like the M4A1 release");

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Times LoadM4A1File on a synthetic file.");
  absl::ParseCommandLine(argc, argv);
  const double target_bytes = absl::GetFlag(FLAGS_target_mb) * 1e6;
  const int runs = std::max(1, absl::GetFlag(FLAGS_runs));
  const bool pretty = absl::GetFlag(FLAGS_pretty);

  lcio::data::SynthConfig c;
  c.num_views = absl::GetFlag(FLAGS_views);
  c.num_tasks = absl::GetFlag(FLAGS_tasks);
  c.seed = absl::GetFlag(FLAGS_seed);
  if (absl::Status s = lcio::data::ValidateSynthConfig(c); !s.ok()) {
    std::cerr << "bench_load: " << s.message() << "\n";
    return 2;
  }
  // Size a sample, then scale the episode count to hit the target size.
  c.num_episodes = 1000;
  const size_t sample = lcio::data::ToM4A1Json(lcio::data::GenerateSynthetic(c), pretty).size();
  c.num_episodes = std::max<int64_t>(1, static_cast<int64_t>(target_bytes / sample * 1000));

  auto t0 = Clock::now();
  const lcio::data::Dataset generated = lcio::data::GenerateSynthetic(c);
  auto t1 = Clock::now();
  const std::string text = lcio::data::ToM4A1Json(generated, pretty);
  auto t2 = Clock::now();

  const auto dir =
      std::filesystem::temp_directory_path() / ("lcio_bench_load_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "synthetic.json").string();
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!f) {
      std::cerr << "bench_load: cannot write " << path << "\n";
      return 1;
    }
  }
  const double mb = static_cast<double>(text.size()) / 1e6;
  std::printf("file: %s, %.1f MB, %zu episodes, %zu turns, %d views, %zu tasks\n", path.c_str(), mb,
              generated.episodes.size(), generated.num_turns(), generated.num_views,
              generated.tasks.size());
  std::printf("generate: %.3f s, serialise: %.3f s (%.1f MB/s)\n", Seconds(t0, t1), Seconds(t1, t2),
              mb / Seconds(t1, t2));

  std::vector<double> times;
  int rc = 0;
  for (int r = 0; r < runs; ++r) {
    auto a = Clock::now();
    auto d = lcio::data::LoadM4A1File(path);
    auto b = Clock::now();
    if (!d.ok() || d->num_turns() != generated.num_turns()) {
      std::cerr << "bench_load: load failed: " << d.status() << "\n";
      rc = 1;
      break;
    }
    times.push_back(Seconds(a, b));
    std::printf("load run %d: %.3f s\n", r + 1, times.back());
  }
  std::filesystem::remove_all(dir);
  if (rc) return rc;
  const double med = Median(times);
  std::printf("LoadM4A1File median of %d: %.3f s, %.1f MB/s\n", runs, med, mb / med);
  return 0;
}
