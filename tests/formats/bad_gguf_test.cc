// Malformed GGUF files: each is a valid file written by GgufWriter with bytes cut or patched.
// Every case must come back as an error naming the file and the problem, never a crash.
#include <gtest/gtest.h>

#include <cstring>

#include "formats/gguf.h"
#include "formats_test_helpers.h"
#include "test_util.h"

namespace llmopt {
namespace {

using test::patch;

// Parses an exact-size heap copy (so the sanitizers see any over-read).
Status parse_bytes(const std::string& bytes, const std::string& name = "bad.gguf") {
  std::vector<uint8_t> buf(bytes.begin(), bytes.end());
  auto f = GgufFile::parse(buf.data(), buf.size(), name);
  return f.status();
}

// Writes `bytes` to a file, opens it and expects an error mentioning the path and `needle`.
void expect_open_error(const std::string& bytes, const std::string& needle) {
  const std::string path = test::temp_dir() + "/bad.gguf";
  test::write_file(path, bytes);
  auto f = GgufFile::open(path);
  ASSERT_FALSE(f.ok()) << "expected an error containing: " << needle;
  const std::string msg = f.status().message();
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(needle), std::string::npos) << "message: " << msg << "\nexpected: " << needle;
}

class BadInputGguf : public ::testing::Test {
 protected:
  void SetUp() override { g_ = test::write_small_gguf(test::temp_dir()); }
  // Offset of the tensor info fields after the name `name`.
  size_t info(const std::string& name) {
    const size_t at = test::after_gguf_string(g_.bytes, name);
    EXPECT_NE(at, std::string::npos);
    return at;
  }
  test::SmallGguf g_;
};

TEST_F(BadInputGguf, ValidFileParses) { EXPECT_TRUE(parse_bytes(g_.bytes).ok()); }

TEST_F(BadInputGguf, TruncatedAnywhere) {
  std::vector<uint8_t> full(g_.bytes.begin(), g_.bytes.end());
  auto f = GgufFile::parse(full.data(), full.size(), "full.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  const TensorView* last = (*f)->find("blk.0.w");
  ASSERT_NE(last, nullptr);
  // Every byte up to the end of the last tensor's data is needed.
  const size_t end = static_cast<size_t>(last->data - full.data()) + last->nbytes;
  ASSERT_LE(end, g_.bytes.size());
  for (size_t cut = 0; cut < end; ++cut) {
    Status st = parse_bytes(g_.bytes.substr(0, cut), "cut.gguf");
    ASSERT_FALSE(st.ok()) << "cut at " << cut;
    EXPECT_EQ(st.message().rfind("cut.gguf: ", 0), 0u) << st.message();
  }
  EXPECT_TRUE(parse_bytes(g_.bytes.substr(0, end)).ok());
}

TEST_F(BadInputGguf, TruncatedInHeader) {
  expect_open_error(g_.bytes.substr(0, 12), "unexpected end of file");
}

TEST_F(BadInputGguf, TruncatedMidMetadata) {
  // Cut inside the last token string of tokenizer.ggml.tokens.
  const size_t at = g_.bytes.find("def");
  ASSERT_NE(at, std::string::npos);
  expect_open_error(g_.bytes.substr(0, at + 1), "tokenizer.ggml.tokens");
  expect_open_error(g_.bytes.substr(0, at + 1), "end of file");
}

TEST_F(BadInputGguf, TruncatedMidTensorInfo) {
  expect_open_error(g_.bytes.substr(0, info("blk.0.w") + 6), "tensor 'blk.0.w' dimension 0");
}

TEST_F(BadInputGguf, TruncatedMidTensorData) {
  expect_open_error(g_.bytes.substr(0, g_.bytes.size() - 40), "tensor 'blk.0.w' data");
  expect_open_error(g_.bytes.substr(0, g_.bytes.size() - 40), "extends past end of file");
}

TEST_F(BadInputGguf, StringLengthPastEnd) {
  std::string b = g_.bytes;
  patch<uint64_t>(b, 24, uint64_t{1} << 40);  // length of the first key
  expect_open_error(b, "string length 1099511627776 at offset 24 runs past end of file");
  b = g_.bytes;
  const size_t tok = test::after_gguf_string(b, "tokenizer.ggml.tokens");
  patch<uint64_t>(b, tok + 8 + 8, 1000);  // first token's length
  expect_open_error(b, "metadata entry 'tokenizer.ggml.tokens': array element 0: string length 1000");
}

TEST_F(BadInputGguf, TensorOffsetPastEnd) {
  std::string b = g_.bytes;
  const size_t off = info("blk.0.w") + 4 + 2 * 8 + 4;
  patch<uint64_t>(b, off, uint64_t{1} << 20);
  expect_open_error(b, "tensor 'blk.0.w' data (offset");
  expect_open_error(b, "extends past end of file");
  patch<uint64_t>(b, off, ~uint64_t{0} - 31);  // would wrap around when added
  expect_open_error(b, "extends past end of file");
  patch<uint64_t>(b, off, 7);
  expect_open_error(b, "offset 7 is not a multiple of the alignment 32");
}

TEST_F(BadInputGguf, WrongMagic) {
  std::string b = g_.bytes;
  b[0] = 'X';
  expect_open_error(b, "not a GGUF file: bad magic");
  expect_open_error("GG", "not a GGUF file");
  expect_open_error("", "not a GGUF file");
}

TEST_F(BadInputGguf, UnsupportedTensorType) {
  std::string b = g_.bytes;
  patch<uint32_t>(b, info("blk.0.w") + 4 + 2 * 8, 99);
  expect_open_error(b, "unsupported tensor type id 99 for tensor 'blk.0.w'");
}

TEST_F(BadInputGguf, UnsupportedVersion) {
  std::string b = g_.bytes;
  patch<uint32_t>(b, 4, 1);
  expect_open_error(b, "unsupported GGUF version 1");
  patch<uint32_t>(b, 4, 4);
  expect_open_error(b, "unsupported GGUF version 4");
  patch<uint32_t>(b, 4, 0x03000000);
  expect_open_error(b, "big-endian");
  patch<uint32_t>(b, 4, 2);  // v2 has the same layout as v3
  EXPECT_TRUE(parse_bytes(b).ok());
}

TEST_F(BadInputGguf, AbsurdCounts) {
  std::string b = g_.bytes;
  patch<uint64_t>(b, 8, uint64_t{1} << 62);
  expect_open_error(b, "tensor count 4611686018427387904 is more than the file can hold");
  b = g_.bytes;
  patch<uint64_t>(b, 16, ~uint64_t{0});
  expect_open_error(b, "metadata count 18446744073709551615 is more than the file can hold");
  b = g_.bytes;
  const size_t tok = test::after_gguf_string(b, "tokenizer.ggml.tokens");
  patch<uint64_t>(b, tok + 8, uint64_t{1} << 61);  // array count
  expect_open_error(b, "array count 2305843009213693952");
  b = g_.bytes;
  patch<uint32_t>(b, info("blk.0.w"), 5);  // n_dims
  expect_open_error(b, "tensor 'blk.0.w' has 5 dimensions");
  b = g_.bytes;
  patch<uint64_t>(b, info("blk.0.w") + 4 + 8, uint64_t{1} << 62);  // ne[1]: 32 * 2^62 elements
  expect_open_error(b, "overflows");
  patch<uint64_t>(b, info("blk.0.w") + 4 + 8, ~uint64_t{0});
  expect_open_error(b, "impossible extent");
  // Empty, but a row alone would need more than 2^63 bytes.
  patch<uint64_t>(b, info("blk.0.w") + 4, 0x7fffffffffffffe0u);
  patch<uint64_t>(b, info("blk.0.w") + 4 + 8, 0);
  expect_open_error(b, "byte size of shape [0, 9223372036854775776] overflows");
}

TEST_F(BadInputGguf, BlockSizeMismatch) {
  std::string b = g_.bytes;
  patch<uint64_t>(b, info("blk.0.w") + 4, 33);  // ne[0] of a q8_0 tensor
  expect_open_error(b, "innermost dimension 33 is not a multiple of the q8_0 block size 32");
}

TEST_F(BadInputGguf, BadAlignment) {
  std::string b = g_.bytes;
  const size_t val = test::after_gguf_string(b, "general.alignment") + 4;
  ASSERT_EQ(test::peek<uint32_t>(b, val), 32u);
  patch<uint32_t>(b, val, 48);
  expect_open_error(b, "general.alignment 48 is not a power of two");
  patch<uint32_t>(b, val, 0);
  expect_open_error(b, "general.alignment 0 must be a non-zero power of two");
  patch<uint32_t>(b, val - 4, 6);  // type: f32
  expect_open_error(b, "general.alignment has type f32");
}

TEST_F(BadInputGguf, UnknownMetadataType) {
  std::string b = g_.bytes;
  patch<uint32_t>(b, test::after_gguf_string(b, "general.architecture"), 13);
  expect_open_error(b, "metadata entry 'general.architecture' has unknown value type 13");
  b = g_.bytes;
  patch<uint32_t>(b, test::after_gguf_string(b, "tokenizer.ggml.tokens") + 4, 77);  // element type
  expect_open_error(b, "unknown element type 77");
}

TEST(BadInputGgufHandmade, DuplicateNamesAndDeepNesting) {
  const std::string dir = test::temp_dir();
  std::vector<uint8_t> data(8);
  TensorView v;
  v.type = DType::kF32;
  v.shape = {2};
  v.data = data.data();
  v.nbytes = 8;
  GgufWriter w;
  w.metadata().set("key.a", MetaValue::from_u32(1));
  w.metadata().set("key.b", MetaValue::from_u32(2));
  w.add_tensor("ta", v);
  w.add_tensor("tb", v);
  ASSERT_TRUE(w.write(dir + "/dup.gguf").ok());
  const std::string good = test::read_file(dir + "/dup.gguf");
  std::string b = good;
  b[b.find("tb")] = 't', b[b.find("tb") + 1] = 'a';
  expect_open_error(b, "duplicate tensor name 'ta'");
  b = good;
  b[b.find("key.b") + 4] = 'a';
  expect_open_error(b, "duplicate metadata key 'key.a'");

  // 20 arrays nested in one another.
  std::string deep = "GGUF";
  auto put32 = [&](uint32_t x) { deep.append(reinterpret_cast<const char*>(&x), 4); };
  auto put64 = [&](uint64_t x) { deep.append(reinterpret_cast<const char*>(&x), 8); };
  put32(3);
  put64(0);
  put64(1);
  put64(1);
  deep += "k";
  put32(9);
  for (int k = 0; k < 20; ++k) {
    put32(9);
    put64(1);
  }
  put32(0);
  put64(0);
  expect_open_error(deep, "nested more than 8 levels");
}

TEST_F(BadInputGguf, RandomMutationsNeverCrash) {
  // A small deterministic fuzz pass over the synthetic file (the libFuzzer target goes further).
  uint32_t x = 12345;
  auto next = [&]() {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
  };
  int n_ok = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string b = g_.bytes;
    const int n_mut = 1 + static_cast<int>(next() % 4);
    for (int m = 0; m < n_mut; ++m) {
      const size_t pos = next() % b.size();
      switch (next() % 3) {
        case 0:
          b[pos] = static_cast<char>(next());
          break;
        case 1:
          b[pos] ^= static_cast<char>(1u << (next() % 8));
          break;
        default:
          b.resize(pos);
          break;
      }
      if (b.empty()) break;
    }
    std::vector<uint8_t> buf(b.begin(), b.end());
    auto f = GgufFile::parse(buf.data(), buf.size(), "mut.gguf");
    if (!f.ok()) {
      EXPECT_EQ(f.status().message().rfind("mut.gguf: ", 0), 0u);
      continue;
    }
    ++n_ok;
    for (const auto& t : (*f)->tensors()) {
      uint32_t sum = 0;
      for (size_t k = 0; k < t.view.nbytes; ++k) sum += t.view.data[k];
      (void)sum;
    }
  }
  EXPECT_GT(n_ok, 0);
}

}  // namespace
}  // namespace llmopt
