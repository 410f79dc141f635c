// What the AMX kernels share (included only by amx.cc, which is built with the AMX flags): the tile
// configuration, the tile store of a block's sums, the two-set pipeline of a unit's blocks, the batch
// thresholds and 64-byte aligned scratch (the 16 x 16 float transpose is in lanes512_x86.h).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/x86/lanes512_x86.h"  // transpose16

namespace llmopt::kernels {
namespace {

// The tile configuration (palette 1), two sets for alternate blocks: tiles 0 / 3 = 16 weight rows x
// 32 codes; tiles 1 / 4 = 16 activation rows, 8 rows of 64 bytes (row q: codes 4q..4q+3 of each of
// the 16 activation rows); tiles 2 / 5 = the 16 x 16 int32 block dot products, one row per weight row.
struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// ldtilecfg reading all 64 bytes of c. GCC 12's _tile_loadconfig declares a read of only the first 8
// bytes, so the row and column counts stored after them may be dropped as dead stores (seen: a tile
// configuration of zeros and an Illegal instruction at the first tile load).
void apply_tile_config(const TileConfig& c) { __asm__ volatile("ldtilecfg %0" : : "m"(c)); }

// codes: the codes per block of one tile product, 32, or 16 for Q6_K's half blocks (each with its own
// scale): tiles 0 / 3 then hold 16 rows x 16 codes and tiles 1 / 4 4 rows of 64 bytes.
// act_rows (the regrouped kernels, whose tiles 0 / 3 and 2 / 5 have a row per activation row): a batch
// of fewer than 16 rows configures only those, so the products, stores and sums cost what it uses.
void load_tile_config(int codes = 32, int act_rows = 16) {
  TileConfig c;
  for (int s : {0, 3}) {
    c.rows[s] = static_cast<uint8_t>(act_rows);
    c.colsb[s] = static_cast<uint16_t>(codes);
    c.rows[s + 1] = static_cast<uint8_t>(codes / 4);
    c.colsb[s + 1] = 64;
    c.rows[s + 2] = static_cast<uint8_t>(act_rows);
    c.colsb[s + 2] = 64;
  }
  apply_tile_config(c);
}

constexpr int64_t kAmxRows = 16;  // weight rows and activation rows per tile

// Tile t's 16 x 16 int32 sums into out (64-byte rows). GCC's _tile_stored clobbers all of memory,
// which kept the 16 float accumulators of amx_unit in memory (a load and a store around every fma);
// this one tells the compiler the exact 1 KiB it writes.
#define LLMOPT_TILE_STORE_SUMS(t, out)                                              \
  __asm__ volatile("tilestored %%tmm" #t ", (%1,%2,1)"                               \
                   : "=m"(*reinterpret_cast<int32_t(*)[kAmxRows * 16]>(out))        \
                   : "r"(out), "r"(int64_t{64}))
// From this many activation rows on (where the column layout MatmulArgs::xq8 exists) the tiles, even
// mostly empty, are at least as fast as avx512.cc's kernels (bench_kernels, Q8_0 / Q4_1, m = 5..9).
constexpr int64_t kAmxMinRows = 5;
// The regrouped K-quants prepare each group (scales, codes spread to bytes) before the tiles run, so
// their tiles pay from 8 rows on (bench_kernels, 4096 x 4096, m = 5..8: VNNI faster at 5-6, even at 7-8).
constexpr int64_t kAmxMinRowsKQuant = 8;

template <class T>
T* aligned64(std::vector<uint8_t>& buf, size_t n) {
  buf.resize(n * sizeof(T) + 64);
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t{63});
}

// One unit's blocks on the two tile sets: block b + 1's product (issue0 / issue1: tiles 0-2 / 3-5)
// is issued before block b's sums are stored, and each block's sums are read back one step later
// (epilogue(b, sums); the epilogue of block b - 1 runs in between), so the loads do not wait on the
// tile store. prefetch(b) runs once per block.
template <class Issue0, class Issue1, class Prefetch, class Epilogue>
__attribute__((always_inline)) inline void run_tile_pipeline(int64_t nb, Issue0& issue0, Issue1& issue1,
                                                             Prefetch& prefetch, Epilogue& epilogue) {
  alignas(64) int32_t sums[2][kAmxRows * 16];
  issue0(0);
  for (int64_t b = 0; b < nb; b += 2) {
    if (b + 1 < nb) issue1(b + 1);
    prefetch(b);
    LLMOPT_TILE_STORE_SUMS(2, sums[0]);
    if (b > 0) epilogue(b - 1, sums[1]);
    if (b + 1 < nb) {
      if (b + 2 < nb) issue0(b + 2);
      prefetch(b + 1);
      LLMOPT_TILE_STORE_SUMS(5, sums[1]);
      epilogue(b, sums[0]);
    }
  }
  if (nb % 2 == 1) {
    epilogue(nb - 1, sums[0]);
  } else {
    epilogue(nb - 1, sums[1]);
  }
}


}  // namespace
}  // namespace llmopt::kernels
