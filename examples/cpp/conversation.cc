// A multi-turn conversation with the lcio decision service: each turn asks
// Decide with what is left of the conversation's budgets, "answers" with
// the chosen LLM, reports what the turn really cost, and carries the
// remaining budgets to the next turn.
//   conversation TARGET [CONVERSATION_ID]
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "lcio/client/client.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: conversation HOST:PORT [CONVERSATION_ID]\n");
    return 2;
  }
  lcio::ClientOptions options;
  options.target = argv[1];
  // A new id per run: a server remembers a conversation
  // (--conversation_idle_s) and refuses its turn 0 a second time.
  const std::string conversation =
      argc > 2 ? argv[2] : "example-cpp-" + std::to_string(std::random_device{}());
  auto client = lcio::Client::Create(options);
  if (!client.ok()) {
    std::fprintf(stderr, "client: %s\n", client.status().ToString().c_str());
    return 1;
  }
  lcio::v1::PolicyInfo policy;
  if (absl::Status s = (*client)->GetPolicy(&policy); !s.ok()) {
    std::fprintf(stderr, "GetPolicy: %s\n", s.ToString().c_str());
    return 1;
  }
  // The device's camera views and each prompt's association with them (in a
  // real device: CLIP similarity of prompt and image, rescaled to [0, 1]).
  const std::vector<std::string> prompts = {
      "What is on the kitchen counter?",
      "Is the stove on?",
      "Write a shopping list for what is missing in the fridge.",
  };
  double latency_left_s = 30, money_left_usd = 0.05;
  for (int turn = 0; turn < static_cast<int>(prompts.size()); ++turn) {
    lcio::v1::DecideRequest request;
    request.set_conversation_id(conversation);
    request.set_turn_index(turn);
    request.set_prompt(prompts[turn]);
    for (int v = 0; v < policy.view_names_size(); ++v) {
      lcio::v1::View* view = request.add_views();
      view->set_name(policy.view_names(v));
      view->set_association(0.2 + 0.6 * ((v + turn) % policy.view_names_size()) /
                                      std::max(1, policy.view_names_size() - 1));
    }
    request.mutable_budget()->set_latency_s(latency_left_s);
    request.mutable_budget()->set_money_usd(money_left_usd);
    lcio::v1::DecideResponse decision;
    if (absl::Status s = (*client)->Decide(request, &decision); !s.ok()) {
      std::fprintf(stderr, "Decide turn %d: %s\n", turn, s.ToString().c_str());
      return 1;
    }
    // Here the device would run the chosen LLM; the example takes the
    // expected costs as what the turn really cost.
    const bool cloud = decision.target() == lcio::v1::TARGET_CLOUD;
    lcio::v1::ReportRequest report;
    report.set_conversation_id(conversation);
    report.set_turn_index(turn);
    report.set_decision_id(decision.decision_id());
    report.set_prompt(prompts[turn]);
    report.set_task(decision.task());
    report.set_target(decision.target());
    for (const auto& up : decision.upload()) report.add_uploaded_views(up.name());
    for (const auto& view : request.views()) report.add_association(view.association());
    report.set_answer(cloud ? "an answer from the cloud LLM" : "an answer from the local LLM");
    report.set_score(cloud ? 1.5 : 1.0);  // M4A1's scale: 0 to 9, mostly 0 to 2
    report.set_interaction_time_s(decision.expected_latency_s());
    report.set_usage_cost_usd(decision.expected_money_usd());
    lcio::v1::ReportResponse recorded;
    const absl::Status reported = (*client)->Report(report, &recorded);
    // FAILED_PRECONDITION: the server keeps no Report log; the decision stands.
    if (!reported.ok() && reported.code() != absl::StatusCode::kFailedPrecondition) {
      std::fprintf(stderr, "Report turn %d: %s\n", turn, reported.ToString().c_str());
      return 1;
    }
    // budget_after is negative when nothing fits; a Decide budget must be >= 0.
    latency_left_s = std::max(0.0, decision.budget_after().latency_s());
    money_left_usd = std::max(0.0, decision.budget_after().money_usd());
    std::printf("turn %d: %s, %d views, task %s; left %.2f s, %.4f USD%s\n", turn,
                cloud ? "cloud" : "local", decision.upload_size(), decision.task().c_str(),
                latency_left_s, money_left_usd, reported.ok() ? ", reported" : "");
  }
  return 0;
}
