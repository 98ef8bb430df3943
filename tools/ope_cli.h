// What lcio-ope and lcio-calibrate share: naming a policy on the command line.
#pragma once

#include <memory>
#include <string>

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

}  // namespace lcio::cli
