// lcio-server refuses out-of-range numeric flags at start (exit 2), and the
// message names the flag, the value given and the range.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "process.h"
#include "test_support.h"

namespace lcio::test {
namespace {

using namespace std::chrono_literals;

TEST(ServerFlags, OutOfRangeLogFlagsAreRefusedNamingFlagValueAndRange) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--report_queue_max=0", "--report_queue_max=0: must be in [1, "},
      {"--report_max_record_bytes=100", "--report_max_record_bytes=100: must be in [1024, "},
      {"--report_rotate_mb=-3", "--report_rotate_mb=-3: must be in [0, "},
      {"--report_min_free_mb=-1", "--report_min_free_mb=-1: must be in [0, "},
      {"--decision_log_queue_max=0", "--decision_log_queue_max=0: must be in [1, "},
      {"--decision_log_keep_files=-2", "--decision_log_keep_files=-2: must be in [0, "},
      {"--decision_log_rotate_mb=-1", "--decision_log_rotate_mb=-1: must be in [0, "},
      {"--decision_log_min_free_mb=2199023255552",
       "--decision_log_min_free_mb=2199023255552: must be in [0, 1099511627776]"},
      {"--decision_log_commit_ms=20000", "--decision_log_commit_ms=20000: must be in [0, 10000]"}};
  for (const auto& [flag, message] : cases) {
    Process server({LCIO_SERVER_BIN, "--listen=127.0.0.1:0", "--metrics_listen=", flag},
                   dir.File("bad.stderr"));
    auto status = server.Wait(30s);
    ASSERT_TRUE(status.has_value()) << flag;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << flag;
    EXPECT_TRUE(absl::StrContains(ReadFile(dir.File("bad.stderr")), message))
        << flag << ": " << ReadFile(dir.File("bad.stderr"));
  }
}

}  // namespace
}  // namespace lcio::test
