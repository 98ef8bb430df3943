// make_bench_policy: writes a valid policy artifact with seeded random
// weights (lcio::policy::testing) for serving benchmarks and manual runs when
// no trained policy is at hand. Decisions are meaningless; the cost of
// serving them is the same as a trained network of the same shape.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "lcio/policy/testing.h"

ABSL_FLAG(std::string, out, "bench_policy.pt", "artifact to write");
ABSL_FLAG(std::string, hidden, "64,64", "hidden layer widths");
ABSL_FLAG(uint64_t, seed, 1, "weight seed");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  lcio::policy::testing::TestArtifactOptions options;
  options.seed = absl::GetFlag(FLAGS_seed);
  options.hidden.clear();
  for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_hidden), ',')) {
    int width = 0;
    if (!absl::SimpleAtoi(part, &width) || width < 1) {
      std::fprintf(stderr, "make_bench_policy: --hidden: bad width\n");
      return 2;
    }
    options.hidden.push_back(width);
  }
  auto written = lcio::policy::testing::WriteTestArtifact(absl::GetFlag(FLAGS_out), options);
  if (!written.ok()) {
    std::fprintf(stderr, "make_bench_policy: %s\n", written.status().ToString().c_str());
    return 1;
  }
  std::printf("%s %s\n", absl::GetFlag(FLAGS_out).c_str(), written->policy_version.c_str());
  return 0;
}
