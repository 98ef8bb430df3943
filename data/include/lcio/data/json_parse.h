// nlohmann::json parsing behind the shared depth limit (json_depth.h). Use
// this, never json::parse, for text that comes from outside the process.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "lcio/data/json_depth.h"
#include "lcio/data/message.h"
#include "nlohmann/json.hpp"

namespace lcio::data {

// nlohmann's exception message with the token it quotes ("last read: '...'",
// the whole token: a 2 MB string made a 2 MB message) cut to 64 bytes, and
// the message itself bounded.
inline std::string ShortParserMessage(std::string_view what) {
  constexpr std::string_view kLastRead = "last read: '";
  const size_t at = what.find(kLastRead);
  if (at != std::string_view::npos) {
    const size_t token = at + kLastRead.size();
    size_t close = what.rfind("'; expected");
    if (close == std::string_view::npos || close < token)
      close = !what.empty() && what.back() == '\'' ? what.size() - 1 : std::string_view::npos;
    if (close != std::string_view::npos && close >= token)
      return Shorten(std::string(what.substr(0, token)) +
                         Shorten(what.substr(token, close - token), 64) +
                         std::string(what.substr(close)),
                     512);
  }
  return Shorten(what, 512);
}

// Like Json::parse(text, nullptr, false): a discarded value when `text` is
// not JSON, nests deeper than kMaxJsonDepth or names a key twice in one
// object (nlohmann would keep the last in silence: a file that says two
// things about one field is an error). If `error` is given, it says why,
// prefixed with `source`.
template <typename Json = nlohmann::json>
Json ParseJson(std::string_view text, std::string_view source, absl::Status* error = nullptr) {
  if (absl::Status depth = CheckJsonDepth(text, source); !depth.ok()) {
    if (error != nullptr) *error = std::move(depth);
    return Json(Json::value_t::discarded);
  }
  // The keys of the open objects, as 64-bit hashes in one flat array (no
  // allocation per object, no copy of a key): `starts` marks where each open
  // object's begin. Objects have few keys: a linear scan, except in one
  // that grows large, which gets a hash set. Two keys of one object with
  // the same hash but different text (2^-64 a pair) would be taken for one.
  std::vector<uint64_t> hashes;
  std::vector<size_t> starts;
  std::vector<std::unordered_set<uint64_t>> large;  // for objects past kLinear keys
  std::vector<int> large_of;                        // per open object: index in large, or -1
  constexpr size_t kLinear = 32;
  std::string duplicate;
  const auto check_keys = [&](int, typename Json::parse_event_t event, Json& parsed) {
    using Event = typename Json::parse_event_t;
    if (event == Event::object_start) {
      starts.push_back(hashes.size());
      large_of.push_back(-1);
    } else if (event == Event::object_end) {
      if (!starts.empty()) {
        hashes.resize(starts.back());
        starts.pop_back();
        if (large_of.back() >= 0) large.pop_back();
        large_of.pop_back();
      }
    } else if (event == Event::key && !starts.empty() && duplicate.empty()) {
      const std::string& key = parsed.template get_ref<const std::string&>();
      const uint64_t h = std::hash<std::string_view>{}(key);
      const size_t begin = starts.back();
      bool seen;
      if (large_of.back() >= 0) {
        seen = !large[large_of.back()].insert(h).second;
      } else {
        seen = std::find(hashes.begin() + begin, hashes.end(), h) != hashes.end();
        if (!seen && hashes.size() - begin >= kLinear) {
          large_of.back() = static_cast<int>(large.size());
          large.emplace_back(hashes.begin() + begin, hashes.end());
          large.back().insert(h);
        }
      }
      if (seen)
        duplicate = key;
      else
        hashes.push_back(h);
    }
    return true;
  };
  try {
    Json parsed = Json::parse(text.begin(), text.end(), check_keys);
    if (duplicate.empty()) return parsed;
    if (error != nullptr)
      *error = absl::InvalidArgumentError(
          absl::StrCat(Shorten(source, 256), ": key \"", Shorten(duplicate, 64),
                       "\" appears twice in one object (which value holds would be an accident)"));
    return Json(Json::value_t::discarded);
  } catch (const typename Json::exception& e) {
    if (error != nullptr)
      *error = absl::InvalidArgumentError(
          absl::StrCat(Shorten(source, 256), ": ", ShortParserMessage(e.what())));
    return Json(Json::value_t::discarded);
  }
}

// `value` as an integer in [min, max], exactly: get<int>() truncates a
// fraction, wraps a number past the type and is undefined for a double
// beyond it (1e10 read as INT_MIN). A whole number written as a decimal (6e5,
// 9.0) is accepted up to 2^53, where doubles stop holding every integer.
// INVALID_ARGUMENT "`name` = VALUE: must be a whole number in [min, max]".
template <typename Int, typename Json = nlohmann::json>
absl::StatusOr<Int> WholeNumber(const Json& value, std::string_view name, Int min, Int max) {
  static_assert(std::is_integral_v<Int> && sizeof(Int) <= 8);
  // Compared as the widest type of Int's signedness: no cast turns a
  // negative bound into a huge one or the reverse.
  using Wide = std::conditional_t<std::is_signed_v<Int>, int64_t, uint64_t>;
  const Wide lo = static_cast<Wide>(min), hi = static_cast<Wide>(max);
  bool fits = false;
  Wide out = 0;
  if (value.is_number_unsigned()) {
    const uint64_t v = value.template get<uint64_t>();
    if constexpr (std::is_signed_v<Int>) {
      fits = v <= static_cast<uint64_t>(INT64_MAX) && static_cast<int64_t>(v) >= lo &&
             static_cast<int64_t>(v) <= hi;
    } else {
      fits = v >= lo && v <= hi;
    }
    out = static_cast<Wide>(v);
  } else if (value.is_number_integer()) {
    const int64_t v = value.template get<int64_t>();
    if constexpr (std::is_signed_v<Int>) {
      fits = v >= lo && v <= hi;
    } else {
      fits = v >= 0 && static_cast<uint64_t>(v) >= lo && static_cast<uint64_t>(v) <= hi;
    }
    out = static_cast<Wide>(v);
  } else if (value.is_number_float()) {
    const double v = value.template get<double>();
    fits = std::isfinite(v) && v == std::floor(v) && std::abs(v) <= 9007199254740992.0 &&
           v >= static_cast<double>(min) && v <= static_cast<double>(max);
    if (fits) {
      // Within +-2^53 and [min, max]: exact in Wide, and v >= min >= 0 when unsigned.
      out = static_cast<Wide>(v);
      fits = out >= lo && out <= hi;
    }
  }
  if (!fits)
    return absl::InvalidArgumentError(
        absl::StrCat(absl::string_view(name.data(), name.size()), " = ", Shorten(value.dump(), 64),
                     ": must be a whole number in [", min, ", ", max, "]"));
  return static_cast<Int>(out);
}

}  // namespace lcio::data
