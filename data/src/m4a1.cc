#include "lcio/data/m4a1.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <nlohmann/json.hpp>
#include <ostream>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "lcio/data/json_depth.h"
#include "lcio/data/json_parse.h"
#include "lcio/data/message.h"

namespace lcio::data {

size_t Dataset::num_turns() const {
  size_t n = 0;
  for (const Episode& e : episodes) n += e.turns.size();
  return n;
}

int64_t Dataset::IndexOfEpisode(int64_t id) const {
  // Ids are usually 0..n-1 in file order; try that before scanning.
  if (id >= 0 && static_cast<uint64_t>(id) < episodes.size() && episodes[id].id == id) return id;
  for (size_t i = 0; i < episodes.size(); ++i) {
    if (episodes[i].id == id) return static_cast<int64_t>(i);
  }
  return -1;
}

namespace {

using json = nlohmann::json;

constexpr size_t kMaxRenderedValue = 80;

// A value as it appears in the file, shortened so a huge answer cannot flood
// the message. Invalid UTF-8 cannot reach here (the lexer rejects it), but
// replace rather than throw in case.
std::string Render(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > kMaxRenderedValue) {
    s.resize(kMaxRenderedValue - 3);
    s += "...";
  }
  return s;
}

std::string TypeOf(const json& v) {
  if (v.is_number_float()) return "floating-point number";
  if (v.is_number_integer()) return "integer";
  return v.type_name();
}

// Where in the file a rule was broken.
struct Where {
  absl::string_view source;
  size_t episode_index = 0;
  std::optional<int64_t> episode_id;
  std::optional<size_t> turn;

  std::string Describe() const {
    std::string s = absl::StrCat(source, ": episode ");
    if (episode_id) {
      absl::StrAppend(&s, "id ", *episode_id, " (index ", episode_index, ")");
    } else {
      absl::StrAppend(&s, "index ", episode_index);
    }
    if (turn) absl::StrAppend(&s, ", turn ", *turn);
    return s;
  }
};

// value == nullptr means the field is missing.
absl::Status Invalid(const Where& w, absl::string_view field, const json* value,
                     absl::string_view rule) {
  std::string v = value ? absl::StrCat(Render(*value), " (", TypeOf(*value), ")") : "<missing>";
  return absl::InvalidArgumentError(
      absl::StrCat(w.Describe(), ", field '", field, "' = ", v, ": ", rule));
}

// Looks up a required member; nullptr plus an error when it is missing.
json* Require(json& obj, const char* name, const Where& w, absl::string_view rule,
              absl::Status* status) {
  auto it = obj.find(name);
  if (it == obj.end()) {
    *status = Invalid(w, name, nullptr, absl::StrCat("required field is missing (", rule, ")"));
    return nullptr;
  }
  return &*it;
}

// A finite number in [0, max] (integers accepted: M4A1 writes score 9 for 9.0).
absl::Status GetAmount(json& obj, const char* name, const Where& w, double max, double* out) {
  absl::Status st;
  const json* v = Require(obj, name, w, "a non-negative number", &st);
  if (!v) return st;
  if (!v->is_number()) return Invalid(w, name, v, "must be a number");
  double d = v->get<double>();
  if (!std::isfinite(d)) return Invalid(w, name, v, "must be finite");
  if (d < 0) return Invalid(w, name, v, "must be >= 0");
  if (d > max) return Invalid(w, name, v, absl::StrCat("must be <= ", max));
  *out = d;
  return absl::OkStatus();
}

absl::Status GetString(json& obj, const char* name, const Where& w, std::string* out) {
  absl::Status st;
  json* v = Require(obj, name, w, "a string", &st);
  if (!v) return st;
  if (!v->is_string()) return Invalid(w, name, v, "must be a string");
  *out = std::move(v->get_ref<std::string&>());  // the episode json is discarded after this
  return absl::OkStatus();
}

// Builds the Dataset one episode at a time and applies every rule that needs
// more than one episode (ids, view count, task vocabulary).
class Loader {
 public:
  Loader(absl::string_view source, const LoadOptions& options) : options_(options) {
    dataset_.source = std::string(source);
    if (options.num_views) {
      dataset_.num_views = *options.num_views;
      views_origin_ = "LoadOptions::num_views";
    }
    if (options.task_vocabulary) {
      dataset_.tasks = *options.task_vocabulary;
      for (size_t i = 0; i < dataset_.tasks.size(); ++i) {
        task_index_.emplace(dataset_.tasks[i], static_cast<int>(i));
      }
    }
  }

  absl::Status AddEpisode(json& ep, size_t index) {
    Where w{dataset_.source, index, std::nullopt, std::nullopt};
    if (!ep.is_object()) {
      return Invalid(w, "<episode>", &ep, "each element of the top-level array must be an object");
    }
    Episode out;
    absl::Status st;

    const json* id = Require(ep, "id", w, "an integer episode id", &st);
    if (!id) return st;
    if (!id->is_number_integer()) return Invalid(w, "id", id, "must be an integer");
    if (id->is_number_unsigned() &&
        id->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Invalid(w, "id", id, "must fit in a signed 64-bit integer");
    }
    out.id = id->get<int64_t>();
    w.episode_id = out.id;
    auto [seen, fresh] = ids_.emplace(out.id, index);
    if (!fresh) {
      return Invalid(
          w, "id", id,
          absl::StrCat("duplicate episode id (already used by episode index ", seen->second, ")"));
    }
    if (absl::Status s = ReadDeclaredTasks(ep, w); !s.ok()) return s;

    const json* paths = Require(ep, "image_paths", w, "a list of one image name per view", &st);
    if (!paths) return st;
    if (!paths->is_array()) return Invalid(w, "image_paths", paths, "must be an array of strings");
    if (dataset_.num_views == 0) {
      // No option: the first episode decides the view count.
      if (paths->empty()) {
        return Invalid(w, "image_paths", paths,
                       "num_views 0: the first episode must name at least one view");
      }
      dataset_.num_views = static_cast<int>(paths->size());
      views_origin_ = absl::StrCat("episode index ", index);
    } else if (paths->size() != static_cast<size_t>(dataset_.num_views)) {
      return Invalid(w, "image_paths", paths,
                     absl::StrCat("has ", paths->size(), " entries but the dataset has ",
                                  dataset_.num_views, " views (set by ", views_origin_, ")"));
    }
    out.image_paths.reserve(paths->size());
    for (size_t v = 0; v < paths->size(); ++v) {
      const json& p = (*paths)[v];
      if (!p.is_string()) {
        return Invalid(w, absl::StrCat("image_paths[", v, "]"), &p, "must be a string");
      }
      out.image_paths.push_back(p.get<std::string>());
    }

    json* turns = Require(ep, "interactions", w, "a list of turns", &st);
    if (!turns) return st;
    if (!turns->is_array()) return Invalid(w, "interactions", turns, "must be an array of turns");
    if (turns->empty())
      return Invalid(w, "interactions", turns, "episode must have at least one turn");
    out.turns.resize(turns->size());
    for (size_t t = 0; t < turns->size(); ++t) {
      Where wt = w;
      wt.turn = t;
      absl::Status ts = ParseTurn((*turns)[t], wt, &out.turns[t]);
      if (!ts.ok()) return ts;
    }

    const json* assoc =
        Require(ep, "association_score", w, "one row of per-view floats per turn", &st);
    if (!assoc) return st;
    if (!assoc->is_array()) {
      return Invalid(w, "association_score", assoc, "must be an array of rows (one per turn)");
    }
    if (assoc->size() != out.turns.size()) {
      return Invalid(w, "association_score", assoc,
                     absl::StrCat("has ", assoc->size(), " rows but the episode has ",
                                  out.turns.size(), " turns (one row per turn)"));
    }
    out.association.resize(assoc->size());
    for (size_t t = 0; t < assoc->size(); ++t) {
      const json& row = (*assoc)[t];
      Where wt = w;
      wt.turn = t;
      std::string field = absl::StrCat("association_score[", t, "]");
      if (!row.is_array()) return Invalid(wt, field, &row, "must be an array of numbers");
      if (row.size() != static_cast<size_t>(dataset_.num_views)) {
        return Invalid(wt, field, &row,
                       absl::StrCat("has ", row.size(), " entries but the dataset has ",
                                    dataset_.num_views, " views (one per view)"));
      }
      out.association[t].reserve(row.size());
      for (size_t v = 0; v < row.size(); ++v) {
        const json& a = row[v];
        std::string f = absl::StrCat(field, "[", v, "]");
        if (!a.is_number()) return Invalid(wt, f, &a, "must be a number");
        double d = a.get<double>();
        if (!std::isfinite(d)) return Invalid(wt, f, &a, "must be finite");
        if (d < 0 || d > 1) return Invalid(wt, f, &a, "must be in [0, 1]");
        out.association[t].push_back(d);
      }
    }

    dataset_.episodes.push_back(std::move(out));
    return absl::OkStatus();
  }

  // Rules that need the whole file, then the task indices.
  absl::StatusOr<Dataset> Finish() {
    if (dataset_.episodes.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          dataset_.source, ": field '<top level>' = []: the array must hold at least one episode"));
    }
    if (!options_.task_vocabulary) {
      // Provisional indices were in first-seen order; the vocabulary is the
      // declared one, else the sorted set, so the order does not depend on
      // episode order.
      std::vector<std::string> sorted = dataset_.tasks;
      std::sort(sorted.begin(), sorted.end());
      if (declared_tasks_) {
        for (const std::string& task : dataset_.tasks)
          if (std::find(declared_tasks_->begin(), declared_tasks_->end(), task) ==
              declared_tasks_->end())
            return absl::InvalidArgumentError(absl::StrCat(
                dataset_.source, ": field 'task_cat' = ", Render(json(task)),
                ": not in the declared vocabulary 'tasks' = ", Render(json(*declared_tasks_))));
        sorted = *declared_tasks_;
      }
      std::vector<int> remap(dataset_.tasks.size());
      for (size_t i = 0; i < sorted.size(); ++i)
        if (auto seen = task_index_.find(sorted[i]); seen != task_index_.end())
          remap[seen->second] = static_cast<int>(i);
      for (Episode& e : dataset_.episodes) {
        for (Turn& t : e.turns) t.task_index = remap[t.task_index];
      }
      dataset_.tasks = std::move(sorted);
    }
    return std::move(dataset_);
  }

 private:
  // An episode's optional "tasks": the task vocabulary of the data (a joined
  // log names the serving policy's, which its turns may not all show), the
  // same list in every episode that has one. A caller's fixed vocabulary
  // (LoadOptions::task_vocabulary) takes precedence.
  absl::Status ReadDeclaredTasks(const json& ep, const Where& w) {
    auto it = ep.find("tasks");
    if (it == ep.end() || options_.task_vocabulary) return absl::OkStatus();
    const json& tasks = *it;
    if (!tasks.is_array() || tasks.empty())
      return Invalid(w, "tasks", &tasks, "must be a non-empty list of task names");
    std::vector<std::string> names;
    for (const json& t : tasks) {
      if (!t.is_string() || t.get_ref<const std::string&>().empty())
        return Invalid(w, "tasks", &tasks, "must be a non-empty list of task names");
      if (t.get_ref<const std::string&>().size() > kMaxNameBytes)
        return Invalid(w, "tasks", &tasks,
                       absl::StrCat("names a task longer than ", kMaxNameBytes, " bytes"));
      if (std::find(names.begin(), names.end(), t.get_ref<const std::string&>()) != names.end())
        return Invalid(w, "tasks", &tasks, "names a task twice");
      names.push_back(t.get<std::string>());
    }
    if (declared_tasks_ && *declared_tasks_ != names)
      return Invalid(w, "tasks", &tasks, "must be the same list in every episode that has one");
    declared_tasks_ = std::move(names);
    return absl::OkStatus();
  }

  absl::Status ParseTurn(json& turn, const Where& w, Turn* out) {
    if (!turn.is_object()) {
      return Invalid(w, absl::StrCat("interactions[", *w.turn, "]"), &turn,
                     "each turn must be an object");
    }
    absl::Status st;
    if (st = GetString(turn, "question", w, &out->question); !st.ok()) return st;

    const json* task = Require(turn, "task_cat", w, "a task name", &st);
    if (!task) return st;
    if (!task->is_string()) return Invalid(w, "task_cat", task, "must be a string");
    if (task->get_ref<const std::string&>().empty()) {
      return Invalid(w, "task_cat", task, "must not be empty");
    }
    if (task->get_ref<const std::string&>().size() > kMaxNameBytes)
      return Invalid(w, "task_cat", task,
                     absl::StrCat("must be at most ", kMaxNameBytes, " bytes"));
    auto it = task_index_.find(task->get_ref<const std::string&>());
    if (it != task_index_.end()) {
      out->task_index = it->second;
    } else if (options_.task_vocabulary) {
      return Invalid(w, "task_cat", task,
                     absl::StrCat("unknown task: the fixed vocabulary is [",
                                  absl::StrJoin(dataset_.tasks, ", "), "]"));
    } else {
      out->task_index = static_cast<int>(dataset_.tasks.size());
      dataset_.tasks.push_back(task->get<std::string>());
      task_index_.emplace(dataset_.tasks.back(), out->task_index);
    }
    out->task = task->get<std::string>();

    const json* action = Require(turn, "action", w, "0 = local, 1 = cloud", &st);
    if (!action) return st;
    if (!action->is_number_integer())
      return Invalid(w, "action", action, "must be the integer 0 or 1");
    if (*action != 0 && *action != 1) {
      return Invalid(w, "action", action, "must be 0 (local) or 1 (cloud)");
    }
    out->target = *action == 1 ? Target::kCloud : Target::kLocal;

    const json* views = Require(turn, "image_index", w, "null or a list of view indices", &st);
    if (!views) return st;
    if (!views->is_null()) {
      if (!views->is_array()) {
        return Invalid(w, "image_index", views, "must be null or an array of view indices");
      }
      // Local turns upload nothing; null and [] both say so.
      if (out->target == Target::kLocal && !views->empty()) {
        return Invalid(w, "image_index", views,
                       "a local turn (action 0) uploads no views: must be null or []");
      }
      std::vector<bool> used(dataset_.num_views, false);
      for (size_t i = 0; i < views->size(); ++i) {
        const json& v = (*views)[i];
        std::string f = absl::StrCat("image_index[", i, "]");
        if (!v.is_number_integer()) return Invalid(w, f, &v, "must be an integer view index");
        if (v.is_number_unsigned()
                ? v.get<uint64_t>() >= static_cast<uint64_t>(dataset_.num_views)
                : (v.get<int64_t>() < 0 || v.get<int64_t>() >= dataset_.num_views)) {
          return Invalid(w, f, &v,
                         absl::StrCat("names a view that does not exist (views are 0..",
                                      dataset_.num_views - 1, ")"));
        }
        int view = v.get<int>();
        if (used[view]) return Invalid(w, f, &v, "names the same view twice");
        used[view] = true;
        out->uploaded_views.push_back(view);
      }
    }

    if (st = GetString(turn, "answer", w, &out->answer); !st.ok()) return st;
    if (st = GetAmount(turn, "score", w, kMaxTurnScore, &out->score); !st.ok()) return st;
    if (st = GetAmount(turn, "interaction_time", w, kMaxTurnTimeS, &out->interaction_time_s);
        !st.ok())
      return st;
    if (st = GetAmount(turn, "usage_cost", w, kMaxTurnCostUsd, &out->usage_cost_usd); !st.ok())
      return st;
    return absl::OkStatus();
  }

  const LoadOptions& options_;
  Dataset dataset_;
  std::string views_origin_;
  std::optional<std::vector<std::string>> declared_tasks_;  // episodes' "tasks"
  std::unordered_map<int64_t, size_t> ids_;                 // id -> episode index
  std::unordered_map<std::string, int> task_index_;
};

// SAX handler that materialises one top-level element (episode) at a time as
// a small json DOM and hands it to the Loader, so peak memory is the Dataset
// plus one episode, not the Dataset plus a DOM of the whole file.
class EpisodeSax {
 public:
  EpisodeSax(std::string_view input, absl::string_view source, Loader* loader)
      : input_(input), source_(source), loader_(loader) {}

  const absl::Status& status() const { return status_; }

  bool null() { return Value(json(nullptr)); }
  bool boolean(bool b) { return Value(json(b)); }
  bool number_integer(json::number_integer_t v) { return Value(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return Value(json(v)); }
  bool number_float(json::number_float_t v, const std::string&) { return Value(json(v)); }
  bool string(std::string& s) { return Value(json(std::move(s))); }
  bool binary(json::binary_t&) {
    // Only the binary formats (CBOR etc.) produce this; plain JSON cannot.
    return Fail(absl::InvalidArgumentError(absl::StrCat(source_, ": unexpected binary value")));
  }
  bool start_object(std::size_t) { return Open(json::object()); }
  bool key(std::string& k) {
    json& obj = *stack_.back();
    if (obj.contains(k)) {
      // nlohmann's DOM would silently keep the last one; a file that says two
      // things about one field is an error.
      return Fail(absl::InvalidArgumentError(
          absl::StrCat(Context(), ", field '", Path(), stack_.size() > 1 ? "." : "", k,
                       "' = ", json(k).dump(-1, ' ', false, json::error_handler_t::replace),
                       " (key): ", "duplicate key in one object")));
    }
    key_ = std::move(k);
    return true;
  }
  bool end_object() { return Close(); }
  bool start_array(std::size_t) {
    if (!in_top_ && !top_done_) {
      in_top_ = true;
      return true;
    }
    return Open(json::array());
  }
  bool end_array() {
    if (stack_.empty()) {
      in_top_ = false;
      top_done_ = true;
      return true;
    }
    return Close();
  }
  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& ex) {
    if (ex.id == 406) {
      // A number too large for a double (e.g. 1e999) would be infinite. The
      // lexer stops just past the number, so it starts last_token.size() back.
      const size_t start = position >= last_token.size() ? position - last_token.size() : 0;
      return Fail(absl::InvalidArgumentError(
          absl::StrCat(Context(), ", field '", Path(), key_or_index(),
                       "' = ", data::Shorten(last_token, kMaxRenderedValue),
                       ": must be finite (number overflows a double) [byte offset ", start, ", ",
                       LineCol(start), "]")));
    }
    // nlohmann counts the offending character as read; report its 0-based
    // offset (== size of the input when the input ends too early).
    const size_t offset = position > 0 ? position - 1 : 0;
    std::string where;
    if (in_top_ && !stack_.empty()) {
      where = absl::StrCat(" in ", Context(/*with_source=*/false));
      std::string field = absl::StrCat(Path(), key_or_index());
      if (!field.empty()) absl::StrAppend(&where, ", near field '", field, "'");
    }
    return Fail(absl::InvalidArgumentError(
        absl::StrCat(source_, ": invalid JSON at byte offset ", offset,
                     offset >= input_.size() ? " (end of input, " : " (", LineCol(offset), ")",
                     where, ", last token '", data::Shorten(last_token, kMaxRenderedValue),
                     "': ", ShortParserMessage(ex.what()))));
  }

 private:
  bool Fail(absl::Status s) {
    if (status_.ok()) status_ = std::move(s);
    return false;
  }

  bool TopLevelNotArray(const json& v) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat(source_, ": field '<top level>' = ", Render(v), " (", TypeOf(v),
                     "): the top level must be an array of episodes")));
  }

  // Inserts into the innermost open container; returns the inserted value.
  json* Insert(json&& v) {
    json& parent = *stack_.back();
    if (parent.is_object()) {
      auto& obj = parent.get_ref<json::object_t&>();
      return &obj.emplace(std::move(key_), std::move(v)).first->second;
    }
    auto& arr = parent.get_ref<json::array_t&>();
    arr.push_back(std::move(v));
    return &arr.back();
  }

  bool Value(json&& v) {
    if (!in_top_) return TopLevelNotArray(v);
    if (stack_.empty()) {
      episode_ = std::move(v);
      return FinishEpisode();
    }
    Insert(std::move(v));
    return true;
  }

  bool Open(json&& container) {
    if (!in_top_) return TopLevelNotArray(container);
    if (stack_.empty()) {
      episode_ = std::move(container);
      stack_.push_back(&episode_);
      path_.clear();
      return true;
    }
    path_.push_back(key_or_index());
    // Pointers stay valid: a parent only grows after this child is closed.
    stack_.push_back(Insert(std::move(container)));
    return true;
  }

  bool Close() {
    stack_.pop_back();
    if (!path_.empty() && !stack_.empty()) path_.pop_back();
    if (stack_.empty()) return FinishEpisode();
    return true;
  }

  bool FinishEpisode() {
    absl::Status s = loader_->AddEpisode(episode_, episode_index_++);
    episode_ = json();
    if (!s.ok()) return Fail(std::move(s));
    return true;
  }

  // Segment naming the value being read in the innermost container.
  std::string key_or_index() const {
    if (stack_.empty()) return "";
    const json& c = *stack_.back();
    if (c.is_object()) return absl::StrCat(stack_.size() > 1 ? "." : "", key_);
    return absl::StrCat("[", c.size(), "]");
  }
  std::string Path() const { return absl::StrJoin(path_, ""); }

  // The episode being read, with its id when already seen.
  std::string Context(bool with_source = true) const {
    std::string s = with_source ? absl::StrCat(source_, ": episode ") : "episode ";
    if (episode_.is_object()) {
      auto it = episode_.find("id");
      if (it != episode_.end() && it->is_number_integer()) {
        absl::StrAppend(&s, "id ", it->dump(), " (index ", episode_index_, ")");
        return s;
      }
    }
    absl::StrAppend(&s, "index ", episode_index_);
    return s;
  }

  // 1-based line and column of a 0-based byte offset.
  std::string LineCol(size_t offset) const {
    size_t end = std::min(offset, input_.size());
    size_t line = 1, col = 1;
    for (size_t i = 0; i < end; ++i) {
      if (input_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return absl::StrCat("line ", line, ", column ", col);
  }

  std::string_view input_;
  absl::string_view source_;
  Loader* loader_;
  absl::Status status_;
  bool in_top_ = false;
  bool top_done_ = false;
  json episode_;
  std::vector<json*> stack_;
  std::vector<std::string> path_;
  std::string key_;
  size_t episode_index_ = 0;
};

absl::Status CheckOptions(absl::string_view source, const LoadOptions& options) {
  if (options.num_views && *options.num_views <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": field 'LoadOptions::num_views' = ",
                                                   *options.num_views, ": num_views must be >= 1"));
  }
  if (options.task_vocabulary) {
    const auto& vocab = *options.task_vocabulary;
    if (vocab.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": field 'LoadOptions::task_vocabulary' = []: a fixed vocabulary needs a task"));
    }
    std::unordered_map<std::string, size_t> seen;
    for (size_t i = 0; i < vocab.size(); ++i) {
      if (vocab[i].empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            source, ": field 'LoadOptions::task_vocabulary[", i, "]' = \"\": must not be empty"));
      }
      if (!seen.emplace(vocab[i], i).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            source, ": field 'LoadOptions::task_vocabulary[", i,
            "]' = ", json(vocab[i]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
            ": duplicate task name"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Dataset> ParseM4A1(std::string_view json_text, std::string_view source_view,
                                  const LoadOptions& options) {
  // Debian's abseil has its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0).
  const absl::string_view source_name(source_view.data(), source_view.size());
  try {
    if (absl::Status s = CheckOptions(source_name, options); !s.ok()) return s;
    if (json_text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ": field '<file>' = ", json_text.size(),
                       " bytes: the file is empty; expected a JSON array of episodes"));
    }
    // The episode DOMs the SAX handler builds are copied and printed
    // recursively: bound their depth first.
    if (absl::Status s = CheckJsonDepth(json_text, source_view); !s.ok()) return s;
    Loader loader(source_name, options);
    EpisodeSax sax(json_text, source_name, &loader);
    const char* begin = json_text.data();
    if (!json::sax_parse(begin, begin + json_text.size(), &sax)) {
      if (!sax.status().ok()) return sax.status();
      return absl::InternalError(
          absl::StrCat(source_name, ": JSON parse stopped without a reason"));
    }
    return loader.Finish();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(source_name, ": out of memory while parsing"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(source_name, ": unexpected error: ", e.what()));
  }
}

absl::StatusOr<Dataset> LoadM4A1File(const std::string& path, const LoadOptions& options) {
  std::error_code ec;
  auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) {
    return absl::NotFoundError(
        absl::StrCat(Shorten(path, 256), ": cannot open M4A1 file: no such file"));
  }
  if (std::filesystem::is_directory(st)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Shorten(path, 256), ": is a directory, not an M4A1 file"));
  }
  if (!std::filesystem::is_regular_file(st)) {  // a FIFO would wait, a device read as empty
    return absl::InvalidArgumentError(
        absl::StrCat(Shorten(path, 256), ": not a regular file, not an M4A1 file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::PermissionDeniedError(absl::StrCat(
        Shorten(path, 256), ": cannot open M4A1 file for reading: ", std::strerror(errno)));
  }
  std::string bytes;
  try {
    in.seekg(0, std::ios::end);
    std::streamoff size = in.tellg();
    in.seekg(0, std::ios::beg);
    if (size > 0) {
      bytes.resize(static_cast<size_t>(size));
      in.read(bytes.data(), size);
      if (in.gcount() != size) {
        return absl::DataLossError(
            absl::StrCat(Shorten(path, 256), ": read ", in.gcount(), " of ", size, " bytes"));
      }
    }
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat(Shorten(path, 256), ": file too large to read"));
  }
  return ParseM4A1(bytes, path, options);
}

namespace {

// Calls emit(std::string_view) with consecutive pieces of the JSON text, one
// episode at a time, so the whole file never has to sit in memory as a DOM.
template <typename Emit>
void SerializeM4A1(const Dataset& dataset, bool pretty, Emit&& emit) {
  using ojson = nlohmann::ordered_json;  // keeps the original key order
  emit(pretty ? "[\n" : "[");
  bool first = true;
  std::string indented;
  for (const Episode& ep : dataset.episodes) {
    ojson e = ojson::object();
    e["id"] = ep.id;
    e["image_paths"] = ep.image_paths;
    ojson turns = ojson::array();
    for (const Turn& t : ep.turns) {
      ojson j = ojson::object();
      j["question"] = t.question;
      const bool from_vocab = t.task.empty() && t.task_index >= 0 &&
                              static_cast<size_t>(t.task_index) < dataset.tasks.size();
      j["task_cat"] = from_vocab ? dataset.tasks[t.task_index] : t.task;
      j["action"] = static_cast<int>(t.target);
      j["image_index"] = t.uploaded_views.empty() ? ojson(nullptr) : ojson(t.uploaded_views);
      j["answer"] = t.answer;
      j["score"] = t.score;
      j["interaction_time"] = t.interaction_time_s;
      j["usage_cost"] = t.usage_cost_usd;
      turns.push_back(std::move(j));
    }
    e["interactions"] = std::move(turns);
    e["association_score"] = ep.association;
    if (!first) emit(pretty ? ",\n" : ",");
    first = false;
    // replace: a hand-built Dataset with invalid UTF-8 must not throw here.
    const std::string s = e.dump(pretty ? 4 : -1, ' ', false, ojson::error_handler_t::replace);
    if (pretty) {
      // Indent the episode one level; strings escape '\n', so every raw
      // newline is structural.
      indented.assign("    ");
      for (char c : s) {
        indented += c;
        if (c == '\n') indented += "    ";
      }
      emit(indented);
    } else {
      emit(s);
    }
  }
  emit(pretty ? "\n]\n" : "]");
}

}  // namespace

std::string ToM4A1Json(const Dataset& dataset, bool pretty) {
  std::string out;
  SerializeM4A1(dataset, pretty, [&out](std::string_view piece) { out.append(piece); });
  return out;
}

absl::Status WriteM4A1Json(const Dataset& dataset, std::ostream& out, bool pretty) {
  SerializeM4A1(dataset, pretty, [&out](std::string_view piece) {
    if (out) out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
  });
  out.flush();
  if (!out) return absl::DataLossError("WriteM4A1Json: writing the stream failed");
  return absl::OkStatus();
}

// FIPS 180-4 SHA-256.
std::string Sha256Hex(std::string_view bytes) {
  static constexpr std::array<uint32_t, 64> k = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
      0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
      0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
      0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
      0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
      0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
      0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
      0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
      0xc67178f2};
  std::array<uint32_t, 8> h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  auto rotr = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
  auto block = [&](const unsigned char* p) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      w[i] = (uint32_t{p[4 * i]} << 24) | (uint32_t{p[4 * i + 1]} << 16) |
             (uint32_t{p[4 * i + 2]} << 8) | uint32_t{p[4 * i + 3]};
    }
    for (int i = 16; i < 64; ++i) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      uint32_t ch = (e & f) ^ (~e & g);
      uint32_t t1 = hh + s1 + ch + k[i] + w[i];
      uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
      uint32_t t2 = s0 + maj;
      hh = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  };
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  size_t full = n / 64 * 64;
  for (size_t i = 0; i < full; i += 64) block(data + i);
  // Padding: 0x80, zeros, then the bit length big-endian, in one or two blocks.
  unsigned char tail[128] = {};
  size_t rest = n - full;
  if (rest) std::memcpy(tail, data + full, rest);
  tail[rest] = 0x80;
  size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
  uint64_t bits = static_cast<uint64_t>(n) * 8;
  for (int i = 0; i < 8; ++i) tail[tail_len - 1 - i] = static_cast<unsigned char>(bits >> (8 * i));
  for (size_t i = 0; i < tail_len; i += 64) block(tail + i);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (uint32_t x : h) {
    for (int i = 7; i >= 0; --i) out += kHex[(x >> (4 * i)) & 0xf];
  }
  return out;
}

bool RefusalRule::IsRefusal(std::string_view answer) const {
  for (const std::string& p : phrases) {
    // An empty phrase would match every answer; treat it as absent.
    if (!p.empty() && answer.find(p) != std::string_view::npos) return true;
  }
  return false;
}

double RefusalRule::ResponseScore(const Turn& turn) const {
  return IsRefusal(turn.answer) ? 0.0 : turn.score;
}

}  // namespace lcio::data
