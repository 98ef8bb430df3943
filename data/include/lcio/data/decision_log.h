// The decision log's record: what the server knew and did for one answered
// Decide, one JSON object per line (JSON lines). Versioned by
// `schema_version`; docs/decision_log.md documents every field. This library
// has no gRPC or LibTorch dependency so that offline tools (off-policy
// evaluation, joins with the Report log) read exactly what the server writes.
//
// Compatibility: a reader accepts the versions it knows (1 and 2: the same
// record, per-action objects in 1, per-field columns in 2) and refuses
// unknown fields, so any change of fields is a new schema_version.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lcio::data {

// The version written; readers also read every earlier one.
inline constexpr int kDecisionLogSchemaVersion = 2;

// One turn of the history window the policy observed.
struct DecisionHistoryTurn {
  int action = 0;    // action index taken at that turn
  std::string task;  // task name of that turn
};

// The request as the policy saw it.
struct DecisionContext {
  std::string task;  // task used (given or inferred)
  bool task_inferred = false;
  double task_confidence = 1;           // classifier posterior, 1 when given
  std::vector<std::string> view_names;  // the serving policy's views, in its order
  std::vector<double> association;      // one per view, in [0, 1]
  double latency_budget_s = 0;          // remaining before this turn
  double money_budget_usd = 0;          // what the policy and the shield saw
  // The request's own remaining money budget when it is above
  // money_budget_usd (the server's fleet controller lowers what the policy
  // sees); unset: money_budget_usd. Written as a number (version 2).
  std::optional<double> request_money_budget_usd;
  double RequestMoneyBudget() const { return request_money_budget_usd.value_or(money_budget_usd); }
  std::string device, network;               // profiles used for the costs
  std::vector<DecisionHistoryTurn> history;  // the window observed, oldest first
};

// One action of the policy's action table.
struct DecisionAction {
  std::string description;  // "local", "cloud", "cloud+{0,2}"
  // The policy's score, higher preferred: a float32 value (the writer
  // rounds to float32, version 2 readers read float32 values).
  double score = 0;
  // Probability with which the server would have taken this action for this
  // request (exploration included); the taken action's is its propensity.
  double probability = 0;
  bool allowed = false;  // the shield would allow it (fits both budgets)
  double expected_latency_s = 0, expected_money_usd = 0;
};

struct DecisionExploration {
  std::string mode = "none";  // "none", "epsilon", "softmax"
  double parameter = 0;       // epsilon, or the softmax temperature
  bool opted_out = false;     // the request asked for no exploration
};

// A second policy's view of the same request (--shadow_policy), computed
// after the answer was sent.
struct DecisionShadow {
  std::string policy_version;
  int proposed_action = 0;            // its own argmax
  int action = 0;                     // what it would have taken (shield and exploration rule)
  std::vector<double> scores;         // float32 values, as DecisionAction::score
  std::vector<double> probabilities;  // one per action, sums to 1
  double expected_latency_s = 0, expected_money_usd = 0;
  bool fallback = false;  // its own fallback table answered (written only when true)
};

struct DecisionRecord {
  int schema_version = kDecisionLogSchemaVersion;  // as read; writers write the current one
  std::string decision_id;                         // as in DecideResponse and ReportRequest
  std::string time_utc;                            // RFC 3339, when the decision was answered
  std::string policy_version;
  std::string conversation_id;
  int turn_index = 0;
  DecisionContext context;
  std::vector<DecisionAction> actions;  // index = action index
  int proposed_action = 0;              // the policy's argmax, before the shield
  int taken_action = 0;                 // what the response told the client
  bool shield_overridden = false;       // the shield replaced the policy's choice
  bool nothing_fits = false;            // no action fit: the cheapest was taken
  // The policy artifact's validated fallback table answered (proposed_action
  // is its answer, not the network's). Written only when true.
  bool fallback = false;
  DecisionExploration exploration;
  bool explored = false;  // the taken action is not the unexplored choice
  double expected_latency_s = 0, expected_money_usd = 0;  // of the taken action
  std::optional<DecisionShadow> shadow;
};

// The taken action's probability (its propensity).
double TakenProbability(const DecisionRecord& record);

// A decision id is "<conversation_id>/<turn_index>/<16 lowercase hex
// digits>" (lcio-server's Decide). The prefix it starts with for a turn, and whether
// `decision_id` is one issued for that turn: a Report quoting another
// conversation's or turn's decision would attach its outcome to the wrong
// decision.
std::string DecisionIdPrefix(std::string_view conversation_id, int turn_index);
bool DecisionIdIsOfTurn(std::string_view decision_id, std::string_view conversation_id,
                        int turn_index);

// One line, without the newline. Strings that are not valid UTF-8 are
// replaced, never thrown on (they come from the network).
std::string ToJsonLine(const DecisionRecord& record);
// The same line with its '\n', appended to `out` (writers batching lines).
void AppendJsonLine(const DecisionRecord& record, std::string* out);

// Parses and validates one line (a trailing '\n' or "\r\n" is allowed):
// every field present with its type, no unknown field, a known
// schema_version, indices in range, probabilities in [0, 1] summing to 1,
// budgets and costs finite and >= 0. INVALID_ARGUMENT names the field, the
// value and the rule.
absl::StatusOr<DecisionRecord> ParseDecisionLine(std::string_view line);

// Streams a decision log file: `visit` gets each valid record in order;
// lines that fail ParseDecisionLine are counted and (the first 20)
// described as "FILE line N: why". A last line without its newline is the
// write of a crash: counted as skipped.
struct DecisionLogScan {
  int64_t records = 0;
  int64_t skipped_lines = 0;
  std::vector<std::string> problems;
};
absl::StatusOr<DecisionLogScan> ScanDecisionLog(const std::string& path,
                                                const std::function<void(DecisionRecord)>& visit);

}  // namespace lcio::data
