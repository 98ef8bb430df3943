#include "lcio/ope/joined_log.h"

#include <cmath>
#include <fstream>
#include <ostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "lcio/data/atomic_file.h"
#include "lcio/data/json_parse.h"
#include "lcio/data/message.h"
#include "nlohmann/json.hpp"

namespace lcio::ope {
namespace {

using json = nlohmann::json;

std::string Quote(const json& v) {
  return data::Shorten(v.dump(-1, ' ', false, json::error_handler_t::replace), 64);
}

absl::Status FieldError(std::string_view source, int64_t id, int turn, std::string_view field,
                        const json& value, std::string_view rule) {
  std::string where = absl::StrCat(std::string(source), ": episode ", id);
  if (turn >= 0) absl::StrAppend(&where, ", turn ", turn);
  return absl::InvalidArgumentError(absl::StrCat(where, ", field '", std::string(field),
                                                 "' = ", Quote(value), ": ", std::string(rule)));
}

absl::StatusOr<std::optional<double>> OptionalBudget(const json& object, std::string_view source,
                                                     int64_t id, const char* field, int turn = -1) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::optional<double>();
  if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0)
    return FieldError(source, id, turn, field, *it, "must be a finite number >= 0");
  return std::optional<double>(it->get<double>());
}

}  // namespace

absl::StatusOr<JoinedLog> ParseJoinedLog(std::string_view text, std::string_view source,
                                         std::optional<double> default_propensity,
                                         const data::LoadOptions& options) {
  JoinedLog log;
  absl::Status error;
  const json root = data::ParseJson(text, source, &error);
  if (root.is_discarded()) return error;
  // The M4A1 loader validates the schema (the episodes' "tasks" vocabulary
  // included); the extra fields are read here.
  auto dataset = data::ParseM4A1(text, source, options);
  if (!dataset.ok()) return dataset.status();
  log.dataset = *std::move(dataset);
  if (!root.is_array() || root.size() != log.dataset.episodes.size())
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(source), ": not an array of episodes"));
  for (size_t e = 0; e < root.size(); ++e) {
    const json& episode = root[e];
    const data::Episode& parsed = log.dataset.episodes[e];
    ConversationBudget budget;
    auto latency = OptionalBudget(episode, source, parsed.id, "latency_budget_s");
    if (!latency.ok()) return latency.status();
    auto money = OptionalBudget(episode, source, parsed.id, "money_budget_usd");
    if (!money.ok()) return money.status();
    budget.latency_s = *latency;
    budget.money_usd = *money;
    ServedProfile served;
    for (auto [field, value] :
         {std::pair{"device", &served.device}, {"network", &served.network}}) {
      auto it = episode.find(field);
      if (it == episode.end()) continue;
      if (!it->is_string() || it->get<std::string>().empty())
        return FieldError(source, parsed.id, -1, field, *it, "must be a non-empty string");
      *value = it->get<std::string>();
    }
    if (served.device.empty() != served.network.empty())
      return FieldError(source, parsed.id, -1, served.device.empty() ? "network" : "device",
                        json(served.device.empty() ? served.network : served.device),
                        "needs its partner: an episode names both device and network, or neither");
    const json& turns = episode.at("interactions");
    std::vector<double> p;
    for (size_t t = 0; t < turns.size(); ++t) {
      const int turn = static_cast<int>(t);
      auto left_s = OptionalBudget(turns[t], source, parsed.id, "remaining_latency_s", turn);
      if (!left_s.ok()) return left_s.status();
      auto left_usd = OptionalBudget(turns[t], source, parsed.id, "remaining_money_usd", turn);
      if (!left_usd.ok()) return left_usd.status();
      auto request_usd =
          OptionalBudget(turns[t], source, parsed.id, "remaining_request_money_usd", turn);
      if (!request_usd.ok()) return request_usd.status();
      if (*request_usd && *left_usd && **request_usd < **left_usd)
        return FieldError(source, parsed.id, turn, "remaining_request_money_usd",
                          turns[t]["remaining_request_money_usd"],
                          absl::StrCat("must be >= remaining_money_usd (", **left_usd,
                                       "): fleet control only lowers the request's budget"));
      budget.remaining_latency_s.push_back(*left_s);
      budget.remaining_money_usd.push_back(*left_usd);
      budget.remaining_request_money_usd.push_back(*request_usd);
      auto it = turns[t].find("propensity");
      if (it == turns[t].end()) {
        if (!default_propensity)
          return FieldError(source, parsed.id, static_cast<int>(t), "propensity", json(nullptr),
                            "required in a joined log (the probability of the logged action)");
        p.push_back(*default_propensity);
        continue;
      }
      if (!it->is_number() || !(it->get<double>() >= kMinPropensity) || !(it->get<double>() <= 1))
        return FieldError(source, parsed.id, static_cast<int>(t), "propensity", *it,
                          absl::StrCat("must be a number in [", kMinPropensity,
                                       ", 1] (a smaller one's squared weight overflows)"));
      p.push_back(it->get<double>());
    }
    log.propensity.push_back(std::move(p));
    log.budget.push_back(std::move(budget));
    log.profile.push_back(std::move(served));
  }
  return log;
}

absl::StatusOr<JoinedLog> LoadJoinedLog(const std::string& path,
                                        std::optional<double> default_propensity,
                                        const data::LoadOptions& options) {
  // A device or a FIFO (/dev/zero) would be read without end.
  auto text = data::ReadRegularFile(path, data::Shorten(path), "a joined log is a JSON file");
  if (!text.ok()) return text.status();
  return ParseJoinedLog(*text, path, default_propensity, options);
}

absl::Status JoinedLogWriter::Add(const data::Episode& episode,
                                  const std::vector<std::string>& tasks,
                                  const std::vector<double>& propensity,
                                  const ConversationBudget& budget, const ServedProfile& profile) {
  if (propensity.size() != episode.turns.size())
    return absl::InvalidArgumentError(absl::StrCat("episode ", episode.id, ": ", propensity.size(),
                                                   " propensities for ", episode.turns.size(),
                                                   " turns"));
  // The M4A1 writer is the one serialisation of the schema; the extra fields
  // are added to its output.
  data::Dataset one;
  one.tasks = tasks;
  one.num_views = static_cast<int>(episode.image_paths.size());
  one.episodes.push_back(episode);
  json j = json::parse(data::ToM4A1Json(one)).at(0);
  for (const auto* remaining : {&budget.remaining_latency_s, &budget.remaining_money_usd,
                                &budget.remaining_request_money_usd})
    if (!remaining->empty() && remaining->size() != episode.turns.size())
      return absl::InvalidArgumentError(absl::StrCat("episode ", episode.id, ": ",
                                                     remaining->size(), " remaining budgets for ",
                                                     episode.turns.size(), " turns"));
  for (size_t t = 0; t < propensity.size(); ++t) {
    json& turn = j["interactions"][t];
    turn["propensity"] = propensity[t];
    if (!budget.remaining_latency_s.empty() && budget.remaining_latency_s[t])
      turn["remaining_latency_s"] = *budget.remaining_latency_s[t];
    if (!budget.remaining_money_usd.empty() && budget.remaining_money_usd[t])
      turn["remaining_money_usd"] = *budget.remaining_money_usd[t];
    if (!budget.remaining_request_money_usd.empty() && budget.remaining_request_money_usd[t])
      turn["remaining_request_money_usd"] = *budget.remaining_request_money_usd[t];
  }
  j["tasks"] = tasks;
  if (profile.known()) {
    j["device"] = profile.device;
    j["network"] = profile.network;
  }
  if (budget.latency_s) j["latency_budget_s"] = *budget.latency_s;
  if (budget.money_usd) j["money_budget_usd"] = *budget.money_usd;
  *out_ << (episodes_ == 0 ? "[\n" : ",\n")
        << j.dump(-1, ' ', false, json::error_handler_t::replace);
  ++episodes_;
  if (!*out_) return absl::DataLossError("joined log: write failed");
  return absl::OkStatus();
}

absl::Status JoinedLogWriter::Finish() {
  *out_ << (episodes_ == 0 ? "[]\n" : "\n]\n");
  out_->flush();
  if (!*out_) return absl::DataLossError("joined log: write failed");
  return absl::OkStatus();
}

absl::Status WriteJoinedLog(const JoinedLog& log, std::ostream& out) {
  JoinedLogWriter writer(&out);
  for (size_t e = 0; e < log.dataset.episodes.size(); ++e)
    if (auto s =
            writer.Add(log.dataset.episodes[e], log.dataset.tasks, log.propensity[e], log.budget[e],
                       e < log.profile.size() ? log.profile[e] : ServedProfile{});
        !s.ok())
      return s;
  return writer.Finish();
}

}  // namespace lcio::ope
