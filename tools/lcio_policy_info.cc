// lcio-policy-info: validates a policy artifact and prints its metadata as
// JSON (or, with --classify, the task the artifact's classifier infers for a
// prompt). Exit status 1 with the reason on stderr when the artifact is bad.
// The validation is the server's own (ServingPolicy::Load): an artifact this
// accepts, lcio-server serves.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "cli_help.h"
#include "lcio/env/fallback.h"
#include "lcio/server/serving_policy.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(bool, compact, false, "print the JSON on one line");
ABSL_FLAG(std::string, device, "cpu",
          "where to load the network for the check: auto, cpu, cuda[:N]");
ABSL_FLAG(std::string, classify, "", "print the inferred task of this prompt instead");
ABSL_FLAG(std::string, profiles, "",
          "extra profiles JSON, as the server's --profiles (validated with the artifact)");

int main(int argc, char** argv) {
  std::vector<char*> args = lcio::cli::ParseCommandLine(
      argc, argv, "[--compact] [--device cpu] [--classify PROMPT] ARTIFACT",
      "Fully validates ARTIFACT (as the server does before serving it) and prints its metadata.",
      /*max_positional=*/1);
  if (args.size() != 2) {
    std::fprintf(stderr, "usage: lcio-policy-info [flags] ARTIFACT (see --help)\n");
    return 2;
  }
  std::string extra_profiles;
  if (const std::string path = absl::GetFlag(FLAGS_profiles); !path.empty()) {
    auto text = lcio::server::ServingPolicy::ReadProfilesFile(path);
    if (!text.ok()) {
      std::fprintf(stderr, "lcio-policy-info: %s\n", text.status().ToString().c_str());
      return lcio::cli::ExitStatus(text.status());
    }
    extra_profiles = *std::move(text);
  }
  auto serving =
      lcio::server::ServingPolicy::Load(args[1], absl::GetFlag(FLAGS_device), extra_profiles);
  if (!serving.ok()) {
    std::fprintf(stderr, "lcio-policy-info: %s\n", serving.status().ToString().c_str());
    return lcio::cli::ExitStatus(serving.status());  // 2: a flag or the file refused
  }
  const lcio::policy::InferenceEngine* engine = &(*serving)->engine();
  const int indent = absl::GetFlag(FLAGS_compact) ? -1 : 2;
  if (!absl::GetFlag(FLAGS_classify).empty()) {
    const auto prediction = engine->classifier().Predict(absl::GetFlag(FLAGS_classify));
    nlohmann::json out = {{"task", engine->classifier().tasks()[prediction.task]},
                          {"task_index", prediction.task},
                          {"confidence", prediction.confidence}};
    std::printf("%s\n",
                out.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  nlohmann::json out = nlohmann::json::parse(lcio::policy::MetadataToJson(engine->metadata()));
  out["loaded_on"] = engine->device_name();
  // The table in one line (its entries are under "fallback").
  if (!engine->fallback().empty())
    out["fallback_summary"] =
        lcio::env::DescribeFallback(engine->fallback(), engine->encoder().actions());
  std::printf("%s\n",
              out.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  return 0;
}
