// `llmopt plot` as a user runs it: a CSV in, a PNG out (checked by Python), and one clear
// "error: ..." line with exit code 1 for each kind of bad input.
#include <gtest/gtest.h>

#include <algorithm>

#include "png_reader.h"
#include "test_util.h"

namespace llmopt {
namespace {

using test::run_command;

std::string q(const std::string& s) { return "'" + s + "'"; }

std::string plot(const std::string& args) { return test::llmopt_binary() + " plot " + args; }

const char* kLog =
    "step,loss,heldout_loss,lr,tok_s\n"
    "0,10.5,,0.001,\n"
    "10,8.25,8.5,0.001,1200\n"
    "20,6.0,,0.0009,1250\n"
    "30,4.75,5.0,0.0008,1300\n"
    "40,3.5,,0.0007,\n";

void expect_one_line_error(const test::CmdResult& r, const std::vector<std::string>& needles) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const auto& n : needles) EXPECT_NE(r.err.find(n), std::string::npos) << "missing '" << n << "' in: " << r.err;
}

TEST(PlotCliTest, WritesValidPng) {
  const std::string dir = test::temp_dir();
  test::write_file(dir + "/log.csv", kLog);
  auto r = run_command(plot(q(dir + "/log.csv") + " -o " + q(dir + "/loss.png")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1 series, 5 points"), std::string::npos) << r.out;
  const std::string png = test::read_file(dir + "/loss.png");
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  LLMOPT_REQUIRE_PYTHON();
  auto d = test::decode_png_with_python(dir + "/loss.png", {{0, 0}});
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.width, 800);
  EXPECT_EQ(d.height, 500);
}

TEST(PlotCliTest, SeveralColumnsLogAxisAndSize) {
  const std::string dir = test::temp_dir();
  test::write_file(dir + "/log.csv", kLog);
  auto r = run_command(plot(q(dir + "/log.csv") + " -o " + q(dir + "/both.png") +
                            " --x step --y loss,heldout_loss --log-y --title 'Loss (log)' --width 640 --height 400"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Missing heldout cells are skipped, not read as zero: 5 + 2 points.
  EXPECT_NE(r.out.find("2 series, 7 points"), std::string::npos) << r.out;
  LLMOPT_REQUIRE_PYTHON();
  auto d = test::decode_png_with_python(dir + "/both.png", {});
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.width, 640);
  EXPECT_EQ(d.height, 400);
}

TEST(PlotCliTest, BadInputsGiveOneClearError) {
  const std::string dir = test::temp_dir();
  const std::string out = " -o " + q(dir + "/x.png");
  expect_one_line_error(run_command(plot(q(dir + "/missing.csv") + out)), {"missing.csv", "cannot open"});

  test::write_file(dir + "/log.csv", kLog);
  expect_one_line_error(run_command(plot(q(dir + "/log.csv") + out + " --y loss,nope")),
                        {"unknown column 'nope'", "heldout_loss"});
  expect_one_line_error(run_command(plot(q(dir + "/log.csv") + out + " --x stepz")), {"unknown column 'stepz'"});

  test::write_file(dir + "/bad.csv", "step,loss\n1,2.5\n2,abc\n");
  expect_one_line_error(run_command(plot(q(dir + "/bad.csv") + out)), {"bad.csv:3", "'loss'", "'abc'"});

  test::write_file(dir + "/header.csv", "step,loss\n");
  expect_one_line_error(run_command(plot(q(dir + "/header.csv") + out)), {"no data rows"});

  test::write_file(dir + "/empty.csv", "");
  expect_one_line_error(run_command(plot(q(dir + "/empty.csv") + out)), {"empty"});

  test::write_file(dir + "/wide.csv", "step,loss\n1,2,3\n");
  expect_one_line_error(run_command(plot(q(dir + "/wide.csv") + out)), {"wide.csv:2", "3 fields"});

  test::write_file(dir + "/blank.csv", "step,loss,heldout_loss\n1,2,\n2,3,\n");
  expect_one_line_error(run_command(plot(q(dir + "/blank.csv") + out + " --y heldout_loss")), {"no values"});

  EXPECT_NE(run_command(plot(q(dir + "/log.csv"))).exit_code, 0);  // -o is required
}

}  // namespace
}  // namespace llmopt
