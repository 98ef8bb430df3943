// nlohmann::json parsing behind the shared depth limit (json_depth.h). Use
// this, never json::parse, for text that comes from outside the process.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lcio/data/json_depth.h"
#include "nlohmann/json.hpp"

namespace lcio::data {

// Like Json::parse(text, nullptr, false): a discarded value when `text` is
// not JSON or nests deeper than kMaxJsonDepth. If `error` is given, it says
// why (the depth rule, or the parser's message), prefixed with `source`.
template <typename Json = nlohmann::json>
Json ParseJson(std::string_view text, std::string_view source, absl::Status* error = nullptr) {
  if (absl::Status depth = CheckJsonDepth(text, source); !depth.ok()) {
    if (error != nullptr) *error = std::move(depth);
    return Json(Json::value_t::discarded);
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const typename Json::exception& e) {
    if (error != nullptr)
      *error = absl::InvalidArgumentError(
          absl::StrCat(absl::string_view(source.data(), source.size()), ": ", e.what()));
    return Json(Json::value_t::discarded);
  }
}

}  // namespace lcio::data
