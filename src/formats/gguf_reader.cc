// GGUF reader: parses a GGUF v2/v3 image (mmap'd file or memory) into metadata and tensor views.
// Nothing read from the file is trusted: every count, length and offset is checked against the
// bytes that remain before it is used.
//
// Layout (all integers little-endian; GGUF v3 also allows big-endian files, which are rejected):
//
//   u32     magic            "GGUF" (bytes 47 47 55 46)
//   u32     version          2 or 3 (v1 used 32-bit counts and is rejected)
//   u64     n_tensors
//   u64     n_kv
//   n_kv      x kv          { string key; u32 value_type; value }
//   n_tensors x tensor_info { string name; u32 n_dims (<= 4); u64 ne[n_dims] (innermost first);
//                             u32 ggml_type; u64 offset }
//   zero padding up to a multiple of the alignment
//   data section            tensor bytes; `offset` is relative to the start of this section and
//                           is a multiple of the alignment
//
//   string = { u64 length; length bytes of UTF-8, no terminator }
//   value by value_type:  0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (1 byte),
//                         8 string, 9 array, 10 u64, 11 i64, 12 f64
//   array = { u32 elem_type; u64 count; count x value of elem_type }  (arrays may nest)
//
// The alignment is the u32 `general.alignment` (a non-zero power of two) or 32 when absent.
// A tensor's byte size follows from its type and ne[]: ne[0] must be a multiple of the type's
// block size, and the size is (ne[0] / block_size * type_size) * ne[1] * ne[2] * ne[3].
#include <bit>
#include <cstdio>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "formats/gguf.h"
#include "formats/read_util.h"

namespace llmopt {
namespace {

using formats_internal::checked_add;
using formats_internal::natural_alignment;
using formats_internal::quote_name;
using formats_internal::tensor_nbytes;

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayDepth = 8;
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxMetaType = 12;
// Smallest possible encodings, used to reject counts the remaining bytes cannot hold.
constexpr size_t kMinKvBytes = 8 + 4 + 1;              // empty key, type, 1-byte value
constexpr size_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // empty name, n_dims 0, type, offset

std::string num(uint64_t v) { return std::to_string(v); }

class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  Status need(size_t n) const {
    if (n <= left()) return ok_status();
    return error("unexpected end of file at offset " + num(pos_) + " (need " + num(n) + " bytes, " +
                 num(left()) + " left)");
  }
  template <class T>
  Status read(T* out) {
    LLMOPT_RETURN_IF_ERROR(need(sizeof(T)));
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return ok_status();
  }
  Status read_string(std::string* out) {
    const size_t at = pos_;
    uint64_t len = 0;
    LLMOPT_RETURN_IF_ERROR(read(&len));
    if (len > left()) {
      return error("string length " + num(len) + " at offset " + num(at) + " runs past end of file (" +
                   num(left()) + " bytes left)");
    }
    out->assign(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return ok_status();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

size_t min_value_bytes(MetaType t) {
  switch (t) {
    case MetaType::kU8:
    case MetaType::kI8:
    case MetaType::kBool:
      return 1;
    case MetaType::kU16:
    case MetaType::kI16:
      return 2;
    case MetaType::kU32:
    case MetaType::kI32:
    case MetaType::kF32:
      return 4;
    case MetaType::kU64:
    case MetaType::kI64:
    case MetaType::kF64:
    case MetaType::kString:
      return 8;
    case MetaType::kArray:
      return 12;
  }
  return 1;
}

template <class T>
Status read_signed(Cursor& c, MetaValue* out) {
  T v{};
  LLMOPT_RETURN_IF_ERROR(c.read(&v));
  out->i = v;
  out->u = static_cast<uint64_t>(static_cast<int64_t>(v));
  return ok_status();
}

template <class T>
Status read_unsigned(Cursor& c, MetaValue* out) {
  T v{};
  LLMOPT_RETURN_IF_ERROR(c.read(&v));
  out->u = v;
  out->i = static_cast<int64_t>(static_cast<uint64_t>(v));
  return ok_status();
}

Status read_value(Cursor& c, MetaType type, int depth, MetaValue* out) {
  out->type = type;
  switch (type) {
    case MetaType::kU8:
      return read_unsigned<uint8_t>(c, out);
    case MetaType::kU16:
      return read_unsigned<uint16_t>(c, out);
    case MetaType::kU32:
      return read_unsigned<uint32_t>(c, out);
    case MetaType::kU64:
      return read_unsigned<uint64_t>(c, out);
    case MetaType::kI8:
      return read_signed<int8_t>(c, out);
    case MetaType::kI16:
      return read_signed<int16_t>(c, out);
    case MetaType::kI32:
      return read_signed<int32_t>(c, out);
    case MetaType::kI64:
      return read_signed<int64_t>(c, out);
    case MetaType::kBool: {
      uint8_t v = 0;
      LLMOPT_RETURN_IF_ERROR(c.read(&v));
      out->u = v != 0 ? 1 : 0;
      out->i = static_cast<int64_t>(out->u);
      return ok_status();
    }
    case MetaType::kF32: {
      float v = 0;
      LLMOPT_RETURN_IF_ERROR(c.read(&v));
      out->f = v;
      return ok_status();
    }
    case MetaType::kF64: {
      double v = 0;
      LLMOPT_RETURN_IF_ERROR(c.read(&v));
      out->f = v;
      return ok_status();
    }
    case MetaType::kString:
      return c.read_string(&out->s);
    case MetaType::kArray: {
      if (depth >= kMaxArrayDepth) {
        return error("arrays nested more than " + num(kMaxArrayDepth) + " levels deep at offset " +
                     num(c.pos()));
      }
      const size_t at = c.pos();
      uint32_t elem = 0;
      uint64_t count = 0;
      LLMOPT_RETURN_IF_ERROR(c.read(&elem));
      if (elem > kMaxMetaType) {
        return error("array at offset " + num(at) + " has unknown element type " + num(elem));
      }
      LLMOPT_RETURN_IF_ERROR(c.read(&count));
      const auto elem_type = static_cast<MetaType>(elem);
      const size_t min_bytes = min_value_bytes(elem_type);
      if (count > c.left() / min_bytes) {
        return error("array count " + num(count) + " at offset " + num(at) + " of " +
                     meta_type_name(elem_type) + " elements (at least " + num(min_bytes) +
                     " bytes each) runs past end of file (" + num(c.left()) + " bytes left)");
      }
      out->elem_type = elem_type;
      out->arr.resize(static_cast<size_t>(count));
      for (size_t k = 0; k < out->arr.size(); ++k) {
        Status st = read_value(c, elem_type, depth + 1, &out->arr[k]);
        if (!st.ok()) return st.with_context("array element " + num(k));
      }
      return ok_status();
    }
  }
  return error("unknown metadata value type " + num(static_cast<uint32_t>(type)));
}

struct TensorInfo {
  std::string name;
  DType type = DType::kF32;
  std::vector<int64_t> shape;  // outermost first
  uint64_t offset = 0;
  size_t nbytes = 0;
};

Status read_tensor_info(Cursor& c, size_t index, TensorInfo* t) {
  Status st = c.read_string(&t->name);
  if (!st.ok()) return st.with_context("tensor info #" + num(index) + " name");
  const std::string ctx = "tensor " + quote_name(t->name);
  uint32_t n_dims = 0;
  st = c.read(&n_dims);
  if (!st.ok()) return st.with_context(ctx);
  if (n_dims > kMaxDims) {
    return error(ctx + " has " + num(n_dims) + " dimensions (at most " + num(kMaxDims) + " are allowed)");
  }
  uint64_t ne[kMaxDims] = {1, 1, 1, 1};
  for (uint32_t d = 0; d < n_dims; ++d) {
    st = c.read(&ne[d]);
    if (!st.ok()) return st.with_context(ctx + " dimension " + num(d));
    if (ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return error(ctx + " dimension " + num(d) + " has an impossible extent " + num(ne[d]));
    }
  }
  uint32_t type_id = 0;
  st = c.read(&type_id);
  if (!st.ok()) return st.with_context(ctx + " type");
  st = c.read(&t->offset);
  if (!st.ok()) return st.with_context(ctx + " offset");
  auto info = dtype_info(type_id);
  if (!info)
    return error("unsupported tensor type id " + num(type_id) + " for tensor " + quote_name(t->name));
  t->type = info->type;
  t->shape.clear();
  for (uint32_t d = n_dims; d > 0; --d) t->shape.push_back(static_cast<int64_t>(ne[d - 1]));
  auto nbytes = tensor_nbytes(t->type, t->shape);
  if (!nbytes.ok()) return nbytes.status().with_context(ctx + " (" + info->name + ", ne innermost first)");
  t->nbytes = *nbytes;
  return ok_status();
}

Result<uint32_t> read_alignment(const Metadata& md) {
  const MetaValue* v = md.find("general.alignment");
  if (v == nullptr) return kDefaultAlignment;
  if (!v->is_integer()) {
    return error(std::string("general.alignment has type ") + meta_type_name(v->type) + ", expected u32");
  }
  auto a = v->as_int();
  if (!a) return error("general.alignment " + std::to_string(v->u) + " is too large");
  if (*a <= 0) return error("general.alignment " + std::to_string(*a) + " must be a non-zero power of two");
  if (*a > (int64_t{1} << 30)) return error("general.alignment " + std::to_string(*a) + " is too large");
  if (!std::has_single_bit(static_cast<uint64_t>(*a))) {
    return error("general.alignment " + std::to_string(*a) + " is not a power of two");
  }
  return static_cast<uint32_t>(*a);
}

struct Parsed {
  Metadata metadata;
  std::vector<NamedTensor> tensors;
  std::vector<std::shared_ptr<const void>> owned;
  uint32_t version = 0;
  uint32_t alignment = kDefaultAlignment;
  size_t data_offset = 0;
};

Status check_version(uint32_t version) {
  if (version == 1) return error("unsupported GGUF version 1 (only versions 2 and 3 are supported)");
  if (version != 2 && version != 3) {
    if ((version & 0xffffu) == 0) {
      return error("unsupported GGUF version " + num(version) +
                   " (a big-endian file? only little-endian is supported)");
    }
    return error("unsupported GGUF version " + num(version) + " (only versions 2 and 3 are supported)");
  }
  return ok_status();
}

Status parse_gguf(const uint8_t* data, size_t size, Parsed* p) {
  if (size < 4 || std::memcmp(data, "GGUF", 4) != 0) {
    if (size < 4) return error("not a GGUF file: only " + num(size) + " bytes long");
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%02x %02x %02x %02x", data[0], data[1], data[2], data[3]);
    return error(std::string("not a GGUF file: bad magic bytes ") + buf +
                 " (expected 47 47 55 46, \"GGUF\")");
  }
  Cursor c(data, size);
  uint32_t magic = 0;
  LLMOPT_RETURN_IF_ERROR(c.read(&magic));
  Status st = c.read(&p->version);
  if (!st.ok()) return st.with_context("header");
  LLMOPT_RETURN_IF_ERROR(check_version(p->version));
  uint64_t n_tensors = 0, n_kv = 0;
  st = c.read(&n_tensors);
  if (st.ok()) st = c.read(&n_kv);
  if (!st.ok()) return st.with_context("header");
  if (n_kv > c.left() / kMinKvBytes) {
    return error("metadata count " + num(n_kv) + " is more than the file can hold (" + num(c.left()) +
                 " bytes after the header)");
  }
  if (n_tensors > c.left() / kMinTensorInfoBytes) {
    return error("tensor count " + num(n_tensors) + " is more than the file can hold (" + num(c.left()) +
                 " bytes after the header)");
  }

  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key;
    st = c.read_string(&key);
    if (!st.ok()) return st.with_context("metadata entry #" + num(k) + " key");
    const std::string ctx = "metadata entry " + quote_name(key);
    uint32_t type = 0;
    st = c.read(&type);
    if (!st.ok()) return st.with_context(ctx + " type");
    if (type > kMaxMetaType) return error(ctx + " has unknown value type " + num(type));
    MetaValue v;
    st = read_value(c, static_cast<MetaType>(type), 0, &v);
    if (!st.ok()) return st.with_context(ctx);
    if (p->metadata.contains(key)) return error("duplicate metadata key " + quote_name(key));
    p->metadata.set(key, std::move(v));
  }
  auto alignment = read_alignment(p->metadata);
  if (!alignment.ok()) return alignment.status();
  p->alignment = *alignment;

  if (n_tensors > c.left() / kMinTensorInfoBytes) {
    return error("tensor count " + num(n_tensors) + " is more than the file can hold (" + num(c.left()) +
                 " bytes after the metadata)");
  }
  std::vector<TensorInfo> infos(static_cast<size_t>(n_tensors));
  std::unordered_set<std::string> names;
  for (size_t k = 0; k < infos.size(); ++k) {
    LLMOPT_RETURN_IF_ERROR(read_tensor_info(c, k, &infos[k]));
    if (!names.insert(infos[k].name).second)
      return error("duplicate tensor name " + quote_name(infos[k].name));
  }

  // The header is at most `size` bytes and the alignment at most 2^30: no overflow.
  const uint64_t a = p->alignment;
  p->data_offset = static_cast<size_t>((c.pos() + a - 1) / a * a);
  p->tensors.reserve(infos.size());
  for (auto& t : infos) {
    const std::string ctx = "tensor " + quote_name(t.name);
    if (t.offset % a != 0) {
      return error(ctx + " offset " + num(t.offset) + " is not a multiple of the alignment " + num(a));
    }
    uint64_t begin = 0, end = 0;
    if (!checked_add(p->data_offset, t.offset, &begin) || !checked_add(begin, t.nbytes, &end) || end > size) {
      return error(ctx + " data (offset " + num(p->data_offset) + " + " + num(t.offset) + ", " +
                   num(t.nbytes) + " bytes) extends past end of file (size " + num(size) + ")");
    }
    TensorView view;
    view.type = t.type;
    view.shape = std::move(t.shape);
    view.nbytes = t.nbytes;
    view.data = data + begin;
    if (reinterpret_cast<uintptr_t>(view.data) % natural_alignment(t.type) != 0) {
      // NOTE: a file with a small general.alignment can place typed data at odd addresses;
      // such tensors are copied so typed loads stay well defined.
      auto copy = std::make_shared<Storage>(t.nbytes);
      std::memcpy(copy->data(), view.data, t.nbytes);
      view.data = copy->data();
      p->owned.push_back(std::move(copy));
    }
    p->tensors.push_back({std::move(t.name), std::move(view)});
  }
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<GgufFile>> GgufFile::parse(const uint8_t* data, size_t size, const std::string& name) {
  Parsed p;
  Status st = parse_gguf(data, size, &p);
  if (!st.ok()) return st.with_context(name);
  auto f = std::make_unique<GgufFile>();
  f->origin_ = name;
  f->metadata_ = std::move(p.metadata);
  f->tensors_ = std::move(p.tensors);
  f->owned_ = std::move(p.owned);
  f->version_ = p.version;
  f->alignment_ = p.alignment;
  f->data_offset_ = p.data_offset;
  return f;
}

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path, FileLoad how) {
  LLMOPT_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(path, how));
  LLMOPT_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> f, parse(file->data(), file->size(), path));
  f->file_ = std::move(file);
  return f;
}

}  // namespace llmopt
