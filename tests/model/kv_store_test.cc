// KvStore's layout: where a token's K and V columns land, for head-major stores (one KV head's rows of
// a block contiguous) and token-major ones (head_dim 0), against the documented index formula.
#include "model/kv_store.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace llmopt {
namespace {

constexpr int32_t kLayers = 2, kKvDim = 24, kKvsBlocks = 3, kKvsBlockSize = 4;

// The value written for (layer, k/v, block, slot, column): distinct and exact in f16.
float value_of(int32_t il, int32_t kv, int32_t block, int32_t slot, int32_t col) {
  return static_cast<float>(((((il * 2 + kv) * kKvsBlocks + block) * kKvsBlockSize + slot) * kKvDim + col) % 2000) - 1000.0f;
}

void fill(KvStore& s) {
  std::vector<float> k(kKvDim), v(kKvDim);
  for (int32_t il = 0; il < kLayers; ++il) {
    for (int32_t b = 0; b < kKvsBlocks; ++b) {
      for (int32_t slot = 0; slot < kKvsBlockSize; ++slot) {
        for (int32_t c = 0; c < kKvDim; ++c) {
          k[c] = value_of(il, 0, b, slot, c);
          v[c] = value_of(il, 1, b, slot, c);
        }
        s.write(il, b, slot, k.data(), v.data());
      }
    }
  }
}

float read(const KvStore& s, const uint8_t* p) {
  if (s.type() == DType::kF32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

TEST(KvStore, HeadMajorRowsOfABlockAreContiguousPerHead) {
  for (DType t : {DType::kF16, DType::kF32}) {
    for (int32_t hd : {0, 8, 4, 24}) {  // 0: token-major
      KvStore s(kLayers, kKvDim, kKvsBlocks, kKvsBlockSize, t, hd);
      const int32_t unit = hd == 0 ? kKvDim : hd;
      ASSERT_EQ(s.head_dim(), unit);
      fill(s);
      const size_t eb = s.elem_bytes();
      for (int32_t il = 0; il < kLayers; ++il) {
        for (int32_t b = 0; b < kKvsBlocks; ++b) {
          // The block's memory: [kv_dim / unit][block_size][unit] from k(il, b, 0).
          const uint8_t* base_k = s.k(il, b, 0);
          const uint8_t* base_v = s.v(il, b, 0);
          for (int32_t slot = 0; slot < kKvsBlockSize; ++slot) {
            for (int32_t c = 0; c < kKvDim; ++c) {
              const size_t idx = (static_cast<size_t>(c / unit) * kKvsBlockSize + slot) * unit + c % unit;
              EXPECT_EQ(read(s, base_k + idx * eb), value_of(il, 0, b, slot, c)) << hd << " " << c;
              EXPECT_EQ(read(s, base_v + idx * eb), value_of(il, 1, b, slot, c)) << hd << " " << c;
              EXPECT_EQ(s.k(il, b, slot, c), base_k + idx * eb);
            }
            if (slot + 1 < kKvsBlockSize) {  // the same head's next row: unit elements later
              EXPECT_EQ(s.v(il, b, slot + 1, unit / 2) - s.v(il, b, slot, unit / 2), static_cast<ptrdiff_t>(unit * eb));
            }
          }
        }
      }
    }
  }
}

// write_cols, column runs inside a head (as a thread that owns some KV heads writes them), leaves
// the same bytes as write() of whole rows.
TEST(KvStore, WriteColsEqualsWrite) {
  for (DType t : {DType::kF16, DType::kF32}) {
    for (int32_t hd : {8, 24}) {
      KvStore whole(kLayers, kKvDim, kKvsBlocks, kKvsBlockSize, t, hd), cols(kLayers, kKvDim, kKvsBlocks, kKvsBlockSize, t, hd);
      fill(whole);
      std::vector<float> k(kKvDim), v(kKvDim);
      for (int32_t il = 0; il < kLayers; ++il) {
        for (int32_t b = 0; b < kKvsBlocks; ++b) {
          for (int32_t slot = 0; slot < kKvsBlockSize; ++slot) {
            for (int32_t c = 0; c < kKvDim; ++c) {
              k[c] = value_of(il, 0, b, slot, c) + 0.3f;  // f16 rounds these
              v[c] = value_of(il, 1, b, slot, c) - 0.7f;
            }
            whole.write(il, b, slot, k.data(), v.data());
            for (int32_t c = 0; c < kKvDim; c += 4) {  // runs of 4 columns, each inside one head
              cols.write_cols(il, b, slot, c, 4, k.data() + c, v.data() + c);
            }
          }
        }
      }
      for (int32_t il = 0; il < kLayers; ++il) {
        for (int32_t b = 0; b < kKvsBlocks; ++b) {
          const size_t n = static_cast<size_t>(kKvsBlockSize * kKvDim) * whole.elem_bytes();
          EXPECT_EQ(std::memcmp(whole.k(il, b, 0), cols.k(il, b, 0), n), 0);
          EXPECT_EQ(std::memcmp(whole.v(il, b, 0), cols.v(il, b, 0), n), 0);
        }
      }
    }
  }
}

TEST(KvStoreDeathTest, HeadDimMustDivideKvDim) {
  EXPECT_DEATH(KvStore(kLayers, kKvDim, kKvsBlocks, kKvsBlockSize, DType::kF16, 7), "head_dim must divide kv_dim");
}

}  // namespace
}  // namespace llmopt
