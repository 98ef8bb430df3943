// What lcio-ope and lcio-calibrate share: naming a policy on the command line.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "lcio/data/m4a1.h"
#include "lcio/env/policy_interface.h"
#include "lcio/env/simulator.h"

namespace lcio::cli {

// "local", "fixed:N" (action N of the action table) or the path of a policy
// artifact (checked against the data's views and tasks).
absl::StatusOr<std::unique_ptr<env::Policy>> MakePolicy(const std::string& spec,
                                                        const data::Dataset& dataset,
                                                        const env::Simulator& simulator);

// MakePolicy for the value of a command-line flag: errors name the flag.
absl::StatusOr<std::unique_ptr<env::Policy>> MakeFlagPolicy(std::string_view flag,
                                                            const std::string& spec,
                                                            const data::Dataset& dataset,
                                                            const env::Simulator& simulator);

// The profile catalog traffic served by the policy `spec` was priced with:
// the built-in catalog, the profiles the artifact was trained with (what
// lcio-server adds to it), then `profiles_file` (--profiles: the fleet's
// LCIO_PROFILES). "local" and "fixed:N" carry no profiles: only the built-in
// catalog and the file. Replaces config->catalog; config's device and network
// must be in it.
absl::Status UseServingCatalog(const std::string& spec, const std::string& profiles_file,
                               env::SimulatorConfig* config);

// lcio-ope's --candidates with --baseline: the policies to evaluate, in
// order, and which of them is the baseline every other one is compared with
// (-1: no baseline). A baseline that is not one of the candidates is
// evaluated first. Errors name the flag and its value.
struct CandidateList {
  std::vector<std::string> specs;
  int baseline = -1;
};
absl::StatusOr<CandidateList> ResolveBaseline(const std::vector<std::string>& candidates,
                                              const std::string& baseline);

}  // namespace lcio::cli
