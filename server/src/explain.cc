#include "lcio/server/explain.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lcio/env/shield.h"

namespace lcio::server {

void ExplainScores(const env::ActionTable& actions, const std::vector<std::string>& descriptions,
                   const env::CostModel& costs, const std::vector<float>& scores,
                   const std::vector<double>& predicted, double latency_s, double money_usd,
                   v1::DecideResponse* response) {
  DropExplanation(response);
  const int fixed = response->proposed_action();
  if (response->fallback_fixed_action() && fixed >= 0 &&
      fixed < static_cast<int>(descriptions.size()))
    response->add_warnings(
        absl::StrCat(kFallbackNotePrefix, descriptions[fixed], kFallbackNoteSuffix));
  if (scores.empty()) return;
  // Softmax, shifted by the largest score so that exp never overflows.
  const double top = *std::max_element(scores.begin(), scores.end());
  double total = 0;
  std::vector<double> weights(scores.size());
  for (size_t a = 0; a < scores.size(); ++a) total += weights[a] = std::exp(scores[a] - top);
  constexpr double kUnbounded = std::numeric_limits<double>::infinity();
  for (int a = 0; a < actions.size() && a < static_cast<int>(scores.size()); ++a) {
    v1::ActionScore* score = response->add_scores();
    score->set_action(a);
    score->set_description(descriptions[a]);
    score->set_score(scores[a]);
    score->set_probability(weights[a] / total);
    const bool fits = env::Fits(costs, a, latency_s, money_usd);
    score->set_fits_budget(fits);
    if (!fits) {
      // Each budget alone, the other unbounded: which of them refuses it.
      const bool latency = !env::Fits(costs, a, latency_s, kUnbounded);
      const bool money = !env::Fits(costs, a, kUnbounded, money_usd);
      score->set_binding_constraint(latency && money ? "latency,money"
                                    : latency        ? "latency"
                                    : money          ? "money"
                                                     : "latency,money");
    }
    score->set_expected_latency_s(costs.time_s(a));
    score->set_expected_money_usd(costs.money_usd(a));
    if (a < static_cast<int>(predicted.size())) score->set_predicted_response(predicted[a]);
  }
}

void DropExplanation(v1::DecideResponse* response) {
  response->clear_scores();
  auto* warnings = response->mutable_warnings();
  if (!warnings->empty() &&
      absl::StartsWith(warnings->Get(warnings->size() - 1), kFallbackNotePrefix))
    warnings->RemoveLast();
}

}  // namespace lcio::server
