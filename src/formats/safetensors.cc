// safetensors reader: one file, or the shards named by a model.safetensors.index.json.
//
// File layout:
//   u64 (little-endian)  N, the byte length of the JSON header
//   N bytes              JSON object, UTF-8, possibly padded with spaces:
//                          { "<tensor name>": { "dtype": "F32", "shape": [d0, d1, ...],
//                                               "data_offsets": [begin, end] },
//                            ...,
//                            "__metadata__": { "<key>": "<string>", ... } }   (optional)
//   data section         the rest of the file; [begin, end) is relative to its start and
//                        end - begin == product(shape) * sizeof(dtype). Shapes are outermost first.
//
// Index layout: { "metadata": {...}, "weight_map": { "<tensor name>": "<shard file name>", ... } }
// with shard files in the index's directory.
#include "formats/safetensors.h"

#include <sys/stat.h>

#include <cstring>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "core/mmap_file.h"
#include "formats/read_util.h"

namespace llmopt {
namespace {

using formats_internal::checked_add;
using formats_internal::natural_alignment;
using formats_internal::quote_name;
using formats_internal::tensor_nbytes;
// ordered_json keeps the header's tensor order.
using json = nlohmann::ordered_json;

// Real headers are a few MB at most; the reference implementation refuses more than 100 MB.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
// A valid header nests 3 levels deep; anything much deeper is hostile.
constexpr int kMaxJsonDepth = 16;

std::string st_num(uint64_t v) { return std::to_string(v); }

// Checks bracket nesting before handing the text to the JSON parser.
Status check_json_depth(const char* p, size_t n) {
  int depth = 0;
  bool in_string = false;
  for (size_t k = 0; k < n; ++k) {
    const char c = p[k];
    if (in_string) {
      if (c == '\\') {
        ++k;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth)
        return error("header JSON nests deeper than " + st_num(kMaxJsonDepth) + " levels");
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return ok_status();
}

Result<json> parse_json(const char* p, size_t n, const std::string& what) {
  LLMOPT_RETURN_IF_ERROR(check_json_depth(p, n).with_context(what));
  try {
    return json::parse(p, p + n);
  } catch (const json::exception& e) {
    return error(what + " is not valid JSON: " + e.what());
  }
}

std::optional<DType> safetensors_dtype(const std::string& s) {
  if (s == "F32") return DType::kF32;
  if (s == "F16") return DType::kF16;
  if (s == "BF16") return DType::kBF16;
  return std::nullopt;
}

Result<uint64_t> as_u64(const json& v) {
  if (!v.is_number_unsigned()) {
    if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
    return error("expected a non-negative integer, got " + v.dump());
  }
  return v.get<uint64_t>();
}

// Adds one tensor described by `entry` (the header value for `name`) whose bytes live in
// data[0, data_size).
Status add_tensor(const std::string& name, const json& entry, const uint8_t* data, uint64_t data_size,
                  MemoryWeightSource* src) {
  const std::string ctx = "tensor " + quote_name(name);
  if (!entry.is_object()) return error(ctx + ": header entry is not an object");
  auto dt = entry.find("dtype");
  auto sh = entry.find("shape");
  auto off = entry.find("data_offsets");
  if (dt == entry.end() || !dt->is_string()) return error(ctx + ": missing or non-string \"dtype\"");
  if (sh == entry.end() || !sh->is_array()) return error(ctx + ": missing or non-array \"shape\"");
  if (off == entry.end() || !off->is_array() || off->size() != 2) {
    return error(ctx + ": \"data_offsets\" must be an array [begin, end]");
  }
  const std::string dtype_str = dt->get<std::string>();
  auto type = safetensors_dtype(dtype_str);
  if (!type) return error(ctx + " has unsupported dtype " + dtype_str + " (supported: F32, F16, BF16)");
  std::vector<int64_t> shape;
  for (const auto& d : *sh) {
    auto v = as_u64(d);
    if (!v.ok()) return v.status().with_context(ctx + ": shape");
    if (*v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return error(ctx + ": shape extent too large");
    shape.push_back(static_cast<int64_t>(*v));
  }
  auto begin = as_u64((*off)[0]);
  auto end = as_u64((*off)[1]);
  if (!begin.ok()) return begin.status().with_context(ctx + ": data_offsets");
  if (!end.ok()) return end.status().with_context(ctx + ": data_offsets");
  if (*begin > *end || *end > data_size) {
    return error(ctx + ": data_offsets [" + st_num(*begin) + ", " + st_num(*end) +
                 "] lie outside the data section (" + st_num(data_size) + " bytes)");
  }
  auto nbytes = tensor_nbytes(*type, shape);
  if (!nbytes.ok()) return nbytes.status().with_context(ctx);
  if (*end - *begin != *nbytes) {
    return error(ctx + ": data_offsets span " + st_num(*end - *begin) + " bytes but shape " +
                 shape_to_string(shape) + " of " + dtype_str + " needs " + st_num(*nbytes));
  }
  const uint8_t* p = data + *begin;
  if (reinterpret_cast<uintptr_t>(p) % natural_alignment(*type) != 0) {
    // NOTE: the header length need not keep the data section aligned; copy such tensors so
    // typed loads stay well defined.
    uint8_t* dst = src->add_owned_tensor(name, *type, std::move(shape), *nbytes);
    std::memcpy(dst, p, *nbytes);
    return ok_status();
  }
  TensorView view;
  view.type = *type;
  view.shape = std::move(shape);
  view.data = p;
  view.nbytes = *nbytes;
  src->add_tensor(name, std::move(view));
  return ok_status();
}

// Parses one safetensors image into `src` (views point into `data`). Errors carry no file name.
Status parse_into(const uint8_t* data, size_t size, MemoryWeightSource* src) {
  if (size < 8) return error("file too small for a safetensors header (" + st_num(size) + " bytes)");
  uint64_t header_len = 0;
  std::memcpy(&header_len, data, 8);
  if (header_len > size - 8) {
    return error("header length " + st_num(header_len) + " runs past end of file (" + st_num(size - 8) +
                 " bytes after the length field)");
  }
  if (header_len > kMaxHeaderBytes)
    return error("header length " + st_num(header_len) + " is implausibly large");
  LLMOPT_ASSIGN_OR_RETURN(json header,
                          parse_json(reinterpret_cast<const char*>(data + 8), header_len, "header"));
  if (!header.is_object()) return error("header is not a JSON object");
  const uint8_t* section = data + 8 + header_len;
  const uint64_t section_size = size - 8 - header_len;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) return error("__metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) return error("__metadata__ value for " + quote_name(mk) + " is not a string");
        src->mutable_metadata().set("safetensors." + mk, MetaValue::from_string(mv.get<std::string>()));
      }
      continue;
    }
    LLMOPT_RETURN_IF_ERROR(add_tensor(key, value, section, section_size, src));
  }
  return ok_status();
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Result<std::unique_ptr<WeightSource>> open_index(const std::string& path) {
  LLMOPT_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  auto parsed = parse_json(text.data(), text.size(), "index");
  if (!parsed.ok()) return parsed.status().with_context(path);
  const json& index = *parsed;
  if (!index.is_object()) return error(path + ": index is not a JSON object");
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object()) return error(path + ": missing \"weight_map\" object");

  // Shards in order of first mention, and the tensors each is supposed to hold.
  std::vector<std::string> shards;
  std::map<std::string, std::vector<std::string>> expected;
  for (const auto& [name, file] : wm->items()) {
    if (!file.is_string())
      return error(path + ": weight_map entry for " + quote_name(name) + " is not a string");
    const std::string shard = file.get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
      return error(path + ": shard " + quote_name(shard) + " for tensor " + quote_name(name) +
                   " must be a plain file name in the index's directory");
    }
    auto& list = expected[shard];
    if (list.empty()) shards.push_back(shard);
    list.push_back(name);
  }
  if (shards.empty()) return error(path + ": weight_map is empty");

  auto src = std::make_unique<MemoryWeightSource>(path);
  const std::string dir = dir_of(path);
  std::unordered_set<std::string> seen;
  for (const auto& shard : shards) {
    const std::string shard_path = dir + "/" + shard;
    LLMOPT_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(shard_path));
    MemoryWeightSource part(shard_path);
    Status st = parse_into(file->data(), file->size(), &part);
    if (!st.ok()) return st.with_context(shard_path);
    std::unordered_set<std::string> in_part;
    for (const auto& t : part.tensors()) in_part.insert(t.name);
    for (const auto& name : expected[shard]) {
      if (in_part.count(name) == 0) {
        return error(path + ": weight_map puts tensor " + quote_name(name) + " in " + shard +
                     ", which lacks it");
      }
    }
    for (const auto& t : part.tensors()) {
      if (!seen.insert(t.name).second) {
        return error(shard_path + ": tensor " + quote_name(t.name) + " also appears in an earlier shard");
      }
      src->add_tensor(t.name, t.view);
    }
    for (const auto& [k, v] : part.metadata().entries()) src->mutable_metadata().set(k, v);
    // `part` may own copies of misaligned tensors; keep them with the mapping.
    auto holder = std::make_shared<MemoryWeightSource>(std::move(part));
    src->keep_alive(holder);
    src->keep_alive(file);
  }
  return std::unique_ptr<WeightSource>(std::move(src));
}

}  // namespace

Result<std::unique_ptr<WeightSource>> parse_safetensors(const uint8_t* data, size_t size,
                                                        const std::string& name) {
  auto src = std::make_unique<MemoryWeightSource>(name);
  Status st = parse_into(data, size, src.get());
  if (!st.ok()) return st.with_context(name);
  return std::unique_ptr<WeightSource>(std::move(src));
}

Result<std::unique_ptr<WeightSource>> open_safetensors(const std::string& path) {
  if (ends_with(path, ".json")) return open_index(path);
  struct stat info {};
  if (stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    // A model directory: prefer the sharded index, else the single file.
    const std::string index = path + "/model.safetensors.index.json";
    if (stat(index.c_str(), &info) == 0) return open_index(index);
    return open_safetensors(path + "/model.safetensors");
  }
  LLMOPT_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(path));
  auto src = std::make_unique<MemoryWeightSource>(path);
  Status st = parse_into(file->data(), file->size(), src.get());
  if (!st.ok()) return st.with_context(path);
  src->keep_alive(file);
  return std::unique_ptr<WeightSource>(std::move(src));
}

}  // namespace llmopt
