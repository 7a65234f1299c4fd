//===- TensorTest.cpp - Tensor and error metrics ---------------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//

#include "linattn/Reference/Reference.h"

#include "gtest/gtest.h"

#include <cmath>

using namespace linattn::reference;

TEST(Tensor, ShapeAndIndexing) {
  Tensor t({2, 3, 4}, 1.5);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.data.size(), 24u);
  EXPECT_EQ(t.dim(1), 3);
  t.at({1, 2, 3}) = 9.0;
  EXPECT_EQ(t.data.back(), 9.0);
  t.at({0, 1, 2}) = -2.0;
  EXPECT_EQ(t.data[6], -2.0);
  const Tensor &c = t;
  EXPECT_EQ(c.at({0, 0, 0}), 1.5);
  EXPECT_EQ(Tensor().numel(), 1);
  EXPECT_EQ(Tensor({3, 0}).numel(), 0);
  EXPECT_EQ(formatShape({2, 4, 17}), "[2, 4, 17]");
  EXPECT_EQ(formatShape({}), "[]");
}

TEST(Tensor, ErrorMetrics) {
  Tensor ref({4}), x({4});
  ref.data = {3.0, 0.0, 4.0, 0.0};
  x.data = {3.0, 0.5, 4.0, 0.0};
  EXPECT_DOUBLE_EQ(ratio(x, ref), 0.1);
  EXPECT_DOUBLE_EQ(maxAbsDiff(x, ref), 0.5);
  EXPECT_EQ(ratio(ref, ref), 0.0);
  EXPECT_TRUE(std::isinf(ratio(Tensor({3}), ref)));
  EXPECT_TRUE(std::isinf(maxAbsDiff(Tensor({2, 2}), ref)));
  Tensor zero({2}), small({2});
  small.data = {3e-3, 4e-3};
  EXPECT_DOUBLE_EQ(ratio(small, zero), 5e-3) << "absolute error for zero ref";
  x.data[2] = std::nan("");
  EXPECT_TRUE(std::isnan(ratio(x, ref)));
  EXPECT_TRUE(std::isnan(maxAbsDiff(x, ref)));
}

TEST(Tensor, Names) {
  EXPECT_STREQ(decayKindName(DecayKind::GatedDelta), "gated_delta");
  EXPECT_STREQ(featureMapName(FeatureMap::HedgehogJoint), "hedgehog_joint");
}

TEST(Tensor, SwapDims) {
  // x[i, j, k] = 100 i + 10 j + k, shape [2, 3, 4].
  Tensor x({2, 3, 4});
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k)
        x.at({i, j, k}) = 100.0 * i + 10.0 * j + k;
  Tensor y = swapDims(x, 1, 2);
  ASSERT_EQ(y.shape, (std::vector<int64_t>{2, 4, 3}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k)
        EXPECT_EQ(y.at({i, k, j}), x.at({i, j, k}));
  Tensor z = swapDims(x, 0, 2);
  ASSERT_EQ(z.shape, (std::vector<int64_t>{4, 3, 2}));
  EXPECT_EQ(z.at({3, 1, 1}), 113.0);
  EXPECT_EQ(swapDims(y, 1, 2).data, x.data);
}

TEST(RandomDims, ParsesTheToolsRandomFlag) {
  RandomDims d;
  d.dk = 7;
  ASSERT_EQ(parseRandomDims("4,16,4096", d), "");
  EXPECT_EQ(d.batch, 4);
  EXPECT_EQ(d.hq, 16);
  EXPECT_EQ(d.hk, 16);
  EXPECT_EQ(d.hv, 16);
  EXPECT_EQ(d.seqLen, 4096);
  EXPECT_EQ(d.dk, 7); // widths untouched
  ASSERT_EQ(parseRandomDims("2, 8,2 ,4,100", d), "");
  EXPECT_EQ(d.batch, 2);
  EXPECT_EQ(d.hq, 8);
  EXPECT_EQ(d.hk, 2);
  EXPECT_EQ(d.hv, 4);
  EXPECT_EQ(d.seqLen, 100);
  for (const char *bad : {"", "4,16", "1,2,3,4", "1,-2,3", "1,,3", "a,b,c",
                          "1,2,3,4,5,6", "1,2,99999999999999999999"})
    EXPECT_EQ(parseRandomDims(bad, d),
              std::string("--random expects B,H,T or B,Hq,Hk,Hv,T, got '") +
                  bad + "'")
        << bad;
}

TEST(Names, SchedulesRoundTrip) {
  ASSERT_EQ(allSchedules().size(), 4u);
  for (Schedule s : allSchedules())
    EXPECT_EQ(parseSchedule(scheduleName(s)), s) << scheduleName(s);
  EXPECT_EQ(std::string(scheduleName(Schedule::RetNetLinspace)),
            "retnet_linspace");
  EXPECT_FALSE(parseSchedule("alibi").has_value());
  EXPECT_FALSE(parseSchedule("RetNet").has_value());
}
