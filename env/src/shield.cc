#include "lcio/env/shield.h"

#include <algorithm>

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
          double remaining_money_usd, int reserve_turns) {
  double min_time = costs.time_s(0), min_money = costs.money_usd(0);
  for (int a = 1; a < costs.num_actions(); ++a) {
    min_time = std::min(min_time, costs.time_s(a));
    min_money = std::min(min_money, costs.money_usd(a));
  }
  return FitsCosts(costs.time_s(action), costs.money_usd(action), min_time, min_money,
                   remaining_latency_s, remaining_money_usd, reserve_turns);
}

bool FitsCosts(double time_s, double money_usd, double min_time_s, double min_money_usd,
               double remaining_latency_s, double remaining_money_usd, int reserve_turns) {
  const int reserve = std::max(0, reserve_turns);
  return WithinBudget(time_s + reserve * min_time_s, remaining_latency_s) &&
         WithinBudget(money_usd + reserve * min_money_usd, remaining_money_usd);
}

int CheapestAction(const CostModel& costs) {
  int best = 0;
  for (int a = 1; a < costs.num_actions(); ++a)
    if (NormCost(costs, a) < NormCost(costs, best)) best = a;
  return best;
}

ShieldDecision Shield(const CostModel& costs, int proposed, const std::vector<double>* scores,
                      double remaining_latency_s, double remaining_money_usd, int reserve_turns) {
  ShieldDecision d;
  if (Fits(costs, proposed, remaining_latency_s, remaining_money_usd, reserve_turns)) {
    d.action = proposed;
    return d;
  }
  const bool ranked = scores && static_cast<int>(scores->size()) == costs.num_actions();
  int best = -1;
  for (int a = 0; a < costs.num_actions(); ++a) {
    if (!Fits(costs, a, remaining_latency_s, remaining_money_usd, reserve_turns)) continue;
    if (best < 0 ||
        (ranked ? (*scores)[a] > (*scores)[best] : NormCost(costs, a) < NormCost(costs, best)))
      best = a;
  }
  if (best < 0) {
    // The reserve is spent: the cheapest action that still fits outright.
    for (int a = 0; a < costs.num_actions(); ++a) {
      if (!Fits(costs, a, remaining_latency_s, remaining_money_usd, 0)) continue;
      if (best < 0 || NormCost(costs, a) < NormCost(costs, best)) best = a;
    }
  }
  if (best < 0) {
    d.nothing_fits = true;
    best = CheapestAction(costs);
  }
  d.action = best;
  d.overridden = best != proposed;
  return d;
}

ShieldDecision ShieldByCost(const std::vector<double>& time_s, const std::vector<double>& money_usd,
                            int proposed, double remaining_latency_s, double remaining_money_usd,
                            int reserve_turns) {
  const int n = static_cast<int>(std::min(time_s.size(), money_usd.size()));
  ShieldDecision d;
  if (n == 0) return d;
  const auto [t_lo, t_hi] = std::minmax_element(time_s.begin(), time_s.begin() + n);
  const auto [m_lo, m_hi] = std::minmax_element(money_usd.begin(), money_usd.begin() + n);
  // As CostModel::Create normalises: (x - lo) / (hi - lo), 0 when flat.
  const auto norm = [](double x, double lo, double hi) {
    return hi > lo ? (x - lo) / (hi - lo) : 0.0;
  };
  const auto cost = [&](int a) {
    return norm(time_s[a], *t_lo, *t_hi) + norm(money_usd[a], *m_lo, *m_hi);
  };
  const auto fits = [&](int a, int reserve) {
    return FitsCosts(time_s[a], money_usd[a], *t_lo, *m_lo, remaining_latency_s,
                     remaining_money_usd, reserve);
  };
  if (proposed >= 0 && proposed < n && fits(proposed, reserve_turns)) {
    d.action = proposed;
    return d;
  }
  int best = -1;
  for (int reserve : {reserve_turns, 0}) {
    for (int a = 0; a < n; ++a)
      if (fits(a, reserve) && (best < 0 || cost(a) < cost(best))) best = a;
    if (best >= 0) break;
  }
  if (best < 0) {
    d.nothing_fits = true;
    best = 0;
    for (int a = 1; a < n; ++a)
      if (cost(a) < cost(best)) best = a;
  }
  d.action = best;
  d.overridden = best != proposed;
  return d;
}

}  // namespace lcio::env
