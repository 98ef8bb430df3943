#include "lcio/data/decision_log.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "lcio/data/json_parse.h"
#include "lcio/data/m4a1.h"
#include "lcio/data/message.h"
#include "lcio/data/utf8.h"
#include "nlohmann/json.hpp"

namespace lcio::data {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxQuotedBytes = 64;
// Ids and names: the bound every writer's source is held to (m4a1.h).
constexpr size_t kMaxIdBytes = kMaxNameBytes;
constexpr double kProbabilitySumTolerance = 1e-6;

// Values quoted in messages are cut so that a hostile line cannot make a
// long message.
std::string Quote(const Json& value) {
  return Shorten(value.dump(-1, ' ', true, Json::error_handler_t::replace), kMaxQuotedBytes);
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
        return Invalid(Path(it.key()), it.value(), "is not a field of this schema_version");
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

// Whether `v` rounds to a finite float32: below the largest float plus half
// its ulp (2^103). The shortest text of the largest float, 3.4028235e38,
// reads as a double just above it and must still pass.
bool RoundsToFloat32(double v) {
  constexpr double kLimit = 340282356779733661637539395458142568448.0;  // FLT_MAX + 2^103
  static_assert(kLimit > std::numeric_limits<float>::max());
  return std::fabs(v) < kLimit;
}

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

absl::Status ParseContext(const Json& j, DecisionContext* c, int num_actions, int schema_version) {
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
  c->request_money_budget_usd.reset();
  if (schema_version >= 2) {
    double request = 0;
    LCIO_RETURN_IF_ERROR(f.Number("request_money_budget_usd", &request, 0.0));
    if (request != c->money_budget_usd) c->request_money_budget_usd = request;
    if (request < c->money_budget_usd)
      return Invalid("context.request_money_budget_usd", j["request_money_budget_usd"],
                     "must be >= context.money_budget_usd (the budget the policy saw is never "
                     "above the request's)");
  }
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

// Version 2: one array per column, one value per action. Scores are the
// policy's float32 values, written as the shortest text of the float32.
absl::Status ParseActionColumns(const Json& j, std::vector<DecisionAction>* actions) {
  actions->clear();
  LCIO_RETURN_IF_ERROR(Fields::IsObject(j, "actions"));
  Fields f(j, "actions");
  const Json* description = nullptr;
  LCIO_RETURN_IF_ERROR(f.Array("description", &description));
  const size_t n = description->size();
  if (n == 0) return Invalid("actions.description", *description, "must list at least one action");
  actions->resize(n);
  for (size_t i = 0; i < n; ++i) {
    const Json& d = (*description)[i];
    const std::string path = Index("actions.description", i);
    if (!d.is_string()) return Invalid(path, d, "must be a string");
    std::string text = d.get<std::string>();
    if (text.empty()) return Invalid(path, d, "must not be empty");
    if (text.size() > kMaxIdBytes)
      return Invalid(path, d, absl::StrCat("must be at most ", kMaxIdBytes, " bytes"));
    (*actions)[i].description = std::move(text);
  }
  struct Column {
    const char* key;
    double DecisionAction::*field;
    std::optional<double> lo, hi;
  };
  const Column columns[] = {
      {"score", &DecisionAction::score, std::nullopt, std::nullopt},
      {"probability", &DecisionAction::probability, 0.0, 1.0},
      {"expected_latency_s", &DecisionAction::expected_latency_s, 0.0, std::nullopt},
      {"expected_money_usd", &DecisionAction::expected_money_usd, 0.0, std::nullopt},
  };
  std::vector<double> values;
  const Json* array_of_scores = nullptr;
  for (const Column& column : columns) {
    const Json* array = nullptr;
    LCIO_RETURN_IF_ERROR(f.Array(column.key, &array));
    if (column.field == &DecisionAction::score) array_of_scores = array;
    const std::string path = f.Path(column.key);
    LCIO_RETURN_IF_ERROR(ReadNumbers(*array, path, &values, column.lo, column.hi));
    if (values.size() != n)
      return Invalid(path, *array, absl::StrCat("must have one value per action (", n, ")"));
    for (size_t i = 0; i < n; ++i) (*actions)[i].*column.field = values[i];
  }
  for (size_t i = 0; i < n; ++i) {
    DecisionAction& a = (*actions)[i];
    if (!RoundsToFloat32(a.score))
      return Invalid(Index("actions.score", i), (*array_of_scores)[i],
                     "must be a float32 value (magnitude at most 3.4028235e38)");
    a.score = static_cast<float>(a.score);
  }
  const Json* allowed = nullptr;
  LCIO_RETURN_IF_ERROR(f.Array("allowed", &allowed));
  if (allowed->size() != n)
    return Invalid("actions.allowed", *allowed,
                   absl::StrCat("must have one value per action (", n, ")"));
  for (size_t i = 0; i < n; ++i) {
    if (!(*allowed)[i].is_boolean())
      return Invalid(Index("actions.allowed", i), (*allowed)[i], "must be true or false");
    (*actions)[i].allowed = (*allowed)[i].get<bool>();
  }
  LCIO_RETURN_IF_ERROR(f.Done());
  std::vector<double> probabilities;
  for (const DecisionAction& a : *actions) probabilities.push_back(a.probability);
  return CheckProbabilities(probabilities, "actions.probability");
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
  if (j.contains("fallback")) LCIO_RETURN_IF_ERROR(f.Bool("fallback", &s->fallback));
  return f.Done();
}

}  // namespace

double TakenProbability(const DecisionRecord& record) {
  const int a = record.taken_action;
  return a >= 0 && a < static_cast<int>(record.actions.size()) ? record.actions[a].probability : 0;
}

namespace {

// The server writes one line per answered Decide on a 2-core budget, so the
// line is written directly rather than through a JSON document (a tenth of
// the time); ParseDecisionLine reads it back with the JSON parser, and the
// tests compare the two. Bytes go through a cursor into the string's own
// buffer, room made ahead by one compare per value, rather than an append
// call per value (those calls were a quarter of the line's instructions).
// Finish() gives the string its written length.
class LineWriter {
 public:
  explicit LineWriter(std::string* out) : out_(*out) {
    const size_t used = out_.size();
    out_.resize(used + kInitialRoom);  // within the capacity the caller reserved
    p_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;
  ~LineWriter() { Finish(); }
  // Cuts the string to the bytes written; nothing may be written after.
  void Finish() {
    if (p_ == nullptr) return;
    out_.resize(static_cast<size_t>(p_ - out_.data()));
    p_ = end_ = nullptr;
  }

  LineWriter& Open() { return Punct('{'); }
  LineWriter& Close() { return End('}'); }
  LineWriter& OpenArray() { return Punct('['); }
  LineWriter& CloseArray() { return End(']'); }
  // Keys are this file's constants: plain ASCII, no escaping needed.
  template <size_t N>
  LineWriter& Key(const char (&key)[N]) {
    static_assert(N > 1 && N < 64);
    char* p = Comma(Room(N + 3));
    *p++ = '"';
    std::memcpy(p, key, N - 1);
    p += N - 1;
    *p++ = '"';
    *p++ = ':';
    p_ = p;
    first_ = true;  // the value follows without a comma
    return *this;
  }
  LineWriter& Str(std::string_view s) {
    // Escaping turns a byte into at most 6 (\u00XX); then comma and quotes.
    char* p = Comma(Room(6 * s.size() + 3));
    *p++ = '"';
    p = Escape(s, p);
    *p++ = '"';
    return Done(p);
  }
  LineWriter& Int(int64_t v) {
    char* p = Comma(Room(24));
    return Done(std::to_chars(p, p + 21, v).ptr);
  }
  LineWriter& Bool(bool v) { return Put(v ? std::string_view("true") : std::string_view("false")); }
  // Shortest text that reads back as the same double; always with a '.'
  // or an exponent so that it reads back as a floating-point number (-0.0
  // included). JSON has no NaN or infinity: null, which readers refuse.
  LineWriter& Num(double v) {
    if (!std::isfinite(v)) return Put("null");
    if (v == 0 || v == 1)  // most probabilities: no shortest-digit search
      return Put(std::signbit(v) ? "-0.0" : v == 0 ? "0.0" : "1.0");
    if (std::fabs(v) < kShortIntegers && v == std::trunc(v))
      return Integral(static_cast<int64_t>(v));
    return Digits(v);
  }
  // A float32 value (the policy's scores; a double is rounded to float32):
  // the shortest text that reads back as the same float32, about half the
  // digits of a double's.
  LineWriter& Float(double v) {
    const float f = static_cast<float>(v);
    if (!std::isfinite(f)) return Num(f);  // null
    if (f == 0) return Put(std::signbit(f) ? "-0.0" : "0.0");
    // The fallback's ranks (0, -1, -2, ...) and other whole scores.
    if (std::fabs(f) < kShortIntegers && f == std::trunc(f))
      return Integral(static_cast<int64_t>(f));
    return Digits(f);
  }
  // Num(v) where the same number's text is known (written by a LineWriter
  // for the same bits), else Num(v).
  LineWriter& Num(double v, std::string_view same) { return same.empty() ? Num(v) : Raw(same); }
  // Num(v); *begin is where its text starts in the string.
  LineWriter& Num(double v, size_t* begin) {
    *begin = Offset() + (first_ ? 0 : 1);
    return Num(v);
  }
  // As the next value, the bytes [begin, end) this writer already wrote.
  LineWriter& Repeat(size_t begin, size_t end) {
    char* p = Comma(Room(end - begin + 1));
    std::memcpy(p, out_.data() + begin, end - begin);
    return Done(p + (end - begin));
  }
  size_t Offset() const { return static_cast<size_t>(p_ - out_.data()); }
  // Text written elsewhere by a LineWriter, as the next value(s).
  LineWriter& Raw(std::string_view text) {
    char* p = Comma(Room(text.size() + 1));
    std::memcpy(p, text.data(), text.size());
    return Done(p + text.size());
  }
  LineWriter& Null() { return Put("null"); }

 private:
  static constexpr size_t kInitialRoom = 2048;  // a typical line is 1.4 KB
  // Whole numbers below this are written as digits and ".0" without the
  // shortest-digit search: the same text, because up to 5 digits the fixed
  // form is never longer than the exponent form ("1e+05" has 5 bytes), and
  // std::to_chars prefers it on a tie.
  static constexpr double kShortIntegers = 1e5;

  // Makes room for n more bytes and returns where they go.
  char* Room(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) Grow(n);
    return p_;
  }
  void Grow(size_t n) {
    const size_t used = static_cast<size_t>(p_ - out_.data());
    // Only a little more than asked: near the end of the worker's reserved
    // chunk, more would reallocate it for room never used. (Geometric when
    // it does reallocate.)
    out_.resize(used + n + 256);
    p_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }
  // Writes the comma when one is due; returns the position after it.
  char* Comma(char* p) const {
    if (!first_) *p++ = ',';
    return p;
  }
  LineWriter& Done(char* p) {
    p_ = p;
    first_ = false;
    return *this;
  }
  LineWriter& Punct(char c) {
    char* p = Comma(Room(2));
    *p++ = c;
    p_ = p;
    first_ = true;
    return *this;
  }
  LineWriter& End(char c) {
    char* p = Room(1);
    *p++ = c;
    return Done(p);
  }
  // A value's text (literals), after a comma when one is due.
  LineWriter& Put(std::string_view value) {
    char* p = Comma(Room(value.size() + 1));
    std::memcpy(p, value.data(), value.size());
    return Done(p + value.size());
  }
  LineWriter& Integral(int64_t v) {
    char* p = Comma(Room(24));
    p = std::to_chars(p, p + 21, v).ptr;
    *p++ = '.';
    *p++ = '0';
    return Done(p);
  }
  // The shortest text of a finite float or double, with ".0" when it would
  // otherwise read back as an integer.
  template <typename T>
  LineWriter& Digits(T v) {
    char* p = Comma(Room(40));  // at most 25 bytes, "-1234567890123456700000" and ".0"
    char* const start = p;
    p = std::to_chars(p, p + 32, v).ptr;
    if (std::find_if(start, p, [](char c) { return c == '.' || c == 'e'; }) == p) {
      *p++ = '.';
      *p++ = '0';
    }
    return Done(p);
  }
  // JSON string escaping into p (room for 6 bytes per byte of s); bytes
  // that are not valid UTF-8 become U+FFFD. Returns the end.
  static char* Escape(std::string_view s, char* p) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (size_t i = 0; i < s.size();) {
      // Runs of plain ASCII (most of every line) are copied at once.
      size_t run = i;
      while (run < s.size() && IsPlain(static_cast<unsigned char>(s[run]))) ++run;
      if (run > i) {
        std::memcpy(p, s.data() + i, run - i);
        p += run - i;
        i = run;
        continue;
      }
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c < 0x80) {
        if (c == '"' || c == '\\') {
          *p++ = '\\';
          *p++ = static_cast<char>(c);
        } else if (c < 0x20) {
          std::memcpy(p, "\\u00", 4);
          p[4] = kHex[c >> 4];
          p[5] = kHex[c & 15];
          p += 6;
        } else {
          *p++ = static_cast<char>(c);
        }
        ++i;
        continue;
      }
      const size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        std::memcpy(p, "\xef\xbf\xbd", 3);
        p += 3;
        ++i;
      } else {
        std::memcpy(p, s.data() + i, n);
        p += n;
        i += n;
      }
    }
    return p;
  }
  // A byte that goes into a JSON string as it is: printable ASCII but the
  // quote and the backslash. A table: the check runs on every byte written.
  static bool IsPlain(unsigned char c) { return kPlain[c]; }
  static constexpr std::array<bool, 256> kPlain = [] {
    std::array<bool, 256> plain{};
    for (int c = 0x20; c < 0x80; ++c) plain[c] = c != '"' && c != '\\';
    return plain;
  }();
  std::string& out_;
  char* p_ = nullptr;    // where the next byte goes
  char* end_ = nullptr;  // the end of the room made so far
  bool first_ = true;    // no comma before the next value
};

// The two cost columns' text, `[...],"expected_money_usd":[...]`. They
// depend only on the policy and the request's profiles, so a writer thread
// keeps the last ones it formatted: comparing 2 x n numbers is a fraction of
// formatting them. The taken action's costs are written again at the end of
// the record: from here too (`Same`).
struct CostText {
  std::vector<double> costs;  // latency then money, per action
  std::vector<size_t> begin;  // where each number's text starts in `text`
  std::string text;
  std::string_view Value(size_t i) const {
    // A number ends where the next one's comma, or the column's bracket, is.
    size_t end = begin[i];
    while (end < text.size() && text[end] != ',' && text[end] != ']') ++end;
    return std::string_view(text).substr(begin[i], end - begin[i]);
  }
  // The text of action a's cost when `cost` is that cost, bit for bit; else empty.
  std::string_view Same(size_t column, int a, double cost) const {
    const size_t n = costs.size() / 2;
    if (a < 0 || static_cast<size_t>(a) >= n) return {};
    const size_t i = column * n + static_cast<size_t>(a);
    return std::memcmp(&costs[i], &cost, sizeof cost) == 0 ? Value(i) : std::string_view();
  }
};

const CostText& CostColumns(const std::vector<DecisionAction>& actions) {
  thread_local CostText memo;
  const size_t n = actions.size();
  bool same = memo.costs.size() == 2 * n;
  for (size_t i = 0; same && i < n; ++i)
    same = memo.costs[i] == actions[i].expected_latency_s &&
           memo.costs[n + i] == actions[i].expected_money_usd;
  // (The comparison is on values: -0.0 and 0.0 are equal but write
  // differently; costs are >= 0 and never -0.0 in practice, and both read
  // back as 0. Same() compares bits.)
  if (same && !memo.text.empty()) return memo;
  memo.costs.resize(2 * n);
  memo.begin.resize(2 * n);
  memo.text.clear();
  LineWriter w(&memo.text);
  w.OpenArray();
  for (size_t i = 0; i < n; ++i)
    w.Num(memo.costs[i] = actions[i].expected_latency_s, &memo.begin[i]);
  w.CloseArray();
  w.Key("expected_money_usd").OpenArray();
  for (size_t i = 0; i < n; ++i)
    w.Num(memo.costs[n + i] = actions[i].expected_money_usd, &memo.begin[n + i]);
  w.CloseArray();
  w.Finish();
  return memo;
}

// The description column's text, `["local","cloud",...]`: the policy's, the
// same record after record, so a writer thread keeps the last one it wrote
// (comparing the strings is a fraction of escaping them).
std::string_view DescriptionColumn(const std::vector<DecisionAction>& actions) {
  struct Memo {
    std::vector<std::string> descriptions;
    std::string text;
  };
  thread_local Memo memo;
  bool same = memo.descriptions.size() == actions.size() && !memo.text.empty();
  for (size_t i = 0; same && i < actions.size(); ++i)
    same = memo.descriptions[i] == actions[i].description;
  if (same) return memo.text;
  memo.descriptions.resize(actions.size());
  memo.text.clear();
  LineWriter w(&memo.text);
  w.OpenArray();
  for (size_t i = 0; i < actions.size(); ++i) w.Str(memo.descriptions[i] = actions[i].description);
  w.CloseArray();
  w.Finish();
  return memo.text;
}

}  // namespace

std::string DecisionIdPrefix(std::string_view conversation_id, int turn_index) {
  return std::string(conversation_id) + "/" + std::to_string(turn_index) + "/";
}

bool DecisionIdIsOfTurn(std::string_view decision_id, std::string_view conversation_id,
                        int turn_index) {
  const std::string prefix = DecisionIdPrefix(conversation_id, turn_index);
  if (decision_id.size() != prefix.size() + 16 ||
      decision_id.compare(0, prefix.size(), prefix) != 0)
    return false;
  // The exact suffix: conversation ids may hold '/', so a prefix alone could
  // be another conversation's ("a/1/" starts "a/1/3/...").
  for (const char c : decision_id.substr(prefix.size()))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string ToJsonLine(const DecisionRecord& r) {
  std::string line;
  AppendJsonLine(r, &line);
  line.pop_back();  // the newline
  return line;
}

void AppendJsonLine(const DecisionRecord& r, std::string* out) {
  // A record with 9 actions is about 1.3 KB; grow geometrically when a
  // batch of lines is appended one by one.
  if (out->capacity() - out->size() < 4096)
    out->reserve(std::max(2 * out->capacity(), out->size() + 4096));
  LineWriter w(out);
  w.Open();
  w.Key("schema_version").Int(kDecisionLogSchemaVersion);  // the layout written
  w.Key("decision_id").Str(r.decision_id);
  w.Key("time_utc").Str(r.time_utc);
  w.Key("policy_version").Str(r.policy_version);
  w.Key("conversation_id").Str(r.conversation_id);
  w.Key("turn_index").Int(r.turn_index);
  const DecisionContext& c = r.context;
  w.Key("context").Open();
  w.Key("task").Str(c.task);
  w.Key("task_inferred").Bool(c.task_inferred);
  w.Key("task_confidence").Num(c.task_confidence);
  w.Key("view_names").OpenArray();
  for (const std::string& v : c.view_names) w.Str(v);
  w.CloseArray();
  w.Key("association").OpenArray();
  for (double a : c.association) w.Num(a);
  w.CloseArray();
  w.Key("latency_budget_s").Num(c.latency_budget_s);
  size_t money_begin = 0;
  w.Key("money_budget_usd").Num(c.money_budget_usd, &money_begin);
  const size_t money_end = w.Offset();
  // (Never below the budget the policy saw: the reader refuses that.)
  const double request_money = std::max(c.RequestMoneyBudget(), c.money_budget_usd);
  if (std::memcmp(&request_money, &c.money_budget_usd, sizeof request_money) == 0)
    w.Key("request_money_budget_usd").Repeat(money_begin, money_end);  // the usual case
  else
    w.Key("request_money_budget_usd").Num(request_money);
  w.Key("device").Str(c.device);
  w.Key("network").Str(c.network);
  w.Key("history").OpenArray();
  for (const DecisionHistoryTurn& t : c.history)
    w.Open().Key("action").Int(t.action).Key("task").Str(t.task).Close();
  w.CloseArray();
  w.Close();
  // One array per column (version 2): with float32 scores, 60% of
  // version 1's bytes.
  w.Key("actions").Open();
  w.Key("description").Raw(DescriptionColumn(r.actions));
  w.Key("score").OpenArray();
  for (const DecisionAction& a : r.actions) w.Float(a.score);
  w.CloseArray();
  w.Key("probability").OpenArray();
  for (const DecisionAction& a : r.actions) w.Num(a.probability);
  w.CloseArray();
  w.Key("allowed").OpenArray();
  for (const DecisionAction& a : r.actions) w.Bool(a.allowed);
  w.CloseArray();
  const CostText& costs = CostColumns(r.actions);
  w.Key("expected_latency_s").Raw(costs.text);
  w.Close();
  w.Key("proposed_action").Int(r.proposed_action);
  w.Key("taken_action").Int(r.taken_action);
  w.Key("shield_overridden").Bool(r.shield_overridden);
  w.Key("nothing_fits").Bool(r.nothing_fits);
  // Only when true, so that every other record keeps its bytes.
  if (r.fallback) w.Key("fallback").Bool(true);
  w.Key("exploration").Open();
  w.Key("mode").Str(r.exploration.mode);
  w.Key("parameter").Num(r.exploration.parameter);
  w.Key("opted_out").Bool(r.exploration.opted_out);
  w.Close();
  w.Key("explored").Bool(r.explored);
  w.Key("expected_latency_s")
      .Num(r.expected_latency_s, costs.Same(0, r.taken_action, r.expected_latency_s));
  w.Key("expected_money_usd")
      .Num(r.expected_money_usd, costs.Same(1, r.taken_action, r.expected_money_usd));
  w.Key("shadow");
  if (r.shadow) {
    const DecisionShadow& s = *r.shadow;
    w.Open();
    w.Key("policy_version").Str(s.policy_version);
    w.Key("proposed_action").Int(s.proposed_action);
    w.Key("action").Int(s.action);
    w.Key("scores").OpenArray();
    for (double v : s.scores) w.Float(v);
    w.CloseArray();
    w.Key("probabilities").OpenArray();
    for (double v : s.probabilities) w.Num(v);
    w.CloseArray();
    w.Key("expected_latency_s").Num(s.expected_latency_s);
    w.Key("expected_money_usd").Num(s.expected_money_usd);
    if (s.fallback) w.Key("fallback").Bool(true);  // as the record's own key
    w.Close();
  } else {
    w.Null();
  }
  w.Close();
  w.Finish();
  out->push_back('\n');
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
  if (r.schema_version < 1 || r.schema_version > kDecisionLogSchemaVersion)
    return Invalid(
        "schema_version", j["schema_version"],
        absl::StrCat("this reader knows schema_version 1 to ", kDecisionLogSchemaVersion));
  LCIO_RETURN_IF_ERROR(f.String("decision_id", &r.decision_id, true, kMaxIdBytes));
  LCIO_RETURN_IF_ERROR(f.String("time_utc", &r.time_utc));
  absl::Time time;
  std::string why;
  if (!absl::ParseTime(absl::RFC3339_full, r.time_utc, &time, &why))
    return Invalid("time_utc", j["time_utc"], "must be an RFC 3339 time (2026-01-02T03:04:05Z)");
  LCIO_RETURN_IF_ERROR(f.String("policy_version", &r.policy_version, true, kMaxIdBytes));
  LCIO_RETURN_IF_ERROR(f.String("conversation_id", &r.conversation_id, true, kMaxIdBytes));
  LCIO_RETURN_IF_ERROR(f.Int("turn_index", &r.turn_index, 0, kMaxTurnIndex));
  if (r.schema_version == 1) {
    const Json* actions = nullptr;
    LCIO_RETURN_IF_ERROR(f.Array("actions", &actions));
    LCIO_RETURN_IF_ERROR(ParseActions(*actions, &r.actions));
  } else {
    auto actions = f.Get("actions");
    if (!actions.ok()) return actions.status();
    LCIO_RETURN_IF_ERROR(ParseActionColumns(**actions, &r.actions));
  }
  const int n = static_cast<int>(r.actions.size());
  auto context = f.Get("context");
  if (!context.ok()) return context.status();
  LCIO_RETURN_IF_ERROR(ParseContext(**context, &r.context, n, r.schema_version));
  LCIO_RETURN_IF_ERROR(f.Int("proposed_action", &r.proposed_action, 0, n - 1));
  LCIO_RETURN_IF_ERROR(f.Int("taken_action", &r.taken_action, 0, n - 1));
  if (r.actions[r.taken_action].probability <= 0)
    return Invalid("taken_action", j["taken_action"], "its probability must be > 0");
  LCIO_RETURN_IF_ERROR(f.Bool("shield_overridden", &r.shield_overridden));
  LCIO_RETURN_IF_ERROR(f.Bool("nothing_fits", &r.nothing_fits));
  if (j.contains("fallback")) LCIO_RETURN_IF_ERROR(f.Bool("fallback", &r.fallback));
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
    if (r.schema_version >= 2)
      for (size_t i = 0; i < r.shadow->scores.size(); ++i) {
        double& score = r.shadow->scores[i];
        if (!RoundsToFloat32(score))
          return Invalid(Index("shadow.scores", i), (**shadow)["scores"][i],
                         "must be a float32 value (magnitude at most 3.4028235e38)");
        score = static_cast<float>(score);
      }
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
