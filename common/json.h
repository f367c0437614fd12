// A flat JSON object: string keys mapping to strings, numbers or booleans, kept in insertion
// order. Enough for model configuration, artifact metadata, metrics lines and benchmark output,
// without a JSON dependency.
//
//   JsonObject o;
//   o.Set("hit@10", 0.723).Set("dataset", "games").Set("paper_config", true);
//   std::string line = o.Dump();              // {"hit@10":0.723,"dataset":"games",...}
//   ASSIGN_OR_RETURN(JsonObject back, JsonObject::Parse(line));
//   double hit = back.GetNumber("hit@10").value_or(0);
//
// Parse() accepts exactly what Dump() writes plus whitespace; nested objects and arrays are
// rejected with InvalidArgument. Not thread-safe for concurrent mutation.
#ifndef DGSR_COMMON_JSON_H_
#define DGSR_COMMON_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace dgsr {

class JsonObject {
 public:
  using Value = std::variant<std::string, double, bool>;

  JsonObject& Set(const std::string& key, const std::string& value);
  JsonObject& Set(const std::string& key, const char* value) { return Set(key, std::string(value)); }
  JsonObject& Set(const std::string& key, double value);
  JsonObject& Set(const std::string& key, int64_t value) { return Set(key, static_cast<double>(value)); }
  JsonObject& Set(const std::string& key, int value) { return Set(key, static_cast<double>(value)); }
  JsonObject& Set(const std::string& key, bool value);

  // Copies every entry of `other` (overwriting equal keys).
  JsonObject& Merge(const JsonObject& other);

  bool Has(const std::string& key) const;
  std::optional<std::string> GetString(const std::string& key) const;
  std::optional<double> GetNumber(const std::string& key) const;
  std::optional<bool> GetBool(const std::string& key) const;

  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }

  std::string Dump() const;
  [[nodiscard]] static absl::StatusOr<JsonObject> Parse(const std::string& text);

 private:
  JsonObject& SetValue(const std::string& key, Value value);
  const Value* Find(const std::string& key) const;
  std::vector<std::pair<std::string, Value>> entries_;
};

}  // namespace dgsr

#endif  // DGSR_COMMON_JSON_H_
