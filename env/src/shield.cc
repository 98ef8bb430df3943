#include "lcio/env/shield.h"

#include <algorithm>

namespace lcio::env {
bool WithinBudget(double cost, double remaining) {
  return cost <= remaining + 1e-12 * (1.0 + remaining);
}

namespace {
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

namespace {

// The shield on any cost source: n actions, each's time, money and
// normalised cost; `scores` (optional) rank the replacements.
template <typename Time, typename Money, typename Norm>
ShieldDecision ShieldOn(int n, Time time_s, Money money_usd, Norm norm_cost, int proposed,
                        const std::vector<double>* scores, double remaining_latency_s,
                        double remaining_money_usd, int reserve_turns) {
  ShieldDecision d;
  if (n <= 0) return d;
  double min_time = time_s(0), min_money = money_usd(0);
  for (int a = 1; a < n; ++a) {
    min_time = std::min(min_time, time_s(a));
    min_money = std::min(min_money, money_usd(a));
  }
  const auto fits = [&](int a, int reserve) {
    return FitsCosts(time_s(a), money_usd(a), min_time, min_money, remaining_latency_s,
                     remaining_money_usd, reserve);
  };
  if (proposed >= 0 && proposed < n && fits(proposed, reserve_turns)) {
    d.action = proposed;
    return d;
  }
  const bool ranked = scores && static_cast<int>(scores->size()) == n;
  int best = -1;
  for (int a = 0; a < n; ++a) {
    if (!fits(a, reserve_turns)) continue;
    if (best < 0 || (ranked ? (*scores)[a] > (*scores)[best] : norm_cost(a) < norm_cost(best)))
      best = a;
  }
  if (best < 0) {
    // The reserve is spent: the cheapest action that still fits outright.
    for (int a = 0; a < n; ++a) {
      if (!fits(a, 0)) continue;
      if (best < 0 || norm_cost(a) < norm_cost(best)) best = a;
    }
  }
  if (best < 0) {
    d.nothing_fits = true;
    best = 0;  // the cheapest; ties to the lower index (CheapestAction)
    for (int a = 1; a < n; ++a)
      if (norm_cost(a) < norm_cost(best)) best = a;
  }
  d.action = best;
  d.overridden = best != proposed;
  return d;
}

}  // namespace

ShieldDecision Shield(const CostModel& costs, int proposed, const std::vector<double>* scores,
                      double remaining_latency_s, double remaining_money_usd, int reserve_turns) {
  return ShieldOn(
      costs.num_actions(), [&costs](int a) { return costs.time_s(a); },
      [&costs](int a) { return costs.money_usd(a); },
      [&costs](int a) { return NormCost(costs, a); }, proposed, scores, remaining_latency_s,
      remaining_money_usd, reserve_turns);
}

ShieldDecision ShieldWithinRequestBudget(const CostModel& costs, int proposed,
                                         const std::vector<double>* scores,
                                         double remaining_latency_s, double remaining_money_usd,
                                         double request_money_usd, int reserve_turns) {
  ShieldDecision d =
      Shield(costs, proposed, scores, remaining_latency_s, remaining_money_usd, reserve_turns);
  if (!d.nothing_fits || !(request_money_usd > remaining_money_usd)) return d;
  const int n = costs.num_actions();
  const bool ranked = scores && static_cast<int>(scores->size()) == n;
  // Which of two actions equal in money is preferred.
  const auto preferred = [&](int a, int b) {
    return ranked ? (*scores)[a] > (*scores)[b] : NormCost(costs, a) < NormCost(costs, b);
  };
  int best = -1;
  for (int a = 0; a < n; ++a) {
    if (!Fits(costs, a, remaining_latency_s, request_money_usd, reserve_turns)) continue;
    if (best < 0 || costs.money_usd(a) < costs.money_usd(best) ||
        (costs.money_usd(a) == costs.money_usd(best) && preferred(a, best)))
      best = a;
  }
  if (best < 0)
    return Shield(costs, proposed, scores, remaining_latency_s, request_money_usd, reserve_turns);
  return ShieldDecision{best, best != proposed, false};
}

ShieldDecision ShieldByCost(const std::vector<double>& time_s, const std::vector<double>& money_usd,
                            int proposed, double remaining_latency_s, double remaining_money_usd,
                            int reserve_turns) {
  const int n = static_cast<int>(std::min(time_s.size(), money_usd.size()));
  if (n == 0) return ShieldDecision{};
  const auto [t_lo, t_hi] = std::minmax_element(time_s.begin(), time_s.begin() + n);
  const auto [m_lo, m_hi] = std::minmax_element(money_usd.begin(), money_usd.begin() + n);
  // As CostModel::Create normalises: (x - lo) / (hi - lo), 0 when flat.
  const auto norm = [](double x, double lo, double hi) {
    return hi > lo ? (x - lo) / (hi - lo) : 0.0;
  };
  const double tl = *t_lo, th = *t_hi, ml = *m_lo, mh = *m_hi;
  return ShieldOn(
      n, [&time_s](int a) { return time_s[a]; }, [&money_usd](int a) { return money_usd[a]; },
      [&](int a) { return norm(time_s[a], tl, th) + norm(money_usd[a], ml, mh); }, proposed,
      nullptr, remaining_latency_s, remaining_money_usd, reserve_turns);
}

}  // namespace lcio::env
