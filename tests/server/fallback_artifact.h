// Artifacts with a validated fallback table (env::FallbackTable in their
// metadata, format_version 2) for the server's tests: policy::testing's
// metadata and a seeded random network, costed with the built-in profiles.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lcio/env/action_table.h"
#include "lcio/env/fallback.h"
#include "lcio/env/profiles.h"
#include "lcio/policy/artifact_io.h"
#include "lcio/policy/network.h"
#include "lcio/policy/testing.h"

namespace lcio::test {

inline constexpr char kFallbackDevice[] = "Jetson TX2";

// The built-in catalog's costs of the 3-view actions on kFallbackDevice.
inline env::CostModel FallbackCosts(const std::string& network) {
  const env::ActionTable actions = env::ActionTable::Create(3).value();
  return env::CostModel::Create(env::ProfileCatalog::BuiltIn(), kFallbackDevice, network, actions)
      .value();
}

// A cell of the table: kFallbackDevice on `network` at `budget`.
inline env::FallbackEntry FallbackCell(const std::string& network, env::Budget budget,
                                       int fixed_action, bool serve_policy) {
  const env::CostModel costs = FallbackCosts(network);
  env::FallbackEntry e;
  e.device = kFallbackDevice;
  e.network = network;
  e.budget = budget;
  for (int a = 0; a < costs.num_actions(); ++a) {
    e.action_time_s.push_back(costs.time_s(a));
    e.action_money_usd.push_back(costs.money_usd(a));
  }
  e.fixed_action = fixed_action;
  e.serve_policy = serve_policy;
  e.validated_margin = serve_policy ? 0.2 : -0.1;
  e.validated_lower_bound = serve_policy ? 0.1 : -0.3;
  return e;
}

// policy::testing's artifact for `options` (its metadata; a seeded random
// network, `favoured_action` outscoring the others by a bias of 100) with
// `table` in its metadata.
inline absl::Status WriteFallbackArtifact(const std::string& path,
                                          const policy::testing::TestArtifactOptions& options,
                                          const env::FallbackTable& table) {
  auto metadata = policy::testing::TestMetadata(options);
  if (!metadata.ok()) return metadata.status();
  metadata->fallback_json = table.ToJson();
  policy::Network network;
  network.activation = policy::Activation::kTanh;
  network.sizes = {metadata->layout.size()};
  network.sizes.insert(network.sizes.end(), options.hidden.begin(), options.hidden.end());
  network.sizes.push_back(metadata->layout.num_actions());
  std::mt19937_64 rng(options.seed);
  std::uniform_real_distribution<float> uniform(-0.5f, 0.5f);
  for (size_t l = 0; l + 1 < network.sizes.size(); ++l) {
    std::vector<float> weights(static_cast<size_t>(network.sizes[l]) * network.sizes[l + 1]);
    std::vector<float> biases(network.sizes[l + 1]);
    for (float& w : weights) w = uniform(rng);
    for (float& b : biases) b = uniform(rng);
    network.weights.push_back(std::move(weights));
    network.biases.push_back(std::move(biases));
  }
  if (options.favoured_action >= 0) network.biases.back()[options.favoured_action] += 100.0f;
  return policy::SaveArtifact(path, network, *std::move(metadata));
}

}  // namespace lcio::test
