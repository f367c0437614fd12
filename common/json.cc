#include "common/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace dgsr {
namespace {

void AppendQuoted(const std::string& s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\t': *out += "\\t"; break;
      case '\r': *out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          *out += buf;
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

std::string FormatNumber(double v) {
  if (!std::isfinite(v)) return "null";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrCat(static_cast<int64_t>(v));
  // The shortest text that parses back to exactly v: state files (run_state.h) and configs
  // round-trip bit for bit, and short values stay short (0.001, not 0.0010000000000000000208).
  char buf[64];
  const auto end = std::to_chars(buf, buf + sizeof(buf), v).ptr;
  return std::string(buf, end);
}

class Parser {
 public:
  explicit Parser(const std::string& text) : s_(text) {}

  absl::StatusOr<JsonObject> Object() {
    JsonObject obj;
    SkipSpace();
    if (!Consume('{')) return Error("expected '{'");
    SkipSpace();
    if (Consume('}')) return Finish(obj);
    while (true) {
      SkipSpace();
      auto key = String();
      if (!key.ok()) return key.status();
      SkipSpace();
      if (!Consume(':')) return Error("expected ':'");
      SkipSpace();
      if (Peek() == '"') {
        auto v = String();
        if (!v.ok()) return v.status();
        obj.Set(*key, *v);
      } else if (s_.compare(pos_, 4, "true") == 0) {
        pos_ += 4;
        obj.Set(*key, true);
      } else if (s_.compare(pos_, 5, "false") == 0) {
        pos_ += 5;
        obj.Set(*key, false);
      } else if (s_.compare(pos_, 4, "null") == 0) {
        pos_ += 4;
        obj.Set(*key, std::nan(""));
      } else {
        const char* begin = s_.c_str() + pos_;
        char* end = nullptr;
        double v = std::strtod(begin, &end);
        if (end == begin) return Error("expected a string, number or boolean");
        pos_ += static_cast<size_t>(end - begin);
        obj.Set(*key, v);
      }
      SkipSpace();
      if (Consume(',')) continue;
      if (Consume('}')) return Finish(obj);
      return Error("expected ',' or '}'");
    }
  }

 private:
  absl::StatusOr<JsonObject> Finish(JsonObject obj) {
    SkipSpace();
    if (pos_ != s_.size()) return Error("trailing characters");
    return obj;
  }
  absl::StatusOr<std::string> String() {
    if (!Consume('"')) return Error("expected '\"'");
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) break;
      char e = s_[pos_++];
      switch (e) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'u':
          if (pos_ + 4 > s_.size()) return Error("bad \\u escape");
          out.push_back(static_cast<char>(std::strtol(s_.substr(pos_, 4).c_str(), nullptr, 16)));
          pos_ += 4;
          break;
        default: out.push_back(e);
      }
    }
    if (!Consume('"')) return Error("unterminated string");
    return out;
  }
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r')) ++pos_;
  }
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool Consume(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat("JSON: ", what, " at offset ", pos_));
  }

  const std::string& s_;
  size_t pos_ = 0;
};

}  // namespace

JsonObject& JsonObject::SetValue(const std::string& key, Value value) {
  for (auto& [k, v] : entries_) {
    if (k == key) {
      v = std::move(value);
      return *this;
    }
  }
  entries_.emplace_back(key, std::move(value));
  return *this;
}

JsonObject& JsonObject::Set(const std::string& key, const std::string& value) { return SetValue(key, value); }
JsonObject& JsonObject::Set(const std::string& key, double value) { return SetValue(key, value); }
JsonObject& JsonObject::Set(const std::string& key, bool value) { return SetValue(key, value); }

const JsonObject::Value* JsonObject::Find(const std::string& key) const {
  for (const auto& [k, v] : entries_) {
    if (k == key) return &v;
  }
  return nullptr;
}

JsonObject& JsonObject::Merge(const JsonObject& other) {
  for (const auto& [k, v] : other.entries_) SetValue(k, v);
  return *this;
}

bool JsonObject::Has(const std::string& key) const { return Find(key) != nullptr; }

std::optional<std::string> JsonObject::GetString(const std::string& key) const {
  const Value* v = Find(key);
  if (v == nullptr || !std::holds_alternative<std::string>(*v)) return std::nullopt;
  return std::get<std::string>(*v);
}

std::optional<double> JsonObject::GetNumber(const std::string& key) const {
  const Value* v = Find(key);
  if (v == nullptr || !std::holds_alternative<double>(*v)) return std::nullopt;
  return std::get<double>(*v);
}

std::optional<bool> JsonObject::GetBool(const std::string& key) const {
  const Value* v = Find(key);
  if (v == nullptr || !std::holds_alternative<bool>(*v)) return std::nullopt;
  return std::get<bool>(*v);
}

std::string JsonObject::Dump() const {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : entries_) {
    if (!first) out.push_back(',');
    first = false;
    AppendQuoted(k, &out);
    out.push_back(':');
    if (const auto* s = std::get_if<std::string>(&v)) {
      AppendQuoted(*s, &out);
    } else if (const auto* d = std::get_if<double>(&v)) {
      out += FormatNumber(*d);
    } else {
      out += std::get<bool>(v) ? "true" : "false";
    }
  }
  out.push_back('}');
  return out;
}

absl::StatusOr<JsonObject> JsonObject::Parse(const std::string& text) { return Parser(text).Object(); }

}  // namespace dgsr
