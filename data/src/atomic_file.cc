#include "lcio/data/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace lcio::data {

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
      "output ", path.substr(0, 256), " is ", kind,
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

absl::Status PublishTemporaryFile(const std::string& temp, const std::string& path) {
  auto fail = [&](const std::string& what) {
    absl::Status status = absl::UnavailableError(
        absl::StrCat("writing ", path.substr(0, 256), ": ", what, ": ", std::strerror(errno)));
    ::unlink(temp.c_str());
    return status;
  };
  const int fd = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(absl::StrCat("cannot reopen ", temp));
  // Data reaches the disk before the rename makes it visible.
  const int synced = ::fsync(fd);
  ::close(fd);
  if (synced != 0) return fail("fsync failed");
  if (::rename(temp.c_str(), path.c_str()) != 0) return fail("rename failed");
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
