#include "lcio/data/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "lcio/data/message.h"

namespace lcio::data {

absl::Status CheckRegularInput(const std::string& path, const std::string& label,
                               const std::string& what) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status))
    return absl::NotFoundError(absl::StrCat(label, ": cannot open: no such file"));
  if (!std::filesystem::is_regular_file(status))
    return absl::InvalidArgumentError(absl::StrCat(label, ": not a regular file (", what, ")"));
  return absl::OkStatus();
}

absl::Status CheckStreamableInput(const std::string& path, const std::string& label) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)))
    return absl::InvalidArgumentError(absl::StrCat(label, ": a device, not a file"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadRegularFile(const std::string& path, const std::string& label,
                                            const std::string& what) {
  if (absl::Status regular = CheckRegularInput(path, label, what); !regular.ok()) return regular;
  // Checked again through the descriptor it is read from: the path may have
  // become something else since.
  FileRead read = ReadWholeRegularFile(path, std::numeric_limits<int64_t>::max());
  switch (read.outcome) {
    case FileRead::Outcome::kRead:
      return std::move(read.bytes);
    case FileRead::Outcome::kCannotOpen:
      return absl::NotFoundError(absl::StrCat(label, ": cannot open"));
    case FileRead::Outcome::kReadFailed:
      return absl::DataLossError(absl::StrCat(label, ": read failed"));
    default:
      return absl::InvalidArgumentError(absl::StrCat(label, ": not a regular file (", what, ")"));
  }
}

FileRead ReadWholeRegularFile(const std::string& path, int64_t max_bytes) {
  FileRead read;
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    read.error = errno;
    return read;  // kCannotOpen
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    read.error = errno;
    return read;  // kCannotOpen
  }
  if (S_ISDIR(st.st_mode)) {
    read.outcome = FileRead::Outcome::kDirectory;
    return read;
  }
  if (!S_ISREG(st.st_mode)) {
    read.outcome = FileRead::Outcome::kNotRegular;
    return read;
  }
  read.size = st.st_size;
  if (read.size > max_bytes) {
    read.outcome = FileRead::Outcome::kTooLarge;
    return read;
  }
  read.bytes.resize(static_cast<size_t>(read.size));
  size_t got = 0;
  char more[1 << 16];
  for (;;) {  // to the end, even past the size fstat gave (a file that grew)
    char* into = got < read.bytes.size() ? read.bytes.data() + got : more;
    const size_t room = got < read.bytes.size() ? read.bytes.size() - got : sizeof more;
    const ssize_t n = ::read(fd, into, room);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      read.outcome = FileRead::Outcome::kReadFailed;
      read.error = errno;
      return read;
    }
    if (n == 0) break;
    if (into == more) {
      if (static_cast<int64_t>(read.bytes.size()) + n > max_bytes) {
        read.outcome = FileRead::Outcome::kTooLarge;
        read.size = static_cast<int64_t>(read.bytes.size()) + n;
        return read;
      }
      read.bytes.append(more, static_cast<size_t>(n));
    }
    got += static_cast<size_t>(n);
  }
  read.bytes.resize(got);
  read.outcome = FileRead::Outcome::kRead;
  return read;
}

absl::Status CheckOutputIsNoInput(const std::string& flag, const std::string& out,
                                  const std::vector<std::string>& inputs) {
  struct stat written {};
  if (out.empty() || ::stat(out.c_str(), &written) != 0) return absl::OkStatus();
  for (const std::string& input : inputs) {
    struct stat read {};
    if (input.empty() || ::stat(input.c_str(), &read) != 0) continue;
    if (read.st_dev == written.st_dev && read.st_ino == written.st_ino)
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " = \"", Shorten(out, 128), "\" is the input \"", Shorten(input, 128),
                       "\": writing it would replace what is read; name another file"));
  }
  return absl::OkStatus();
}

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa {
  }, sb{};
  if (::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0)
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  std::error_code ea, eb;
  const auto ca = std::filesystem::weakly_canonical(a, ea);
  const auto cb = std::filesystem::weakly_canonical(b, eb);
  return ea || eb ? a == b : ca == cb;
}

absl::Status CheckReplaceableOutput(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return absl::OkStatus();  // nothing there (yet)
  if (S_ISREG(st.st_mode)) return absl::OkStatus();
  const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                     : S_ISCHR(st.st_mode)  ? "a character device"
                     : S_ISBLK(st.st_mode)  ? "a block device"
                     : S_ISFIFO(st.st_mode) ? "a FIFO"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                                            : "not a regular file";
  return absl::FailedPreconditionError(absl::StrCat(
      "output ", Shorten(path), " is ", kind,
      ": outputs are written whole and renamed over the target, which must be a regular file "
      "or not exist"));
}

std::string TemporaryPathFor(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  const std::filesystem::path target(path);
  const std::filesystem::path dir =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  return (dir / absl::StrCat(".", target.filename().string(), ".tmp-", getpid(), "-", counter++))
      .string();
}

absl::Status PublishTemporaryFile(const std::string& temp, const std::string& path, int fd) {
  // `error` is the errno of the step that failed, saved before anything else
  // (close, unlink) can overwrite it.
  auto fail = [&](const std::string& what, int error) {
    ::unlink(temp.c_str());
    return absl::UnavailableError(
        absl::StrCat("writing ", Shorten(path), ": ", what, ": ", std::strerror(error)));
  };
  if (fd < 0) {
    fd = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail("cannot reopen the temporary file", errno);
  }
  // Data reaches the disk before the rename makes it visible.
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    return fail("fsync failed", error);
  }
  if (::close(fd) != 0) return fail("close failed", errno);  // NFS reports write errors here
  if (::rename(temp.c_str(), path.c_str()) != 0) return fail("rename failed", errno);
  const std::filesystem::path target(path);
  const std::filesystem::path dir =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);  // best effort: makes the rename itself durable
    ::close(dir_fd);
  }
  return absl::OkStatus();
}

}  // namespace lcio::data
