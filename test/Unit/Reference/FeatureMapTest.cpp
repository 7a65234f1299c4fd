//===- FeatureMapTest.cpp - MATH.md 10, case 11 ----------------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "gtest/gtest.h"

#include <cmath>

using namespace linattn::reference;
using namespace linattn::reference::testutil;

namespace {

/// phi(x) for a single row x ([d] -> [D_phi]).
Tensor phi(FeatureMap m, const Tensor &x, const Tensor *w = nullptr,
           const Tensor *b = nullptr) {
  Tensor out;
  EXPECT_EQ(applyFeatureMap(m, x, out, w, b), "");
  return out;
}

double dot(const Tensor &a, const Tensor &b) {
  EXPECT_EQ(a.data.size(), b.data.size());
  double acc = 0.0;
  for (size_t i = 0; i < a.data.size(); ++i)
    acc += a.data[i] * b.data[i];
  return acc;
}

/// Sum of entries [begin, end) of a flat tensor.
double sum(const Tensor &t, size_t begin, size_t end) {
  double acc = 0.0;
  for (size_t i = begin; i < end; ++i)
    acc += t.data[i];
  return acc;
}

} // namespace

TEST(FeatureMaps, Widths) {
  EXPECT_EQ(featureMapWidth(FeatureMap::Identity, 8), 8);
  EXPECT_EQ(featureMapWidth(FeatureMap::Taylor2, 16), 273);
  EXPECT_EQ(featureMapWidth(FeatureMap::Taylor2Symmetric, 16), 153);
  EXPECT_EQ(featureMapWidth(FeatureMap::Hedgehog, 8, 5), 10);
  EXPECT_EQ(featureMapWidth(FeatureMap::HedgehogJoint, 8), 16);
  EXPECT_EQ(featureMapWidth(FeatureMap::Performer, 8, 64), 64);
  EXPECT_EQ(featureMapWidth(FeatureMap::PerformerHyperbolic, 8, 64), 128);
}

// phi(q) . phi(k) = 1 + s + s^2 / 2 with s = q . k / sqrt(d), both storages.
TEST(FeatureMaps, TaylorKernelIdentity) {
  std::mt19937_64 rng(51);
  for (int64_t d : {1, 4, 16}) {
    Tensor q = randn({d}, rng), k = randn({d}, rng);
    double s = dot(q, k) / std::sqrt(static_cast<double>(d));
    double want = 1.0 + s + s * s / 2.0;
    Tensor fq = phi(FeatureMap::Taylor2, q), fk = phi(FeatureMap::Taylor2, k);
    Tensor sq = phi(FeatureMap::Taylor2Symmetric, q);
    Tensor sk = phi(FeatureMap::Taylor2Symmetric, k);
    EXPECT_EQ(fq.shape, (std::vector<int64_t>{1 + d + d * d}));
    EXPECT_EQ(sq.shape, (std::vector<int64_t>{1 + d + d * (d + 1) / 2}));
    EXPECT_NEAR(dot(fq, fk), want, 1e-12) << "full, d = " << d;
    EXPECT_NEAR(dot(sq, sk), want, 1e-12) << "symmetric, d = " << d;
  }
}

TEST(FeatureMaps, EluPlusOneIsPositive) {
  std::mt19937_64 rng(52);
  Tensor x = randn({3, 5, 7}, rng, 5.0);
  x.data[0] = -30.0;
  x.data[1] = 0.0;
  Tensor out = phi(FeatureMap::EluPlusOne, x);
  ASSERT_EQ(out.shape, x.shape);
  for (size_t i = 0; i < x.data.size(); ++i) {
    EXPECT_GT(out.data[i], 0.0);
    double want = x.data[i] > 0 ? x.data[i] + 1.0 : std::exp(x.data[i]);
    EXPECT_DOUBLE_EQ(out.data[i], want);
  }
}

TEST(FeatureMaps, ReluAndIdentity) {
  Tensor x = fromValues({2, 2}, {-1.5, 2.0, 0.0, -0.0});
  EXPECT_EQ(phi(FeatureMap::Relu, x).data,
            (std::vector<double>{0.0, 2.0, 0.0, 0.0}));
  EXPECT_EQ(phi(FeatureMap::Identity, x).data, x.data);
}

TEST(FeatureMaps, HedgehogHalvesSumToOne) {
  std::mt19937_64 rng(53);
  const int64_t d = 6, f = 5;
  Tensor x = randn({4, d}, rng), w = randn({d, f}, rng), b = randn({f}, rng);
  Tensor out = phi(FeatureMap::Hedgehog, x, &w, &b);
  ASSERT_EQ(out.shape, (std::vector<int64_t>{4, 2 * f}));
  for (int64_t r = 0; r < 4; ++r) {
    size_t base = static_cast<size_t>(r * 2 * f);
    EXPECT_NEAR(sum(out, base, base + f), 1.0, 1e-14);
    EXPECT_NEAR(sum(out, base + f, base + 2 * f), 1.0, 1e-14);
  }
  // First feature of row 0 by hand: softmax(y)_0 with y = x W + b.
  std::vector<double> y(f);
  double z = 0.0;
  for (int64_t j = 0; j < f; ++j) {
    y[j] = b.data[j];
    for (int64_t i = 0; i < d; ++i)
      y[j] += x.data[i] * w.data[i * f + j];
    z += std::exp(y[j]);
  }
  EXPECT_NEAR(out.data[0], std::exp(y[0]) / z, 1e-14);
  for (double v : out.data)
    EXPECT_GT(v, 0.0);
}

TEST(FeatureMaps, HedgehogJointSumsToOne) {
  std::mt19937_64 rng(54);
  const int64_t d = 4;
  Tensor x = randn({3, d}, rng, 10.0), w = randn({d, d}, rng);
  Tensor out = phi(FeatureMap::HedgehogJoint, x, &w);
  ASSERT_EQ(out.shape, (std::vector<int64_t>{3, 2 * d}));
  for (int64_t r = 0; r < 3; ++r)
    EXPECT_NEAR(sum(out, r * 2 * d, (r + 1) * 2 * d), 1.0, 1e-14);
  for (double v : out.data)
    EXPECT_TRUE(std::isfinite(v) && v >= 0.0);
  // A moderate row by hand: softmax over [2y, -2y] with y = x W.
  Tensor x1 = randn({d}, rng, 0.5);
  Tensor row = phi(FeatureMap::HedgehogJoint, x1, &w);
  std::vector<double> y(d, 0.0);
  double z = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    for (int64_t i = 0; i < d; ++i)
      y[j] += x1.data[i] * w.data[i * d + j];
    z += std::exp(2.0 * y[j]) + std::exp(-2.0 * y[j]);
  }
  EXPECT_NEAR(row.data[0], std::exp(2.0 * y[0]) / z, 1e-14);
  EXPECT_NEAR(row.data[d], std::exp(-2.0 * y[0]) / z, 1e-14);
}

// Monte Carlo: E[phi(q) . phi(k)] = exp(q . k / sqrt(d)).
TEST(FeatureMaps, PerformerIsUnbiased) {
  std::mt19937_64 rng(55);
  const int64_t d = 4, m = 100000;
  Tensor w = randn({m, d}, rng);
  Tensor q = randn({d}, rng, 0.5), k = randn({d}, rng, 0.5);
  double want = std::exp(dot(q, k) / std::sqrt(static_cast<double>(d)));
  for (FeatureMap map :
       {FeatureMap::Performer, FeatureMap::PerformerHyperbolic}) {
    Tensor fq = phi(map, q, &w), fk = phi(map, k, &w);
    EXPECT_EQ(fq.dim(0), featureMapWidth(map, d, m));
    EXPECT_NEAR(dot(fq, fk) / want, 1.0, 0.03) << featureMapName(map);
    for (double v : fq.data)
      ASSERT_GT(v, 0.0) << featureMapName(map);
  }
}

TEST(FeatureMaps, RejectsBadParameters) {
  std::mt19937_64 rng(56);
  Tensor x = randn({2, 4}, rng), w43 = randn({4, 3}, rng);
  Tensor w34 = randn({3, 4}, rng), b3 = randn({3}, rng), b2 = randn({2}, rng);
  Tensor out = fromValues({1}, {42.0});
  struct Case {
    FeatureMap map;
    const Tensor *w, *b;
    const char *want;
  };
  const Case cases[] = {
      {FeatureMap::Hedgehog, nullptr, nullptr, "weight: required"},
      {FeatureMap::Hedgehog, &w34, nullptr, "weight: expected shape [4, f]"},
      {FeatureMap::Hedgehog, &w43, &b2, "bias: expected shape [3]"},
      {FeatureMap::HedgehogJoint, &w43, nullptr,
       "weight: expected shape [4, 4]"},
      {FeatureMap::Relu, &w43, nullptr, "weight: feature map 'relu'"},
      {FeatureMap::Taylor2, nullptr, &b3, "bias: feature map 'taylor2'"},
      {FeatureMap::Performer, &w43, nullptr, "weight: expected shape [m, 4]"},
      {FeatureMap::Performer, &w34, &b3, "bias: feature map 'performer'"},
      {FeatureMap::PerformerHyperbolic, &b3, nullptr,
       "weight: expected a rank-2"},
  };
  for (const Case &c : cases) {
    std::string err = applyFeatureMap(c.map, x, out, c.w, c.b);
    EXPECT_NE(err.find(c.want), std::string::npos)
        << "got '" << err << "', want '" << c.want << "'";
    EXPECT_EQ(out.data, (std::vector<double>{42.0})) << "out was modified";
  }
  EXPECT_NE(applyFeatureMap(FeatureMap::Relu, Tensor(), out).find("x:"),
            std::string::npos);
  Tensor bad({2, 3});
  bad.data.pop_back();
  EXPECT_NE(applyFeatureMap(FeatureMap::Relu, bad, out).find("x:"),
            std::string::npos);
}
