#include "lcio/server/report_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lcio/data/json_parse.h"
#include "nlohmann/json.hpp"

namespace lcio::server {
namespace {

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

absl::Status ErrnoStatus(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// The code a Report caller sees for an I/O error: a full disk is an
// overload the operator can fix, anything else an unavailable log.
absl::Status IoError(int error, const std::string& what, const std::string& path) {
  const std::string message =
      absl::StrCat("report log ", path, ": ", what, ": ", std::strerror(error));
  return error == ENOSPC || error == EDQUOT ? absl::ResourceExhaustedError(message)
                                            : absl::UnavailableError(message);
}

// Returns 0 or the errno of the failed write. Bytes may have been written
// before a failure (a short write).
int WriteAll(int fd, absl::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    done += static_cast<size_t>(n);
  }
  return 0;
}

std::string DirectoryOf(const std::string& path) {
  return path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
}

void SyncDirectory(const std::string& path) {
  if (const int dfd = ::open(DirectoryOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

// Rotated file numbers of `path` that exist, ascending.
std::vector<int> RotationNumbers(const std::string& path) {
  std::vector<int> numbers;
  const std::filesystem::path p(path);
  const std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : ".";
  const std::string prefix = p.filename().string() + ".";
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    int n = 0;
    if (name.size() == prefix.size() + 6 && name.compare(0, prefix.size(), prefix) == 0 &&
        absl::SimpleAtoi(name.substr(prefix.size()), &n) && n > 0)
      numbers.push_back(n);
  }
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

}  // namespace

uint32_t Crc32(absl::string_view bytes) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string ReportRecordToJson(const ReportRecord& r) {
  nlohmann::json j;
  j["conversation_id"] = r.conversation_id;
  j["turn_index"] = r.turn_index;
  j["decision_id"] = r.decision_id;
  j["prompt"] = r.prompt;
  j["task"] = r.task;
  j["cloud"] = r.cloud;
  j["uploaded_views"] = r.uploaded_views;
  j["view_names"] = r.view_names;
  j["association"] = r.association;
  j["answer"] = r.answer;
  j["score"] = r.score;
  j["interaction_time_s"] = r.interaction_time_s;
  j["usage_cost_usd"] = r.usage_cost_usd;
  j["tasks"] = r.tasks;
  j["policy_version"] = r.policy_version;
  j["received_utc"] = r.received_utc;
  // Replace invalid UTF-8 instead of throwing: prompts come from the network.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<ReportRecord> ReportRecordFromJson(absl::string_view json) {
  nlohmann::json j = data::ParseJson(std::string_view(json.data(), json.size()), "record");
  if (j.is_discarded() || !j.is_object()) return absl::DataLossError("record is not a JSON object");
  ReportRecord r;
  try {
    r.conversation_id = j.at("conversation_id").get<std::string>();
    r.turn_index = j.at("turn_index").get<int>();
    r.decision_id = j.value("decision_id", "");
    r.prompt = j.at("prompt").get<std::string>();
    r.task = j.at("task").get<std::string>();
    r.cloud = j.at("cloud").get<bool>();
    r.uploaded_views = j.at("uploaded_views").get<std::vector<int>>();
    r.view_names = j.at("view_names").get<std::vector<std::string>>();
    r.association = j.at("association").get<std::vector<double>>();
    r.answer = j.value("answer", "");
    r.score = j.at("score").get<double>();
    r.interaction_time_s = j.at("interaction_time_s").get<double>();
    r.usage_cost_usd = j.at("usage_cost_usd").get<double>();
    r.tasks = j.at("tasks").get<std::vector<std::string>>();
    r.policy_version = j.value("policy_version", "");
    r.received_utc = j.value("received_utc", "");
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("record field: ", e.what()));
  }
  return r;
}

std::string EncodeReportLine(const ReportRecord& record) {
  const std::string json = ReportRecordToJson(record);
  return absl::StrCat(absl::StrFormat("%08x", Crc32(json)), " ", json, "\n");
}

std::string RotatedReportLogPath(const std::string& path, int n) {
  return absl::StrFormat("%s.%06d", path, n);
}

std::vector<std::string> ReportLogSeries(const std::string& path) {
  std::vector<std::string> files;
  for (int n : RotationNumbers(path)) files.push_back(RotatedReportLogPath(path, n));
  if (std::filesystem::exists(path)) files.push_back(path);
  return files;
}

// ---------------------------------------------------------------------------
// ReportLogWriter

absl::StatusOr<std::unique_ptr<ReportLogWriter>> ReportLogWriter::Open(
    const std::string& path, const ReportLogOptions& options) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("cannot open report log", path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const absl::Status s = ErrnoStatus("cannot stat report log", path);
    ::close(fd);
    return s;
  }
  int64_t size = st.st_size;
  if (size > 0) {
    // Terminate a torn last line (a crash mid-write) so the next record is
    // readable.
    const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    char last = '\n';
    if (rfd >= 0) {
      if (::pread(rfd, &last, 1, size - 1) != 1) last = '\n';
      ::close(rfd);
    }
    if (last != '\n') {
      if (const int error = WriteAll(fd, "\n"); error != 0 || ::fdatasync(fd) != 0) {
        const absl::Status s = IoError(error != 0 ? error : errno, "terminating a torn line", path);
        ::close(fd);
        return s;
      }
      ++size;
    }
  }
  // Make the file's directory entry durable too (a new file).
  SyncDirectory(path);
  const std::vector<int> rotated = RotationNumbers(path);
  return std::unique_ptr<ReportLogWriter>(
      new ReportLogWriter(path, options, fd, size, rotated.empty() ? 0 : rotated.back()));
}

ReportLogWriter::~ReportLogWriter() {
  if (fd_ >= 0) ::close(fd_);
}

// After a failed write or fdatasync the bytes past the durable length are
// in an unknown state (and after a failed fdatasync so is the page cache:
// the kernel may have dropped the dirty pages and will not report it
// again). Cutting the file back and syncing that makes the state known
// again: exactly the acknowledged records.
absl::Status ReportLogWriter::Restore() {
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) return IoError(errno, "reopening", path_);
  }
  if (::ftruncate(fd_, durable_size_) != 0)
    return IoError(errno, "cutting back to the last durable length", path_);
  if (::fdatasync(fd_) != 0)
    return IoError(errno, "syncing the cut back to the last durable length", path_);
  damaged_ = false;
  return absl::OkStatus();
}

absl::Status ReportLogWriter::CheckFreeSpace(size_t incoming) const {
  if (options_.min_free_bytes <= 0) return absl::OkStatus();
  struct statvfs fs {};
  if (::fstatvfs(fd_, &fs) != 0) return IoError(errno, "statvfs", path_);
  const int64_t free_bytes = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
  if (free_bytes - static_cast<int64_t>(incoming) < options_.min_free_bytes)
    return absl::ResourceExhaustedError(absl::StrCat(
        "report log ", path_, ": ", free_bytes, " bytes free on its filesystem, ", incoming,
        " to write: below the floor of ", options_.min_free_bytes, " (--report_min_free_mb)"));
  return absl::OkStatus();
}

absl::Status ReportLogWriter::RotateIfDue(size_t incoming) {
  if (options_.rotate_bytes <= 0 || durable_size_ == 0 ||
      durable_size_ + static_cast<int64_t>(incoming) <= options_.rotate_bytes)
    return absl::OkStatus();
  // Everything in the file is durable (each batch is synced): rename it
  // and start a new one.
  const std::string rotated = RotatedReportLogPath(path_, rotations_ + 1);
  if (std::rename(path_.c_str(), rotated.c_str()) != 0)
    return IoError(errno, absl::StrCat("renaming to ", rotated), path_);
  ++rotations_;
  ::close(fd_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  durable_size_ = 0;
  if (fd_ < 0) return IoError(errno, "opening after rotation", path_);
  SyncDirectory(path_);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ReportLogWriter::AppendLines(const std::vector<std::string>& lines) {
  if (damaged_ || fd_ < 0) {
    if (absl::Status s = Restore(); !s.ok())
      return absl::UnavailableError(
          absl::StrCat(s.message(), "; refusing records until the log is restored"));
  }
  size_t bytes = 0;
  for (const std::string& line : lines) bytes += line.size();
  if (absl::Status s = RotateIfDue(bytes); !s.ok()) return s;
  if (absl::Status s = CheckFreeSpace(bytes); !s.ok()) return s;
  std::string batch;
  batch.reserve(bytes);
  for (const std::string& line : lines) batch += line;
  if (const int error = WriteAll(fd_, batch); error != 0) {
    damaged_ = true;
    const absl::Status restored = Restore();
    const absl::Status failed = IoError(error, "write", path_);
    return restored.ok() ? failed
                         : absl::Status(failed.code(),
                                        absl::StrCat(failed.message(), "; ", restored.message()));
  }
  if (::fdatasync(fd_) != 0) {
    const int error = errno;
    damaged_ = true;
    Restore().IgnoreError();  // retried before the next batch while it fails
    return absl::UnavailableError(absl::StrCat("report log ", path_,
                                               ": fdatasync: ", std::strerror(error),
                                               " (the batch is not acknowledged)"));
  }
  durable_size_ += static_cast<int64_t>(batch.size());
  const uint64_t first = appended_ + 1;
  appended_ += lines.size();
  return first;
}

absl::StatusOr<uint64_t> ReportLogWriter::Append(const ReportRecord& record) {
  return AppendLines({EncodeReportLine(record)});
}

// ---------------------------------------------------------------------------
// ReportCommitter

struct ReportCommitter::State {
  explicit State(std::unique_ptr<ReportLogWriter> w, int max) : writer(std::move(w)), max(max) {}
  std::unique_ptr<ReportLogWriter> writer;  // only the writer thread uses it
  const int max;
  std::mutex mu;
  std::condition_variable wake;     // the writer: work or exit
  std::condition_variable drained;  // Stop: nothing pending
  std::deque<std::pair<std::string, Done>> queue;
  std::vector<Done> writing;  // the batch being written; emptied if abandoned
  bool stopping = false, exit = false, busy = false;
  uint64_t batches = 0;
};

ReportCommitter::ReportCommitter(std::unique_ptr<ReportLogWriter> writer, int max_pending)
    : state_(std::make_shared<State>(std::move(writer), std::max(1, max_pending))) {
  std::thread(WriterLoop, state_).detach();  // Stop waits for it while it can
}

ReportCommitter::~ReportCommitter() { Stop(absl::Now()); }

absl::Status ReportCommitter::Submit(std::string line, Done done) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->stopping) return absl::UnavailableError("server is shutting down");
    const size_t pending = state_->queue.size() + state_->writing.size();
    if (pending >= static_cast<size_t>(state_->max))
      return absl::ResourceExhaustedError(
          absl::StrCat("report queue is full (", state_->max,
                       " records waiting for the disk, --report_queue_max); retry later"));
    state_->queue.emplace_back(std::move(line), std::move(done));
  }
  state_->wake.notify_one();
  return absl::OkStatus();
}

void ReportCommitter::WriterLoop(std::shared_ptr<State> state) {
  std::unique_lock<std::mutex> lock(state->mu);
  for (;;) {
    state->wake.wait(lock, [&] { return state->exit || !state->queue.empty(); });
    if (state->queue.empty()) break;  // exit with nothing left
    std::vector<std::string> lines;
    for (auto& [line, done] : state->queue) {
      lines.push_back(std::move(line));
      state->writing.push_back(std::move(done));
    }
    state->queue.clear();
    state->busy = true;
    lock.unlock();
    const absl::StatusOr<uint64_t> first = state->writer->AppendLines(lines);
    lock.lock();
    state->busy = false;
    ++state->batches;
    // Stop may have answered this batch already (a hung disk at shutdown).
    std::vector<Done> answer = std::move(state->writing);
    state->writing.clear();
    lock.unlock();
    for (size_t i = 0; i < answer.size(); ++i)
      answer[i](first.ok() ? absl::StatusOr<uint64_t>(*first + i)
                           : absl::StatusOr<uint64_t>(first.status()));
    lock.lock();
    if (state->queue.empty()) state->drained.notify_all();
  }
  state->drained.notify_all();
}

void ReportCommitter::Stop(absl::Time deadline) {
  std::vector<Done> abandoned;
  {
    std::unique_lock<std::mutex> lock(state_->mu);
    if (state_->exit) return;
    state_->stopping = true;
    state_->drained.wait_until(lock, absl::ToChronoTime(deadline),
                               [this] { return state_->queue.empty() && state_->writing.empty(); });
    for (auto& [line, done] : state_->queue) abandoned.push_back(std::move(done));
    state_->queue.clear();
    for (Done& done : state_->writing) abandoned.push_back(std::move(done));
    state_->writing.clear();
    state_->exit = true;
  }
  state_->wake.notify_all();
  for (Done& done : abandoned)
    done(absl::UnavailableError(
        "server shut down before the report was durable (--drain_timeout_s); it may or may not "
        "be in the log"));
}

uint64_t ReportCommitter::batches() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->batches;
}

// ---------------------------------------------------------------------------
// Reading and export

namespace {

// Calls visit(record, line, offset) for each valid record of `path`, in
// order; counts and describes the others. Streams: one line in memory.
template <typename Visit>
absl::Status ScanFile(const std::string& path, int* skipped, std::vector<std::string>* problems,
                      Visit&& visit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open report log ", path));
  auto problem = [&](int64_t line, const std::string& why) {
    ++*skipped;
    if (problems->size() < 20) problems->push_back(absl::StrCat(path, " line ", line, ": ", why));
  };
  std::string line;
  int64_t offset = 0, line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    const int64_t start = offset;
    offset += static_cast<int64_t>(line.size()) + 1;
    if (in.eof()) {  // no newline: the write of a crash
      problem(line_number, "torn (no newline at the end of the file)");
      break;
    }
    if (line.empty()) continue;
    uint32_t expected = 0;
    const absl::string_view view(line);
    if (view.size() < 10 || view[8] != ' ' || !absl::SimpleHexAtoi(view.substr(0, 8), &expected)) {
      problem(line_number, "no checksum prefix");
      continue;
    }
    const absl::string_view json = view.substr(9);
    if (Crc32(json) != expected) {
      problem(line_number, "checksum mismatch");
      continue;
    }
    auto record = ReportRecordFromJson(json);
    if (!record.ok()) {
      problem(line_number, std::string(record.status().message()));
      continue;
    }
    visit(*std::move(record), view, start);
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("reading report log ", path, " failed"));
  return absl::OkStatus();
}

// One episode as an element of the M4A1 array, written by the one M4A1
// writer (a dataset of one episode, without the array's brackets).
std::string EpisodeJson(data::Episode episode, const std::vector<std::string>& tasks, bool pretty) {
  data::Dataset one;
  one.tasks = tasks;
  one.num_views = static_cast<int>(episode.image_paths.size());
  one.episodes.push_back(std::move(episode));
  const std::string text = data::ToM4A1Json(one, pretty);
  const size_t open = pretty ? 2 : 1, close = pretty ? 3 : 1;  // "[\n" ... "\n]\n"
  return text.substr(open, text.size() - open - close);
}

}  // namespace

absl::StatusOr<ReportLogContents> ReadReportLog(const std::string& path) {
  ReportLogContents contents;
  absl::Status s = ScanFile(path, &contents.skipped_lines, &contents.problems,
                            [&](ReportRecord record, absl::string_view, int64_t) {
                              contents.records.push_back(std::move(record));
                            });
  if (!s.ok()) return s;
  return contents;
}

absl::StatusOr<ExportSummary> ExportReportLogs(const std::vector<std::string>& files,
                                               std::ostream& out, bool pretty,
                                               const std::string& rejects_path) {
  ExportOptions options;
  options.pretty = pretty;
  options.rejects_path = rejects_path;
  return ExportReportLogs(files, out, options);
}

absl::StatusOr<ExportSummary> ExportReportLogs(const std::vector<std::string>& files,
                                               std::ostream& out, const ExportOptions& options) {
  const bool pretty = options.pretty;
  const std::string& rejects_path = options.rejects_path;
  const data::Dataset* base = options.base;
  ExportSummary summary;
  struct Location {
    int file;
    int64_t offset;
  };
  // Pass 1: where each (conversation, turn)'s last record is.
  std::unordered_map<std::string, size_t> episode_of;
  std::vector<std::map<int, Location>> turns;
  bool have_first = base != nullptr;
  std::vector<std::string> views, tasks;
  if (base != nullptr) tasks = base->tasks;
  std::ofstream rejects;
  auto reject = [&](absl::string_view line) {
    if (rejects_path.empty()) return;
    if (!rejects.is_open()) rejects.open(rejects_path, std::ios::binary | std::ios::trunc);
    rejects << line << '\n';
  };
  std::string first_rejected;
  for (size_t f = 0; f < files.size(); ++f) {
    absl::Status s = ScanFile(
        files[f], &summary.skipped_lines, &summary.problems,
        [&](ReportRecord r, absl::string_view line, int64_t offset) {
          ++summary.records;
          if (!have_first) {
            have_first = true;
            views = r.view_names;
            tasks = r.tasks;
          }
          // With a base, its view count and task vocabulary are the schema
          // (a base's image_paths are files, not view names).
          const bool disagrees =
              base != nullptr ? static_cast<int>(r.view_names.size()) != base->num_views ||
                                    std::find(tasks.begin(), tasks.end(), r.task) == tasks.end() ||
                                    r.association.size() != r.view_names.size()
                              : r.view_names != views || r.tasks != tasks ||
                                    std::find(tasks.begin(), tasks.end(), r.task) == tasks.end() ||
                                    r.association.size() != views.size();
          if (disagrees) {
            if (summary.rejected++ == 0)
              first_rejected = absl::StrCat(files[f], " at byte ", offset, " (conversation ",
                                            r.conversation_id.substr(0, 128), ")");
            reject(line);
            return;
          }
          auto [it, inserted] = episode_of.emplace(r.conversation_id, turns.size());
          if (inserted) turns.emplace_back();
          turns[it->second][r.turn_index] = Location{static_cast<int>(f), offset};
        });
    if (!s.ok()) return s;
  }
  if (summary.rejected > 0 && rejects_path.empty())
    return absl::FailedPreconditionError(absl::StrCat(
        summary.rejected, " records disagree with the ",
        base != nullptr ? "base data's view count or tasks" : "first record's views or tasks",
        " (the first ", first_rejected,
        "); pass --rejects=FILE to write them there and export the rest"));

  std::vector<std::ifstream> inputs;
  for (const std::string& file : files) inputs.emplace_back(file, std::ios::binary);
  std::string line;
  // The line at `where`, checked when pass 1 read it.
  auto read_line = [&](const Location& where) -> absl::Status {
    std::ifstream& in = inputs[where.file];
    in.clear();
    in.seekg(where.offset);
    if (!std::getline(in, line))
      return absl::DataLossError(absl::StrCat("report log ", files[where.file],
                                              " changed during the export (byte ", where.offset,
                                              ")"));
    return absl::OkStatus();
  };

  // Only the gap-free run from turn 0 is an episode; the rest are orphans.
  std::vector<std::string> conversation_of(turns.size());
  for (const auto& [id, e] : episode_of) conversation_of[e] = id;
  episode_of.clear();
  std::string first_orphan;
  size_t kept = 0;
  for (size_t e = 0; e < turns.size(); ++e) {
    int expected = 0;
    for (auto it = turns[e].begin(); it != turns[e].end();) {
      if (it->first == expected) {
        ++expected, ++it;
        continue;
      }
      if (summary.orphaned++ == 0)
        first_orphan = absl::StrCat("conversation ", conversation_of[e].substr(0, 128), " turn ",
                                    it->first, ": turn ", expected, " was never reported");
      if (!rejects_path.empty()) {
        if (absl::Status s = read_line(it->second); !s.ok()) return s;
        reject(line);
      }
      it = turns[e].erase(it);
    }
    if (turns[e].empty()) continue;
    if (kept != e) turns[kept] = std::move(turns[e]);  // never a self-move: it empties the map
    ++kept;
  }
  turns.resize(kept);
  if (summary.orphaned > 0 && summary.problems.size() < 20)
    summary.problems.push_back(absl::StrCat(summary.orphaned,
                                            " records past a gap in their conversation's turns "
                                            "(not exported; the first: ",
                                            first_orphan, ")"));
  if (rejects.is_open()) {
    rejects.flush();
    if (!rejects) return absl::DataLossError(absl::StrCat("cannot write rejects ", rejects_path));
  }
  if (turns.empty() && (base == nullptr || base->episodes.empty()))
    return absl::InvalidArgumentError(summary.rejected + summary.orphaned > 0
                                          ? "no records to export: every record was rejected "
                                            "or orphaned"
                                          : "no records to export");

  // Pass 2: the base's episodes, then one exported episode at a time, in
  // order of first appearance.
  out << (pretty ? "[\n" : "[");
  bool first_episode = true;
  int64_t next_id = 1;
  if (base != nullptr) {
    for (const data::Episode& episode : base->episodes) {
      if (!first_episode) out << (pretty ? ",\n" : ",");
      first_episode = false;
      out << EpisodeJson(episode, tasks, pretty);
      next_id = std::max(next_id, episode.id + 1);
      ++summary.base_episodes;
    }
  }
  for (size_t e = 0; e < turns.size(); ++e) {
    data::Episode episode;
    episode.id = next_id++;
    for (const auto& [index, where] : turns[e]) {
      if (absl::Status s = read_line(where); !s.ok()) return s;
      auto r = ReportRecordFromJson(absl::string_view(line).substr(9));
      if (!r.ok()) return r.status();
      if (episode.image_paths.empty()) episode.image_paths = r->view_names;
      data::Turn turn;
      turn.question = r->prompt;
      turn.task = r->task;
      turn.task_index =
          static_cast<int>(std::find(tasks.begin(), tasks.end(), r->task) - tasks.begin());
      turn.target = r->cloud ? data::Target::kCloud : data::Target::kLocal;
      if (r->cloud) turn.uploaded_views = r->uploaded_views;
      turn.answer = r->answer;
      turn.score = r->score;
      turn.interaction_time_s = r->interaction_time_s;
      turn.usage_cost_usd = r->usage_cost_usd;
      episode.turns.push_back(std::move(turn));
      episode.association.push_back(std::move(r->association));
      ++summary.turns;
    }
    if (!first_episode) out << (pretty ? ",\n" : ",");
    first_episode = false;
    out << EpisodeJson(std::move(episode), tasks, pretty);
    ++summary.episodes;
    turns[e].clear();  // its index is no longer needed
  }
  out << (pretty ? "\n]\n" : "]");
  out.flush();
  if (!out) return absl::DataLossError("writing the export failed");
  return summary;
}

}  // namespace lcio::server
