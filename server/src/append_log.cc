#include "lcio/server/append_log.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace lcio::server {
namespace {

absl::Status ErrnoStatus(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// The code a Report caller sees for an I/O error: a full disk is an
// overload the operator can fix, anything else an unavailable log.
absl::Status IoError(int error, const std::string& what, const std::string& where) {
  const std::string message = absl::StrCat(where, ": ", what, ": ", std::strerror(error));
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

// fsync of a directory: a file created or renamed in it is durable only
// once its entry is (fsync(2)). Returns 0 or the errno. A filesystem that
// cannot sync a directory (EINVAL, ENOTSUP) has no entry to make durable
// that way.
int SyncDirectoryNamed(const std::string& directory) {
  const int dfd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno;
  const int error =
      ::fsync(dfd) == 0 || errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP ? 0 : errno;
  ::close(dfd);
  return error;
}

// The directory holding `path`.
int SyncDirectory(const std::string& path) { return SyncDirectoryNamed(DirectoryOf(path)); }

// Rotated file numbers of `path` that exist, ascending.
std::vector<int> RotationNumbers(const std::string& path) {
  std::vector<int> numbers;
  const std::filesystem::path p(path);
  const std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : ".";
  const std::string prefix = p.filename().string() + ".";
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    // Exactly the names RotatedLogPath writes: at least 6 digits, more from
    // file 1000000 on (a 6-digit-only match lost those files from the
    // series, and a restarted writer renamed over them).
    int n = 0;
    if (name.size() < prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0) continue;
    const absl::string_view digits = absl::string_view(name).substr(prefix.size());
    if (std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
        absl::SimpleAtoi(digits, &n) && n > 0 && absl::StrFormat("%06d", n) == digits)
      numbers.push_back(n);
  }
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

}  // namespace

std::string RotatedLogPath(const std::string& path, int n) {
  return absl::StrFormat("%s.%06d", path, n);
}

std::string LogLockPath(const std::string& path) { return path + ".lock"; }

absl::StatusOr<bool> CreateLogDirectory(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return false;
  // The missing directories, innermost first.
  std::vector<std::filesystem::path> missing;
  std::error_code error;
  for (std::filesystem::path p = parent; !p.empty() && !std::filesystem::exists(p, error);
       p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST)
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create ", it->string(), ": ", std::strerror(errno)));
    // Its entry in its parent: without this, a power loss can take the new
    // directory, and every record acknowledged in it, away.
    const std::filesystem::path above = it->has_parent_path() ? it->parent_path() : ".";
    if (const int e = SyncDirectoryNamed(above.string()); e != 0)
      return absl::FailedPreconditionError(absl::StrCat("cannot sync ", above.string(), " (where ",
                                                        it->string(),
                                                        " was created): ", std::strerror(e)));
  }
  return !missing.empty();
}

std::vector<std::string> LogSeries(const std::string& path) {
  std::vector<std::string> files;
  for (int n : RotationNumbers(path)) files.push_back(RotatedLogPath(path, n));
  if (std::filesystem::exists(path)) files.push_back(path);
  return files;
}

// ---------------------------------------------------------------------------
// AppendLogWriter

absl::StatusOr<std::unique_ptr<AppendLogWriter>> AppendLogWriter::Open(
    const std::string& path, const AppendLogOptions& options) {
  auto file = OpenFile(path, options);
  if (!file.ok()) return file.status();
  return std::unique_ptr<AppendLogWriter>(new AppendLogWriter(path, options, *file));
}

absl::StatusOr<AppendLogWriter::OpenedFile> AppendLogWriter::OpenFile(
    const std::string& path, const AppendLogOptions& options) {
  // One writer per log. The lock is on a file of its own: the log itself is
  // renamed at each rotation, and a lock on it would move with it.
  const std::string lock_path = LogLockPath(path);
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return ErrnoStatus(absl::StrCat("cannot open the lock of ", options.name), path);
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(lock_fd);
    if (error == EWOULDBLOCK)
      return absl::FailedPreconditionError(absl::StrCat(
          options.name, " ", path, " is already being written (", lock_path,
          " is locked by another process, or by this one's other log): one writer per log"));
    errno = error;
    return ErrnoStatus(absl::StrCat("cannot lock ", options.name), lock_path);
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    const absl::Status s = ErrnoStatus(absl::StrCat("cannot open ", options.name), path);
    ::close(lock_fd);
    return s;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const absl::Status s = ErrnoStatus(absl::StrCat("cannot stat ", options.name), path);
    ::close(fd);
    ::close(lock_fd);
    return s;
  }
  const int64_t size = st.st_size;
  // Make the file's directory entry durable too (a new file). Refused at
  // open, where an operator sees it: a directory that cannot be synced
  // cannot hold acknowledged records.
  if (const int error = SyncDirectory(path); error != 0) {
    ::close(fd);
    ::close(lock_fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot sync the directory ", DirectoryOf(path), " of ", options.name, " ", path, ": ",
        std::strerror(error), " (a new file's entry is durable only then)"));
  }
  const std::vector<int> rotated = RotationNumbers(path);
  return OpenedFile{fd, lock_fd, size, rotated.empty() ? 0 : rotated.back(), size > 0};
}

AppendLogWriter::~AppendLogWriter() {
  // Bytes of a failed batch left in the file: one more try to cut them back
  // (the next writer's leading newline covers them if this fails too).
  if (damaged_ && fd_ >= 0) Restore().IgnoreError();
  if (fd_ >= 0) ::close(fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

// After a failed write or fdatasync the bytes past the durable length are
// in an unknown state (and after a failed fdatasync so is the page cache:
// the kernel may have dropped the dirty pages and will not report it
// again). Cutting the file back and syncing that makes the state known
// again: exactly the acknowledged records.
absl::Status AppendLogWriter::Restore() {
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) return IoError(errno, "reopening", Where());
    directory_unsynced_ = true;  // it may be a new file
  }
  if (::ftruncate(fd_, durable_size_) != 0)
    return IoError(errno, "cutting back to the last durable length", Where());
  if (::fdatasync(fd_) != 0)
    return IoError(errno, "syncing the cut back to the last durable length", Where());
  damaged_ = false;
  return absl::OkStatus();
}

absl::Status AppendLogWriter::CheckFreeSpace(size_t incoming) const {
  if (options_.min_free_bytes <= 0) return absl::OkStatus();
  struct statvfs fs {};
  if (::fstatvfs(fd_, &fs) != 0) return IoError(errno, "statvfs", Where());
  const int64_t free_bytes = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
  if (free_bytes - static_cast<int64_t>(incoming) < options_.min_free_bytes)
    return absl::ResourceExhaustedError(
        absl::StrCat(Where(), ": ", free_bytes, " bytes free on its filesystem, ", incoming,
                     " to write: below the floor of ", options_.min_free_bytes, " (",
                     options_.min_free_flag, ")"));
  return absl::OkStatus();
}

absl::Status AppendLogWriter::RotateIfDue(size_t incoming) {
  if (options_.rotate_bytes <= 0 || durable_size_ == 0 ||
      durable_size_ + static_cast<int64_t>(incoming) <= options_.rotate_bytes)
    return absl::OkStatus();
  // Everything in the file is durable (each batch is synced): rename it
  // and start a new one. Past the highest number on disk, and never over an
  // existing file: a rotated file holds acknowledged records.
  const std::vector<int> numbers = RotationNumbers(path_);
  if (!numbers.empty()) rotations_ = std::max(rotations_, numbers.back());
  const std::string rotated = RotatedLogPath(path_, rotations_ + 1);
  int renamed = ::renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, rotated.c_str(), RENAME_NOREPLACE);
  if (renamed != 0 && (errno == EINVAL || errno == ENOSYS)) {
    // A filesystem without RENAME_NOREPLACE: the writer's lock and the
    // numbering above keep the name free.
    struct stat st {};
    if (::stat(rotated.c_str(), &st) == 0) {
      errno = EEXIST;
    } else {
      renamed = std::rename(path_.c_str(), rotated.c_str());
    }
  }
  if (renamed != 0) return IoError(errno, absl::StrCat("renaming to ", rotated), Where());
  ++rotations_;
  directory_unsynced_ = true;  // the rename and the new file
  ::close(fd_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  durable_size_ = 0;
  newline_first_ = false;  // a new, empty file
  if (fd_ < 0) return IoError(errno, "opening after rotation", Where());
  ApplyRetention();
  return absl::OkStatus();
}

// Retention: the oldest rotated files go first. Best effort: a file that
// cannot be removed is left (and retried at the next rotation), never a
// reason to refuse records.
void AppendLogWriter::ApplyRetention() const {
  if (options_.keep_rotated <= 0) return;
  const std::vector<int> numbers = RotationNumbers(path_);
  const size_t keep = static_cast<size_t>(options_.keep_rotated);
  for (size_t i = 0; i + keep < numbers.size(); ++i)
    std::remove(RotatedLogPath(path_, numbers[i]).c_str());
}

absl::StatusOr<uint64_t> AppendLogWriter::AppendLines(const std::vector<std::string>& lines) {
  if (damaged_ || fd_ < 0) {
    if (absl::Status s = Restore(); !s.ok())
      return absl::UnavailableError(
          absl::StrCat(s.message(), "; refusing records until the log is restored"));
  }
  size_t bytes = 0;
  for (const std::string& line : lines) bytes += line.size();
  if (absl::Status s = RotateIfDue(bytes); !s.ok()) return s;
  // Before any byte of the batch is written, so that a failure leaves
  // nothing to cut back; retried before each batch until it succeeds.
  if (directory_unsynced_) {
    if (const int error = SyncDirectory(path_); error != 0)
      return IoError(error,
                     "syncing its directory (a new or renamed file is durable only then); "
                     "refusing records until it succeeds",
                     Where());
    directory_unsynced_ = false;
  }
  if (absl::Status s = CheckFreeSpace(bytes + (newline_first_ ? 1 : 0)); !s.ok()) return s;
  // The joined batch goes into a buffer kept from batch to batch: a fresh
  // one of a few MB would be page-faulted in every time.
  std::string& joined = batch_buffer_;
  joined.clear();
  const bool copy = lines.size() != 1 || newline_first_;
  if (copy) {
    joined.reserve(bytes + 1);
    if (newline_first_) joined += '\n';
    for (const std::string& line : lines) joined += line;
  }
  // One entry is written as it is, uncopied.
  const std::string& batch = copy ? joined : lines[0];
  if (const int error = WriteAll(fd_, batch); error != 0) {
    damaged_ = true;
    const absl::Status restored = Restore();
    const absl::Status failed = IoError(error, "write", Where());
    return restored.ok() ? failed
                         : absl::Status(failed.code(),
                                        absl::StrCat(failed.message(), "; ", restored.message()));
  }
  if (::fdatasync(fd_) != 0) {
    const int error = errno;
    damaged_ = true;
    Restore().IgnoreError();  // retried before the next batch while it fails
    // A full disk or quota can surface only here (NFS, thin volumes).
    return IoError(error, "fdatasync (the batch is not acknowledged)", Where());
  }
  const int64_t batch_start = durable_size_;
  durable_size_ += static_cast<int64_t>(batch.size());
  newline_first_ = false;
  if (options_.drop_written_pages) {
    // From the start of the page the batch began in: the partial last page
    // of the previous batch is complete now. Only advice: a failure changes
    // nothing that was written.
    static const int64_t page = std::max<int64_t>(1, ::sysconf(_SC_PAGESIZE));
    const int64_t from = batch_start - batch_start % page;
    ::posix_fadvise(fd_, from, durable_size_ - from, POSIX_FADV_DONTNEED);
  }
  const uint64_t first = appended_ + 1;
  appended_ += lines.size();
  return first;
}

// ---------------------------------------------------------------------------
// GroupCommitter

struct GroupCommitter::State {
  explicit State(std::unique_ptr<AppendLogWriter> w, int max)
      : writer(std::move(w)),
        max(max),
        name(writer->options().name),
        queue_flag(writer->options().queue_flag) {}
  std::unique_ptr<AppendLogWriter> writer;  // only the writer thread uses it
  const int max;
  const std::string name, queue_flag;
  std::mutex mu;
  std::condition_variable wake;     // the writer: work or exit
  std::condition_variable drained;  // Stop: nothing pending
  std::deque<std::pair<std::string, Done>> queue;
  std::vector<Done> writing;                        // the batch being written; emptied if abandoned
  int64_t queued_records = 0, writing_records = 0;  // what `max` bounds
  bool stopping = false, exit = false, busy = false;
  bool waiting = false;    // the writer is blocked on `wake`
  bool answering = false;  // the writer runs a batch's callbacks (outside the lock)
  uint64_t batches = 0;
  // When the last batch started; none before the first, which starts at once
  // (a default time point is the clock's epoch, often boot: within an interval
  // of boot it would hold the first batch back).
  std::optional<std::chrono::steady_clock::time_point> last_batch;
};

GroupCommitter::GroupCommitter(std::unique_ptr<AppendLogWriter> writer, int max_pending)
    : state_(std::make_shared<State>(std::move(writer), std::max(1, max_pending))) {
  std::thread(WriterLoop, state_).detach();  // Stop waits for it while it can
}

GroupCommitter::~GroupCommitter() { Stop(absl::Now()); }

absl::Status GroupCommitter::Submit(std::string line, Done done, int records) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->stopping) return absl::UnavailableError("server is shutting down");
    const int64_t pending = state_->queued_records + state_->writing_records;
    // An entry larger than the bound is taken when nothing else waits.
    if (pending > 0 && pending + records > state_->max)
      return absl::ResourceExhaustedError(
          absl::StrCat(state_->name, " queue is full (", state_->max,
                       " records waiting for the disk, ", state_->queue_flag, "); retry later"));
    state_->queue.emplace_back(std::move(line), std::move(done));
    state_->queued_records += records;
    // A writer in the middle of a batch takes the queue when it is done.
    if (!state_->waiting) return absl::OkStatus();
  }
  state_->wake.notify_one();
  return absl::OkStatus();
}

void GroupCommitter::WriterLoop(std::shared_ptr<State> state) {
  pthread_setname_np(pthread_self(), "lcio-logwriter");
  if (const int nice = state->writer->options().writer_nice; nice != 0)
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice);
  std::unique_lock<std::mutex> lock(state->mu);
  for (;;) {
    state->waiting = true;
    state->wake.wait(lock, [&] { return state->exit || !state->queue.empty(); });
    state->waiting = false;
    if (state->queue.empty()) {  // exit with nothing left
      // Closes the log and releases its lock now, not when the last owner
      // of the state lets go: a writer opened next on the same log (a
      // restart in the same process) must not find it held.
      state->writer.reset();
      break;
    }
    // Gather until the interval since the last batch has passed (on the
    // monotonic clock: a wall clock stepped back must not stall the log);
    // Stop wakes the writer to write what it has at once. (`waiting` stays
    // false: Submit need not wake a gathering writer.)
    const absl::Duration interval = state->writer->options().commit_interval;
    if (interval > absl::ZeroDuration() && state->last_batch && !state->stopping && !state->exit)
      state->wake.wait_until(lock, *state->last_batch + absl::ToChronoNanoseconds(interval),
                             [&] { return state->stopping || state->exit; });
    if (state->queue.empty()) continue;  // Stop answered it meanwhile
    state->last_batch = std::chrono::steady_clock::now();
    std::vector<std::string> lines;
    for (auto& [line, done] : state->queue) {
      lines.push_back(std::move(line));
      state->writing.push_back(std::move(done));
    }
    state->queue.clear();
    state->writing_records = state->queued_records;
    state->queued_records = 0;
    state->busy = true;
    lock.unlock();
    const absl::StatusOr<uint64_t> first = state->writer->AppendLines(lines);
    lock.lock();
    state->busy = false;
    ++state->batches;
    // Stop may have answered this batch already (a hung disk at shutdown).
    std::vector<Done> answer = std::move(state->writing);
    state->writing.clear();
    state->writing_records = 0;
    state->answering = true;  // Stop returns only after the callbacks have run
    lock.unlock();
    for (size_t i = 0; i < answer.size(); ++i)
      if (answer[i])
        answer[i](first.ok() ? absl::StatusOr<uint64_t>(*first + i)
                             : absl::StatusOr<uint64_t>(first.status()));
    lock.lock();
    state->answering = false;
    state->drained.notify_all();  // Stop may wait for the callbacks, or for an empty queue
  }
  state->drained.notify_all();
}

void GroupCommitter::Stop(absl::Time deadline) {
  std::vector<Done> abandoned;
  {
    std::unique_lock<std::mutex> lock(state_->mu);
    if (state_->exit) return;
    state_->stopping = true;
    state_->wake.notify_all();  // a writer gathering a batch writes it now
    state_->drained.wait_until(lock, absl::ToChronoTime(deadline), [this] {
      return state_->queue.empty() && state_->writing.empty() && !state_->answering;
    });
    for (auto& [line, done] : state_->queue) abandoned.push_back(std::move(done));
    state_->queue.clear();
    for (Done& done : state_->writing) abandoned.push_back(std::move(done));
    state_->writing.clear();
    state_->queued_records = state_->writing_records = 0;
    state_->exit = true;
    // Callbacks already handed their result run to the end even past the
    // deadline (they are short): a caller may free what they use once Stop
    // returns.
    state_->drained.wait(lock, [this] { return !state_->answering; });
  }
  state_->wake.notify_all();
  {
    // The writer closes the log (and releases its lock) on its way out;
    // waited for until the deadline (a hung disk may keep it longer).
    std::unique_lock<std::mutex> lock(state_->mu);
    state_->drained.wait_until(lock, absl::ToChronoTime(deadline),
                               [this] { return state_->writer == nullptr; });
  }
  for (Done& done : abandoned)
    if (done)
      done(absl::UnavailableError(
          "server shut down before the record was durable (--drain_timeout_s); it may or may not "
          "be in the log"));
}

uint64_t GroupCommitter::batches() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->batches;
}

}  // namespace lcio::server
