// GGUF v3 writer (layout in gguf_reader.cc): metadata in insertion order, tensor infos in the
// order added, then each tensor's bytes padded with zeros to the alignment. The file is written
// next to its destination and renamed into place only when complete.
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_set>

#include "formats/gguf.h"
#include "formats/read_util.h"

namespace llmopt {
namespace {

using formats_internal::quote_name;
using formats_internal::tensor_nbytes;

constexpr uint32_t kVersion = 3;
constexpr uint32_t kWriterAlignment = 32;

class Buffer {
 public:
  template <class T>
  void put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s_.append(b, sizeof(T));
  }
  void put_string(const std::string& v) {
    put<uint64_t>(v.size());
    s_.append(v);
  }
  void pad_to(uint64_t alignment) {
    while (s_.size() % alignment != 0) s_.push_back('\0');
  }
  const std::string& bytes() const { return s_; }
  size_t size() const { return s_.size(); }

 private:
  std::string s_;
};

Status write_value(Buffer& b, const MetaValue& v) {
  switch (v.type) {
    case MetaType::kU8:
      b.put<uint8_t>(static_cast<uint8_t>(v.u));
      return ok_status();
    case MetaType::kI8:
      b.put<int8_t>(static_cast<int8_t>(v.i));
      return ok_status();
    case MetaType::kU16:
      b.put<uint16_t>(static_cast<uint16_t>(v.u));
      return ok_status();
    case MetaType::kI16:
      b.put<int16_t>(static_cast<int16_t>(v.i));
      return ok_status();
    case MetaType::kU32:
      b.put<uint32_t>(static_cast<uint32_t>(v.u));
      return ok_status();
    case MetaType::kI32:
      b.put<int32_t>(static_cast<int32_t>(v.i));
      return ok_status();
    case MetaType::kU64:
      b.put<uint64_t>(v.u);
      return ok_status();
    case MetaType::kI64:
      b.put<int64_t>(v.i);
      return ok_status();
    case MetaType::kF32:
      b.put<float>(static_cast<float>(v.f));
      return ok_status();
    case MetaType::kF64:
      b.put<double>(v.f);
      return ok_status();
    case MetaType::kBool:
      b.put<uint8_t>(v.u != 0 ? 1 : 0);
      return ok_status();
    case MetaType::kString:
      b.put_string(v.s);
      return ok_status();
    case MetaType::kArray: {
      if (static_cast<uint32_t>(v.elem_type) > static_cast<uint32_t>(MetaType::kF64)) {
        return error("array has unknown element type " + std::to_string(static_cast<uint32_t>(v.elem_type)));
      }
      b.put<uint32_t>(static_cast<uint32_t>(v.elem_type));
      b.put<uint64_t>(v.arr.size());
      for (size_t k = 0; k < v.arr.size(); ++k) {
        if (v.arr[k].type != v.elem_type) {
          return error("array element " + std::to_string(k) + " has type " + meta_type_name(v.arr[k].type) +
                       " but the array holds " + meta_type_name(v.elem_type));
        }
        LLMOPT_RETURN_IF_ERROR(write_value(b, v.arr[k]));
      }
      return ok_status();
    }
  }
  return error("unknown metadata type " + std::to_string(static_cast<uint32_t>(v.type)));
}

Result<uint32_t> writer_alignment(const Metadata& md) {
  const MetaValue* v = md.find("general.alignment");
  if (v == nullptr) return kWriterAlignment;
  auto a = v->as_int();
  if (!v->is_integer() || !a || *a <= 0 || *a > (int64_t{1} << 30) ||
      !std::has_single_bit(static_cast<uint64_t>(*a))) {
    return error("general.alignment must be an integer power of two (at most 2^30)");
  }
  return static_cast<uint32_t>(*a);
}

// Writes everything to `f`; returns false on an I/O error (errno is set).
bool write_all(std::FILE* f, const void* p, size_t n) { return n == 0 || std::fwrite(p, 1, n, f) == n; }

}  // namespace

void GgufWriter::add_tensor(const std::string& name, const TensorView& view) {
  tensors_.push_back({name, view});
}

Status GgufWriter::write(const std::string& path) const {
  auto alignment = writer_alignment(metadata_);
  if (!alignment.ok()) return alignment.status().with_context(path);
  const uint64_t a = *alignment;

  Buffer head;
  head.put<uint32_t>(0x46554747u);  // "GGUF"
  head.put<uint32_t>(kVersion);
  head.put<uint64_t>(tensors_.size());
  head.put<uint64_t>(metadata_.size());
  for (const auto& [key, value] : metadata_.entries()) {
    head.put_string(key);
    head.put<uint32_t>(static_cast<uint32_t>(value.type));
    Status st = write_value(head, value);
    if (!st.ok()) return st.with_context(path + ": metadata " + quote_name(key));
  }

  std::unordered_set<std::string> names;
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    const std::string ctx = path + ": tensor " + quote_name(t.name);
    if (!names.insert(t.name).second) return error(path + ": duplicate tensor name " + quote_name(t.name));
    const auto& shape = t.view.shape;
    if (shape.size() > 4)
      return error(ctx + " has " + std::to_string(shape.size()) + " dimensions (GGUF allows 4)");
    auto nbytes = tensor_nbytes(t.view.type, shape);
    if (!nbytes.ok()) return nbytes.status().with_context(ctx);
    if (*nbytes != t.view.nbytes) {
      return error(ctx + ": view holds " + std::to_string(t.view.nbytes) + " bytes but shape " +
                   shape_to_string(shape) + " of " + dtype_name(t.view.type) + " needs " +
                   std::to_string(*nbytes));
    }
    if (t.view.data == nullptr && *nbytes != 0) return error(ctx + " has no data");
    head.put_string(t.name);
    // NOTE: a scalar (empty shape) is written as a 1-element vector; GGUF tensors have n_dims >= 1.
    head.put<uint32_t>(shape.empty() ? 1 : static_cast<uint32_t>(shape.size()));
    if (shape.empty()) head.put<uint64_t>(1);
    for (size_t d = shape.size(); d > 0; --d) head.put<uint64_t>(static_cast<uint64_t>(shape[d - 1]));
    head.put<uint32_t>(static_cast<uint32_t>(t.view.type));
    head.put<uint64_t>(offset);
    offset += (*nbytes + a - 1) / a * a;
  }
  // NOTE: like llama.cpp, a file without tensors ends right after the tensor infos (no padding).
  if (!tensors_.empty()) head.pad_to(a);

  // NOTE: write to a temporary name and rename, so overwriting the very file a source is
  // mmap'd from never truncates the mapping under it.
  const std::string tmp = path + ".partial";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return error(path + ": cannot open for writing: " + std::strerror(errno));
  bool ok = write_all(f, head.bytes().data(), head.size());
  static const char kZeros[64] = {};
  for (const auto& t : tensors_) {
    if (!ok) break;
    ok = write_all(f, t.view.data, t.view.nbytes);
    size_t pad = static_cast<size_t>((a - t.view.nbytes % a) % a);
    while (ok && pad > 0) {
      const size_t n = pad < sizeof(kZeros) ? pad : sizeof(kZeros);
      ok = write_all(f, kZeros, n);
      pad -= n;
    }
  }
  const int saved_errno = errno;
  if (std::fclose(f) != 0) ok = false;
  if (!ok) {
    std::remove(tmp.c_str());
    return error(path + ": write failed: " + std::strerror(saved_errno != 0 ? saved_errno : errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string msg = std::strerror(errno);
    std::remove(tmp.c_str());
    return error(path + ": cannot rename the finished file into place: " + msg);
  }
  return ok_status();
}

}  // namespace llmopt
