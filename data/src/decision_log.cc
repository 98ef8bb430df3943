#include "lcio/data/decision_log.h"

#include <cmath>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "lcio/data/json_parse.h"
#include "nlohmann/json.hpp"

namespace lcio::data {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxQuotedBytes = 64;
constexpr size_t kMaxIdBytes = 256;
constexpr double kProbabilitySumTolerance = 1e-6;

// Values quoted in messages are cut so that a hostile line cannot make a
// long message.
std::string Quote(const Json& value) {
  std::string text = value.dump(-1, ' ', true, Json::error_handler_t::replace);
  if (text.size() > kMaxQuotedBytes)
    text = absl::StrCat(text.substr(0, kMaxQuotedBytes), "...(", text.size(), " bytes)");
  return text;
}

absl::Status Invalid(const std::string& field, const Json& value, std::string_view rule) {
  return absl::InvalidArgumentError(
      absl::StrCat("decision record: ", field, " = ", Quote(value), ": ", std::string(rule)));
}

absl::Status Missing(const std::string& field) {
  return absl::InvalidArgumentError(absl::StrCat("decision record: ", field, " is missing"));
}

// Strict field access on one JSON object: every read names its full path;
// Done() refuses fields nobody read.
class Fields {
 public:
  Fields(const Json& object, std::string path) : object_(object), path_(std::move(path)) {}

  static absl::Status IsObject(const Json& j, const std::string& path) {
    return j.is_object() ? absl::OkStatus() : Invalid(path, j, "must be a JSON object");
  }

  std::string Path(std::string_view key) const {
    return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", std::string(key));
  }

  absl::StatusOr<const Json*> Get(std::string_view key) {
    read_.insert(std::string(key));
    auto it = object_.find(std::string(key));
    if (it == object_.end()) return Missing(Path(key));
    return &*it;
  }

  absl::Status String(std::string_view key, std::string* out, bool non_empty = false,
                      size_t max_bytes = 0) {
    auto j = Get(key);
    if (!j.ok()) return j.status();
    if (!(*j)->is_string()) return Invalid(Path(key), **j, "must be a string");
    *out = (*j)->get<std::string>();
    if (non_empty && out->empty()) return Invalid(Path(key), **j, "must not be empty");
    if (max_bytes > 0 && out->size() > max_bytes)
      return Invalid(Path(key), **j, absl::StrCat("must be at most ", max_bytes, " bytes"));
    return absl::OkStatus();
  }

  absl::Status Bool(std::string_view key, bool* out) {
    auto j = Get(key);
    if (!j.ok()) return j.status();
    if (!(*j)->is_boolean()) return Invalid(Path(key), **j, "must be true or false");
    *out = (*j)->get<bool>();
    return absl::OkStatus();
  }

  absl::Status Int(std::string_view key, int* out, int lo, int hi) {
    auto j = Get(key);
    if (!j.ok()) return j.status();
    return ReadInt(**j, Path(key), out, lo, hi);
  }

  static absl::Status ReadInt(const Json& j, const std::string& path, int* out, int lo, int hi) {
    if (!j.is_number_integer()) return Invalid(path, j, "must be an integer");
    const int64_t v = j.get<int64_t>();
    if (v < lo || v > hi) return Invalid(path, j, absl::StrCat("must be in [", lo, ", ", hi, "]"));
    *out = static_cast<int>(v);
    return absl::OkStatus();
  }

  // Finite numbers only; `lo`/`hi` bound them when given.
  absl::Status Number(std::string_view key, double* out, std::optional<double> lo = std::nullopt,
                      std::optional<double> hi = std::nullopt) {
    auto j = Get(key);
    if (!j.ok()) return j.status();
    return ReadNumber(**j, Path(key), out, lo, hi);
  }

  static absl::Status ReadNumber(const Json& j, const std::string& path, double* out,
                                 std::optional<double> lo, std::optional<double> hi) {
    if (!j.is_number()) return Invalid(path, j, "must be a number");
    const double v = j.get<double>();
    if (!std::isfinite(v)) return Invalid(path, j, "must be finite");
    if (lo && v < *lo) return Invalid(path, j, absl::StrCat("must be >= ", *lo));
    if (hi && v > *hi) return Invalid(path, j, absl::StrCat("must be <= ", *hi));
    *out = v;
    return absl::OkStatus();
  }

  absl::Status Array(std::string_view key, const Json** out) {
    auto j = Get(key);
    if (!j.ok()) return j.status();
    if (!(*j)->is_array()) return Invalid(Path(key), **j, "must be an array");
    *out = *j;
    return absl::OkStatus();
  }

  absl::Status Done() const {
    for (auto it = object_.begin(); it != object_.end(); ++it)
      if (read_.count(it.key()) == 0)
        return Invalid(
            Path(it.key()), it.value(),
            absl::StrCat("is not a field of schema_version ", kDecisionLogSchemaVersion));
    return absl::OkStatus();
  }

 private:
  const Json& object_;
  std::string path_;
  std::set<std::string> read_;
};

#define LCIO_RETURN_IF_ERROR(expr)                     \
  do {                                                 \
    if (absl::Status _s = (expr); !_s.ok()) return _s; \
  } while (0)

std::string Index(const std::string& path, size_t i) { return absl::StrCat(path, "[", i, "]"); }

absl::Status ReadNumbers(const Json& array, const std::string& path, std::vector<double>* out,
                         std::optional<double> lo, std::optional<double> hi) {
  out->clear();
  for (size_t i = 0; i < array.size(); ++i) {
    double v = 0;
    LCIO_RETURN_IF_ERROR(Fields::ReadNumber(array[i], Index(path, i), &v, lo, hi));
    out->push_back(v);
  }
  return absl::OkStatus();
}

absl::Status CheckProbabilities(const std::vector<double>& p, const std::string& path) {
  double sum = 0;
  for (double v : p) sum += v;
  if (std::fabs(sum - 1) > kProbabilitySumTolerance)
    return Invalid(path, Json(sum),
                   "the probabilities must sum to 1 (within 1e-6); this is their sum");
  return absl::OkStatus();
}

absl::Status ParseContext(const Json& j, DecisionContext* c, int num_actions) {
  LCIO_RETURN_IF_ERROR(Fields::IsObject(j, "context"));
  Fields f(j, "context");
  LCIO_RETURN_IF_ERROR(f.String("task", &c->task, /*non_empty=*/true, kMaxIdBytes));
  LCIO_RETURN_IF_ERROR(f.Bool("task_inferred", &c->task_inferred));
  LCIO_RETURN_IF_ERROR(f.Number("task_confidence", &c->task_confidence, 0.0, 1.0));
  const Json* views = nullptr;
  LCIO_RETURN_IF_ERROR(f.Array("view_names", &views));
  c->view_names.clear();
  for (size_t i = 0; i < views->size(); ++i) {
    if (!(*views)[i].is_string())
      return Invalid(Index("context.view_names", i), (*views)[i], "must be a string");
    c->view_names.push_back((*views)[i].get<std::string>());
  }
  const Json* association = nullptr;
  LCIO_RETURN_IF_ERROR(f.Array("association", &association));
  LCIO_RETURN_IF_ERROR(ReadNumbers(*association, "context.association", &c->association, 0.0, 1.0));
  if (c->association.size() != c->view_names.size())
    return Invalid("context.association", *association,
                   absl::StrCat("must have one value per view (", c->view_names.size(), ")"));
  LCIO_RETURN_IF_ERROR(f.Number("latency_budget_s", &c->latency_budget_s, 0.0));
  LCIO_RETURN_IF_ERROR(f.Number("money_budget_usd", &c->money_budget_usd, 0.0));
  LCIO_RETURN_IF_ERROR(f.String("device", &c->device, true, kMaxIdBytes));
  LCIO_RETURN_IF_ERROR(f.String("network", &c->network, true, kMaxIdBytes));
  const Json* history = nullptr;
  LCIO_RETURN_IF_ERROR(f.Array("history", &history));
  c->history.clear();
  for (size_t i = 0; i < history->size(); ++i) {
    const std::string path = Index("context.history", i);
    LCIO_RETURN_IF_ERROR(Fields::IsObject((*history)[i], path));
    Fields h((*history)[i], path);
    DecisionHistoryTurn turn;
    LCIO_RETURN_IF_ERROR(h.Int("action", &turn.action, 0, num_actions - 1));
    LCIO_RETURN_IF_ERROR(h.String("task", &turn.task, true, kMaxIdBytes));
    LCIO_RETURN_IF_ERROR(h.Done());
    c->history.push_back(std::move(turn));
  }
  return f.Done();
}

absl::Status ParseActions(const Json& array, std::vector<DecisionAction>* actions) {
  actions->clear();
  if (array.empty()) return Invalid("actions", array, "must list at least one action");
  std::vector<double> probabilities;
  for (size_t i = 0; i < array.size(); ++i) {
    const std::string path = Index("actions", i);
    LCIO_RETURN_IF_ERROR(Fields::IsObject(array[i], path));
    Fields a(array[i], path);
    DecisionAction action;
    int index = 0;
    LCIO_RETURN_IF_ERROR(a.Int("action", &index, 0, 1 << 30));
    if (index != static_cast<int>(i))
      return Invalid(a.Path("action"), array[i]["action"],
                     absl::StrCat("must equal its position in actions (", i, ")"));
    LCIO_RETURN_IF_ERROR(a.String("description", &action.description, true, kMaxIdBytes));
    LCIO_RETURN_IF_ERROR(a.Number("score", &action.score));
    LCIO_RETURN_IF_ERROR(a.Number("probability", &action.probability, 0.0, 1.0));
    LCIO_RETURN_IF_ERROR(a.Bool("allowed", &action.allowed));
    LCIO_RETURN_IF_ERROR(a.Number("expected_latency_s", &action.expected_latency_s, 0.0));
    LCIO_RETURN_IF_ERROR(a.Number("expected_money_usd", &action.expected_money_usd, 0.0));
    LCIO_RETURN_IF_ERROR(a.Done());
    probabilities.push_back(action.probability);
    actions->push_back(std::move(action));
  }
  return CheckProbabilities(probabilities, "actions[*].probability");
}

absl::Status ParseExploration(const Json& j, DecisionExploration* e) {
  LCIO_RETURN_IF_ERROR(Fields::IsObject(j, "exploration"));
  Fields f(j, "exploration");
  LCIO_RETURN_IF_ERROR(f.String("mode", &e->mode));
  LCIO_RETURN_IF_ERROR(f.Number("parameter", &e->parameter));
  LCIO_RETURN_IF_ERROR(f.Bool("opted_out", &e->opted_out));
  if (e->mode == "none") {
    if (e->parameter != 0)
      return Invalid("exploration.parameter", j["parameter"], "must be 0 for mode none");
  } else if (e->mode == "epsilon") {
    if (e->parameter < 0 || e->parameter > 1)
      return Invalid("exploration.parameter", j["parameter"], "epsilon must be in [0, 1]");
  } else if (e->mode == "softmax") {
    if (e->parameter <= 0)
      return Invalid("exploration.parameter", j["parameter"], "the temperature must be > 0");
  } else {
    return Invalid("exploration.mode", j["mode"], "must be none, epsilon or softmax");
  }
  return f.Done();
}

absl::Status ParseShadow(const Json& j, DecisionShadow* s, int num_actions) {
  LCIO_RETURN_IF_ERROR(Fields::IsObject(j, "shadow"));
  Fields f(j, "shadow");
  LCIO_RETURN_IF_ERROR(f.String("policy_version", &s->policy_version, true, kMaxIdBytes));
  LCIO_RETURN_IF_ERROR(f.Int("proposed_action", &s->proposed_action, 0, num_actions - 1));
  LCIO_RETURN_IF_ERROR(f.Int("action", &s->action, 0, num_actions - 1));
  const Json* scores = nullptr;
  LCIO_RETURN_IF_ERROR(f.Array("scores", &scores));
  LCIO_RETURN_IF_ERROR(
      ReadNumbers(*scores, "shadow.scores", &s->scores, std::nullopt, std::nullopt));
  const Json* probabilities = nullptr;
  LCIO_RETURN_IF_ERROR(f.Array("probabilities", &probabilities));
  LCIO_RETURN_IF_ERROR(
      ReadNumbers(*probabilities, "shadow.probabilities", &s->probabilities, 0.0, 1.0));
  for (const auto& [name, size] : {std::pair{"shadow.scores", s->scores.size()},
                                   {"shadow.probabilities", s->probabilities.size()}})
    if (static_cast<int>(size) != num_actions)
      return Invalid(name, j[std::string(name).substr(7)],
                     absl::StrCat("must have one value per action (", num_actions, ")"));
  LCIO_RETURN_IF_ERROR(CheckProbabilities(s->probabilities, "shadow.probabilities"));
  if (s->probabilities[s->action] <= 0)
    return Invalid("shadow.action", j["action"], "its probability must be > 0");
  LCIO_RETURN_IF_ERROR(f.Number("expected_latency_s", &s->expected_latency_s, 0.0));
  LCIO_RETURN_IF_ERROR(f.Number("expected_money_usd", &s->expected_money_usd, 0.0));
  return f.Done();
}

}  // namespace

double TakenProbability(const DecisionRecord& record) {
  const int a = record.taken_action;
  return a >= 0 && a < static_cast<int>(record.actions.size()) ? record.actions[a].probability : 0;
}

std::string ToJsonLine(const DecisionRecord& r) {
  // Keys in a fixed, documented order (ordered_json) so that lines diff well.
  nlohmann::ordered_json j;
  j["schema_version"] = r.schema_version;
  j["decision_id"] = r.decision_id;
  j["time_utc"] = r.time_utc;
  j["policy_version"] = r.policy_version;
  j["conversation_id"] = r.conversation_id;
  j["turn_index"] = r.turn_index;
  nlohmann::ordered_json c;
  c["task"] = r.context.task;
  c["task_inferred"] = r.context.task_inferred;
  c["task_confidence"] = r.context.task_confidence;
  c["view_names"] = r.context.view_names;
  c["association"] = r.context.association;
  c["latency_budget_s"] = r.context.latency_budget_s;
  c["money_budget_usd"] = r.context.money_budget_usd;
  c["device"] = r.context.device;
  c["network"] = r.context.network;
  c["history"] = nlohmann::ordered_json::array();
  for (const DecisionHistoryTurn& t : r.context.history)
    c["history"].push_back({{"action", t.action}, {"task", t.task}});
  j["context"] = std::move(c);
  j["actions"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < r.actions.size(); ++i) {
    const DecisionAction& a = r.actions[i];
    j["actions"].push_back({{"action", i},
                            {"description", a.description},
                            {"score", a.score},
                            {"probability", a.probability},
                            {"allowed", a.allowed},
                            {"expected_latency_s", a.expected_latency_s},
                            {"expected_money_usd", a.expected_money_usd}});
  }
  j["proposed_action"] = r.proposed_action;
  j["taken_action"] = r.taken_action;
  j["shield_overridden"] = r.shield_overridden;
  j["nothing_fits"] = r.nothing_fits;
  j["exploration"] = {{"mode", r.exploration.mode},
                      {"parameter", r.exploration.parameter},
                      {"opted_out", r.exploration.opted_out}};
  j["explored"] = r.explored;
  j["expected_latency_s"] = r.expected_latency_s;
  j["expected_money_usd"] = r.expected_money_usd;
  if (r.shadow) {
    const DecisionShadow& s = *r.shadow;
    j["shadow"] = {{"policy_version", s.policy_version},
                   {"proposed_action", s.proposed_action},
                   {"action", s.action},
                   {"scores", s.scores},
                   {"probabilities", s.probabilities},
                   {"expected_latency_s", s.expected_latency_s},
                   {"expected_money_usd", s.expected_money_usd}};
  } else {
    j["shadow"] = nullptr;
  }
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

absl::StatusOr<DecisionRecord> ParseDecisionLine(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  absl::Status error;
  const Json j = ParseJson(line, "decision record", &error);
  if (j.is_discarded()) return error;
  LCIO_RETURN_IF_ERROR(Fields::IsObject(j, "(the line)"));
  Fields f(j, "");
  DecisionRecord r;
  // The version first: a newer writer's line is refused as such, not for
  // its first unknown field.
  LCIO_RETURN_IF_ERROR(f.Int("schema_version", &r.schema_version, 0, 1 << 30));
  if (r.schema_version != kDecisionLogSchemaVersion)
    return Invalid("schema_version", j["schema_version"],
                   absl::StrCat("this reader knows schema_version ", kDecisionLogSchemaVersion));
  LCIO_RETURN_IF_ERROR(f.String("decision_id", &r.decision_id, true, kMaxIdBytes));
  LCIO_RETURN_IF_ERROR(f.String("time_utc", &r.time_utc));
  absl::Time time;
  std::string why;
  if (!absl::ParseTime(absl::RFC3339_full, r.time_utc, &time, &why))
    return Invalid("time_utc", j["time_utc"], "must be an RFC 3339 time (2026-01-02T03:04:05Z)");
  LCIO_RETURN_IF_ERROR(f.String("policy_version", &r.policy_version, true, kMaxIdBytes));
  LCIO_RETURN_IF_ERROR(f.String("conversation_id", &r.conversation_id, true, kMaxIdBytes));
  LCIO_RETURN_IF_ERROR(f.Int("turn_index", &r.turn_index, 0, 1 << 30));
  const Json* actions = nullptr;
  LCIO_RETURN_IF_ERROR(f.Array("actions", &actions));
  LCIO_RETURN_IF_ERROR(ParseActions(*actions, &r.actions));
  const int n = static_cast<int>(r.actions.size());
  auto context = f.Get("context");
  if (!context.ok()) return context.status();
  LCIO_RETURN_IF_ERROR(ParseContext(**context, &r.context, n));
  LCIO_RETURN_IF_ERROR(f.Int("proposed_action", &r.proposed_action, 0, n - 1));
  LCIO_RETURN_IF_ERROR(f.Int("taken_action", &r.taken_action, 0, n - 1));
  if (r.actions[r.taken_action].probability <= 0)
    return Invalid("taken_action", j["taken_action"], "its probability must be > 0");
  LCIO_RETURN_IF_ERROR(f.Bool("shield_overridden", &r.shield_overridden));
  LCIO_RETURN_IF_ERROR(f.Bool("nothing_fits", &r.nothing_fits));
  auto exploration = f.Get("exploration");
  if (!exploration.ok()) return exploration.status();
  LCIO_RETURN_IF_ERROR(ParseExploration(**exploration, &r.exploration));
  LCIO_RETURN_IF_ERROR(f.Bool("explored", &r.explored));
  if (r.explored && r.exploration.mode == "none")
    return Invalid("explored", j["explored"], "must be false when exploration.mode is none");
  LCIO_RETURN_IF_ERROR(f.Number("expected_latency_s", &r.expected_latency_s, 0.0));
  LCIO_RETURN_IF_ERROR(f.Number("expected_money_usd", &r.expected_money_usd, 0.0));
  auto shadow = f.Get("shadow");
  if (!shadow.ok()) return shadow.status();
  if (!(*shadow)->is_null()) {
    r.shadow.emplace();
    LCIO_RETURN_IF_ERROR(ParseShadow(**shadow, &*r.shadow, n));
  }
  LCIO_RETURN_IF_ERROR(f.Done());
  return r;
}

absl::StatusOr<DecisionLogScan> ScanDecisionLog(const std::string& path,
                                                const std::function<void(DecisionRecord)>& visit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open decision log ", path));
  DecisionLogScan scan;
  auto problem = [&](int64_t line, std::string_view why) {
    ++scan.skipped_lines;
    if (scan.problems.size() < 20)
      scan.problems.push_back(absl::StrCat(path, " line ", line, ": ", std::string(why)));
  };
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (in.eof()) {  // no newline: the write of a crash
      problem(number, "torn (no newline at the end of the file)");
      break;
    }
    if (line.empty()) continue;
    auto record = ParseDecisionLine(line);
    if (!record.ok()) {
      problem(number, std::string(record.status().message()));
      continue;
    }
    ++scan.records;
    visit(*std::move(record));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("reading decision log ", path, " failed"));
  return scan;
}

}  // namespace lcio::data
