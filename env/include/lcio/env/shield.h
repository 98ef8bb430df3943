// The budget shield: one function used by the evaluator and the server. An
// action whose cost would take the conversation past either remaining budget
// is never taken; when nothing fits, the cheapest action is.
//
// Conversations have turns still to come whose number nobody knows, and even
// the cheapest action (local) costs a little. So an action "fits" only if,
// after it, the budget still pays for `reserve_turns` more turns of the
// cheapest action. With that reserve exhausted the shield still takes any
// action that fits the budget outright, cheapest first.
#pragma once

#include <vector>

#include "lcio/env/profiles.h"

namespace lcio::env {

inline constexpr int kDefaultReserveTurns = 4;

bool Fits(const CostModel& costs, int action, double remaining_latency_s,
          double remaining_money_usd, int reserve_turns = kDefaultReserveTurns);
// The same rule on plain numbers: an action costing (time_s, money_usd) fits
// when it and `reserve_turns` turns of the cheapest costs (min_*) fit the
// remaining budgets. The observation encoder's fit features use it too.
bool FitsCosts(double time_s, double money_usd, double min_time_s, double min_money_usd,
               double remaining_latency_s, double remaining_money_usd, int reserve_turns);
// Lowest normalised time + money; ties to the lower index (local, for the
// built-in profiles).
int CheapestAction(const CostModel& costs);

// Budgets are sums of the same few costs; a relative slack absorbs the
// rounding of those sums without admitting any real overspend. The one test
// of "within a budget": the shield's and the evaluator's over-budget count.
bool WithinBudget(double cost, double remaining);

struct ShieldDecision {
  int action = 0;
  bool overridden = false;    // the proposal did not fit
  bool nothing_fits = false;  // not even the cheapest action fits: it is taken anyway
};

// `scores` (optional, one per action, higher preferred) rank the fallbacks:
// the best-scoring action that fits replaces a proposal that does not. With
// no scores the cheapest fitting action does.
// The shield without scores on plain per-action costs (a decision context's
// action_time_s / action_money_usd): the same decision as Shield with the
// CostModel those costs come from, whose normalisation is min-max over the
// actions' values (every slot it normalises over is some action's).
ShieldDecision ShieldByCost(const std::vector<double>& time_s, const std::vector<double>& money_usd,
                            int proposed, double remaining_latency_s, double remaining_money_usd,
                            int reserve_turns = kDefaultReserveTurns);
ShieldDecision Shield(const CostModel& costs, int proposed, const std::vector<double>* scores,
                      double remaining_latency_s, double remaining_money_usd,
                      int reserve_turns = kDefaultReserveTurns);

// The shield under a money budget lowered below the request's own (fleet
// control: remaining_money_usd = s x request_money_usd, s <= 1). Where
// something fits the lowered budget, Shield's decision. Where nothing does,
// Shield would take its cheapest action by normalised time + money, which can
// cost more than the request's own budget allows (a cloud call on a slow
// device); this takes instead the action cheapest in money among those that
// fit the request's own budgets (ties to the higher score; without scores, to
// the lower normalised cost, then the lower index), and only when nothing
// fits those either, Shield's decision under the request's budget. The
// server, its shadow policy and the off-policy replay all decide by it.
ShieldDecision ShieldWithinRequestBudget(const CostModel& costs, int proposed,
                                         const std::vector<double>* scores,
                                         double remaining_latency_s, double remaining_money_usd,
                                         double request_money_usd,
                                         int reserve_turns = kDefaultReserveTurns);

}  // namespace lcio::env
