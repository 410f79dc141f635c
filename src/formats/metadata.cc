// Metadata and MetaValue: constructors, numeric views, equality (bitwise for floats, so NaN
// values survive a round trip compare) and the ordered key/value map.
#include "formats/metadata.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace llmopt {
namespace {

bool is_unsigned_type(MetaType t) {
  return t == MetaType::kU8 || t == MetaType::kU16 || t == MetaType::kU32 || t == MetaType::kU64;
}
bool is_signed_type(MetaType t) {
  return t == MetaType::kI8 || t == MetaType::kI16 || t == MetaType::kI32 || t == MetaType::kI64;
}

uint32_t f32_bits(double v) {
  const float f = static_cast<float>(v);
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
uint64_t f64_bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, 8);
  return b;
}

}  // namespace

const char* meta_type_name(MetaType t) {
  switch (t) {
    case MetaType::kU8:
      return "u8";
    case MetaType::kI8:
      return "i8";
    case MetaType::kU16:
      return "u16";
    case MetaType::kI16:
      return "i16";
    case MetaType::kU32:
      return "u32";
    case MetaType::kI32:
      return "i32";
    case MetaType::kF32:
      return "f32";
    case MetaType::kBool:
      return "bool";
    case MetaType::kString:
      return "string";
    case MetaType::kArray:
      return "array";
    case MetaType::kU64:
      return "u64";
    case MetaType::kI64:
      return "i64";
    case MetaType::kF64:
      return "f64";
  }
  return "unknown";
}

MetaValue MetaValue::from_u32(uint32_t v) {
  MetaValue m;
  m.type = MetaType::kU32;
  m.u = v;
  m.i = v;
  return m;
}

MetaValue MetaValue::from_i32(int32_t v) {
  MetaValue m;
  m.type = MetaType::kI32;
  m.i = v;
  m.u = static_cast<uint64_t>(static_cast<int64_t>(v));
  return m;
}

MetaValue MetaValue::from_u64(uint64_t v) {
  MetaValue m;
  m.type = MetaType::kU64;
  m.u = v;
  m.i = static_cast<int64_t>(v);
  return m;
}

MetaValue MetaValue::from_f32(float v) {
  MetaValue m;
  m.type = MetaType::kF32;
  m.f = v;
  return m;
}

MetaValue MetaValue::from_bool(bool v) {
  MetaValue m;
  m.type = MetaType::kBool;
  m.u = v ? 1 : 0;
  m.i = v ? 1 : 0;
  return m;
}

MetaValue MetaValue::from_string(std::string v) {
  MetaValue m;
  m.type = MetaType::kString;
  m.s = std::move(v);
  return m;
}

MetaValue MetaValue::from_strings(const std::vector<std::string>& v) {
  MetaValue m;
  m.type = MetaType::kArray;
  m.elem_type = MetaType::kString;
  m.arr.reserve(v.size());
  for (const auto& s : v) m.arr.push_back(from_string(s));
  return m;
}

MetaValue MetaValue::from_f32s(const std::vector<float>& v) {
  MetaValue m;
  m.type = MetaType::kArray;
  m.elem_type = MetaType::kF32;
  m.arr.reserve(v.size());
  for (float x : v) m.arr.push_back(from_f32(x));
  return m;
}

MetaValue MetaValue::from_i32s(const std::vector<int32_t>& v) {
  MetaValue m;
  m.type = MetaType::kArray;
  m.elem_type = MetaType::kI32;
  m.arr.reserve(v.size());
  for (int32_t x : v) m.arr.push_back(from_i32(x));
  return m;
}

bool MetaValue::is_integer() const { return is_unsigned_type(type) || is_signed_type(type); }

std::optional<int64_t> MetaValue::as_int() const {
  if (is_unsigned_type(type)) {
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (is_signed_type(type)) return i;
  if (type == MetaType::kBool) return u != 0 ? 1 : 0;
  if (is_float()) {
    // NOTE: only integral values convert; 2.5 is not silently truncated.
    if (!std::isfinite(f) || std::trunc(f) != f) return std::nullopt;
    if (f < -9.2233720368547758e18 || f >= 9.2233720368547758e18) return std::nullopt;
    return static_cast<int64_t>(f);
  }
  return std::nullopt;
}

std::optional<double> MetaValue::as_float() const {
  if (is_unsigned_type(type)) return static_cast<double>(u);
  if (is_signed_type(type)) return static_cast<double>(i);
  if (type == MetaType::kBool) return u != 0 ? 1.0 : 0.0;
  if (is_float()) return f;
  return std::nullopt;
}

bool MetaValue::operator==(const MetaValue& o) const {
  if (type != o.type) return false;
  if (is_unsigned_type(type)) return u == o.u;
  if (is_signed_type(type)) return i == o.i;
  switch (type) {
    case MetaType::kBool:
      return (u != 0) == (o.u != 0);
    case MetaType::kF32:
      return f32_bits(f) == f32_bits(o.f);
    case MetaType::kF64:
      return f64_bits(f) == f64_bits(o.f);
    case MetaType::kString:
      return s == o.s;
    case MetaType::kArray:
      return elem_type == o.elem_type && arr == o.arr;
    default:
      return false;
  }
}

void Metadata::set(const std::string& key, MetaValue v) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    entries_[it->second].second = std::move(v);
    return;
  }
  index_.emplace(key, entries_.size());
  entries_.emplace_back(key, std::move(v));
}

const MetaValue* Metadata::find(const std::string& key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

void Metadata::erase(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(it->second));
  index_.clear();
  for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
}

std::optional<std::string> Metadata::get_string(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr || v->type != MetaType::kString) return std::nullopt;
  return v->s;
}

std::optional<int64_t> Metadata::get_int(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_int();
}

std::optional<double> Metadata::get_float(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  return v->as_float();
}

std::optional<bool> Metadata::get_bool(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type == MetaType::kBool) return v->u != 0;
  if (v->is_integer()) return v->u != 0;
  return std::nullopt;
}

std::optional<std::vector<std::string>> Metadata::get_string_array(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr || v->type != MetaType::kArray || v->elem_type != MetaType::kString) {
    return std::nullopt;
  }
  std::vector<std::string> out;
  out.reserve(v->arr.size());
  for (const auto& e : v->arr) {
    if (e.type != MetaType::kString) return std::nullopt;
    out.push_back(e.s);
  }
  return out;
}

std::optional<std::vector<float>> Metadata::get_float_array(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr || v->type != MetaType::kArray) return std::nullopt;
  std::vector<float> out;
  out.reserve(v->arr.size());
  for (const auto& e : v->arr) {
    auto x = e.as_float();
    if (!x) return std::nullopt;
    out.push_back(static_cast<float>(*x));
  }
  return out;
}

std::optional<std::vector<int64_t>> Metadata::get_int_array(const std::string& key) const {
  const MetaValue* v = find(key);
  if (v == nullptr || v->type != MetaType::kArray) return std::nullopt;
  std::vector<int64_t> out;
  out.reserve(v->arr.size());
  for (const auto& e : v->arr) {
    if (!e.is_integer()) return std::nullopt;
    auto x = e.as_int();
    if (!x) return std::nullopt;
    out.push_back(*x);
  }
  return out;
}

}  // namespace llmopt
