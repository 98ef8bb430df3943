// Joined traffic: M4A1-schema episodes (one per conversation, one turn per
// decision with its Report's outcome) plus what off-policy evaluation needs
// beyond the schema, as extra fields the M4A1 loader ignores:
//
//   per interaction  "propensity": probability the serving policy gave the
//                    logged action, in (0, 1] (1: no exploration)
//                    "remaining_latency_s", "remaining_money_usd": the
//                    remaining budgets the serving policy and its shield saw
//                    before that turn (optional; lcio-join writes them)
//                    "remaining_request_money_usd": the request's own
//                    remaining money budget where fleet control lowered
//                    remaining_money_usd below it (optional; absent: the
//                    same), which the shield falls back to when nothing
//                    fits the lowered one (env::ShieldWithinRequestBudget)
//   per episode      "latency_budget_s", "money_budget_usd": the
//                    conversation's budgets (optional; defaults apply)
//                    "device", "network": the profile the conversation was
//                    served for, which the replay prices it under (optional,
//                    both or neither; without them, the run's profile)
//                    "tasks": the serving policy's task vocabulary, the same
//                    in every episode (optional; without it the vocabulary
//                    is the tasks the episodes name, as for M4A1 data)
//
// So a joined file is also training data (lcio-train --data reads it).
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"

namespace lcio::ope {

struct ConversationBudget {
  std::optional<double> latency_s, money_usd;
  // Per turn (empty, or one per turn): what was left before the turn as the
  // serving policy saw it. Under fleet control that is the scaled remaining
  // budget, which the conversation's budget minus the spend cannot give.
  std::vector<std::optional<double>> remaining_latency_s, remaining_money_usd;
  // Per turn (empty, or one per turn): the request's own remaining money
  // budget, where fleet control lowered remaining_money_usd below it.
  std::vector<std::optional<double>> remaining_request_money_usd;
};

// The smallest propensity a joined log may carry: an importance weight's
// square must stay finite ((1/1e-100)^2 = 1e200; below about 1e-154 it
// overflows and every interval turns NaN).
inline constexpr double kMinPropensity = 1e-100;

// The device and network a conversation was served for; empty: not logged.
struct ServedProfile {
  std::string device, network;
  bool known() const { return !device.empty(); }
};

struct JoinedLog {
  data::Dataset dataset;
  std::vector<std::vector<double>> propensity;  // [episode][turn]
  std::vector<ConversationBudget> budget;       // [episode]
  std::vector<ServedProfile> profile;           // [episode], or empty: none logged
};

// Errors name the source, episode id, turn, field, value and rule. A turn
// without "propensity" is an error unless `default_propensity` is given.
absl::StatusOr<JoinedLog> ParseJoinedLog(std::string_view json, std::string_view source,
                                         std::optional<double> default_propensity = std::nullopt,
                                         const data::LoadOptions& options = {});
absl::StatusOr<JoinedLog> LoadJoinedLog(const std::string& path,
                                        std::optional<double> default_propensity = std::nullopt,
                                        const data::LoadOptions& options = {});

// Streams one episode at a time (memory bounded by one conversation):
// Begin, then Add per episode, then Finish.
class JoinedLogWriter {
 public:
  explicit JoinedLogWriter(std::ostream* out) : out_(out) {}
  // `tasks` is the task vocabulary the episodes' task_index refer to.
  absl::Status Add(const data::Episode& episode, const std::vector<std::string>& tasks,
                   const std::vector<double>& propensity, const ConversationBudget& budget,
                   const ServedProfile& profile = {});
  absl::Status Finish();
  int64_t episodes() const { return episodes_; }

 private:
  std::ostream* out_;
  int64_t episodes_ = 0;
};

absl::Status WriteJoinedLog(const JoinedLog& log, std::ostream& out);

}  // namespace lcio::ope
