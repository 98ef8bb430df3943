#include "lcio/server/exploration.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lcio/data/message.h"

namespace lcio::server {

absl::StatusOr<ExploreConfig> ExploreConfig::Parse(absl::string_view flag) {
  ExploreConfig config;
  if (flag.empty() || flag == "none") return config;
  const size_t colon = flag.find(':');
  const absl::string_view mode = flag.substr(0, colon);
  double value = 0;
  const bool has_value = colon != absl::string_view::npos &&
                         absl::SimpleAtod(flag.substr(colon + 1), &value) && std::isfinite(value);
  const std::string quoted =
      absl::StrCat("explore = \"", data::Shorten(std::string(flag), 64), "\"");
  if (mode == "epsilon") {
    if (!has_value || value < 0 || value > 1)
      return absl::InvalidArgumentError(
          absl::StrCat(quoted, ": epsilon:E needs E in [0, 1] (e.g. epsilon:0.05)"));
    config.mode = Mode::kEpsilon;
  } else if (mode == "softmax") {
    if (!has_value || value <= 0)
      return absl::InvalidArgumentError(
          absl::StrCat(quoted, ": softmax:T needs a finite temperature T > 0 (e.g. softmax:0.5)"));
    config.mode = Mode::kSoftmax;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(quoted, ": must be none, epsilon:E or softmax:T"));
  }
  config.parameter = value;
  return config;
}

const char* ExploreConfig::ModeName() const {
  switch (mode) {
    case Mode::kEpsilon:
      return "epsilon";
    case Mode::kSoftmax:
      return "softmax";
    case Mode::kNone:
      break;
  }
  return "none";
}

double ExplorationDraw(absl::string_view decision_id) {
  // FNV-1a, then the splitmix64 finaliser so that ids differing in their
  // last characters spread over the whole range. Fixed here, never
  // std::hash: the draw must be the same on every build.
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : decision_id) h = (h ^ c) * 0x100000001b3ull;
  h += 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

ExploreChoice Explore(const ExploreConfig& config, const std::vector<float>& scores,
                      const std::vector<bool>& allowed, int greedy, double u) {
  const int n = static_cast<int>(scores.size());
  ExploreChoice choice;
  choice.action = greedy;
  choice.probabilities.assign(n, 0.0);
  if (!config.enabled()) {
    choice.probabilities[greedy] = 1;
    return choice;
  }
  int num_allowed = 0;
  float best = -INFINITY;
  for (int a = 0; a < n; ++a)
    if (allowed[a]) {
      ++num_allowed;
      best = std::max(best, scores[a]);
    }
  if (num_allowed == 0 || !allowed[greedy]) {
    choice.probabilities[greedy] = 1;
    return choice;
  }
  std::vector<double>& p = choice.probabilities;
  if (config.mode == ExploreConfig::Mode::kEpsilon) {
    for (int a = 0; a < n; ++a)
      if (allowed[a]) p[a] = config.parameter / num_allowed;
    p[greedy] += 1 - config.parameter;
  } else {
    double sum = 0;
    for (int a = 0; a < n; ++a)
      if (allowed[a]) sum += p[a] = std::exp((scores[a] - best) / config.parameter);
    for (double& v : p) v /= sum;
  }
  // Inverse CDF in action order; rounding can leave u past the last sum,
  // which then takes the last action with a positive probability.
  double cumulative = 0;
  int last = greedy;
  for (int a = 0; a < n; ++a) {
    if (p[a] <= 0) continue;
    last = a;
    cumulative += p[a];
    if (u < cumulative) {
      choice.action = a;
      choice.explored = a != greedy;
      return choice;
    }
  }
  choice.action = last;
  choice.explored = last != greedy;
  return choice;
}

void FallbackRanking(const env::CostModel& costs, int fixed_action, std::vector<float>* scores) {
  const int n = static_cast<int>(scores->size());
  thread_local std::vector<float> values;
  thread_local std::vector<int> order;
  values.assign(scores->begin(), scores->end());
  const auto all_finite = [] {
    for (float v : values)
      if (!std::isfinite(v)) return false;
    return true;
  };
  bool finite = all_finite();
  if (finite) {
    std::sort(values.begin(), values.end(), std::greater<float>());
    // Strictly decreasing, so that the argmax (and any reader's) is the
    // fallback's answer even where the network's values tie.
    for (int i = 1; i < n; ++i)
      values[i] = std::min(values[i],
                           std::nextafter(values[i - 1], -std::numeric_limits<float>::infinity()));
    finite = all_finite();  // false only past -FLT_MAX
  }
  // A non-finite network value (which the decision log could not write as a
  // number, and which would tie or poison a softmax): the ranks themselves.
  if (!finite)
    for (int i = 0; i < n; ++i) values[i] = -static_cast<float>(i);
  order.resize(n);
  for (int a = 0; a < n; ++a) order[a] = a;
  auto norm_cost = [&costs](int a) { return costs.norm_time(a) + costs.norm_money(a); };
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return norm_cost(a) < norm_cost(b); });
  (*scores)[fixed_action] = values[0];
  int rank = 1;
  for (int a : order)
    if (a != fixed_action) (*scores)[a] = values[rank++];
}

std::vector<float> FallbackRankValues(int num_actions) {
  std::vector<float> values(static_cast<size_t>(std::max(0, num_actions)));
  for (size_t i = 1; i < values.size(); ++i) values[i] = -static_cast<float>(i);  // 0 first, not -0
  return values;
}

}  // namespace lcio::server
