//===- ScheduleTest.cpp - Constant decay schedules (MATH.md 4.b) -*- C++
//-*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//

#include "linattn/Reference/Reference.h"

#include "gtest/gtest.h"

#include <cmath>

using namespace linattn::reference;

namespace {
/// Expects exp(logs[h]) to print as want[h] with `digits` significant digits.
void expectLambdas(const std::vector<double> &logs,
                   const std::vector<double> &want, int digits) {
  ASSERT_EQ(logs.size(), want.size());
  for (size_t h = 0; h < want.size(); ++h) {
    double tol =
        0.5 * std::pow(10.0, std::floor(std::log10(want[h])) - (digits - 1));
    EXPECT_NEAR(std::exp(logs[h]), want[h], tol) << "head " << h;
  }
}
} // namespace

TEST(Schedules, RetNetEightHeads) {
  std::vector<double> logs = logDecaySchedule(Schedule::RetNet, 8);
  const double want[] = {0.96875,       0.984375,      0.9921875,
                         0.99609375,    0.998046875,   0.9990234375,
                         0.99951171875, 0.999755859375};
  ASSERT_EQ(logs.size(), 8u);
  for (size_t h = 0; h < 8; ++h)
    EXPECT_NEAR(std::exp(logs[h]), want[h], 1e-15) << "head " << h;
}

TEST(Schedules, RetNetLinspaceEndpoints) {
  std::vector<double> logs = logDecaySchedule(Schedule::RetNetLinspace, 6);
  ASSERT_EQ(logs.size(), 6u);
  EXPECT_NEAR(std::exp(logs.front()), 1.0 - 1.0 / 32.0, 1e-15);
  EXPECT_NEAR(std::exp(logs.back()), 1.0 - 1.0 / 512.0, 1e-15);
  for (size_t h = 1; h < 6; ++h)
    EXPECT_GT(logs[h], logs[h - 1]) << "decays must approach 1";
  EXPECT_NEAR(std::exp(logDecaySchedule(Schedule::RetNetLinspace, 1)[0]),
              1.0 - 1.0 / 32.0, 1e-15);
}

TEST(Schedules, TransNormerFirstLayer) {
  std::vector<double> logs = logDecaySchedule(Schedule::TransNormer, 8, 0, 12);
  EXPECT_EQ(logs[0], 0.0) << "head 0 has no decay";
  expectLambdas(
      logs, {1, 0.3679, 0.1353, 0.0498, 0.0183, 0.00674, 0.00248, 0.000912}, 3);
  for (size_t h = 0; h < 8; ++h)
    EXPECT_NEAR(logs[h], -static_cast<double>(h), 1e-15);
}

TEST(Schedules, TransNormerLayerFactor) {
  // l = 3 of L = 4: rate (8h/H) (1 - 3/4).
  std::vector<double> logs = logDecaySchedule(Schedule::TransNormer, 4, 3, 4);
  for (size_t h = 0; h < 4; ++h)
    EXPECT_NEAR(logs[h], -2.0 * static_cast<double>(h) * 0.25, 1e-15);
}

TEST(Schedules, AlibiSlopesPowerOfTwo) {
  std::vector<double> s = alibiSlopes(8);
  ASSERT_EQ(s.size(), 8u);
  for (size_t h = 0; h < 8; ++h)
    EXPECT_EQ(s[h], std::ldexp(1.0, -static_cast<int>(h) - 1));
}

TEST(Schedules, AlibiSlopesTwelveHeads) {
  std::vector<double> s = alibiSlopes(12);
  ASSERT_EQ(s.size(), 12u);
  for (size_t h = 0; h < 8; ++h)
    EXPECT_EQ(s[h], std::ldexp(1.0, -static_cast<int>(h) - 1));
  const double tail[] = {0.7071, 0.3536, 0.1768, 0.0884};
  for (size_t i = 0; i < 4; ++i)
    EXPECT_NEAR(s[8 + i], tail[i], 5e-5);
}

TEST(Schedules, LightningEightHeads) {
  std::vector<double> logs = logDecaySchedule(Schedule::Lightning, 8, 0, 12);
  expectLambdas(
      logs, {0.6065, 0.7788, 0.8825, 0.9394, 0.9692, 0.9845, 0.9922, 0.9961},
      4);
  // With a single layer the factor is 1 + 1e-5 as for l = 0.
  std::vector<double> single = logDecaySchedule(Schedule::Lightning, 8);
  for (size_t h = 0; h < 8; ++h)
    EXPECT_DOUBLE_EQ(single[h], logs[h]);
}

TEST(Schedules, LightningTwelveHeadsUsesAlibiSlopes) {
  std::vector<double> logs = logDecaySchedule(Schedule::Lightning, 12, 0, 12);
  std::vector<double> slopes = alibiSlopes(12);
  ASSERT_EQ(logs.size(), 12u);
  const double want[] = {0.5,     0.25,     0.125,     0.0625,
                         0.03125, 0.015625, 0.0078125, 0.00390625,
                         0.7071,  0.3536,   0.1768,    0.0884};
  for (size_t h = 0; h < 12; ++h) {
    EXPECT_NEAR(-logs[h] / (1.0 + 1e-5), want[h], 5e-5) << "head " << h;
    EXPECT_NEAR(logs[h], -slopes[h] * (1.0 + 1e-5), 1e-15);
  }
}

TEST(Schedules, LightningLastLayerAlmostNoDecay) {
  std::vector<double> logs = logDecaySchedule(Schedule::Lightning, 8, 11, 12);
  for (size_t h = 0; h < 8; ++h)
    EXPECT_NEAR(logs[h], -alibiSlopes(8)[h] * 1e-5, 1e-18);
}

TEST(Schedules, InvalidArgumentsGiveEmpty) {
  EXPECT_TRUE(logDecaySchedule(Schedule::RetNet, 0).empty());
  EXPECT_TRUE(logDecaySchedule(Schedule::TransNormer, 8, 2, 2).empty());
  EXPECT_TRUE(logDecaySchedule(Schedule::Lightning, 8, -1, 4).empty());
  EXPECT_TRUE(logDecaySchedule(Schedule::Lightning, 8, 0, 0).empty());
  EXPECT_TRUE(alibiSlopes(-3).empty());
}
