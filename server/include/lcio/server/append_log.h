// The durable append-only line log behind the Report log and the decision
// log: one writer thread (GroupCommitter) appends queued lines in batches,
// one write(2) and one fdatasync per batch, and answers each line once its
// batch is durable. A failed write or fdatasync acknowledges none of the
// batch and cuts the file back to its last durable length, so a line that
// fails its check is left only by a crash (a torn last line), or where a
// writer stopped after a failed fdatasync it could not cut back (lines that
// may read as zeros after a reboot); the next writer's first batch starts
// with a newline after either. Rotation by size, an
// optional cap on rotated files kept, and a free-space floor. What a line
// holds is the caller's business. Guarantees: docs/service.md, "Report log".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace lcio::server {

struct AppendLogOptions {
  // Before a batch would take the file past this size, the file is renamed
  // to the next RotatedLogPath and a new one started. 0: never.
  int64_t rotate_bytes = 0;
  // A batch that would leave less free space than this on the log's
  // filesystem is refused (RESOURCE_EXHAUSTED). 0: no floor.
  int64_t min_free_bytes = 0;
  // After a rotation, rotated files beyond the newest `keep_rotated` are
  // deleted, oldest first. 0: keep all.
  int keep_rotated = 0;
  // The writer thread's nice value (0: as the process). A log nobody waits
  // for (the decision log) writes at a lower priority than the calls.
  int writer_nice = 0;
  // The writer starts a batch at most once per interval, the first at once (PostgreSQL's
  // commit_delay, in time): lines arriving meanwhile join it, so a busy log
  // pays one write(2) and one fdatasync per interval instead of one per
  // handful of lines. Each line is still answered only once durable; it
  // waits up to the interval longer. Zero: a batch as soon as the last one
  // is done (the Report log, whose callers wait for the answer).
  absl::Duration commit_interval = absl::ZeroDuration();
  // Once a batch is durable its pages are dropped from the page cache
  // (posix_fadvise DONTNEED; the file's bytes are the same). For a log
  // written much faster than it is read (the decision log): copying into
  // pages the kernel has just recycled costs the writer a quarter of what
  // copying into freshly allocated ones does (docs/benchmarks.md, "Decision
  // log"), and the log no longer fills the page cache.
  bool drop_written_pages = false;
  // For messages: what the log is and which flags set its limits.
  std::string name = "report log";
  std::string min_free_flag = "--report_min_free_mb";
  std::string queue_flag = "--report_queue_max";
};

// "<path>.<n>", n from 1 and zero-padded to 6 digits, so that names sort in
// the order they were written.
std::string RotatedLogPath(const std::string& path, int n);
// The files of a log, oldest first: its rotated predecessors, then `path`
// itself (those that exist).
std::vector<std::string> LogSeries(const std::string& path);
// "<path>.lock": the file a writer holds locked (flock) while it writes the
// log. Never rotated or read; the lock dies with the process.
std::string LogLockPath(const std::string& path);
// Creates the missing directories above `path`, each made durable (its
// entry in its parent synced). Returns whether any was created. Errors name
// the directory.
absl::StatusOr<bool> CreateLogDirectory(const std::string& path);

// The file layer. Not thread-safe by design: a GroupCommitter's writer
// thread is its only user in the server.
class AppendLogWriter {
 public:
  // Opens (creating if needed) for appending, as the log's only writer: it
  // holds an exclusive lock on LogLockPath(path) until destroyed, and a
  // second writer (another server, or this one's other log on the same
  // path) is refused with FAILED_PRECONDITION, since two writers would cut
  // back and rotate over each other's acknowledged records. In a file that
  // is not empty the first batch starts with a newline (in its write and its
  // fdatasync), so that new records start on a line of their own whatever
  // ends the file (newline_first_), and opening writes nothing: a disk that
  // fails at startup refuses records as it would later, instead of stopping
  // the server.
  static absl::StatusOr<std::unique_ptr<AppendLogWriter>> Open(const std::string& path,
                                                               const AppendLogOptions& options);
  virtual ~AppendLogWriter();
  AppendLogWriter(const AppendLogWriter&) = delete;
  AppendLogWriter& operator=(const AppendLogWriter&) = delete;

  // Appends whole lines (each ending in '\n') with one fdatasync. OK: all
  // of them are durable; returns the sequence number (since this writer
  // opened, from 1) of the first. Not OK: none is acknowledged, and the
  // file is back at its last durable length before anything else is
  // appended (if it cannot be cut back, every later call fails until it
  // can). RESOURCE_EXHAUSTED: the disk is full or below the floor;
  // UNAVAILABLE: any other I/O error.
  absl::StatusOr<uint64_t> AppendLines(const std::vector<std::string>& lines);
  const std::string& path() const { return path_; }
  const AppendLogOptions& options() const { return options_; }

 protected:
  struct OpenedFile {
    int fd = -1;
    int lock_fd = -1;  // holds the writer's lock on LogLockPath
    int64_t size = 0;
    int rotations = 0;  // highest rotated file number in use
    // The file was not empty: the first batch starts with '\n' (below).
    bool newline_first = false;
  };
  static absl::StatusOr<OpenedFile> OpenFile(const std::string& path,
                                             const AppendLogOptions& options);
  AppendLogWriter(std::string path, AppendLogOptions options, const OpenedFile& file)
      : path_(std::move(path)),
        options_(std::move(options)),
        fd_(file.fd),
        lock_fd_(file.lock_fd),
        durable_size_(file.size),
        newline_first_(file.newline_first),
        rotations_(file.rotations) {}

 private:
  absl::Status Restore();
  absl::Status CheckFreeSpace(size_t incoming) const;
  absl::Status RotateIfDue(size_t incoming);
  void ApplyRetention() const;
  std::string Where() const { return absl::StrCat(options_.name, " ", path_); }

  std::string path_;
  AppendLogOptions options_;
  int fd_;
  int lock_fd_;
  int64_t durable_size_;  // bytes known to be on disk; whole lines unless newline_first_
  // The next batch starts with '\n'. Set when a non-empty file is opened:
  // its last line may be torn by a crash, its last byte may not be readable,
  // and a writer that crashed (or stopped) after a failed fdatasync may have
  // left lines that read whole from the page cache but never reached the
  // disk. The newline ends whatever is there, so the batch's first record
  // starts a line of its own; readers skip the empty line it may make.
  bool newline_first_;
  bool damaged_ = false;  // bytes past durable_size_ may be in the file
  // A file was created or renamed since its directory was last synced: no
  // batch is acknowledged before it is.
  bool directory_unsynced_ = false;
  int rotations_;  // highest rotated file number in use
  uint64_t appended_ = 0;
  std::string batch_buffer_;  // AppendLines' joined batch, reused
};

// The group commit in front of an AppendLogWriter: callers queue encoded
// lines and are answered from the writer thread once their batch is
// durable, so no caller's thread ever waits for the disk.
class GroupCommitter {
 public:
  using Done = std::function<void(absl::StatusOr<uint64_t> sequence)>;
  // At most `max_pending` records queued or being written (an entry counts
  // as `records` of them; one larger than the bound waits alone).
  GroupCommitter(std::unique_ptr<AppendLogWriter> writer, int max_pending);
  ~GroupCommitter();  // Stop(now)
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // OK: `done` (if set) runs exactly once, on the writer thread or in Stop,
  // with the line's sequence number once it is durable, or with the error
  // that kept it from being so. Not OK (RESOURCE_EXHAUSTED: the queue is
  // full; UNAVAILABLE: stopping): `done` never runs.
  // `line`: one or more whole lines, written and acknowledged together.
  absl::Status Submit(std::string line, Done done, int records = 1);
  // Stops accepting and waits until every queued line is answered or
  // `deadline` passes; then answers what is left (a batch stuck in a hung
  // write or fdatasync included) with UNAVAILABLE and returns without
  // waiting for the disk. No `done` runs after it returns (one already
  // running is waited for, past the deadline too), so never call it from a
  // `done`. Before the deadline it also waits for the writer thread to close
  // the log and release its lock, so that the log can be opened again at
  // once. Idempotent.
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

}  // namespace lcio::server
