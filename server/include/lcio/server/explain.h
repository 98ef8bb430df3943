// DecideResponse.scores for explain: what each action's raw score means (its
// softmax probability), what the response model predicts for it, what it
// costs and which remaining budget, if any, rules it out.
#pragma once

#include <string>
#include <vector>

#include "lcio/env/action_table.h"
#include "lcio/env/profiles.h"
#include "lcio/v1/offloader.pb.h"

namespace lcio::server {

// `predicted`: the response model's prediction per action, or empty when the
// policy is not response-aware. `descriptions`: actions.Describe(a) for every
// action (ServingPolicy keeps them). Replaces response->scores. When the
// response says the fallback table answered (fallback_fixed_action, with the
// fixed action as proposed_action), the explanation also ends the warnings
// with a note saying so (kFallbackNote...), once.
void ExplainScores(const env::ActionTable& actions, const std::vector<std::string>& descriptions,
                   const env::CostModel& costs, const std::vector<float>& scores,
                   const std::vector<double>& predicted, double latency_s, double money_usd,
                   v1::DecideResponse* response);

// The fallback note: kFallbackNotePrefix, the fallback answer's description,
// kFallbackNoteSuffix.
inline constexpr char kFallbackNotePrefix[] = "fallback: ";
inline constexpr char kFallbackNoteSuffix[] =
    " answered: the artifact's validation did not show the network ahead of the best fixed "
    "action for this profile and budget (scores rank it first, then the other actions cheapest "
    "first)";
// Removes the explanation from a response: its scores and the fallback note.
void DropExplanation(v1::DecideResponse* response);

}  // namespace lcio::server
