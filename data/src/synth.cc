#include "lcio/data/synth.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace lcio::data {
namespace {

// Distributions written out here because the std:: ones are
// implementation-defined: the same seed must give the same data everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  bool Bernoulli(double p) { return Uniform() < p; }

  // Uniform in [0, n), unbiased by rejection.
  uint64_t Below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
      x = gen_();
    } while (x >= limit);
    return x % n;
  }

  // Standard normal approximated by the Irwin-Hall sum of 12 uniforms (mean 0,
  // variance 1, tails cut at +-6): only + and -, so no libm differences.
  double Normal() {
    double s = 0;
    for (int i = 0; i < 12; ++i) s += Uniform();
    return s - 6.0;
  }

 private:
  std::mt19937_64 gen_;
};

// Filler words chosen so no refusal phrase ("sorry", "I don't have", "can't")
// can appear in a non-refusal answer.
constexpr std::string_view kFiller =
    "the assistant checked the scene and suggests moving the lamp closer to the desk then "
    "opening the window a little while the kettle heats and the music plays softly in the "
    "kitchen so the room feels calm and bright for the rest of the evening ";
constexpr std::string_view kRefusals[] = {"I'm sorry, ", "I don't have that, ", "I can't see it, "};

std::string Filler(Rng& rng, std::string prefix, int length) {
  std::string s = std::move(prefix);
  size_t want = std::max(s.size(), static_cast<size_t>(length));
  // Start at a word so the text reads like words.
  size_t pos = kFiller.find(' ', rng.Below(kFiller.size())) + 1;
  if (pos >= kFiller.size()) pos = 0;
  s.reserve(want);
  while (s.size() < want) {
    size_t take = std::min(want - s.size(), kFiller.size() - pos);
    s.append(kFiller.substr(pos, take));
    pos = 0;
  }
  return s;
}

int Digits(int n) {
  int d = 1;
  while (n >= 10) {
    n /= 10;
    ++d;
  }
  return d;
}

double Clamp01(double x) { return std::isfinite(x) ? std::clamp(x, 0.0, 1.0) : 0.0; }
double NonNeg(double x) { return std::isfinite(x) ? std::max(x, 0.0) : 0.0; }
double Finite(double x) { return std::isfinite(x) ? x : 0.0; }

SynthConfig Sanitize(SynthConfig c) {
  c.num_episodes = std::max<int64_t>(c.num_episodes, 1);
  c.num_views = std::max(c.num_views, 1);
  c.num_tasks = std::max(c.num_tasks, 1);
  c.min_turns = std::max(c.min_turns, 1);
  c.max_turns = std::max(c.max_turns, c.min_turns);
  c.local_score_mean = Finite(c.local_score_mean);
  c.cloud_score_mean = Finite(c.cloud_score_mean);
  c.key_view_bonus = Finite(c.key_view_bonus);
  c.per_view_bonus = Finite(c.per_view_bonus);
  c.score_noise = NonNeg(c.score_noise);
  c.refusal_probability = Clamp01(c.refusal_probability);
  c.cloud_probability = Clamp01(c.cloud_probability);
  c.local_time_s = NonNeg(c.local_time_s);
  c.cloud_time_s = NonNeg(c.cloud_time_s);
  c.per_view_time_s = NonNeg(c.per_view_time_s);
  c.local_usage_usd = NonNeg(c.local_usage_usd);
  c.cloud_usage_usd = NonNeg(c.cloud_usage_usd);
  c.per_view_usage_usd = NonNeg(c.per_view_usage_usd);
  c.answer_length = std::max(c.answer_length, 0);
  return c;
}

}  // namespace

absl::Status ValidateSynthConfig(const SynthConfig& c) {
  auto bad = [](absl::string_view field, auto value, absl::string_view rule) {
    return absl::InvalidArgumentError(
        absl::StrCat("SynthConfig field '", field, "' = ", value, ": ", rule));
  };
  // Upper bounds far above any use, low enough that a typo cannot ask for
  // more memory or disk than a machine has (2e9 episodes aborted out of
  // memory; a 2e9-byte answer per turn wrote gigabytes).
  const std::tuple<const char*, int64_t, int64_t, int64_t> counts[] = {
      {"num_episodes", c.num_episodes, 1, 1000000},
      {"num_views", c.num_views, 1, 12},  // env's ActionTable::kMaxViews
      {"num_tasks", c.num_tasks, 1, 1000},
      {"min_turns", c.min_turns, 1, 1000},
      {"max_turns", c.max_turns, c.min_turns, 1000},
      {"answer_length", c.answer_length, 0, 4096}};
  for (const auto& [name, value, lo, hi] : counts)
    if (value < lo || value > hi)
      return bad(name, value, absl::StrCat("must be in [", lo, ", ", hi, "]"));
  if (c.num_episodes * c.max_turns > 10000000)
    return bad("num_episodes", c.num_episodes,
               absl::StrCat("times max_turns (", c.max_turns, ") must be at most 1e7 turns"));
  const std::pair<const char*, double> probabilities[] = {
      {"refusal_probability", c.refusal_probability}, {"cloud_probability", c.cloud_probability}};
  for (const auto& [name, v] : probabilities) {
    if (!(v >= 0 && v <= 1)) return bad(name, v, "must be in [0, 1]");
  }
  const std::pair<const char*, double> finite[] = {{"local_score_mean", c.local_score_mean},
                                                   {"cloud_score_mean", c.cloud_score_mean},
                                                   {"key_view_bonus", c.key_view_bonus},
                                                   {"per_view_bonus", c.per_view_bonus}};
  for (const auto& [name, v] : finite) {
    if (!std::isfinite(v)) return bad(name, v, "must be finite");
  }
  const std::pair<const char*, double> amounts[] = {{"score_noise", c.score_noise},
                                                    {"local_time_s", c.local_time_s},
                                                    {"cloud_time_s", c.cloud_time_s},
                                                    {"per_view_time_s", c.per_view_time_s},
                                                    {"local_usage_usd", c.local_usage_usd},
                                                    {"cloud_usage_usd", c.cloud_usage_usd},
                                                    {"per_view_usage_usd", c.per_view_usage_usd}};
  for (const auto& [name, v] : amounts) {
    if (!std::isfinite(v) || v < 0) return bad(name, v, "must be finite and >= 0");
  }
  // The longest and dearest turn (with GenerateSynthetic's +20% and +10%
  // jitter) must be one the loader accepts.
  const double views = c.num_views;
  const double longest = 1.2 * std::max(c.local_time_s, c.cloud_time_s + c.per_view_time_s * views);
  const double dearest =
      1.1 * std::max(c.local_usage_usd, c.cloud_usage_usd + c.per_view_usage_usd * views);
  if (longest > kMaxTurnTimeS)
    return bad("cloud_time_s", c.cloud_time_s,
               absl::StrCat("with local_time_s, per_view_time_s and the +20% jitter a turn could "
                            "take ",
                            longest, " s; at most ", kMaxTurnTimeS));
  if (dearest > kMaxTurnCostUsd)
    return bad("cloud_usage_usd", c.cloud_usage_usd,
               absl::StrCat("with local_usage_usd, per_view_usage_usd and the +10% jitter a turn "
                            "could cost ",
                            dearest, " USD; at most ", kMaxTurnCostUsd));
  return absl::OkStatus();
}

int SynthKeyView(int task, int num_views) { return num_views > 0 ? task % num_views : 0; }

Dataset GenerateSynthetic(const SynthConfig& config) {
  const SynthConfig c = Sanitize(config);
  Rng rng(c.seed);
  Dataset d;
  d.num_views = c.num_views;
  d.source = absl::StrCat("<synthetic seed=", c.seed, ">");
  const int width = Digits(c.num_tasks - 1);
  d.tasks.reserve(c.num_tasks);
  for (int t = 0; t < c.num_tasks; ++t) {
    std::string n = std::to_string(t);
    d.tasks.push_back(absl::StrCat("task_", std::string(width - n.size(), '0'), n));
  }
  constexpr double kMaxScore = 9.0;  // M4A1's score range is 0..9

  d.episodes.resize(c.num_episodes);
  std::vector<int> order(c.num_views);
  for (int64_t e = 0; e < c.num_episodes; ++e) {
    Episode& ep = d.episodes[e];
    ep.id = e;
    ep.image_paths.reserve(c.num_views);
    for (int v = 0; v < c.num_views; ++v) {
      ep.image_paths.push_back(absl::StrCat("synth_", e, "_view_", v, ".jpg"));
    }
    const int n_turns =
        c.min_turns +
        static_cast<int>(rng.Below(static_cast<uint64_t>(c.max_turns - c.min_turns) + 1));
    ep.turns.resize(n_turns);
    ep.association.resize(n_turns);
    for (int i = 0; i < n_turns; ++i) {
      Turn& t = ep.turns[i];
      t.task_index = static_cast<int>(rng.Below(c.num_tasks));
      t.task = d.tasks[t.task_index];
      const int key = SynthKeyView(t.task_index, c.num_views);
      t.question = absl::StrCat("Synthetic ", t.task, " request ", i, " in episode ", e);
      t.target = rng.Bernoulli(c.cloud_probability) ? Target::kCloud : Target::kLocal;

      double mean = c.local_score_mean;
      double time = c.local_time_s;
      double cost = c.local_usage_usd;
      if (t.target == Target::kCloud) {
        // Each view is uploaded with probability 1/2, in a random order (the
        // file's image_index order is arbitrary too); none = text-only call.
        for (int v = 0; v < c.num_views; ++v) order[v] = v;
        for (int v = c.num_views - 1; v > 0; --v) std::swap(order[v], order[rng.Below(v + 1)]);
        for (int v : order) {
          if (rng.Bernoulli(0.5)) t.uploaded_views.push_back(v);
        }
        const double n = static_cast<double>(t.uploaded_views.size());
        const bool has_key = std::find(t.uploaded_views.begin(), t.uploaded_views.end(), key) !=
                             t.uploaded_views.end();
        mean = c.cloud_score_mean + (has_key ? c.key_view_bonus : 0.0) + c.per_view_bonus * n;
        time = c.cloud_time_s + c.per_view_time_s * n;
        cost = c.cloud_usage_usd + c.per_view_usage_usd * n;
      }
      t.score = std::clamp(mean + c.score_noise * rng.Normal(), 0.0, kMaxScore);
      // Clamped like an invalid config's other fields, so the output loads.
      t.interaction_time_s = std::min(time * rng.Uniform(0.8, 1.2), kMaxTurnTimeS);
      t.usage_cost_usd = std::min(cost * rng.Uniform(0.9, 1.1), kMaxTurnCostUsd);
      const bool refusal = rng.Bernoulli(c.refusal_probability);
      t.answer = Filler(rng, refusal ? std::string(kRefusals[rng.Below(3)]) : std::string(),
                        c.answer_length);

      // Prompt-view relevance in M4A1's range (0.13-0.28); the key view is
      // always above every other view.
      std::vector<double>& row = ep.association[i];
      row.resize(c.num_views);
      for (int v = 0; v < c.num_views; ++v) {
        row[v] = v == key ? rng.Uniform(0.27, 0.40) : rng.Uniform(0.10, 0.25);
      }
    }
  }
  return d;
}

}  // namespace lcio::data
