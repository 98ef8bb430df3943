#include "lcio/env/shield.h"

namespace lcio::env {
namespace {
// Budgets are sums of the same few costs; a relative slack absorbs the
// rounding of those sums without admitting any real overspend.
bool WithinBudget(double cost, double remaining) {
  return cost <= remaining + 1e-12 * (1.0 + remaining);
}
double NormCost(const CostModel& costs, int a) { return costs.norm_time(a) + costs.norm_money(a); }
}  // namespace

bool Fits(const CostModel& costs, int action, double remaining_latency_s,
          double remaining_money_usd) {
  return WithinBudget(costs.time_s(action), remaining_latency_s) &&
         WithinBudget(costs.money_usd(action), remaining_money_usd);
}

int CheapestAction(const CostModel& costs) {
  int best = 0;
  for (int a = 1; a < costs.num_actions(); ++a)
    if (NormCost(costs, a) < NormCost(costs, best)) best = a;
  return best;
}

ShieldDecision Shield(const CostModel& costs, int proposed, const std::vector<double>* scores,
                      double remaining_latency_s, double remaining_money_usd) {
  ShieldDecision d;
  if (Fits(costs, proposed, remaining_latency_s, remaining_money_usd)) {
    d.action = proposed;
    return d;
  }
  d.overridden = true;
  int best = -1;
  for (int a = 0; a < costs.num_actions(); ++a) {
    if (!Fits(costs, a, remaining_latency_s, remaining_money_usd)) continue;
    if (best < 0) {
      best = a;
      continue;
    }
    const bool better = scores && static_cast<int>(scores->size()) == costs.num_actions()
                            ? (*scores)[a] > (*scores)[best]
                            : NormCost(costs, a) < NormCost(costs, best);
    if (better) best = a;
  }
  if (best < 0) {
    d.nothing_fits = true;
    best = CheapestAction(costs);
  }
  d.action = best;
  d.overridden = best != proposed;
  return d;
}

}  // namespace lcio::env
