// The outcome log behind Report: one self-checking line per record,
//   <crc32 of the JSON, 8 lowercase hex digits> <space> <JSON object> \n
// appended with write(2) and fsync'd before Report answers OK. A torn or
// corrupt line (a crash mid-write) fails its check and is skipped by the
// reader; records before and after it stay intact.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "lcio/data/m4a1.h"

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

class ReportLogWriter {
 public:
  // Opens (creating if needed) for appending. A torn last line left by a
  // crash is terminated with a newline first so that new records start on
  // a line of their own.
  static absl::StatusOr<std::unique_ptr<ReportLogWriter>> Open(const std::string& path);
  ~ReportLogWriter();
  // Durable when OK: written and fsync'd. Returns the record's sequence
  // number since this writer opened.
  absl::StatusOr<uint64_t> Append(const ReportRecord& record);
  const std::string& path() const { return path_; }

 private:
  ReportLogWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_);
  uint64_t appended_ ABSL_GUARDED_BY(mu_) = 0;
};

struct ReportLogContents {
  std::vector<ReportRecord> records;
  int skipped_lines = 0;              // failed their check (torn or corrupt)
  std::vector<std::string> problems;  // "line N: why", at most 20
};
absl::StatusOr<ReportLogContents> ReadReportLog(const std::string& path);

// Groups records into M4A1 episodes (one per conversation, turns by index;
// a repeated (conversation, turn) keeps the last record). Episode ids are
// 1.. in order of first appearance; image_paths are the view names. Records
// must agree on views and tasks (those of the first record win; others are
// dropped and counted in `dropped`).
struct ExportResult {
  data::Dataset dataset;
  int dropped = 0;
  std::vector<std::string> conversation_ids;  // [episode] -> conversation id
};
absl::StatusOr<ExportResult> ReportsToDataset(const std::vector<ReportRecord>& records);

}  // namespace lcio::server
