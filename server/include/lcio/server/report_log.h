// The outcome log behind Report: one self-checking line per record,
//   <crc32 of the JSON, 8 lowercase hex digits> <space> <JSON object> \n
// Records are appended by the generic append log (append_log.h: group
// commit, cut-back after a failed write, rotation, free-space floor). The
// reader skips lines that fail their check. Guarantees: docs/service.md,
// "Report log".
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lcio/data/m4a1.h"
#include "lcio/server/append_log.h"

namespace lcio::server {

uint32_t Crc32(absl::string_view bytes);

struct ReportRecord {
  std::string conversation_id;
  int turn_index = 0;
  std::string decision_id;
  std::string prompt;
  std::string task;
  bool cloud = false;
  std::vector<int> uploaded_views;      // indices into view_names
  std::vector<std::string> view_names;  // the serving policy's views
  std::vector<double> association;      // one per view
  std::string answer;
  double score = 0;
  double interaction_time_s = 0;
  double usage_cost_usd = 0;
  std::vector<std::string> tasks;  // the serving policy's task vocabulary
  std::string policy_version;
  std::string received_utc;
};

std::string ReportRecordToJson(const ReportRecord& record);
absl::StatusOr<ReportRecord> ReportRecordFromJson(absl::string_view json);
// The full line, newline included.
std::string EncodeReportLine(const ReportRecord& record);

// The file layer and the group commit are the generic append log's
// (append_log.h); these names keep the Report log's vocabulary.
using ReportLogOptions = AppendLogOptions;
using ReportCommitter = GroupCommitter;
std::string RotatedReportLogPath(const std::string& path, int n);
std::vector<std::string> ReportLogSeries(const std::string& path);

class ReportLogWriter : public AppendLogWriter {
 public:
  static absl::StatusOr<std::unique_ptr<ReportLogWriter>> Open(
      const std::string& path, const ReportLogOptions& options = {});
  absl::StatusOr<uint64_t> Append(const ReportRecord& record);

 private:
  using AppendLogWriter::AppendLogWriter;
};

struct ReportLogContents {
  std::vector<ReportRecord> records;
  int skipped_lines = 0;              // failed their check (torn or corrupt)
  std::vector<std::string> problems;  // "FILE line N: why", at most 20
};
// Reads one file whole (tests and small logs; the exporter streams).
absl::StatusOr<ReportLogContents> ReadReportLog(const std::string& path);

// Calls visit(record, offset of its line) for each valid record of `path`,
// in order; the others are counted in `skipped` and (the first 20) described
// in `problems`. Streams: one line in memory.
absl::Status ScanReportLog(const std::string& path, int* skipped,
                           std::vector<std::string>* problems,
                           const std::function<void(ReportRecord, int64_t)>& visit);
// The record whose line starts at `offset` of `in` (an offset ScanReportLog
// reported for the file `path`).
absl::StatusOr<ReportRecord> ReadReportRecordAt(std::istream& in, int64_t offset,
                                                const std::string& path);
// A (conversation, turn) reported twice keeps one record: within a file the
// later appended; across files the newer by received_utc, the later-read file
// among equals (a turn reported again to another pod is that pod's record,
// whatever order the files come in). The exporter and lcio-join both use it.
// ReceivedTime is InfinitePast for a record without a valid received_utc.
absl::Time ReceivedTime(const ReportRecord& record);
bool LaterReportStands(bool same_file, absl::Time later_received, absl::Time earlier_received);

// The M4A1 turn a Report describes; `tasks` is the export's vocabulary.
data::Turn ReportTurn(const ReportRecord& record, const std::vector<std::string>& tasks);

// Export to M4A1 JSON, streamed: one pass indexes where each record is
// (memory: a few dozen bytes per record, never the records), a second
// reads the records of one episode at a time and writes it. Episodes are
// conversations in order of first appearance, turns by index; a repeated
// (conversation, turn) keeps the last record (within a file the last
// appended, across files the newest by received_utc); image_paths are the view
// names. An episode is the conversation's turns 0, 1, ... up to the first
// missing index: records past a gap, or of a conversation whose turn 0 was
// never reported (a Report for turn 7 of a conversation the log does not
// start), would make an episode with a history the policy never saw, so
// they are counted as `orphaned` (and written to `rejects_path` when set),
// not exported. The first valid record fixes views and tasks (with a base
// data set: the base's view count and task vocabulary); records that
// disagree are written, as log lines, to `rejects_path` (itself a report
// log that can be exported on its own) or, without one, make the export
// fail (FAILED_PRECONDITION) so that none vanishes silently.
struct ExportSummary {
  int64_t records = 0;  // valid records read
  int skipped_lines = 0;
  std::vector<std::string> problems;  // as in ReportLogContents
  int64_t rejected = 0;               // disagreed with the first record (or the base)
  int64_t orphaned = 0;               // past a gap in their conversation's turns
  int64_t base_episodes = 0;          // copied from the base data set
  int64_t episodes = 0, turns = 0;    // exported from the logs (held-out ones included)
  int64_t held_out = 0;               // of `episodes`, written to ExportOptions::holdout
  // The first report time (RFC 3339, UTC) of the oldest held-out
  // conversation; empty when none is held out or it has no valid time.
  std::string held_out_since;
  int64_t undated = 0;  // conversations without a valid received_utc (ordered oldest)
};
struct ExportOptions {
  bool pretty = false;
  std::string rejects_path;
  // When set, the output is this data set's episodes followed by the
  // exported ones, numbered after the base's largest id: the training data
  // of a retraining run, in one pass over the logs.
  const data::Dataset* base = nullptr;
  // When set, the newest floor(holdout_share * n) of the n exported
  // conversations go to this stream (an M4A1 array of their own, numbered
  // from 1, oldest first) instead of `out`: a hold-out that training never
  // sees. Newest by first report time (the earliest received_utc among a
  // conversation's records) over all files, ties in export order: the files
  // are one pod each, so the export's own order is newest only within one.
  std::ostream* holdout = nullptr;
  double holdout_share = 0;  // in [0, 1)
  // No record to export is an empty array, not an error (a pod that served
  // no Report still has its log).
  bool allow_empty = false;
};
absl::StatusOr<ExportSummary> ExportReportLogs(const std::vector<std::string>& files,
                                               std::ostream& out, const ExportOptions& options);
absl::StatusOr<ExportSummary> ExportReportLogs(const std::vector<std::string>& files,
                                               std::ostream& out, bool pretty,
                                               const std::string& rejects_path);

}  // namespace lcio::server
