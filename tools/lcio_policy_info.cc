// lcio-policy-info: validates a policy artifact and prints its metadata as
// JSON (or, with --classify, the task the artifact's classifier infers for a
// prompt). Exit status 1 with the reason on stderr when the artifact is bad.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "lcio/policy/inference.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(bool, compact, false, "print the JSON on one line");
ABSL_FLAG(std::string, device, "cpu",
          "where to load the network for the check: auto, cpu, cuda[:N]");
ABSL_FLAG(std::string, classify, "", "print the inferred task of this prompt instead");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "lcio-policy-info [--compact] [--device cpu] [--classify PROMPT] ARTIFACT\n"
      "Fully validates ARTIFACT (as the server does before serving it) and prints its metadata.");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::fprintf(stderr, "usage: lcio-policy-info [flags] ARTIFACT (see --help)\n");
    return 2;
  }
  auto engine = lcio::policy::InferenceEngine::Load(args[1], absl::GetFlag(FLAGS_device));
  if (!engine.ok()) {
    std::fprintf(stderr, "lcio-policy-info: %s\n", engine.status().ToString().c_str());
    return 1;
  }
  const int indent = absl::GetFlag(FLAGS_compact) ? -1 : 2;
  if (!absl::GetFlag(FLAGS_classify).empty()) {
    const auto prediction = (*engine)->classifier().Predict(absl::GetFlag(FLAGS_classify));
    nlohmann::json out = {{"task", (*engine)->classifier().tasks()[prediction.task]},
                          {"task_index", prediction.task},
                          {"confidence", prediction.confidence}};
    std::printf("%s\n", out.dump(indent).c_str());
    return 0;
  }
  nlohmann::json out = nlohmann::json::parse(lcio::policy::MetadataToJson((*engine)->metadata()));
  out["loaded_on"] = (*engine)->device_name();
  std::printf("%s\n", out.dump(indent).c_str());
  return 0;
}
