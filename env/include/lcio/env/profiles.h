// Device, network and LLM profiles, and the cost model built from them: the
// one table of what an action costs in seconds and USD, shared by the
// simulator, the shield and the server's expected-cost answers.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lcio/env/action_table.h"

namespace lcio::env {

struct DeviceProfile {
  std::string name;
  double peak_gflops = 0;  // GF_peak
  double max_power_w = 0;  // P_max
};

struct NetworkProfile {
  std::string name;
  std::vector<double> cloud_time_s;  // [k] = seconds of a cloud call uploading k views
};

struct LocalLlmProfile {
  std::string name = "local-3.8B";
  double parameters = 3.8e9;
  double base_tokens = 1024;   // L_base
  double total_tokens = 2048;  // L_total
};

struct CloudLlmProfile {
  std::string name = "cloud";
  std::vector<double> money_usd = {0.00049, 0.00500, 0.00945, 0.01368};  // [k views]
};

// Every profile a deployment knows. BuiltIn() holds the reference's eight
// devices and four networks; a JSON file adds or replaces entries:
// {"devices": [{"name", "peak_gflops", "max_power_w"}],
//  "networks": [{"name", "cloud_time_s": [...]}],
//  "local_llm": {"name", "parameters", "base_tokens", "total_tokens"},
//  "cloud_llm": {"name", "money_usd": [...]},
//  "electricity_usd_per_kwh": 0.1668}
struct ProfileCatalog {
  std::vector<DeviceProfile> devices;
  std::vector<NetworkProfile> networks;
  // A catalog holds at most these many (built-in ones included): every
  // device x network pair gets a cost model in the server and an entry per
  // budget in a fallback table, so a file of a few hundred kB must not ask
  // for gigabytes.
  static constexpr size_t kMaxDevices = 64, kMaxNetworks = 64;
  LocalLlmProfile local_llm;
  CloudLlmProfile cloud_llm;
  double electricity_usd_per_kwh = 0.1668;

  static ProfileCatalog BuiltIn();
  absl::Status MergeJson(const std::string& json_text, const std::string& source_name);
  absl::Status MergeJsonFile(const std::string& path);
  std::string ToJson() const;

  // Errors list the known names.
  absl::StatusOr<DeviceProfile> Device(const std::string& name) const;
  absl::StatusOr<NetworkProfile> Network(const std::string& name) const;
};

// One device x network pair of a catalog: what a request or a training
// episode is costed under.
struct ProfilePair {
  std::string device, network;
  bool operator==(const ProfilePair& o) const { return device == o.device && network == o.network; }
};
// Every device x network of the catalog, devices outermost, in catalog order.
std::vector<ProfilePair> AllProfilePairs(const ProfileCatalog& catalog);

// What each action costs for one device, network and view count.
class CostModel {
 public:
  static absl::StatusOr<CostModel> Create(const ProfileCatalog& catalog, const std::string& device,
                                          const std::string& network, const ActionTable& actions);

  double local_time_s() const { return local_time_s_; }
  double local_money_usd() const { return local_money_usd_; }
  // Per action.
  double time_s(int action) const { return time_s_[action]; }
  double money_usd(int action) const { return money_usd_[action]; }
  // Min-max normalised over [local, cloud with 0..X views], per dimension.
  double norm_time(int action) const { return norm_time_[action]; }
  double norm_money(int action) const { return norm_money_[action]; }
  double max_time_s() const { return max_time_s_; }
  double max_money_usd() const { return max_money_usd_; }
  int num_actions() const { return static_cast<int>(time_s_.size()); }
  const std::string& device() const { return device_; }
  const std::string& network() const { return network_; }

 private:
  std::string device_, network_;
  double local_time_s_ = 0, local_money_usd_ = 0, max_time_s_ = 0, max_money_usd_ = 0;
  std::vector<double> time_s_, money_usd_, norm_time_, norm_money_;
};

// The reference's local cost formula, exposed for tests and the docs.
double LocalTimeSeconds(const DeviceProfile& device, const LocalLlmProfile& llm);
double LocalMoneyUsd(const DeviceProfile& device, const LocalLlmProfile& llm,
                     double electricity_usd_per_kwh);

}  // namespace lcio::env
