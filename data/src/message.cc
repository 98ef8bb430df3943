#include "lcio/data/message.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "lcio/data/utf8.h"

namespace lcio::data {

std::string Shorten(std::string_view text, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    const size_t n = c < 0x80 ? 1 : Utf8SequenceLength(text, i);
    // C0 and C1 controls and DEL would reach a terminal as commands.
    const bool control = (n == 1 && (c < 0x20 || c == 0x7F)) ||
                         (n == 2 && c == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0);
    if (n == 0 || control) {
      const size_t escaped = n == 0 ? 1 : n;
      if (out.size() + 4 * escaped > max_bytes) break;
      for (size_t k = 0; k < escaped; ++k) {
        const auto b = static_cast<unsigned char>(text[i + k]);
        out += {'\\', 'x', kHex[b >> 4], kHex[b & 15]};
      }
      i += escaped;
    } else {
      if (out.size() + n > max_bytes) break;
      out.append(text.data() + i, n);
      i += n;
    }
  }
  if (i < text.size()) absl::StrAppend(&out, "...(", text.size(), " bytes)");
  return out;
}

std::string ExactNumber(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  std::array<char, 32> buffer;  // a double's shortest form takes at most 24
  const auto [end, error] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  if (error != std::errc()) return absl::StrCat(value);
  return std::string(buffer.data(), end);
}

}  // namespace lcio::data
