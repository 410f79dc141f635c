// The kQ8_0R16 layout (repack.h): plain scalar code, run once per tensor at load or write.
#include "kernels/repack.h"

#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/dtype.h"
#include "kernels/dispatch.h"
#include "kernels/ref/blocks.h"

namespace llmopt::kernels {
namespace {

constexpr size_t kBlockBytes = sizeof(BlockQ8_0);

size_t group_bytes(int64_t nb) { return static_cast<size_t>(kR16Rows * nb) * kBlockBytes; }
size_t scale_at(int64_t b, int64_t j) { return static_cast<size_t>(2 * (kR16Rows * b + j)); }
size_t code_at(int64_t nb, int64_t b, int64_t j, int64_t c) {
  return static_cast<size_t>(nb * 32 + 512 * b + 64 * (c / 4) + 4 * j + c % 4);
}

}  // namespace

bool can_repack_q8_0_r16(const TensorView& w) {
  return w.present() && w.type == DType::kQ8_0 && w.shape.size() == 2 && w.rows() > 0 &&
         w.rows() % kR16Rows == 0 && w.cols() > 0 && w.cols() % kQK8_0 == 0 &&
         w.nbytes == static_cast<size_t>(w.rows()) * static_cast<size_t>(w.cols() / kQK8_0) * kBlockBytes;
}

bool prefers_q8_0_r16() {
  const IsaKernels* isa = active_isa_kernels();
  return isa != nullptr && isa->find_matmul(DType::kQ8_0R16).rows != nullptr;
}

void repack_q8_0_r16(uint8_t* data, int64_t rows, int64_t k) {
  LLMOPT_CHECK(rows % kR16Rows == 0 && k % kQK8_0 == 0);
  const int64_t nb = k / kQK8_0;
  std::vector<uint8_t> plain(group_bytes(nb));
  for (int64_t g = 0; g < rows / kR16Rows; ++g) {
    uint8_t* base = data + static_cast<size_t>(g) * group_bytes(nb);
    std::memcpy(plain.data(), base, plain.size());
    for (int64_t j = 0; j < kR16Rows; ++j) {
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = plain.data() + static_cast<size_t>(j * nb + b) * kBlockBytes;
        std::memcpy(base + scale_at(b, j), blk + offsetof(BlockQ8_0, d), 2);
        for (int64_t c = 0; c < kQK8_0; ++c) base[code_at(nb, b, j, c)] = blk[offsetof(BlockQ8_0, qs) + c];
      }
    }
  }
}

void unpack_q8_0_r16(const uint8_t* src, int64_t rows, int64_t k, uint8_t* dst) {
  LLMOPT_CHECK(rows % kR16Rows == 0 && k % kQK8_0 == 0 && src != dst);
  const int64_t nb = k / kQK8_0;
  for (int64_t g = 0; g < rows / kR16Rows; ++g) {
    const uint8_t* base = src + static_cast<size_t>(g) * group_bytes(nb);
    uint8_t* out = dst + static_cast<size_t>(g) * group_bytes(nb);
    for (int64_t j = 0; j < kR16Rows; ++j) {
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* blk = out + static_cast<size_t>(j * nb + b) * kBlockBytes;
        std::memcpy(blk + offsetof(BlockQ8_0, d), base + scale_at(b, j), 2);
        for (int64_t c = 0; c < kQK8_0; ++c) blk[offsetof(BlockQ8_0, qs) + c] = base[code_at(nb, b, j, c)];
      }
    }
  }
}

void dequantize_q8_0_r16_row(const uint8_t* data, int64_t k, int64_t r, float* dst) {
  LLMOPT_CHECK(r >= 0 && k % kQK8_0 == 0);
  const int64_t nb = k / kQK8_0;
  const uint8_t* base = data + static_cast<size_t>(r / kR16Rows) * group_bytes(nb);
  const int64_t j = r % kR16Rows;
  for (int64_t b = 0; b < nb; ++b) {
    uint16_t h;
    std::memcpy(&h, base + scale_at(b, j), 2);
    const float d = fp16_to_fp32(h);
    for (int64_t c = 0; c < kQK8_0; ++c) {
      dst[b * kQK8_0 + c] = static_cast<float>(static_cast<int8_t>(base[code_at(nb, b, j, c)])) * d;
    }
  }
}

}  // namespace llmopt::kernels
