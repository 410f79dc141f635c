// Malformed safetensors and llama2.c files: each must give an error naming the file and the
// problem, never a crash.
#include <gtest/gtest.h>

#include <cstring>

#include "formats/llama2c.h"
#include "formats/safetensors.h"
#include "formats_test_helpers.h"
#include "test_util.h"

namespace llmopt {
namespace {

std::string safetensors_image(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  test::patch<uint64_t>(out, 0, header.size());
  return out + header + data;
}

void expect_safetensors_error(const std::string& bytes, const std::string& needle) {
  const std::string path = test::temp_dir() + "/bad.safetensors";
  test::write_file(path, bytes);
  auto src = open_safetensors(path);
  ASSERT_FALSE(src.ok()) << "expected an error containing: " << needle;
  const std::string msg = src.status().message();
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(needle), std::string::npos) << "message: " << msg << "\nexpected: " << needle;
  // The in-memory parser says the same.
  std::vector<uint8_t> buf(bytes.begin(), bytes.end());
  auto mem = parse_safetensors(buf.data(), buf.size(), "mem");
  ASSERT_FALSE(mem.ok());
  EXPECT_NE(mem.status().message().find(needle), std::string::npos) << mem.status().message();
}

const char* kGoodHeader = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";

TEST(BadInputSafetensors, ValidFileParses) {
  const std::string img = safetensors_image(kGoodHeader, std::string(16, 'x'));
  std::vector<uint8_t> buf(img.begin(), img.end());
  EXPECT_TRUE(parse_safetensors(buf.data(), buf.size(), "ok").ok());
}

TEST(BadInputSafetensors, HeaderLengthPastEnd) {
  std::string img = safetensors_image(kGoodHeader, std::string(16, 'x'));
  test::patch<uint64_t>(img, 0, 1000);
  expect_safetensors_error(img, "header length 1000 runs past end of file");
  test::patch<uint64_t>(img, 0, ~uint64_t{0});
  expect_safetensors_error(img, "header length 18446744073709551615 runs past end of file");
  expect_safetensors_error("abc", "file too small");
}

TEST(BadInputSafetensors, HeaderNotJson) {
  expect_safetensors_error(safetensors_image("{\"w\": [1, 2", ""), "header is not valid JSON");
  expect_safetensors_error(safetensors_image("not json at all", ""), "header is not valid JSON");
  expect_safetensors_error(safetensors_image("[1, 2]", ""), "header is not a JSON object");
  expect_safetensors_error(safetensors_image(std::string(100, '[') + std::string(100, ']'), ""),
                           "nests deeper");
}

TEST(BadInputSafetensors, DataOffsetsPastEnd) {
  expect_safetensors_error(
      safetensors_image(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, 'x')),
      "tensor 'w': data_offsets [0, 16] lie outside the data section (8 bytes)");
  expect_safetensors_error(
      safetensors_image(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[9,4]}})", std::string(8, 'x')),
      "lie outside the data section");
}

TEST(BadInputSafetensors, SizeDoesNotMatchShape) {
  expect_safetensors_error(
      safetensors_image(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(16, 'x')),
      "tensor 'w': data_offsets span 8 bytes but shape [3] of F32 needs 12");
  expect_safetensors_error(
      safetensors_image(R"({"w":{"dtype":"F16","shape":[4611686018427387904, 4],"data_offsets":[0,8]}})",
                        std::string(16, 'x')),
      "overflows");
  expect_safetensors_error(
      safetensors_image(R"({"w":{"dtype":"F16","shape":[-1],"data_offsets":[0,8]}})", std::string(16, 'x')),
      "tensor 'w': shape");
}

TEST(BadInputSafetensors, UnsupportedDtype) {
  expect_safetensors_error(
      safetensors_image(R"({"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", std::string(16, 'x')),
      "tensor 'ids' has unsupported dtype I64");
}

TEST(BadInputSafetensors, MalformedEntries) {
  expect_safetensors_error(safetensors_image(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "abcd"),
                           "tensor 'w': missing or non-string \"dtype\"");
  expect_safetensors_error(
      safetensors_image(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "abcd"),
      "tensor 'w': \"data_offsets\" must be an array [begin, end]");
  expect_safetensors_error(safetensors_image(R"({"w":3})", "abcd"),
                           "tensor 'w': header entry is not an object");
  expect_safetensors_error(safetensors_image(R"({"__metadata__":{"a":1}})", ""),
                           "__metadata__ value for 'a'");
}

TEST(BadInputSafetensors, MissingFileAndIndex) {
  const std::string dir = test::temp_dir();
  auto src = open_safetensors(dir + "/nope.safetensors");
  ASSERT_FALSE(src.ok());
  EXPECT_NE(src.status().message().find("nope.safetensors"), std::string::npos);
  test::write_file(dir + "/model.safetensors.index.json", "{\"weight_map\": 5}");
  src = open_safetensors(dir + "/model.safetensors.index.json");
  ASSERT_FALSE(src.ok());
  EXPECT_NE(src.status().message().find("weight_map"), std::string::npos) << src.status().message();
  test::write_file(dir + "/model.safetensors.index.json", "{\"weight_map\": {\"w\": \"gone.safetensors\"}}");
  src = open_safetensors(dir + "/model.safetensors.index.json");
  ASSERT_FALSE(src.ok());
  EXPECT_NE(src.status().message().find("gone.safetensors"), std::string::npos) << src.status().message();
}

std::string checkpoint_header(int32_t dim, int32_t hidden, int32_t layers, int32_t heads, int32_t kv_heads,
                              int32_t vocab, int32_t seq_len) {
  const int32_t h[7] = {dim, hidden, layers, heads, kv_heads, vocab, seq_len};
  return std::string(reinterpret_cast<const char*>(h), sizeof(h));
}

void expect_llama2c_error(const std::string& bytes, const std::string& needle) {
  const std::string path = test::temp_dir() + "/bad.bin";
  test::write_file(path, bytes);
  auto src = open_llama2c(path);
  ASSERT_FALSE(src.ok()) << "expected an error containing: " << needle;
  const std::string msg = src.status().message();
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(needle), std::string::npos) << "message: " << msg << "\nexpected: " << needle;
  EXPECT_FALSE(looks_like_llama2c(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

TEST(BadInputLlama2c, Truncated) {
  // dim 8, hidden 16, 1 layer, 2 heads, vocab 6, seq 4: 6*8 + (2*8 + 4*64 + 3*128) + 8 + 4*4 floats.
  const size_t n_floats = 48 + 16 + 256 + 384 + 8 + 16;
  std::string full = checkpoint_header(8, 16, 1, 2, 2, 6, 4) + std::string(n_floats * 4, '\0');
  ASSERT_TRUE(looks_like_llama2c(reinterpret_cast<const uint8_t*>(full.data()), full.size()));
  expect_llama2c_error(full.substr(0, full.size() - 4), "file is truncated");
  expect_llama2c_error(full.substr(0, 100), "file is truncated");
  expect_llama2c_error(full.substr(0, 20), "file too small for a llama2.c header");
}

TEST(BadInputLlama2c, ZeroOrNegativeDims) {
  const std::string pad(4096, '\0');
  expect_llama2c_error(checkpoint_header(0, 16, 1, 2, 2, 6, 4) + pad, "header dim is 0 (must be positive)");
  expect_llama2c_error(checkpoint_header(8, -16, 1, 2, 2, 6, 4) + pad, "header hidden_dim is -16");
  expect_llama2c_error(checkpoint_header(8, 16, 0, 2, 2, 6, 4) + pad, "header n_layers is 0");
  expect_llama2c_error(checkpoint_header(8, 16, 1, 2, 0, 6, 4) + pad, "header n_kv_heads is 0");
  expect_llama2c_error(checkpoint_header(8, 16, 1, 2, 2, 6, -4) + pad, "header seq_len is -4");
  expect_llama2c_error(checkpoint_header(8, 16, 1, 2, 2, 0, 4) + pad, "header vocab_size is 0");
}

TEST(BadInputLlama2c, HeadsDoNotDivide) {
  const std::string pad(4096, '\0');
  expect_llama2c_error(checkpoint_header(10, 16, 1, 3, 3, 6, 4) + pad,
                       "header dim 10 is not divisible by n_heads 3");
  expect_llama2c_error(checkpoint_header(8, 16, 1, 4, 3, 6, 4) + pad,
                       "header n_heads 4 is not divisible by n_kv_heads 3");
  expect_llama2c_error(checkpoint_header(6, 16, 1, 2, 2, 6, 4) + pad, "head size 3");
}

TEST(BadInputLlama2c, ImpossibleSizesAndOtherFormats) {
  expect_llama2c_error(
      checkpoint_header(2147483644, 2147483647, 2147483647, 2, 1, -2147483647 - 1, 2147483647),
      "impossibly large");
  std::string versioned = checkpoint_header(0x616b3432, 2, 0, 0, 0, 0, 0);
  expect_llama2c_error(versioned + std::string(256, '\0'), "versioned llama2.c export");
}

}  // namespace
}  // namespace llmopt
