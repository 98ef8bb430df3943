// Reading an input file whole, and publishing an output file whole: written under a temporary name
// beside the target, made durable, then renamed over it, so that a reader or a crash sees the old
// file or the complete new one, never a torn one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lcio::data {

// The whole content of the regular file `path`. `label` starts every message
// (e.g. `profiles = "FILE"`) and `what` says what the file should be.
// NOT_FOUND when it does not exist or cannot be opened; INVALID_ARGUMENT when
// it is not a regular file (a device such as /dev/zero would be read without
// end, a directory reads as empty); DATA_LOSS when reading fails.
absl::StatusOr<std::string> ReadRegularFile(const std::string& path, const std::string& label,
                                            const std::string& what);

// OK when `path` is a regular file (or a link to one): the check of
// ReadRegularFile, for a reader that streams the file itself. A FIFO is never
// opened (that would wait for a writer).
absl::Status CheckRegularInput(const std::string& path, const std::string& label,
                               const std::string& what);

// One read of a whole file, opened once without blocking and checked through
// that descriptor: a path checked and then opened again by name may have
// become a FIFO in between (swapped in), and opening a FIFO waits for a
// writer, for ever. The callers word the outcome their own way.
struct FileRead {
  enum class Outcome { kRead, kCannotOpen, kDirectory, kNotRegular, kTooLarge, kReadFailed };
  Outcome outcome = Outcome::kCannotOpen;
  int error = 0;      // errno of kCannotOpen and kReadFailed
  int64_t size = 0;   // the file's size when opened (kRead, kTooLarge)
  std::string bytes;  // kRead: the content (shorter than `size` if it shrank meanwhile)
};
FileRead ReadWholeRegularFile(const std::string& path, int64_t max_bytes);

// For a reader that reads a file once, in order: INVALID_ARGUMENT when `path`
// is a device (/dev/zero would be read without end). Pipes and FIFOs pass
// (`--decisions=<(zcat log.gz)`); what does not exist is the opener's to say.
absl::Status CheckStreamableInput(const std::string& path, const std::string& label);

// OK when `path` does not exist or is a regular file (or a link to one).
// Anything else (a device such as /dev/null, a directory, a FIFO) would be
// replaced by the rename: FAILED_PRECONDITION naming the path and its kind.
absl::Status CheckReplaceableOutput(const std::string& path);

// INVALID_ARGUMENT when `out` exists and is the same file (device and inode,
// so links and other spellings count) as one of `inputs`: publishing it would
// replace an input, before or while it is read. `flag` names the output in
// the message ("--out"). Inputs that do not exist are skipped.
absl::Status CheckOutputIsNoInput(const std::string& flag, const std::string& out,
                                  const std::vector<std::string>& inputs);

// Whether `a` and `b` name the same file: the same device and inode when
// both exist, else the same path once made absolute and normalised (links
// resolved as far as they exist). Two outputs must not be one file.
bool SameFile(const std::string& a, const std::string& b);

// A temporary name beside `path` (same directory, so the rename is atomic),
// unique within the process: ".NAME.tmp-PID-N".
std::string TemporaryPathFor(const std::string& path);

// fsyncs the complete file `temp` (through `fd`, its still open descriptor,
// which is closed; or, with fd < 0, through a descriptor opened here), renames
// it to `path` and fsyncs the directory (best effort). On failure `temp` is
// removed and UNAVAILABLE names the step and the system's reason.
absl::Status PublishTemporaryFile(const std::string& temp, const std::string& path, int fd = -1);

}  // namespace lcio::data
