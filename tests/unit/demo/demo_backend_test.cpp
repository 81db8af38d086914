// Unit tests for demo-backend's pure parts: the evenly spaced --error-rate and its argument.
#include "demo/demo_backend.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace canary::demo {
namespace {

std::vector<std::uint64_t> errors_among(std::uint64_t count, double rate) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t n = 0; n < count; ++n) {
    if (error_due(n, rate)) out.push_back(n);
  }
  return out;
}

TEST(ErrorDue, HalfIsEveryOtherAnswer) {
  EXPECT_EQ(errors_among(8, 0.5), (std::vector<std::uint64_t>{1, 3, 5, 7}));
}

TEST(ErrorDue, ExactShareEvenlySpaced) {
  // 0.05: one answer in 20, whatever the binary rounding of 0.05 * n.
  auto e = errors_among(1000, 0.05);
  ASSERT_EQ(e.size(), 50u);
  for (std::size_t i = 0; i < e.size(); ++i) EXPECT_EQ(e[i], 20 * i + 19);
  EXPECT_EQ(errors_among(3000, 1.0 / 3).size(), 1000u);
  EXPECT_EQ(errors_among(1000, 0.1).size(), 100u);
  EXPECT_EQ(errors_among(1000, 0.013).size(), 13u);
  // Any window of 1/rate consecutive answers holds exactly one error.
  for (std::uint64_t start = 0; start < 200; ++start) {
    int in_window = 0;
    for (std::uint64_t n = start; n < start + 20; ++n) in_window += error_due(n, 0.05) ? 1 : 0;
    EXPECT_EQ(in_window, 1) << "window from " << start;
  }
}

TEST(ErrorDue, NoneAndAll) {
  EXPECT_TRUE(errors_among(100, 0).empty());
  EXPECT_EQ(errors_among(100, 1).size(), 100u);
}

TEST(DemoArgs, ErrorRateRange) {
  auto r = parse_args({"--color", "yellow", "--error-rate", "0.5"});
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->error_rate, 0.5);
  EXPECT_EQ(r.opts->color, "yellow");
  EXPECT_FALSE(parse_args({"--color", "y", "--error-rate", "1.5"}).opts);
  EXPECT_FALSE(parse_args({"--color", "y", "--error-rate=-0.1"}).opts);
  EXPECT_FALSE(parse_args({"--color", "y", "--error-rate", "half"}).opts);
  EXPECT_FALSE(parse_args({"--error-rate", "0.5"}).opts);  // --color is required
}

}  // namespace
}  // namespace canary::demo
