// Publishing an output file whole: written under a temporary name beside the
// target, made durable, then renamed over it, so that a reader or a crash
// sees the old file or the complete new one, never a torn one.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace lcio::data {

// OK when `path` does not exist or is a regular file (or a link to one).
// Anything else (a device such as /dev/null, a directory, a FIFO) would be
// replaced by the rename: FAILED_PRECONDITION naming the path and its kind.
absl::Status CheckReplaceableOutput(const std::string& path);

// A temporary name beside `path` (same directory, so the rename is atomic),
// unique within the process: ".NAME.tmp-PID-N".
std::string TemporaryPathFor(const std::string& path);

// fsyncs the complete file `temp` (through `fd`, its still open descriptor,
// which is closed; or, with fd < 0, through a descriptor opened here), renames
// it to `path` and fsyncs the directory (best effort). On failure `temp` is
// removed and UNAVAILABLE names the step and the system's reason.
absl::Status PublishTemporaryFile(const std::string& temp, const std::string& path, int fd = -1);

}  // namespace lcio::data
