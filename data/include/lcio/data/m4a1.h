// M4A1 dataset types and loading. The schema is the original release's
// (see data/M4A1.SOURCE.md); nothing here assumes a number of episodes,
// views or tasks: those come from the data or from LoadOptions.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lcio::data {

// Who answered a turn.
enum class Target : int { kLocal = 0, kCloud = 1 };

// The largest score, time and cost a turn may carry (M4A1's are about 0-10,
// seconds and cents): beyond them a mean or a reward overflows into inf or
// NaN. The server's Report rules are the same (server/request.h).
inline constexpr double kMaxTurnScore = 1000;
inline constexpr double kMaxTurnTimeS = 1e6;
inline constexpr double kMaxTurnCostUsd = 1e6;
// The longest task, device or network name, and the largest turn index: the
// decision log's readers take no more, so each source of them (data files,
// profile files, policy artifacts, Decide and Report requests) is held to
// the same bounds, and nothing the server logs is unreadable.
inline constexpr size_t kMaxNameBytes = 256;
inline constexpr int kMaxTurnIndex = 1 << 30;

struct Turn {
  std::string question;
  std::string task;     // task_cat as written in the file
  int task_index = -1;  // position of `task` in Dataset::tasks
  Target target = Target::kLocal;
  // image_index of the file: views uploaded with a cloud call, in file order.
  // Empty for local turns and for text-only cloud calls.
  std::vector<int> uploaded_views;
  std::string answer;
  double score = 0;               // response quality as logged
  double interaction_time_s = 0;  // measured latency of the turn
  double usage_cost_usd = 0;      // measured money of the turn
};

struct Episode {
  int64_t id = 0;
  std::vector<std::string> image_paths;  // one per view
  std::vector<Turn> turns;
  std::vector<std::vector<double>> association;  // [turn][view], prompt-view relevance
};

struct Dataset {
  std::vector<std::string> tasks;  // task vocabulary; index = Turn::task_index
  int num_views = 0;
  std::vector<Episode> episodes;
  std::string source;  // file name (or "<memory>") used in messages

  size_t num_turns() const;
  // Position of the episode with this id, or -1.
  int64_t IndexOfEpisode(int64_t id) const;
};

struct LoadOptions {
  // When set, the task vocabulary is fixed (in this order) and any other task
  // is an error. When unset, the vocabulary is the one the episodes declare
  // (an lcio extension: an episode's "tasks", the same list in every episode
  // that has one; joined logs write the serving policy's), else the sorted
  // set of tasks seen, which for M4A1 gives the reference order.
  std::optional<std::vector<std::string>> task_vocabulary;
  // When set, every episode must have exactly this many views. When unset,
  // the first episode decides and the others must agree.
  std::optional<int> num_views;
};

// Parses and validates M4A1 JSON. Errors name the source, episode id, turn
// index, field, offending value and the rule broken.
absl::StatusOr<Dataset> ParseM4A1(std::string_view json, std::string_view source_name,
                                  const LoadOptions& options = {});
absl::StatusOr<Dataset> LoadM4A1File(const std::string& path, const LoadOptions& options = {});

// Serialises to the same schema (used by the synthetic generator and the
// service's outcome log). Round-trips through ParseM4A1.
std::string ToM4A1Json(const Dataset& dataset, bool pretty = false);
// The same text streamed to `out` one episode at a time (for files too large
// to hold twice in memory). DataLoss when the stream fails.
absl::Status WriteM4A1Json(const Dataset& dataset, std::ostream& out, bool pretty = false);

// SHA-256 of a byte string, lowercase hex (used to tie artifacts to data).
std::string Sha256Hex(std::string_view bytes);

// The reference's refusal rule: a turn whose answer contains any of the
// phrases (case-sensitive substring) has response score 0.
struct RefusalRule {
  std::vector<std::string> phrases = {"sorry", "I don't have", "can't"};
  bool IsRefusal(std::string_view answer) const;
  double ResponseScore(const Turn& turn) const;
};

}  // namespace lcio::data
