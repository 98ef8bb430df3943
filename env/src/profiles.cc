#include "lcio/env/profiles.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <initializer_list>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lcio/data/atomic_file.h"
#include "lcio/data/json_parse.h"
#include "lcio/data/m4a1.h"
#include "lcio/data/message.h"
#include "nlohmann/json.hpp"

namespace lcio::env {
namespace {

using nlohmann::json;

// The first 16 names (a profiles file may add thousands), each bounded.
template <typename T>
std::string KnownNames(const std::vector<T>& items) {
  constexpr size_t kListed = 16;
  std::vector<std::string> names;
  for (size_t i = 0; i < items.size() && i < kListed; ++i)
    names.push_back("\"" + data::Shorten(items[i].name, 64) + "\"");
  std::string out = absl::StrJoin(names, ", ");
  if (items.size() > kListed) absl::StrAppend(&out, " and ", items.size() - kListed, " more");
  return out;
}

template <typename T>
void Upsert(std::vector<T>& items, T item) {
  for (auto& existing : items) {
    if (existing.name == item.name) {
      existing = std::move(item);
      return;
    }
  }
  items.push_back(std::move(item));
}

absl::StatusOr<double> PositiveNumber(const json& object, const std::string& key,
                                      const std::string& where) {
  if (!object.contains(key)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": missing field \"", key, "\""));
  }
  const json& v = object[key];
  if (!v.is_number()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": field \"", key, "\" = ",
        data::Shorten(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 64),
        ": must be a number"));
  }
  double d = v.get<double>();
  if (!std::isfinite(d) || d <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": field \"", key, "\" = ",
        data::Shorten(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 64),
        ": must be finite and > 0"));
  }
  return d;
}

absl::StatusOr<std::vector<double>> CostList(const json& object, const std::string& key,
                                             const std::string& where) {
  if (!object.contains(key) || !object[key].is_array() || object[key].empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": field \"", key, "\" must be a non-empty array of numbers"));
  }
  std::vector<double> out;
  for (size_t k = 0; k < object[key].size(); ++k) {
    const json& v = object[key][k];
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": ", key, "[", k, "] = ",
          data::Shorten(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 64),
          ": must be a finite number >= 0"));
    }
    out.push_back(v.get<double>());
  }
  return out;
}

absl::StatusOr<std::string> Name(const json& object, const std::string& where) {
  if (!object.is_object() || !object.contains("name") || !object["name"].is_string() ||
      object["name"].get<std::string>().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": needs a non-empty string \"name\""));
  }
  const std::string& name = object["name"].get_ref<const std::string&>();
  if (name.size() > data::kMaxNameBytes)
    return absl::InvalidArgumentError(absl::StrCat(where, ": name \"", data::Shorten(name, 64),
                                                   "\" is ", name.size(), " bytes: at most ",
                                                   data::kMaxNameBytes));
  return name;
}

// An entry's fields are exactly `known` (a misspelt "peak_gflop" must not
// leave the built-in value in place unnoticed).
absl::Status CheckFields(const json& object, std::initializer_list<const char*> known,
                         const std::string& where) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    const std::string& key = it.key();
    if (std::find_if(known.begin(), known.end(), [&key](const char* k) { return key == k; }) ==
        known.end())
      return absl::InvalidArgumentError(absl::StrCat(where, ": unknown field \"",
                                                     data::Shorten(key, 64),
                                                     "\"; known: ", absl::StrJoin(known, ", ")));
  }
  return absl::OkStatus();
}

// A name given twice in one file: which entry wins would be an accident.
absl::Status CheckUnique(std::vector<std::string>* seen, const std::string& name,
                         const std::string& where) {
  if (std::find(seen->begin(), seen->end(), name) != seen->end())
    return absl::InvalidArgumentError(absl::StrCat(where, ": name \"", data::Shorten(name, 64),
                                                   "\" is given twice in this file"));
  seen->push_back(name);
  return absl::OkStatus();
}

}  // namespace

double LocalTimeSeconds(const DeviceProfile& device, const LocalLlmProfile& llm) {
  // The reference's order of operations, so that figures match to the last bits.
  const double flops_per_token = 2 * llm.parameters / llm.base_tokens;
  const double total_flops = flops_per_token * llm.total_tokens;
  return total_flops / (device.peak_gflops * 1e9);
}

double LocalMoneyUsd(const DeviceProfile& device, const LocalLlmProfile& llm,
                     double electricity_usd_per_kwh) {
  const double energy_j = device.max_power_w * LocalTimeSeconds(device, llm);
  return energy_j * (electricity_usd_per_kwh / (3600 * 1000));
}

ProfileCatalog ProfileCatalog::BuiltIn() {
  ProfileCatalog c;
  c.devices = {
      {"Raspberry Pi-4B", 13.5, 8},   {"Raspberry Pi-5", 31.4, 12},   {"Jetson Nano", 472, 10},
      {"Jetson TX2", 1.33e3, 15},     {"Jetson Xavier NX", 21e3, 20}, {"Jetson Orin NX", 100e3, 25},
      {"Jetson AGX Orin", 275e3, 60}, {"iPhone 15 Pro", 35e3, 15},
  };
  c.networks = {
      {"Wired", {6.46030, 4.76134, 6.24569, 6.98211}},
      {"WiFi", {0.5, 1.898, 2.016, 2.238}},
      {"5G", {0.5, 6.037, 6.412, 7.118}},
      {"4G", {0.5, 16.603, 17.636, 19.573}},
  };
  return c;
}

absl::Status ProfileCatalog::MergeJson(const std::string& json_text,
                                       const std::string& source_name) {
  absl::Status error;
  json root = data::ParseJson(json_text, source_name, &error);
  if (!error.ok()) return error;
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": not a JSON object (profiles file)"));
  }
  ProfileCatalog merged = *this;  // all-or-nothing: a bad file changes nothing
  static const char* kKnownKeys[] = {"devices", "networks", "local_llm", "cloud_llm",
                                     "electricity_usd_per_kwh"};
  for (const auto& [key, value] : root.items()) {
    if (std::find(std::begin(kKnownKeys), std::end(kKnownKeys), key) == std::end(kKnownKeys)) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ": unknown field \"", data::Shorten(key, 64),
                       "\"; known: ", absl::StrJoin(kKnownKeys, ", ")));
    }
  }
  if (root.contains("devices")) {
    if (!root["devices"].is_array())
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ": \"devices\" must be an array"));
    std::vector<std::string> seen;
    for (size_t i = 0; i < root["devices"].size(); ++i) {
      const json& d = root["devices"][i];
      const std::string where = absl::StrCat(source_name, ": devices[", i, "]");
      auto name = Name(d, where);
      if (!name.ok()) return name.status();
      if (auto s = CheckFields(d, {"name", "peak_gflops", "max_power_w"}, where); !s.ok()) return s;
      if (auto s = CheckUnique(&seen, *name, where); !s.ok()) return s;
      auto gf = PositiveNumber(d, "peak_gflops", where);
      if (!gf.ok()) return gf.status();
      auto pw = PositiveNumber(d, "max_power_w", where);
      if (!pw.ok()) return pw.status();
      Upsert(merged.devices, DeviceProfile{*name, *gf, *pw});
      if (merged.devices.size() > kMaxDevices)  // checked as it grows: Upsert is linear
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": more than ", kMaxDevices, " devices with the built-in ones"));
    }
  }
  if (root.contains("networks")) {
    if (!root["networks"].is_array())
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ": \"networks\" must be an array"));
    std::vector<std::string> seen;
    for (size_t i = 0; i < root["networks"].size(); ++i) {
      const json& n = root["networks"][i];
      const std::string where = absl::StrCat(source_name, ": networks[", i, "]");
      auto name = Name(n, where);
      if (!name.ok()) return name.status();
      if (auto s = CheckFields(n, {"name", "cloud_time_s"}, where); !s.ok()) return s;
      if (auto s = CheckUnique(&seen, *name, where); !s.ok()) return s;
      auto times = CostList(n, "cloud_time_s", where);
      if (!times.ok()) return times.status();
      Upsert(merged.networks, NetworkProfile{*name, *times});
      if (merged.networks.size() > kMaxNetworks)
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": more than ", kMaxNetworks, " networks with the built-in ones"));
    }
  }
  if (root.contains("local_llm")) {
    const json& l = root["local_llm"];
    const std::string where = absl::StrCat(source_name, ": local_llm");
    auto name = Name(l, where);
    if (!name.ok()) return name.status();
    if (auto s = CheckFields(l, {"name", "parameters", "base_tokens", "total_tokens"}, where);
        !s.ok())
      return s;
    auto p = PositiveNumber(l, "parameters", where);
    if (!p.ok()) return p.status();
    auto b = PositiveNumber(l, "base_tokens", where);
    if (!b.ok()) return b.status();
    auto t = PositiveNumber(l, "total_tokens", where);
    if (!t.ok()) return t.status();
    merged.local_llm = LocalLlmProfile{*name, *p, *b, *t};
  }
  if (root.contains("cloud_llm")) {
    const json& c = root["cloud_llm"];
    const std::string where = absl::StrCat(source_name, ": cloud_llm");
    auto name = Name(c, where);
    if (!name.ok()) return name.status();
    if (auto s = CheckFields(c, {"name", "money_usd"}, where); !s.ok()) return s;
    auto money = CostList(c, "money_usd", where);
    if (!money.ok()) return money.status();
    merged.cloud_llm = CloudLlmProfile{*name, *money};
  }
  if (root.contains("electricity_usd_per_kwh")) {
    auto e = PositiveNumber(root, "electricity_usd_per_kwh", source_name);
    if (!e.ok()) return e.status();
    merged.electricity_usd_per_kwh = *e;
  }
  *this = std::move(merged);
  return absl::OkStatus();
}

absl::Status ProfileCatalog::MergeJsonFile(const std::string& path) {
  auto text = data::ReadRegularFile(
      path, absl::StrCat("profiles file \"", data::Shorten(path, 256), "\""), "a JSON file");
  if (!text.ok()) return text.status();
  return MergeJson(*text, path);
}

std::string ProfileCatalog::ToJson() const {
  json root;
  root["devices"] = json::array();
  for (const auto& d : devices)
    root["devices"].push_back(
        {{"name", d.name}, {"peak_gflops", d.peak_gflops}, {"max_power_w", d.max_power_w}});
  root["networks"] = json::array();
  for (const auto& n : networks)
    root["networks"].push_back({{"name", n.name}, {"cloud_time_s", n.cloud_time_s}});
  root["local_llm"] = {{"name", local_llm.name},
                       {"parameters", local_llm.parameters},
                       {"base_tokens", local_llm.base_tokens},
                       {"total_tokens", local_llm.total_tokens}};
  root["cloud_llm"] = {{"name", cloud_llm.name}, {"money_usd", cloud_llm.money_usd}};
  root["electricity_usd_per_kwh"] = electricity_usd_per_kwh;
  return root.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<DeviceProfile> ProfileCatalog::Device(const std::string& name) const {
  for (const auto& d : devices)
    if (d.name == name) return d;
  return absl::NotFoundError(absl::StrCat("device \"", data::Shorten(name, 64),
                                          "\" is not known; known devices: ", KnownNames(devices)));
}

absl::StatusOr<NetworkProfile> ProfileCatalog::Network(const std::string& name) const {
  for (const auto& n : networks)
    if (n.name == name) return n;
  return absl::NotFoundError(
      absl::StrCat("network \"", data::Shorten(name, 64),
                   "\" is not known; known networks: ", KnownNames(networks)));
}

absl::StatusOr<CostModel> CostModel::Create(const ProfileCatalog& catalog,
                                            const std::string& device, const std::string& network,
                                            const ActionTable& actions) {
  auto dev = catalog.Device(device);
  if (!dev.ok()) return dev.status();
  auto net = catalog.Network(network);
  if (!net.ok()) return net.status();
  const size_t needed = static_cast<size_t>(actions.num_views()) + 1;
  if (net->cloud_time_s.size() < needed) {
    return absl::InvalidArgumentError(
        absl::StrCat("network \"", network, "\": cloud_time_s has ", net->cloud_time_s.size(),
                     " entries; the data has ", actions.num_views(), " views, so it needs ", needed,
                     " (0..", actions.num_views(), " views uploaded; docs/profiles.md)"));
  }
  if (catalog.cloud_llm.money_usd.size() < needed) {
    return absl::InvalidArgumentError(
        absl::StrCat("cloud_llm \"", catalog.cloud_llm.name, "\": money_usd has ",
                     catalog.cloud_llm.money_usd.size(), " entries; ", actions.num_views(),
                     " views need ", needed, " (docs/profiles.md)"));
  }
  CostModel m;
  m.device_ = device;
  m.network_ = network;
  m.local_time_s_ = LocalTimeSeconds(*dev, catalog.local_llm);
  m.local_money_usd_ = LocalMoneyUsd(*dev, catalog.local_llm, catalog.electricity_usd_per_kwh);

  // Normalisation runs over [local, cloud with 0..X views], as in the reference.
  std::vector<double> times = {m.local_time_s_}, money = {m.local_money_usd_};
  for (size_t k = 0; k < needed; ++k) {
    times.push_back(net->cloud_time_s[k]);
    money.push_back(catalog.cloud_llm.money_usd[k]);
  }
  // A turn costs what a logged turn may (data::kMaxTurn*): beyond that a
  // conversation's sums overflow and every figure turns inf or NaN.
  for (size_t slot = 0; slot < times.size(); ++slot) {
    const std::string what =
        slot == 0 ? "the local answer" : absl::StrCat("a cloud call with ", slot - 1, " views");
    if (!(times[slot] >= 0 && times[slot] <= data::kMaxTurnTimeS))
      return absl::InvalidArgumentError(absl::StrCat(
          "device \"", data::Shorten(device, 64), "\" on network \"", data::Shorten(network, 64),
          "\": ", what, " takes ", data::ExactNumber(times[slot]), " s: must be in [0, ",
          data::kMaxTurnTimeS, "] (docs/profiles.md)"));
    if (!(money[slot] >= 0 && money[slot] <= data::kMaxTurnCostUsd))
      return absl::InvalidArgumentError(absl::StrCat(
          "device \"", data::Shorten(device, 64), "\" on network \"", data::Shorten(network, 64),
          "\": ", what, " costs ", data::ExactNumber(money[slot]), " USD: must be in [0, ",
          data::kMaxTurnCostUsd, "] (docs/profiles.md)"));
  }
  auto normalise = [](const std::vector<double>& v) {
    const double lo = *std::min_element(v.begin(), v.end());
    const double hi = *std::max_element(v.begin(), v.end());
    std::vector<double> out;
    for (double x : v) out.push_back(hi > lo ? (x - lo) / (hi - lo) : 0.0);
    return out;
  };
  const auto norm_times = normalise(times), norm_money = normalise(money);
  for (int a = 0; a < actions.size(); ++a) {
    const size_t slot = actions.is_cloud(a) ? actions.num_uploaded(a) + 1 : 0;
    m.time_s_.push_back(times[slot]);
    m.money_usd_.push_back(money[slot]);
    m.norm_time_.push_back(norm_times[slot]);
    m.norm_money_.push_back(norm_money[slot]);
  }
  m.max_time_s_ = *std::max_element(m.time_s_.begin(), m.time_s_.end());
  m.max_money_usd_ = *std::max_element(m.money_usd_.begin(), m.money_usd_.end());
  return m;
}

std::vector<ProfilePair> AllProfilePairs(const ProfileCatalog& catalog) {
  std::vector<ProfilePair> pairs;
  for (const DeviceProfile& d : catalog.devices)
    for (const NetworkProfile& n : catalog.networks) pairs.push_back({d.name, n.name});
  return pairs;
}

}  // namespace lcio::env
