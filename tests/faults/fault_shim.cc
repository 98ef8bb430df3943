// LD_PRELOAD fault injection for the report log tests: a slow or failing
// disk under one file, without root or a real full filesystem.
//
// Only file descriptors whose path (/proc/self/fd) contains LCIO_FAULT_PATH
// are touched; without it the shim does nothing. Every variable is read at
// each call, so an in-process test can change them with setenv; a number
// may also be given as @FILE, read at each call (for another process).
//   LCIO_FAULT_FSYNC_DELAY_MS=N     fsync/fdatasync sleep N ms first (a slow
//                                   or, with a large N, hung disk)
//   LCIO_FAULT_FSYNC_EIO=1          fsync/fdatasync fail with EIO
//   LCIO_FAULT_FSYNC_ENOSPC=1       fsync/fdatasync fail with ENOSPC (a full
//                                   disk or quota seen only at sync: NFS)
//   LCIO_FAULT_WRITE_ENOSPC_AFTER=N the file cannot grow beyond N bytes: a
//                                   write that crosses N is cut short there
//                                   (a short write), the next one fails
//                                   with ENOSPC, as on a full disk
//   LCIO_FAULT_FTRUNCATE_EIO=1      ftruncate fails with EIO
//   LCIO_FAULT_READ_DELAY_MS=N      read sleeps N ms first (a hung disk under
//                                   a file being read, e.g. a policy)
//   LCIO_FAULT_DIR_FSYNC_EIO=1      fsync of any directory fails with EIO
//                                   (LCIO_FAULT_PATH need not match it)
#include <dlfcn.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace {

template <typename F>
F Next(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

bool Matches(int fd) {
  const char* pattern = std::getenv("LCIO_FAULT_PATH");
  if (pattern == nullptr || *pattern == '\0') return false;
  char link[64], target[4096];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = ::readlink(link, target, sizeof target - 1);
  if (n <= 0) return false;
  target[n] = '\0';
  return std::strstr(target, pattern) != nullptr;
}

// "N", or "@FILE": N read from FILE at each call (missing or empty: unset),
// so that a test can change it while another process runs.
long EnvLong(const char* name, long fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  if (*value != '@') return std::strtol(value, nullptr, 10);
  FILE* file = std::fopen(value + 1, "re");
  if (file == nullptr) return fallback;
  long n = fallback;
  if (std::fscanf(file, "%ld", &n) != 1) n = fallback;
  std::fclose(file);
  return n;
}

// 0 to go on with the real call, else the errno to fail with.
int BeforeSync(int fd) {
  if (!Matches(fd)) return 0;
  // Read everything before sleeping: the test may change the environment
  // while this thread sleeps.
  const int error = EnvLong("LCIO_FAULT_FSYNC_EIO", 0) != 0      ? EIO
                    : EnvLong("LCIO_FAULT_FSYNC_ENOSPC", 0) != 0 ? ENOSPC
                                                                 : 0;
  if (const long ms = EnvLong("LCIO_FAULT_FSYNC_DELAY_MS", 0); ms > 0) {
    timespec t{ms / 1000, (ms % 1000) * 1000000L};
    while (::nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
  }
  return error;
}

}  // namespace

extern "C" {

// Lets a test check that it really runs under the shim.
int lcio_fault_shim_loaded = 1;

ssize_t write(int fd, const void* buffer, size_t count) {
  static const auto real = Next<ssize_t (*)(int, const void*, size_t)>("write");
  const long limit = EnvLong("LCIO_FAULT_WRITE_ENOSPC_AFTER", -1);
  if (limit >= 0 && count > 0 && Matches(fd)) {
    struct stat st {};
    if (::fstat(fd, &st) == 0) {
      const long room = limit - static_cast<long>(st.st_size);
      if (room <= 0) {
        errno = ENOSPC;
        return -1;
      }
      if (static_cast<size_t>(room) < count) count = static_cast<size_t>(room);
    }
  }
  return real(fd, buffer, count);
}

ssize_t read(int fd, void* buffer, size_t count) {
  static const auto real = Next<ssize_t (*)(int, void*, size_t)>("read");
  // Checked only when set: read is on every socket's path.
  const char* set = std::getenv("LCIO_FAULT_READ_DELAY_MS");
  if (set != nullptr && *set != '\0' && Matches(fd)) {
    if (const long ms = EnvLong("LCIO_FAULT_READ_DELAY_MS", 0); ms > 0) {
      timespec t{ms / 1000, (ms % 1000) * 1000000L};
      while (::nanosleep(&t, &t) != 0 && errno == EINTR) {
      }
    }
  }
  return real(fd, buffer, count);
}

int ftruncate(int fd, off_t length) {
  static const auto real = Next<int (*)(int, off_t)>("ftruncate");
  if (EnvLong("LCIO_FAULT_FTRUNCATE_EIO", 0) != 0 && Matches(fd)) {
    errno = EIO;
    return -1;
  }
  return real(fd, length);
}

int fsync(int fd) {
  static const auto real = Next<int (*)(int)>("fsync");
  if (EnvLong("LCIO_FAULT_DIR_FSYNC_EIO", 0) != 0) {
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      errno = EIO;
      return -1;
    }
  }
  if (const int error = BeforeSync(fd); error != 0) {
    errno = error;
    return -1;
  }
  return real(fd);
}

int fdatasync(int fd) {
  static const auto real = Next<int (*)(int)>("fdatasync");
  if (const int error = BeforeSync(fd); error != 0) {
    errno = error;
    return -1;
  }
  return real(fd);
}

}  // extern "C"
