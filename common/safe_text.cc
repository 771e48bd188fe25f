#include "common/safe_text.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/utf8.h"

namespace cybersyn {
namespace {

void AppendHex(std::string* out, const char* prefix, uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%s%0*x", prefix, digits, static_cast<unsigned>(v));
  out->append(buf);
}

// Appends the escaped form of `text` (at most max_bytes of it); whether all of it fit.
bool Escape(absl::string_view text, size_t max_bytes, std::string* out) {
  size_t i = 0;
  while (i < text.size()) {
    if (i >= max_bytes) return false;
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F) {
      if (c == '"' || c == '\\') out->push_back('\\');
      out->push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    switch (c) {
      case '\n':
        out->append("\\n");
        ++i;
        continue;
      case '\r':
        out->append("\\r");
        ++i;
        continue;
      case '\t':
        out->append("\\t");
        ++i;
        continue;
      default:
        break;
    }
    char32_t cp = 0;
    const int len = c < 0x80 ? 0 : DecodeUtf8(text.substr(i), &cp);
    if (len == 0) {  // a control byte, DEL, or not UTF-8
      AppendHex(out, "\\x", c, 2);
      ++i;
    } else if (cp <= 0xFFFF) {
      AppendHex(out, "\\u", cp, 4);
      i += static_cast<size_t>(len);
    } else {
      AppendHex(out, "\\U", cp, 8);
      i += static_cast<size_t>(len);
    }
  }
  return true;
}

}  // namespace

std::string SafeQuote(absl::string_view text, size_t max_bytes) {
  std::string out = "\"";
  const bool whole = Escape(text, max_bytes, &out);
  out.push_back('"');
  if (!whole) absl::StrAppend(&out, "... (", text.size(), " bytes)");
  return out;
}

std::string SafeName(absl::string_view text, size_t max_bytes) {
  std::string out;
  if (!Escape(text, max_bytes, &out)) absl::StrAppend(&out, "... (", text.size(), " bytes)");
  return out;
}

std::string SafeLine(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    char32_t cp = 0;
    const int len = c < 0x80 ? 0 : DecodeUtf8(text.substr(i), &cp);
    // C1 controls (U+0080..U+009F) act on some terminals too.
    if (len == 0 || (cp >= 0x80 && cp <= 0x9F)) {
      if (len == 0) {
        AppendHex(&out, "\\x", c, 2);
        ++i;
      } else {
        AppendHex(&out, "\\u", cp, 4);
        i += static_cast<size_t>(len);
      }
      continue;
    }
    out.append(text.data() + i, static_cast<size_t>(len));
    i += static_cast<size_t>(len);
  }
  return out;
}

}  // namespace cybersyn
