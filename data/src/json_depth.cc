#include "lcio/data/json_depth.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace lcio::data {

absl::Status CheckJsonDepth(std::string_view text, std::string_view source, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;  // the escaped character cannot end the string
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        return absl::InvalidArgumentError(absl::StrCat(
            // Debian's abseil has its own string_view.
            absl::string_view(source.data(), source.size()),
            ": JSON nests arrays/objects more than ", max_depth,
            " levels deep (the limit) at byte offset ", i));
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return absl::OkStatus();
}

}  // namespace lcio::data
