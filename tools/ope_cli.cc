#include "ope_cli.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lcio/data/message.h"
#include "lcio/env/baselines.h"
#include "lcio/policy/artifact_io.h"
#include "lcio/policy/artifact_policy.h"

namespace lcio::cli {

absl::StatusOr<std::unique_ptr<env::Policy>> MakePolicy(const std::string& spec,
                                                        const data::Dataset& dataset,
                                                        const env::Simulator& simulator) {
  const int num_actions = simulator.actions().size();
  if (spec == "local") return std::make_unique<env::FixedPolicy>(0, "Local");
  if (absl::StartsWith(spec, "fixed:")) {
    int action = -1;
    if (!absl::SimpleAtoi(spec.substr(6), &action) || action < 0 || action >= num_actions)
      return absl::InvalidArgumentError(absl::StrCat(
          "policy \"", data::Shorten(spec, 64), "\": fixed:N needs N in [0, ", num_actions - 1,
          "] (the action table of ", simulator.num_views(), " views)"));
    return std::make_unique<env::FixedPolicy>(action, absl::StrCat("Fixed ", action));
  }
  auto loaded = policy::ArtifactPolicy::Load(spec, "cpu");
  if (!loaded.ok())
    return absl::Status(
        loaded.status().code(),
        absl::StrCat("policy \"", data::Shorten(spec),
                     "\" (local, fixed:N or an artifact path): ", loaded.status().message()));
  if (auto s =
          (*loaded)->CheckCompatible(dataset.num_views, static_cast<int>(dataset.tasks.size()));
      !s.ok())
    return s;
  // The same number of tasks is not enough: a candidate whose vocabulary
  // names them otherwise, or in another order, would be replayed with the
  // wrong task on every turn.
  const std::vector<std::string>& tasks = (*loaded)->engine().metadata().tasks;
  if (tasks != dataset.tasks)
    for (size_t t = 0; t < tasks.size() && t < dataset.tasks.size(); ++t)
      if (tasks[t] != dataset.tasks[t])
        return absl::FailedPreconditionError(absl::StrCat(
            "policy \"", data::Shorten(spec), "\": task ", t, " is \"", data::Shorten(tasks[t], 64),
            "\", the data's is \"", data::Shorten(dataset.tasks[t], 64),
            "\": a policy must know the data's tasks in the data's order"));
  return std::unique_ptr<env::Policy>(std::move(*loaded));
}

absl::StatusOr<std::unique_ptr<env::Policy>> MakeFlagPolicy(std::string_view flag,
                                                            const std::string& spec,
                                                            const data::Dataset& dataset,
                                                            const env::Simulator& simulator) {
  auto policy = MakePolicy(spec, dataset, simulator);
  if (!policy.ok())
    return absl::Status(policy.status().code(),
                        absl::StrCat("--", std::string(flag), ": ", policy.status().message()));
  return policy;
}

absl::Status UseServingCatalog(const std::string& spec, const std::string& profiles_file,
                               env::SimulatorConfig* config) {
  env::ProfileCatalog catalog = env::ProfileCatalog::BuiltIn();
  if (spec != "local" && !absl::StartsWith(spec, "fixed:")) {
    auto metadata = policy::ReadArtifactMetadata(spec);
    if (!metadata.ok())
      return absl::Status(
          metadata.status().code(),
          absl::StrCat("policy \"", data::Shorten(spec), "\": ", metadata.status().message()));
    if (!metadata->profiles_json.empty())
      if (auto s = catalog.MergeJson(metadata->profiles_json, spec); !s.ok()) return s;
  }
  if (!profiles_file.empty())
    if (auto s = catalog.MergeJsonFile(profiles_file); !s.ok()) return s;
  if (auto d = catalog.Device(config->device); !d.ok()) return d.status();
  if (auto n = catalog.Network(config->network); !n.ok()) return n.status();
  config->catalog = std::move(catalog);
  return absl::OkStatus();
}

absl::StatusOr<CandidateList> ResolveBaseline(const std::vector<std::string>& candidates,
                                              const std::string& baseline) {
  CandidateList out;
  out.specs = candidates;
  if (baseline.empty()) return out;
  if (absl::StrContains(baseline, ',') || absl::StripAsciiWhitespace(baseline).empty())
    return absl::InvalidArgumentError(
        absl::StrCat("--baseline = \"", data::Shorten(baseline, 256),
                     "\": must be one policy (local, fixed:N or an artifact path), not a list"));
  if (candidates.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("--baseline = \"", data::Shorten(baseline, 256),
                     "\": --candidates is empty; name the policies to compare with it"));
  for (size_t i = 0; i < candidates.size(); ++i)
    if (candidates[i] == baseline) {
      out.baseline = static_cast<int>(i);
      return out;
    }
  out.specs.insert(out.specs.begin(), baseline);
  out.baseline = 0;
  return out;
}

}  // namespace lcio::cli
