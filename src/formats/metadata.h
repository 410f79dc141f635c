// Typed key/value metadata in GGUF's model: scalars of 12 types, strings and (nested) arrays.
// Every reader produces it (GGUF directly; HF and llama2.c importers translate into GGUF keys),
// and the GGUF writer writes it back unchanged.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace llmopt {

// Values are GGUF's gguf_type ids.
enum class MetaType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6,
  kBool = 7, kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

const char* meta_type_name(MetaType t);

struct MetaValue {
  MetaType type = MetaType::kU32;
  // Scalars: integers in u64 (bit pattern) / i64, floats in f64, bool in u64.
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  std::string s;
  // Arrays: element type and elements (each element has type == elem_type).
  MetaType elem_type = MetaType::kU8;
  std::vector<MetaValue> arr;

  static MetaValue from_u32(uint32_t v);
  static MetaValue from_i32(int32_t v);
  static MetaValue from_u64(uint64_t v);
  static MetaValue from_f32(float v);
  static MetaValue from_bool(bool v);
  static MetaValue from_string(std::string v);
  static MetaValue from_strings(const std::vector<std::string>& v);
  static MetaValue from_f32s(const std::vector<float>& v);
  static MetaValue from_i32s(const std::vector<int32_t>& v);

  bool is_integer() const;
  bool is_float() const { return type == MetaType::kF32 || type == MetaType::kF64; }
  // Numeric view of any integer/float/bool scalar.
  std::optional<int64_t> as_int() const;
  std::optional<double> as_float() const;
  bool operator==(const MetaValue& o) const;
};

// Ordered (insertion order is kept so a round trip writes keys in the same order). Lookups go
// through a hash index, so files with many keys load in linear time.
class Metadata {
 public:
  void set(const std::string& key, MetaValue v);
  const MetaValue* find(const std::string& key) const;
  bool contains(const std::string& key) const { return find(key) != nullptr; }
  void erase(const std::string& key);
  const std::vector<std::pair<std::string, MetaValue>>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

  // Typed getters: nullopt when absent or of an incompatible type.
  std::optional<std::string> get_string(const std::string& key) const;
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;
  std::optional<bool> get_bool(const std::string& key) const;
  std::optional<std::vector<std::string>> get_string_array(const std::string& key) const;
  std::optional<std::vector<float>> get_float_array(const std::string& key) const;
  std::optional<std::vector<int64_t>> get_int_array(const std::string& key) const;

  bool operator==(const Metadata& o) const { return entries_ == o.entries_; }

 private:
  std::vector<std::pair<std::string, MetaValue>> entries_;
  std::unordered_map<std::string, size_t> index_;  // key -> position in entries_
};

}  // namespace llmopt
