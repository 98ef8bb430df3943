// The outcome log behind Report: one self-checking line per record,
//   <crc32 of the JSON, 8 lowercase hex digits> <space> <JSON object> \n
// Records are appended in batches by one writer thread (ReportCommitter):
// one write(2) of the batch, one fdatasync, then every record of the batch
// is acknowledged. A failed write or fdatasync acknowledges none of them and
// cuts the file back to its last durable length, so a torn line can only
// be left by a crash, and only at the end. The reader skips lines that fail
// their check. Guarantees: docs/service.md, "Report log".
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

struct ReportLogOptions {
  // Before a batch would take the file past this size, the file is renamed
  // to the next RotatedReportLogPath and a new one started. 0: never.
  int64_t rotate_bytes = 0;
  // A batch that would leave less free space than this on the log's
  // filesystem is refused (RESOURCE_EXHAUSTED). 0: no floor.
  int64_t min_free_bytes = 0;
};

// "<path>.<n>", n from 1 and zero-padded to 6 digits, so that names sort in
// the order they were written.
std::string RotatedReportLogPath(const std::string& path, int n);
// The files of a log, oldest first: its rotated predecessors, then `path`
// itself (those that exist).
std::vector<std::string> ReportLogSeries(const std::string& path);

// The file layer. Not thread-safe by design: ReportCommitter's writer
// thread is its only user in the server.
class ReportLogWriter {
 public:
  // Opens (creating if needed) for appending. A torn last line left by a
  // crash is terminated with a newline first so that new records start on
  // a line of their own.
  static absl::StatusOr<std::unique_ptr<ReportLogWriter>> Open(
      const std::string& path, const ReportLogOptions& options = {});
  ~ReportLogWriter();
  ReportLogWriter(const ReportLogWriter&) = delete;
  ReportLogWriter& operator=(const ReportLogWriter&) = delete;

  // Appends whole lines (EncodeReportLine) with one fdatasync. OK: all of
  // them are durable; returns the sequence number (since this writer
  // opened, from 1) of the first. Not OK: none is acknowledged, and the
  // file is back at its last durable length before anything else is
  // appended (if it cannot be cut back, every later call fails until it
  // can). RESOURCE_EXHAUSTED: the disk is full or below the floor;
  // UNAVAILABLE: any other I/O error.
  absl::StatusOr<uint64_t> AppendLines(const std::vector<std::string>& lines);
  absl::StatusOr<uint64_t> Append(const ReportRecord& record);
  const std::string& path() const { return path_; }

 private:
  ReportLogWriter(std::string path, const ReportLogOptions& options, int fd, int64_t size,
                  int rotations)
      : path_(std::move(path)),
        options_(options),
        fd_(fd),
        durable_size_(size),
        rotations_(rotations) {}
  absl::Status Restore();
  absl::Status CheckFreeSpace(size_t incoming) const;
  absl::Status RotateIfDue(size_t incoming);

  std::string path_;
  ReportLogOptions options_;
  int fd_;
  int64_t durable_size_;  // bytes known to be on disk; all whole lines
  bool damaged_ = false;  // bytes past durable_size_ may be in the file
  int rotations_;         // highest rotated file number in use
  uint64_t appended_ = 0;
};

// The group commit in front of a ReportLogWriter: callers queue encoded
// lines and are answered from the writer thread once their batch is
// durable, so no caller's thread ever waits for the disk.
class ReportCommitter {
 public:
  using Done = std::function<void(absl::StatusOr<uint64_t> sequence)>;
  // At most `max_pending` records queued or being written.
  ReportCommitter(std::unique_ptr<ReportLogWriter> writer, int max_pending);
  ~ReportCommitter();  // Stop(now)
  ReportCommitter(const ReportCommitter&) = delete;
  ReportCommitter& operator=(const ReportCommitter&) = delete;

  // OK: `done` runs exactly once, on the writer thread or in Stop, with the
  // record's sequence number once it is durable, or with the error that
  // kept it from being so. Not OK (RESOURCE_EXHAUSTED: the queue is full;
  // UNAVAILABLE: stopping): `done` never runs.
  absl::Status Submit(std::string line, Done done);
  // Stops accepting and waits until every queued record is answered or
  // `deadline` passes; then answers what is left (a batch stuck in a hung
  // write or fdatasync included) with UNAVAILABLE and returns without
  // waiting for the disk. Idempotent.
  void Stop(absl::Time deadline);
  // Batches written so far (each with one fdatasync).
  uint64_t batches() const;

 private:
  struct State;
  static void WriterLoop(std::shared_ptr<State> state);
  // Shared with the writer thread, which may outlive this object when the
  // disk hangs at shutdown.
  std::shared_ptr<State> state_;
};

struct ReportLogContents {
  std::vector<ReportRecord> records;
  int skipped_lines = 0;              // failed their check (torn or corrupt)
  std::vector<std::string> problems;  // "FILE line N: why", at most 20
};
// Reads one file whole (tests and small logs; the exporter streams).
absl::StatusOr<ReportLogContents> ReadReportLog(const std::string& path);

// Export to M4A1 JSON, streamed: one pass indexes where each record is
// (memory: a few dozen bytes per record, never the records), a second
// reads the records of one episode at a time and writes it. Episodes are
// conversations in order of first appearance, turns by index; a repeated
// (conversation, turn) keeps the last record; image_paths are the view
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
  int64_t episodes = 0, turns = 0;    // exported from the logs
};
struct ExportOptions {
  bool pretty = false;
  std::string rejects_path;
  // When set, the output is this data set's episodes followed by the
  // exported ones, numbered after the base's largest id: the training data
  // of a retraining run, in one pass over the logs.
  const data::Dataset* base = nullptr;
};
absl::StatusOr<ExportSummary> ExportReportLogs(const std::vector<std::string>& files,
                                               std::ostream& out, const ExportOptions& options);
absl::StatusOr<ExportSummary> ExportReportLogs(const std::vector<std::string>& files,
                                               std::ostream& out, bool pretty,
                                               const std::string& rejects_path);

}  // namespace lcio::server
