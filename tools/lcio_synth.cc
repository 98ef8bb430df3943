// lcio-synth: writes a seeded synthetic dataset in the M4A1 JSON schema.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "cli_help.h"
#include "lcio/data/atomic_file.h"
#include "lcio/data/m4a1.h"
#include "lcio/data/message.h"
#include "lcio/data/synth.h"

namespace {
const lcio::data::SynthConfig kDefaults;
}  // namespace

ABSL_FLAG(int64_t, episodes, kDefaults.num_episodes, "number of episodes");
ABSL_FLAG(int, views, kDefaults.num_views, "views (images) per episode");
ABSL_FLAG(int, tasks, kDefaults.num_tasks, "number of task categories");
ABSL_FLAG(int, min_turns, kDefaults.min_turns, "fewest turns per episode");
ABSL_FLAG(int, max_turns, kDefaults.max_turns, "most turns per episode");
ABSL_FLAG(uint64_t, seed, kDefaults.seed, "random seed (same seed, same file)");
ABSL_FLAG(std::string, out, "", "output JSON path (required; '-' for stdout)");
ABSL_FLAG(bool, pretty, false, "indent the JSON like the M4A1 release");
ABSL_FLAG(double, local_score_mean, kDefaults.local_score_mean, "mean score of local answers");
ABSL_FLAG(double, cloud_score_mean, kDefaults.cloud_score_mean,
          "mean score of cloud answers before view bonuses");
ABSL_FLAG(double, key_view_bonus, kDefaults.key_view_bonus,
          "score bonus when the task's key view is uploaded");
ABSL_FLAG(double, per_view_bonus, kDefaults.per_view_bonus, "score bonus per uploaded view");
ABSL_FLAG(double, score_noise, kDefaults.score_noise, "Gaussian score noise (std dev)");
ABSL_FLAG(double, refusal_probability, kDefaults.refusal_probability,
          "probability an answer contains a refusal phrase");
ABSL_FLAG(double, cloud_probability, kDefaults.cloud_probability,
          "logged policy's probability of a cloud turn");
ABSL_FLAG(double, local_time_s, kDefaults.local_time_s, "mean latency of a local turn");
ABSL_FLAG(double, cloud_time_s, kDefaults.cloud_time_s, "mean latency of a text-only cloud turn");
ABSL_FLAG(double, per_view_time_s, kDefaults.per_view_time_s, "added latency per uploaded view");
ABSL_FLAG(double, local_usage_usd, kDefaults.local_usage_usd, "mean cost of a local turn");
ABSL_FLAG(double, cloud_usage_usd, kDefaults.cloud_usage_usd,
          "mean cost of a text-only cloud turn");
ABSL_FLAG(double, per_view_usage_usd, kDefaults.per_view_usage_usd, "added cost per uploaded view");
ABSL_FLAG(int, answer_length, kDefaults.answer_length, "characters of filler answer text");

int main(int argc, char** argv) {
  lcio::cli::ParseCommandLine(
      argc, argv, "[flags] --out=FILE",
      "Writes a seeded synthetic dataset in the M4A1 JSON schema.\n"
      "  lcio-synth --episodes=1000 --views=3 --tasks=4 --seed=1 --out=synth.json");

  lcio::data::SynthConfig c;
  c.num_episodes = absl::GetFlag(FLAGS_episodes);
  c.num_views = absl::GetFlag(FLAGS_views);
  c.num_tasks = absl::GetFlag(FLAGS_tasks);
  c.min_turns = absl::GetFlag(FLAGS_min_turns);
  c.max_turns = absl::GetFlag(FLAGS_max_turns);
  c.seed = absl::GetFlag(FLAGS_seed);
  c.local_score_mean = absl::GetFlag(FLAGS_local_score_mean);
  c.cloud_score_mean = absl::GetFlag(FLAGS_cloud_score_mean);
  c.key_view_bonus = absl::GetFlag(FLAGS_key_view_bonus);
  c.per_view_bonus = absl::GetFlag(FLAGS_per_view_bonus);
  c.score_noise = absl::GetFlag(FLAGS_score_noise);
  c.refusal_probability = absl::GetFlag(FLAGS_refusal_probability);
  c.cloud_probability = absl::GetFlag(FLAGS_cloud_probability);
  c.local_time_s = absl::GetFlag(FLAGS_local_time_s);
  c.cloud_time_s = absl::GetFlag(FLAGS_cloud_time_s);
  c.per_view_time_s = absl::GetFlag(FLAGS_per_view_time_s);
  c.local_usage_usd = absl::GetFlag(FLAGS_local_usage_usd);
  c.cloud_usage_usd = absl::GetFlag(FLAGS_cloud_usage_usd);
  c.per_view_usage_usd = absl::GetFlag(FLAGS_per_view_usage_usd);
  c.answer_length = absl::GetFlag(FLAGS_answer_length);

  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    std::cerr << "lcio-synth: --out is required (a path, or '-' for stdout)\n";
    return 2;
  }
  if (absl::Status s = lcio::data::ValidateSynthConfig(c); !s.ok()) {
    std::cerr << "lcio-synth: " << s.message() << "\n";
    return 2;
  }
  // A directory or a device would be replaced by the rename: refused first.
  if (out != "-") {
    if (absl::Status s = lcio::data::CheckReplaceableOutput(out); !s.ok()) {
      std::cerr << "lcio-synth: --out: " << s.message() << "\n";
      return 2;
    }
  }

  const lcio::data::Dataset d = lcio::data::GenerateSynthetic(c);
  const bool pretty = absl::GetFlag(FLAGS_pretty);
  // Streamed, so a file of millions of turns is never held in memory as text.
  absl::Status written;
  if (out == "-") {
    written = lcio::data::WriteM4A1Json(d, std::cout, pretty);
  } else {
    // Written beside it and renamed over it whole: a failed or killed run
    // leaves no partial file (and an earlier one in place).
    const std::string temp = lcio::data::TemporaryPathFor(out);
    {
      std::ofstream f(temp, std::ios::binary | std::ios::trunc);
      if (!f) {
        std::cerr << "lcio-synth: cannot write " << lcio::data::Shorten(temp, 256) << "\n";
        return 1;
      }
      written = lcio::data::WriteM4A1Json(d, f, pretty);
      f.flush();
      if (written.ok() && !f) written = absl::UnavailableError("writing failed");
    }
    if (written.ok())
      written = lcio::data::PublishTemporaryFile(temp, out);
    else
      std::remove(temp.c_str());
  }
  if (!written.ok()) {
    std::cerr << "lcio-synth: " << written.message() << " (" << lcio::data::Shorten(out, 256)
              << ")\n";
    return 1;
  }
  std::cerr << "lcio-synth: wrote " << d.episodes.size() << " episodes, " << d.num_turns()
            << " turns, " << d.num_views << " views, " << d.tasks.size() << " tasks to " << out
            << "\n";
  return 0;
}
