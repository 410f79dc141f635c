// Metadata and MetaValue: typed getters, numeric views, ordering and equality.
#include "formats/metadata.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "formats/weight_source.h"

namespace llmopt {
namespace {

TEST(MetadataTest, SetKeepsOrderAndReplacesInPlace) {
  Metadata md;
  md.set("b", MetaValue::from_u32(1));
  md.set("a", MetaValue::from_string("x"));
  md.set("c", MetaValue::from_bool(true));
  md.set("b", MetaValue::from_i32(-5));
  ASSERT_EQ(md.size(), 3u);
  EXPECT_EQ(md.entries()[0].first, "b");
  EXPECT_EQ(md.entries()[1].first, "a");
  EXPECT_EQ(md.get_int("b"), -5);
  md.erase("a");
  EXPECT_FALSE(md.contains("a"));
  EXPECT_EQ(md.size(), 2u);
  EXPECT_EQ(md.get_bool("c"), true);
  md.set("a", MetaValue::from_u32(2));
  EXPECT_EQ(md.entries().back().first, "a");
  EXPECT_EQ(md.get_int("a"), 2);
  md.erase("missing");
  EXPECT_EQ(md.size(), 3u);
}

TEST(MetadataTest, TypedGetters) {
  Metadata md;
  md.set("s", MetaValue::from_string("hi"));
  md.set("u", MetaValue::from_u32(7));
  md.set("f", MetaValue::from_f32(0.25f));
  md.set("whole", MetaValue::from_f32(3.0f));
  md.set("strs", MetaValue::from_strings({"a", "b"}));
  md.set("floats", MetaValue::from_f32s({1.5f, 2.0f}));
  md.set("ints", MetaValue::from_i32s({3, -4}));
  EXPECT_EQ(md.get_string("s"), "hi");
  EXPECT_EQ(md.get_string("u"), std::nullopt);
  EXPECT_EQ(md.get_int("u"), 7);
  EXPECT_EQ(md.get_int("s"), std::nullopt);
  EXPECT_EQ(md.get_int("f"), std::nullopt);  // 0.25 is not an integer
  EXPECT_EQ(md.get_int("whole"), 3);
  EXPECT_EQ(md.get_float("f"), 0.25);
  EXPECT_EQ(md.get_float("u"), 7.0);
  EXPECT_EQ(md.get_bool("s"), std::nullopt);
  EXPECT_EQ(md.get_string_array("strs"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(md.get_string_array("ints"), std::nullopt);
  EXPECT_EQ(md.get_float_array("floats"), (std::vector<float>{1.5f, 2.0f}));
  EXPECT_EQ(md.get_float_array("ints"), (std::vector<float>{3.0f, -4.0f}));
  EXPECT_EQ(md.get_int_array("ints"), (std::vector<int64_t>{3, -4}));
  EXPECT_EQ(md.get_int_array("floats"), std::nullopt);
  EXPECT_EQ(md.get_int("absent"), std::nullopt);
}

TEST(MetadataTest, EqualityIsTypedAndBitwiseForFloats) {
  EXPECT_EQ(MetaValue::from_u32(1), MetaValue::from_u32(1));
  EXPECT_FALSE(MetaValue::from_u32(1) == MetaValue::from_i32(1));
  EXPECT_FALSE(MetaValue::from_f32(1.0f) == MetaValue::from_f32(2.0f));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(MetaValue::from_f32(nan), MetaValue::from_f32(nan));
  EXPECT_FALSE(MetaValue::from_f32(0.0f) == MetaValue::from_f32(-0.0f));
  EXPECT_FALSE(MetaValue::from_strings({"a"}) == MetaValue::from_strings({"a", "b"}));
  Metadata a, b;
  a.set("k", MetaValue::from_string("v"));
  b.set("k", MetaValue::from_string("v"));
  EXPECT_TRUE(a == b);
  b.set("k2", MetaValue::from_string("v"));
  EXPECT_FALSE(a == b);
}

TEST(MetadataTest, IntegerViews) {
  EXPECT_TRUE(MetaValue::from_u64(5).is_integer());
  EXPECT_FALSE(MetaValue::from_bool(true).is_integer());
  EXPECT_FALSE(MetaValue::from_f32(1.0f).is_integer());
  EXPECT_EQ(MetaValue::from_u64(std::numeric_limits<uint64_t>::max()).as_int(), std::nullopt);
  EXPECT_EQ(MetaValue::from_i32(-3).as_int(), -3);
  EXPECT_EQ(MetaValue::from_bool(true).as_int(), 1);
  EXPECT_EQ(MetaValue::from_f32(std::numeric_limits<float>::infinity()).as_int(), std::nullopt);
  EXPECT_EQ(MetaValue::from_string("1").as_int(), std::nullopt);
  EXPECT_EQ(MetaValue::from_string("1").as_float(), std::nullopt);
  EXPECT_STREQ(meta_type_name(MetaType::kArray), "array");
  EXPECT_STREQ(meta_type_name(MetaType::kF64), "f64");
}

TEST(MetadataTest, MemoryWeightSourceOwnsTensors) {
  MemoryWeightSource src("synthetic");
  uint8_t* p = src.add_owned_tensor("w", DType::kF32, {2, 3}, 24);
  ASSERT_NE(p, nullptr);
  for (int k = 0; k < 24; ++k) EXPECT_EQ(p[k], 0);
  reinterpret_cast<float*>(p)[5] = 4.5f;
  const TensorView* v = src.find("w");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(v->f32()[5], 4.5f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v->data) % 64, 0u);
  EXPECT_EQ(src.find("x"), nullptr);
  EXPECT_EQ(src.origin(), "synthetic");
}

}  // namespace
}  // namespace llmopt
