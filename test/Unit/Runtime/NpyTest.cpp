//===- NpyTest.cpp - NumPy .npy reader/writer ------------------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// The golden byte strings below were produced by NumPy 2.4.6 and ml_dtypes
// 0.6.0 (np.save / np.lib.format.write_array; bf16 via
// np.array(..., dtype=ml_dtypes.bfloat16)), so the tests need no Python.
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/Npy.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

using namespace linattn::npy;

namespace {

//===----------------------------------------------------------------------===//
// Golden files written by NumPy
//===----------------------------------------------------------------------===//

// np.save(f, (np.arange(6, dtype='<f4').reshape(2, 3) * 0.5 - 1))
const char kNpyF32_2x3[] =
    "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 's"
    "hape': (2, 3), }                                                 "
    "         \x0a"
    "\x00\x00\x80\xbf\x00\x00\x00\xbf\x00\x00\x00\x00\x00\x00\x00\x3f\x00"
    "\x00\x80\x3f\x00\x00\xc0\x3f";

// np.save(f, np.array(3.25, dtype='<f8'))
const char kNpyF64Scalar[] =
    "\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 's"
    "hape': (), }                                                     "
    "         \x0a"
    "\x00\x00\x00\x00\x00\x00\x0a"
    "@";

// np.save(f, np.array([0, -0.0, 1, -2, 65504, 2**-24, 2**-14, np.inf,
//                         -np.inf, 0.333, np.nan], dtype='<f2'))
const char kNpyF16Specials[] =
    "\x93NUMPY\x01\x00v\x00{'descr': '<f2', 'fortran_order': False, 's"
    "hape': (11,), }                                                  "
    "         \x0a"
    "\x00\x00\x00\x80\x00<\x00\xc0\xff{\x01\x00\x00\x04\x00|\x00\xfcT5"
    "\x00~";

// np.save(f, np.array([[1.0, -2.5], [3.140625, 1e38]],
//                     dtype=ml_dtypes.bfloat16))
const char kNpyBF16_2x2[] =
    "\x93NUMPY\x01\x00v\x00{'descr': '<V2', 'fortran_order': False, 's"
    "hape': (2, 2), }                                                 "
    "         \x0a"
    "\x80\x3f \xc0I@\x96~";

// np.save(f, np.arange(-3, 3, dtype='<i4').reshape(1, 2, 1, 3))
const char kNpyI32Rank4[] =
    "\x93NUMPY\x01\x00v\x00{'descr': '<i4', 'fortran_order': False, 's"
    "hape': (1, 2, 1, 3), }                                           "
    "         \x0a"
    "\xfd\xff\xff\xff\xfe\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x01"
    "\x00\x00\x00\x02\x00\x00\x00";

// np.save(f, np.array([-(2**62), 0, 2**53 + 1], dtype='<i8'))
const char kNpyI64[] =
    "\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 's"
    "hape': (3,), }                                                   "
    "         \x0a"
    "\x00\x00\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x00\x00\x01"
    "\x00\x00\x00\x00\x00 \x00";

// np.save(f, np.asfortranarray(np.arange(6, dtype='<f4').reshape(2, 3)))
const char kNpyF32Fortran[] =
    "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': True, 'sh"
    "ape': (2, 3), }                                                  "
    "         \x0a"
    "\x00\x00\x00\x00\x00\x00@@\x00\x00\x80\x3f\x00\x00\x80@\x00\x00\x00"
    "@\x00\x00\xa0@";

// np.save(f, np.array([1, 2], dtype='>f4'))
const char kNpyF32BigEndian[] =
    "\x93NUMPY\x01\x00v\x00{'descr': '>f4', 'fortran_order': False, 's"
    "hape': (2,), }                                                   "
    "         \x0a"
    "\x3f\x80\x00\x00@\x00\x00\x00";

// np.lib.format.write_array(f, np.arange(3, dtype='<f4'), version=(2, 0))
const char kNpyF32Version2[] =
    "\x93NUMPY\x02\x00t\x00\x00\x00{'descr': '<f4', 'fortran_order': F"
    "alse, 'shape': (3,), }                                           "
    "               \x0a"
    "\x00\x00\x00\x00\x00\x00\x80\x3f\x00\x00\x00@";

// np.lib.format.write_array(f, np.arange(3, dtype='<f4'), version=(3, 0))
const char kNpyF32Version3[] =
    "\x93NUMPY\x03\x00t\x00\x00\x00{'descr': '<f4', 'fortran_order': F"
    "alse, 'shape': (3,), }                                           "
    "               \x0a"
    "\x00\x00\x00\x00\x00\x00\x80\x3f\x00\x00\x00@";

// np.save(f, np.zeros((0, 3), dtype='<f8'))
const char kNpyF64Empty[] =
    "\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 's"
    "hape': (0, 3), }                                                 "
    "         \x0a";

// np.save(f, np.array([1, 2], dtype='|u1'))
const char kNpyU8[] =
    "\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 's"
    "hape': (2,), }                                                   "
    "         \x0a"
    "\x01\x02";

// Rounding goldens: float32 inputs (special cases, then scaled random
// normals) and their conversions by NumPy (f32 -> f16) and ml_dtypes
// (f32 -> bf16), as bit patterns; then f64 inputs and NumPy's f64 -> f16.
const uint32_t kRoundInputs[] = {
    0x3f801000u, 0x3f803000u, 0x3f801008u, 0x477fe000u, 0x477fefffu,
    0x477ff000u, 0x33000000u, 0x33c00000u, 0x33000347u, 0x322bcc77u,
    0x7f7fffffu, 0x00000001u, 0x80000000u, 0x7f800000u, 0xff800000u,
    0x3f808000u, 0x3f818000u, 0x3f808008u, 0x7f7f0000u, 0x7f7f8000u,
    0x000116c2u, 0x800116c2u, 0x00010000u, 0x00008000u, 0x00018000u,
    0x387fda40u, 0xb87fda40u, 0x337ffae5u, 0x32fffae5u, 0x33006b66u,
    0x3dcccccdu, 0xbdcccccdu, 0x3eaaaaabu, 0xbc8362e5u, 0x3a2808b9u,
    0x3d97bc0bu, 0x3e1c4835u, 0x3567dc07u, 0x31482fc9u, 0xc313e1e1u,
    0x371e9fc1u, 0xc3269d11u, 0x48a7d813u, 0xbba7eae5u, 0x3c58e27au,
    0xb566ee01u, 0x45a25775u, 0xc49e2499u, 0xcba4baafu, 0x4587dab7u,
    0x343a1c4bu, 0x474b2d6au, 0xccbf25e0u, 0x398cb0bbu, 0x354defd8u,
    0x49916b40u, 0xcb309b5cu};
const uint16_t kRoundF16[] = {
    0x3c00, 0x3c02, 0x3c01, 0x7bff, 0x7bff, 0x7c00, 0x0000, 0x0002, 0x0001,
    0x0000, 0x7c00, 0x0000, 0x8000, 0x7c00, 0xfc00, 0x3c04, 0x3c0c, 0x3c04,
    0x7c00, 0x7c00, 0x0000, 0x8000, 0x0000, 0x0000, 0x0000, 0x03ff, 0x83ff,
    0x0001, 0x0000, 0x0001, 0x2e66, 0xae66, 0x3555, 0xa41b, 0x1140, 0x2cbe,
    0x30e2, 0x000e, 0x0000, 0xd89f, 0x009f, 0xd935, 0x7c00, 0x9d3f, 0x22c7,
    0x800e, 0x6d13, 0xe4f1, 0xfc00, 0x6c3f, 0x0003, 0x7a59, 0xfc00, 0x0c66,
    0x000d, 0x7c00, 0xfc00};
const uint16_t kRoundBF16[] = {
    0x3f80, 0x3f80, 0x3f80, 0x4780, 0x4780, 0x4780, 0x3300, 0x33c0, 0x3300,
    0x322c, 0x7f80, 0x0000, 0x8000, 0x7f80, 0xff80, 0x3f80, 0x3f82, 0x3f81,
    0x7f7f, 0x7f80, 0x0001, 0x8001, 0x0001, 0x0000, 0x0002, 0x3880, 0xb880,
    0x3380, 0x3300, 0x3300, 0x3dcd, 0xbdcd, 0x3eab, 0xbc83, 0x3a28, 0x3d98,
    0x3e1c, 0x3568, 0x3148, 0xc314, 0x371f, 0xc327, 0x48a8, 0xbba8, 0x3c59,
    0xb567, 0x45a2, 0xc49e, 0xcba5, 0x4588, 0x343a, 0x474b, 0xccbf, 0x398d,
    0x354e, 0x4991, 0xcb31};
const uint64_t kRoundF64Inputs[] = {
    0x3ff0020000001000ull, 0x3ff0020000000000ull, 0x40effdfffffffaa2ull,
    0x3e60000000020000ull, 0x3fb999999999999aull, 0x3fd5555555555555ull,
    0x81a56e1fc2f8f359ull, 0x7e37e43c8800759cull, 0xbff487b273d7b462ull,
    0xbff5490675639c32ull, 0x3fea6e880014b2c2ull, 0xbfcfa4bdd9bcb958ull,
    0xbffb31ff0a5968fbull, 0xbff55cc9407148f7ull, 0xbfd32d4897d5063bull,
    0x3ff1d63fc22768b9ull};
const uint16_t kRoundF64ToF16[] = {
    0x3c01, 0x3c00, 0x7bff, 0x0001, 0x2e66, 0x3555, 0x8000, 0x7c00,
    0xbd22, 0xbd52, 0x3a9c, 0xb3e9, 0xbecc, 0xbd57, 0xb4cb, 0x3c76};

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

/// The bytes of a string literal, without its terminating NUL.
template <size_t N> std::vector<uint8_t> bytesOf(const char (&s)[N]) {
  return std::vector<uint8_t>(s, s + N - 1);
}

std::vector<uint8_t> bytesOf(const std::string &s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

/// A .npy image with the header text `dict` (plus '\n', no padding).
std::vector<uint8_t> makeNpy(const std::string &dict,
                             const std::vector<uint8_t> &data,
                             unsigned major = 1) {
  std::vector<uint8_t> out = {
      0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  size_t hlen = dict.size() + 1;
  size_t lenBytes = major == 1 ? 2 : 4;
  for (size_t i = 0; i < lenBytes; ++i)
    out.push_back(static_cast<uint8_t>(hlen >> (8 * i)));
  out.insert(out.end(), dict.begin(), dict.end());
  out.push_back('\n');
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::vector<uint8_t> zeros(size_t n) { return std::vector<uint8_t>(n, 0); }

Array mustParse(const std::vector<uint8_t> &bytes,
                const LoadOptions &options = {}) {
  Array a;
  EXPECT_EQ(loadFromMemory(bytes, a, options), "");
  return a;
}

std::vector<uint8_t> mustSerialize(const Array &a) {
  std::vector<uint8_t> out;
  EXPECT_EQ(serialize(a, out), "");
  return out;
}

/// A fresh path under the test temp directory.
std::string tempPath(const std::string &stem) {
  std::random_device rd;
  const ::testing::TestInfo *info =
      ::testing::UnitTest::GetInstance()->current_test_info();
  return ::testing::TempDir() + "linattn_npy_" + info->name() + "_" + stem +
         "_" + std::to_string(rd()) + ".npy";
}

bool sameArray(const Array &a, const Array &b) {
  return a.dtype == b.dtype && a.shape == b.shape &&
         a.fortranOrder == b.fortranOrder && a.data == b.data;
}

const std::vector<DType> kAllDTypes = {DType::F16, DType::BF16, DType::F32,
                                       DType::F64, DType::I32,  DType::I64};

//===----------------------------------------------------------------------===//
// DType
//===----------------------------------------------------------------------===//

TEST(NpyDType, NamesSizesAndDescrs) {
  const char *names[] = {"f16", "bf16", "f32", "f64", "i32", "i64"};
  const size_t sizes[] = {2, 2, 4, 8, 4, 8};
  const char *descrs[] = {"<f2", "<V2", "<f4", "<f8", "<i4", "<i8"};
  for (size_t i = 0; i < kAllDTypes.size(); ++i) {
    EXPECT_STREQ(toString(kAllDTypes[i]), names[i]);
    EXPECT_EQ(elementSize(kAllDTypes[i]), sizes[i]);
    EXPECT_STREQ(numpyDescr(kAllDTypes[i]), descrs[i]);
    Array a;
    a.dtype = kAllDTypes[i];
    EXPECT_EQ(a.elementSize(), sizes[i]);
  }
}

TEST(NpyDType, Numel) {
  Array a;
  EXPECT_EQ(a.numel(), 1); // rank 0
  a.shape = {2, 3, 4};
  EXPECT_EQ(a.numel(), 24);
  a.shape = {2, 0, 4};
  EXPECT_EQ(a.numel(), 0);
  a.shape = {2, -1};
  EXPECT_EQ(a.numel(), 0);
  a.shape = {int64_t(1) << 40, int64_t(1) << 40};
  EXPECT_EQ(a.numel(), std::numeric_limits<int64_t>::max());
}

//===----------------------------------------------------------------------===//
// Golden files: read what NumPy wrote, write it back byte for byte
//===----------------------------------------------------------------------===//

TEST(NpyGolden, F32Matrix) {
  std::vector<uint8_t> golden = bytesOf(kNpyF32_2x3);
  Array a = mustParse(golden);
  EXPECT_EQ(a.dtype, DType::F32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_FALSE(a.fortranOrder);
  EXPECT_EQ(toF32(a),
            (std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f}));
  EXPECT_EQ(mustSerialize(a), golden);
}

TEST(NpyGolden, F64Scalar) {
  std::vector<uint8_t> golden = bytesOf(kNpyF64Scalar);
  Array a = mustParse(golden);
  EXPECT_EQ(a.dtype, DType::F64);
  EXPECT_TRUE(a.shape.empty());
  EXPECT_EQ(a.numel(), 1);
  EXPECT_EQ(toF64(a), std::vector<double>{3.25});
  EXPECT_EQ(mustSerialize(a), golden);
}

TEST(NpyGolden, F16Specials) {
  std::vector<uint8_t> golden = bytesOf(kNpyF16Specials);
  Array a = mustParse(golden);
  EXPECT_EQ(a.dtype, DType::F16);
  EXPECT_EQ(a.shape, std::vector<int64_t>{11});
  std::vector<float> v = toF32(a);
  ASSERT_EQ(v.size(), 11u);
  const float inf = std::numeric_limits<float>::infinity();
  const float expected[] = {0.0f,
                            -0.0f,
                            1.0f,
                            -2.0f,
                            65504.0f,
                            std::ldexp(1.0f, -24),
                            std::ldexp(1.0f, -14),
                            inf,
                            -inf,
                            0.33300781f};
  for (size_t i = 0; i < 10; ++i)
    EXPECT_EQ(v[i], expected[i]) << "element " << i;
  EXPECT_TRUE(std::signbit(v[1]));
  EXPECT_TRUE(std::isnan(v[10]));
  EXPECT_EQ(mustSerialize(a), golden);
}

TEST(NpyGolden, BF16FromMlDtypes) {
  // np.save of an ml_dtypes.bfloat16 array writes descr '<V2'.
  std::vector<uint8_t> golden = bytesOf(kNpyBF16_2x2);
  Array a = mustParse(golden);
  EXPECT_EQ(a.dtype, DType::BF16);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 2}));
  std::vector<float> v = toF32(a);
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -2.5f);
  EXPECT_EQ(v[2], 3.140625f);
  EXPECT_EQ(v[3], bfloat16ToFloat(0x7e96)); // 1e38 rounded by ml_dtypes
  EXPECT_EQ(fromF32({1.0f, -2.5f, 3.140625f, 1e38f}, {2, 2}, DType::BF16).data,
            a.data);
  EXPECT_EQ(mustSerialize(a), golden);
}

TEST(NpyGolden, I32Rank4) {
  std::vector<uint8_t> golden = bytesOf(kNpyI32Rank4);
  Array a = mustParse(golden);
  EXPECT_EQ(a.dtype, DType::I32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{1, 2, 1, 3}));
  EXPECT_EQ(toF64(a), (std::vector<double>{-3, -2, -1, 0, 1, 2}));
  EXPECT_EQ(mustSerialize(a), golden);
}

TEST(NpyGolden, I64) {
  std::vector<uint8_t> golden = bytesOf(kNpyI64);
  Array a = mustParse(golden);
  EXPECT_EQ(a.dtype, DType::I64);
  EXPECT_EQ(a.shape, std::vector<int64_t>{3});
  std::vector<double> d = toF64(a);
  EXPECT_EQ(d[0], -std::ldexp(1.0, 62));
  EXPECT_EQ(d[1], 0.0);
  EXPECT_EQ(d[2], std::ldexp(1.0, 53)); // 2^53 + 1 rounds to even
  // The raw bytes keep the exact value.
  int64_t raw;
  std::memcpy(&raw, a.data.data() + 16, 8);
  EXPECT_EQ(raw, (int64_t(1) << 53) + 1);
  EXPECT_EQ(mustSerialize(a), golden);
}

TEST(NpyGolden, Version2And3Headers) {
  for (std::vector<uint8_t> golden :
       {bytesOf(kNpyF32Version2), bytesOf(kNpyF32Version3)}) {
    Array a = mustParse(golden);
    EXPECT_EQ(a.dtype, DType::F32);
    EXPECT_EQ(a.shape, std::vector<int64_t>{3});
    EXPECT_EQ(toF32(a), (std::vector<float>{0.0f, 1.0f, 2.0f}));
    // Small headers are written back as version 1.0.
    std::vector<uint8_t> out = mustSerialize(a);
    EXPECT_EQ(out[6], 1);
    EXPECT_EQ(mustParse(out).data, a.data);
  }
}

TEST(NpyGolden, EmptyArray) {
  std::vector<uint8_t> golden = bytesOf(kNpyF64Empty);
  Array a = mustParse(golden);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(a.numel(), 0);
  EXPECT_TRUE(a.data.empty());
  EXPECT_TRUE(toF64(a).empty());
  EXPECT_EQ(mustSerialize(a), golden);
}

TEST(NpyGolden, FortranOrderOptions) {
  // np.asfortranarray(np.arange(6).reshape(2, 3)).
  std::vector<uint8_t> golden = bytesOf(kNpyF32Fortran);
  Array untouched;
  EXPECT_NE(loadFromMemory(golden, untouched).find("fortran_order=True"),
            std::string::npos);

  Array kept = mustParse(golden, {FortranOrder::Keep});
  EXPECT_TRUE(kept.fortranOrder);
  EXPECT_EQ(toF32(kept), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(mustSerialize(kept), golden);

  Array transposed = mustParse(golden, {FortranOrder::Transpose});
  EXPECT_FALSE(transposed.fortranOrder);
  EXPECT_EQ(transposed.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(toF32(transposed), (std::vector<float>{0, 1, 2, 3, 4, 5}));

  EXPECT_EQ(toCOrder(kept), "");
  EXPECT_TRUE(sameArray(kept, transposed));
}

TEST(NpyGolden, TransposeRank3) {
  // Column-major 2x3x4: element (i, j, k) is stored at i + 2 j + 6 k.
  std::vector<double> colMajor(24);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        colMajor[i + 2 * j + 6 * k] = 100 * i + 10 * j + k;
  Array a = fromF64(colMajor, {2, 3, 4}, DType::I64);
  a.fortranOrder = true;
  ASSERT_EQ(toCOrder(a), "");
  std::vector<double> v = toF64(a);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        EXPECT_EQ(v[12 * i + 4 * j + k], 100 * i + 10 * j + k);
}

//===----------------------------------------------------------------------===//
// Round trips
//===----------------------------------------------------------------------===//

TEST(NpyRoundTrip, EveryDTypeAndRankThroughFiles) {
  const std::vector<std::vector<int64_t>> shapes = {
      {}, {5}, {2, 3}, {2, 1, 3}, {2, 3, 1, 2}, {0}, {3, 0, 2}};
  for (DType t : kAllDTypes) {
    for (const std::vector<int64_t> &shape : shapes) {
      SCOPED_TRACE(std::string(toString(t)) + " rank " +
                   std::to_string(shape.size()));
      Array a;
      a.shape = shape;
      std::vector<double> values(static_cast<size_t>(a.numel()));
      for (size_t i = 0; i < values.size(); ++i)
        values[i] = (i % 2 ? -1.0 : 1.0) * (0.5 * static_cast<double>(i) +
                                            (t >= DType::I32 ? 1.0 : 0.25));
      if (t >= DType::I32)
        for (double &v : values)
          v = std::round(v);
      a = fromF64(values, shape, t);
      ASSERT_EQ(validate(a), "");

      std::string path = tempPath(toString(t));
      ASSERT_EQ(save(path, a), "");
      Array b;
      ASSERT_EQ(load(path, b), "");
      std::remove(path.c_str());
      EXPECT_TRUE(sameArray(a, b));
      EXPECT_EQ(toF64(b), values); // all values are exact in every dtype

      // Same bytes through memory; the data is 64-byte aligned like NumPy's.
      std::vector<uint8_t> bytes = mustSerialize(a);
      EXPECT_EQ((bytes.size() - a.data.size()) % 64, 0u);
      EXPECT_TRUE(sameArray(mustParse(bytes), a));
    }
  }
}

TEST(NpyRoundTrip, FloatToF32ThroughEveryDType) {
  std::vector<float> v = {0.0f, 1.0f, -2.0f, 4.0f, 3.0f};
  for (DType t : kAllDTypes) {
    Array a = fromF32(v, {5}, t);
    EXPECT_EQ(toF32(a), v) << toString(t);
  }
}

TEST(NpyRoundTrip, HugeRankUsesVersion2Header) {
  // 30000 extents of 1 make a header over 65535 bytes.
  Array a = fromF32({42.0f}, std::vector<int64_t>(30000, 1), DType::F32);
  std::vector<uint8_t> bytes = mustSerialize(a);
  EXPECT_EQ(bytes[6], 2);
  EXPECT_EQ(bytes[7], 0);
  EXPECT_EQ((bytes.size() - 4) % 64, 0u);
  Array b = mustParse(bytes);
  EXPECT_TRUE(sameArray(a, b));
  EXPECT_EQ(toF32(b), std::vector<float>{42.0f});
}

TEST(NpyRoundTrip, FortranOrderIsWritten) {
  Array a = fromF32({0, 3, 1, 4, 2, 5}, {2, 3}, DType::F32);
  a.fortranOrder = true;
  EXPECT_EQ(mustSerialize(a), bytesOf(kNpyF32Fortran));
}

//===----------------------------------------------------------------------===//
// Accepted header variants
//===----------------------------------------------------------------------===//

TEST(NpyHeader, AcceptedVariants) {
  struct Case {
    const char *dict;
    DType dtype;
    std::vector<int64_t> shape;
  };
  const Case cases[] = {
      {"{'descr': '=f4', 'fortran_order': False, 'shape': (2,), }",
       DType::F32,
       {2}},
      {"{'descr': 'f4', 'fortran_order': False, 'shape': (2,), }",
       DType::F32,
       {2}},
      {"{'descr': '|V2', 'fortran_order': False, 'shape': (4,), }",
       DType::BF16,
       {4}},
      {"{'descr': 'V2', 'fortran_order': False, 'shape': (4,), }",
       DType::BF16,
       {4}},
      {"{'descr': 'bfloat16', 'fortran_order': False, 'shape': (4,), }",
       DType::BF16,
       {4}},
      {"{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (1,)}",
       DType::F64,
       {1}},
      {"{'descr':'<i4','fortran_order':False,'shape':(2,1)}",
       DType::I32,
       {2, 1}},
      {"{'shape': (2L, 1L), 'fortran_order': False, 'descr': '<i8'}",
       DType::I64,
       {2, 1}},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2, 2,), }",
       DType::F16,
       {1, 2, 2}},
      {"{\n 'descr' : '<f4' ,\n 'fortran_order' : False ,\n 'shape' : ( ) "
       ",\n}\t \r",
       DType::F32,
       {}},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.dict);
    Array probe;
    probe.shape = c.shape;
    size_t bytes = static_cast<size_t>(probe.numel()) * elementSize(c.dtype);
    Array a = mustParse(makeNpy(c.dict, zeros(bytes)));
    EXPECT_EQ(a.dtype, c.dtype);
    EXPECT_EQ(a.shape, c.shape);
    EXPECT_EQ(a.data.size(), bytes);
  }
}

//===----------------------------------------------------------------------===//
// Malformed inputs: each gives a specific error and leaves `out` untouched
//===----------------------------------------------------------------------===//

struct BadCase {
  const char *name;
  std::vector<uint8_t> bytes;
  const char *error;
};

/// Names the case in gtest output instead of dumping its bytes.
void PrintTo(const BadCase &c, std::ostream *os) { *os << c.name; }

std::vector<uint8_t> truncatedBy(std::vector<uint8_t> v, size_t n) {
  v.resize(v.size() - n);
  return v;
}

std::vector<uint8_t> withVersion(std::vector<uint8_t> v, uint8_t major,
                                 uint8_t minor) {
  v[6] = major;
  v[7] = minor;
  return v;
}

std::vector<uint8_t> hdr(const std::string &dict, size_t dataBytes = 8) {
  return makeNpy(dict, zeros(dataBytes));
}

std::vector<BadCase> badCases() {
  std::vector<uint8_t> f32 = bytesOf(kNpyF32_2x3);
  std::vector<uint8_t> trailing = f32;
  trailing.insert(trailing.end(), 4, 0);
  std::vector<uint8_t> longHeader = f32;
  longHeader[8] = 0xff; // header length 0x00ff > what follows
  longHeader.resize(200);
  const std::string pre = "{'descr': '<f4', 'fortran_order': False, ";
  return {
      {"Empty", {}, "truncated: the file is empty"},
      {"ShortMagic", {0x93, 'N', 'U', 'M'}, "truncated header: 4 bytes"},
      {"NoHeaderLength", truncatedBy(f32, f32.size() - 9),
       "truncated header: 9 bytes"},
      {"BadMagic", bytesOf(std::string("PK\x03\x04 not an npy file")),
       "bad magic: not a .npy file"},
      {"BadMagicCase", bytesOf(std::string("\x93numpy\x01\x00\x00\x00")),
       "bad magic"},
      {"Version4", withVersion(f32, 4, 0),
       "unsupported format version 4.0 (supported: 1.0, 2.0, 3.0)"},
      {"Version1_1", withVersion(f32, 1, 1), "unsupported format version 1.1"},
      {"HeaderLengthPastEnd", longHeader,
       "truncated header: the header length is 255 bytes but only 190 "
       "follow"},
      {"TruncatedData", truncatedBy(f32, 2),
       "truncated data: shape (2, 3) of f32 needs 24 data bytes but only 22 "
       "follow the header"},
      {"TruncatedToHeader", truncatedBy(f32, 24),
       "truncated data: shape (2, 3) of f32 needs 24 data bytes but only 0 "
       "follow"},
      {"TrailingData", trailing,
       "shape/size mismatch: shape (2, 3) of f32 needs 24 data bytes but 28 "
       "follow the header"},
      {"ShapeMismatch",
       hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 16),
       "truncated data: shape (3,) of f64 needs 24 data bytes but only 16"},
      {"NotADict", hdr("[('descr', '<f4')]"),
       "malformed header: expected '{' at the start of the header dict: "
       "[('descr', '<f4')]"},
      {"MissingKey", hdr("{'descr': '<f4', 'shape': (2,), }"),
       "malformed header: missing key 'fortran_order'"},
      {"MissingShape", hdr("{'descr': '<f4', 'fortran_order': False}"),
       "malformed header: missing key 'shape'"},
      {"UnexpectedKey", hdr(pre + "'shape': (2,), 'foo': 1}"),
       "malformed header: unexpected key 'foo'"},
      {"DuplicateKey", hdr(pre + "'shape': (2,), 'descr': '<f4'}"),
       "malformed header: duplicate key 'descr'"},
      {"UnquotedKey", hdr("{descr: '<f4'}"),
       "malformed header: expected a quoted key or '}'"},
      {"MissingColon", hdr("{'descr' '<f4'}"),
       "malformed header: expected ':' after key 'descr'"},
      {"MissingComma", hdr("{'descr': '<f4' 'shape': (2,)}"),
       "malformed header: expected ',' or '}' after the value of 'descr'"},
      {"UnterminatedString", hdr("{'descr': '<f4}"),
       "malformed header: unterminated string"},
      {"EscapeInString", hdr("{'descr': '<f\\x34'}"),
       "malformed header: escape sequences in header strings are not "
       "supported"},
      {"NonStringDescr", hdr("{'descr': 4}"),
       "malformed header: descr must be a string"},
      {"BadFortranOrder",
       hdr("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}"),
       "malformed header: fortran_order must be True or False"},
      {"FortranOrderPrefix",
       hdr("{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,)}"),
       "malformed header: fortran_order must be True or False"},
      {"ShapeIsList", hdr(pre + "'shape': [2], }"),
       "malformed header: shape must be a tuple of ints"},
      {"ShapeNotTuple", hdr(pre + "'shape': (2), }"),
       "malformed header: shape (2) is not a tuple (a 1-d shape is written "
       "(2,))"},
      {"ShapeFloat", hdr(pre + "'shape': (2.0,), }"),
       "malformed header: expected ',' or ')' in shape"},
      {"ShapeName", hdr(pre + "'shape': (n,), }"),
       "malformed header: shape must be a tuple of ints"},
      {"ShapeUnclosed", hdr(pre + "'shape': (2,"),
       "malformed header: shape must be a tuple of ints"},
      {"NegativeExtent", hdr(pre + "'shape': (-1, 2), }"),
       "malformed header: negative extent -1 in shape"},
      {"ExtentOverflow", hdr(pre + "'shape': (99999999999999999999,), }"),
       "malformed header: extent in shape does not fit in int64"},
      {"SizeTooLarge", hdr(pre + "'shape': (4611686018427387904, 4), }"),
       "shape (4611686018427387904, 4) is too large"},
      {"TextAfterDict", hdr(pre + "'shape': (2,), } x"),
       "malformed header: unexpected text after the header dict"},
      {"NulInHeader", hdr(pre + "'shape': (2,), }" + std::string(1, '\0')),
       "malformed header: unexpected text after the header dict"},
      {"StructuredDescr",
       hdr("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}"),
       "malformed header: structured dtypes (a list descr) are not "
       "supported"},
      {"UnsupportedDescr",
       hdr("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }"),
       "unsupported dtype '<c8' (supported: '<f2', '<f4', '<f8', '<i4', "
       "'<i8', and '<V2' or 'bfloat16' for bf16)"},
      {"UnsupportedU1FromNumpy", bytesOf(kNpyU8), "unsupported dtype '|u1'"},
      {"ObjectDescr",
       hdr("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"),
       "unsupported dtype '|O'"},
      {"BigEndianFromNumpy", bytesOf(kNpyF32BigEndian),
       "big-endian dtype '>f4' is not supported; re-save it little-endian, "
       "e.g. a.astype('<f4')"},
      {"BigEndianBF16",
       hdr("{'descr': '>V2', 'fortran_order': False, 'shape': (4,), }"),
       "big-endian dtype '>V2' is not supported"},
      {"PipeOnMultiByte",
       hdr("{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }"),
       "byte-order mark '|' is not meaningful for the multi-byte dtype "
       "'|f4'"},
      {"FortranOrderFromNumpy", bytesOf(kNpyF32Fortran),
       "fortran_order=True is not supported; re-save the array with "
       "np.ascontiguousarray"},
  };
}

class NpyMalformed : public ::testing::TestWithParam<BadCase> {};

TEST_P(NpyMalformed, GivesSpecificErrorAndLeavesOutputUntouched) {
  const BadCase &c = GetParam();
  Array out = fromF32({7.0f}, {1}, DType::F64);
  const Array before = out;
  std::string err = loadFromMemory(c.bytes, out);
  EXPECT_EQ(err.rfind("<memory>: ", 0), 0u) << err;
  EXPECT_NE(err.find(c.error), std::string::npos)
      << "error: " << err << "\nexpected to contain: " << c.error;
  EXPECT_TRUE(sameArray(out, before));
}

INSTANTIATE_TEST_SUITE_P(Table, NpyMalformed, ::testing::ValuesIn(badCases()),
                         [](const ::testing::TestParamInfo<BadCase> &info) {
                           return std::string(info.param.name);
                         });

TEST(NpyMalformedExhaustive, EveryPrefixOfEveryGoldenFails) {
  // No prefix of a valid file may load, crash, or touch the output.
  for (std::vector<uint8_t> golden :
       {bytesOf(kNpyF32_2x3), bytesOf(kNpyF64Scalar), bytesOf(kNpyF32Version2),
        bytesOf(kNpyBF16_2x2)}) {
    for (size_t n = 0; n < golden.size(); ++n) {
      Array out;
      std::string err = parse(golden.data(), n, out);
      EXPECT_NE(err, "") << "prefix of " << n << " bytes";
      EXPECT_TRUE(out.data.empty() && out.shape.empty());
    }
  }
}

TEST(NpyMalformedExhaustive, SingleByteCorruptionsNeverCrash) {
  std::vector<uint8_t> golden = bytesOf(kNpyF32_2x3);
  const uint8_t values[] = {0x00, 0x0a, ' ', '\'', '(', ')',  ',',
                            '-',  '9',  '{', '}',  'L', 0x80, 0xff};
  size_t failures = 0;
  for (size_t i = 0; i < golden.size(); ++i) {
    for (uint8_t v : values) {
      std::vector<uint8_t> bad = golden;
      bad[i] = v;
      Array out;
      if (!loadFromMemory(bad, out).empty())
        ++failures;
      else
        EXPECT_EQ(validate(out), "");
    }
  }
  EXPECT_GT(failures, 0u);
}

TEST(NpyParse, NullBuffer) {
  Array out;
  EXPECT_EQ(parse(nullptr, 0, out), "<memory>: truncated: the file is empty");
  EXPECT_EQ(parse(nullptr, 16, out), "<memory>: no data (null buffer)");
}

//===----------------------------------------------------------------------===//
// Files
//===----------------------------------------------------------------------===//

TEST(NpyFiles, MissingFile) {
  std::string path = tempPath("missing");
  Array out;
  EXPECT_EQ(load(path, out),
            path + ": cannot open for reading: No such file or directory");
}

TEST(NpyFiles, DirectoryIsAReadError) {
  Array out;
  std::string err = load(::testing::TempDir(), out);
  EXPECT_NE(err, "");
  EXPECT_EQ(err.rfind(::testing::TempDir() + ": ", 0), 0u) << err;
}

TEST(NpyFiles, ErrorsNameTheFile) {
  std::string path = tempPath("bigendian");
  std::vector<uint8_t> bytes = bytesOf(kNpyF32BigEndian);
  std::FILE *f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
  std::fclose(f);
  Array out;
  std::string err = load(path, out);
  std::remove(path.c_str());
  EXPECT_EQ(err.rfind(path + ": big-endian dtype '>f4'", 0), 0u) << err;
}

TEST(NpyFiles, SaveReportsUnwritablePath) {
  std::string path = ::testing::TempDir() + "no_such_dir_linattn/x.npy";
  std::string err = save(path, fromF32({1.0f}, {1}, DType::F32));
  EXPECT_EQ(err, path + ": cannot open for writing: No such file or directory");
}

TEST(NpyFiles, SaveRejectsInconsistentArrays) {
  std::string path = tempPath("inconsistent");
  // fromF32 keeps the shape even when the value count does not match.
  Array a = fromF32({1.0f, 2.0f}, {3}, DType::F32);
  EXPECT_EQ(save(path, a),
            path + ": shape/size mismatch: shape (3,) of f32 needs 12 bytes "
                   "but the data has 8");
  EXPECT_EQ(std::fopen(path.c_str(), "rb"), nullptr); // nothing written
  a.shape = {-2};
  EXPECT_EQ(save(path, a), path + ": negative extent -2 in shape (-2,)");
  std::vector<uint8_t> out = {1, 2, 3};
  EXPECT_NE(serialize(a, out), "");
  EXPECT_EQ(out, (std::vector<uint8_t>{1, 2, 3}));
}

TEST(NpyFiles, ToCOrderRejectsInconsistentArrays) {
  Array a = fromF32({1.0f, 2.0f}, {3, 1}, DType::F32);
  a.fortranOrder = true;
  EXPECT_NE(toCOrder(a), "");
  EXPECT_TRUE(a.fortranOrder);
  EXPECT_EQ(a.data.size(), 8u);
}

//===----------------------------------------------------------------------===//
// Conversions
//===----------------------------------------------------------------------===//

float f32FromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

TEST(NpyConvert, F32ToF16MatchesNumpy) {
  size_t n = sizeof(kRoundInputs) / sizeof(kRoundInputs[0]);
  std::vector<float> in;
  for (size_t i = 0; i < n; ++i)
    in.push_back(f32FromBits(kRoundInputs[i]));
  Array a = fromF32(in, {static_cast<int64_t>(n)}, DType::F16);
  for (size_t i = 0; i < n; ++i) {
    uint16_t got =
        static_cast<uint16_t>(a.data[2 * i] | a.data[2 * i + 1] << 8);
    EXPECT_EQ(got, kRoundF16[i]) << "input " << in[i] << " (#" << i << ")";
    EXPECT_EQ(floatToHalf(in[i]), kRoundF16[i]);
  }
}

TEST(NpyConvert, F32ToBF16MatchesMlDtypes) {
  size_t n = sizeof(kRoundInputs) / sizeof(kRoundInputs[0]);
  std::vector<float> in;
  for (size_t i = 0; i < n; ++i)
    in.push_back(f32FromBits(kRoundInputs[i]));
  Array a = fromF32(in, {static_cast<int64_t>(n)}, DType::BF16);
  for (size_t i = 0; i < n; ++i) {
    uint16_t got =
        static_cast<uint16_t>(a.data[2 * i] | a.data[2 * i + 1] << 8);
    EXPECT_EQ(got, kRoundBF16[i]) << "input " << in[i] << " (#" << i << ")";
    EXPECT_EQ(floatToBFloat16(in[i]), kRoundBF16[i]);
  }
}

TEST(NpyConvert, F64ToF16MatchesNumpy) {
  size_t n = sizeof(kRoundF64Inputs) / sizeof(kRoundF64Inputs[0]);
  for (size_t i = 0; i < n; ++i) {
    double d;
    std::memcpy(&d, &kRoundF64Inputs[i], 8);
    EXPECT_EQ(doubleToHalf(d), kRoundF64ToF16[i]) << "input " << d;
    EXPECT_EQ(
        fromF64({d}, {}, DType::F16).data,
        (std::vector<uint8_t>{static_cast<uint8_t>(kRoundF64ToF16[i]),
                              static_cast<uint8_t>(kRoundF64ToF16[i] >> 8)}));
  }
}

TEST(NpyConvert, F64ToBF16RoundsOnce) {
  // 1 + 2^-8 + 2^-30 is just above the tie between bf16 1.0 and 1 + 2^-7.
  // Rounding through f32 first (as ml_dtypes does) hits the tie and gives 1.0.
  double d = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30);
  EXPECT_EQ(doubleToBFloat16(d), 0x3f81);
  EXPECT_EQ(floatToBFloat16(static_cast<float>(d)), 0x3f80);
  EXPECT_EQ(doubleToBFloat16(1.0 + std::ldexp(1.0, -8)), 0x3f80); // tie: even
  EXPECT_EQ(doubleToBFloat16(1e300), 0x7f80);
  EXPECT_EQ(doubleToBFloat16(-1e-300), 0x8000);
}

TEST(NpyConvert, EveryHalfAndBFloat16RoundTrips) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    uint16_t h = static_cast<uint16_t>(b);
    float f = halfToFloat(h);
    float g = bfloat16ToFloat(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(f))));
      EXPECT_EQ(floatToHalf(f) & 0x8000, h & 0x8000);
    } else {
      ASSERT_EQ(floatToHalf(f), h) << std::hex << b;
      ASSERT_EQ(doubleToHalf(f), h) << std::hex << b;
    }
    if (std::isnan(g)) {
      EXPECT_TRUE(std::isnan(bfloat16ToFloat(floatToBFloat16(g))));
      EXPECT_EQ(floatToBFloat16(g) & 0x8000, h & 0x8000);
    } else {
      ASSERT_EQ(floatToBFloat16(g), h) << std::hex << b;
    }
  }
}

TEST(NpyConvert, NaNStaysQuietNaN) {
  const float qnan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(floatToHalf(qnan), 0x7e00);
  EXPECT_EQ(floatToBFloat16(qnan), 0x7fc0);
  EXPECT_EQ(floatToHalf(-qnan), 0xfe00);
  EXPECT_EQ(floatToBFloat16(-qnan), 0xffc0);
  // A signaling NaN with a payload only in the low bits becomes quiet.
  float snan = f32FromBits(0x7f800001u);
  EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(snan))));
  EXPECT_TRUE(std::isnan(bfloat16ToFloat(floatToBFloat16(snan))));
}

TEST(NpyConvert, ToIntegersRoundToEvenAndSaturate) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> in = {2.5, 3.5, -2.5, -0.4, 1e10, -1e10, inf, -inf, nan};
  Array a = fromF64(in, {9}, DType::I32);
  std::vector<int32_t> got(9);
  std::memcpy(got.data(), a.data.data(), 36);
  const int32_t imax = std::numeric_limits<int32_t>::max();
  const int32_t imin = std::numeric_limits<int32_t>::min();
  EXPECT_EQ(got,
            (std::vector<int32_t>{2, 4, -2, 0, imax, imin, imax, imin, 0}));

  const double two63 = std::ldexp(1.0, 63);
  Array b = fromF64({two63, -two63, 1e19, -1e19, 4503599627370497.0, nan}, {6},
                    DType::I64);
  std::vector<int64_t> got64(6);
  std::memcpy(got64.data(), b.data.data(), 48);
  const int64_t lmax = std::numeric_limits<int64_t>::max();
  const int64_t lmin = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(got64, (std::vector<int64_t>{lmax, lmin, lmax, lmin,
                                         4503599627370497LL, 0}));
}

TEST(NpyConvert, ToF32RoundsOnce) {
  // 2^53 + 1 as i64 and 2^24 + 1 as i32 both round to even in f32.
  Array a = fromF64({0.0}, {1}, DType::I64);
  int64_t big = (int64_t(1) << 53) + 1;
  std::memcpy(a.data.data(), &big, 8);
  EXPECT_EQ(toF32(a), std::vector<float>{9007199254740992.0f});
  Array b = fromF64({16777217.0}, {1}, DType::I32);
  EXPECT_EQ(toF32(b), std::vector<float>{16777216.0f});
  Array c = fromF64({0.1, 1e300}, {2}, DType::F64);
  std::vector<float> v = toF32(c);
  EXPECT_EQ(v[0], 0.1f);
  EXPECT_TRUE(std::isinf(v[1]));
  EXPECT_EQ(toF64(fromF64({0.1}, {1}, DType::F32)),
            std::vector<double>{static_cast<double>(0.1f)});
}

TEST(NpyConvert, InconsistentArraysAreReadSafely) {
  Array a;
  a.dtype = DType::F64;
  a.shape = {4};
  a.data = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 1, 2, 3}; // 1.0 and 3 stray bytes
  EXPECT_NE(validate(a), "");
  EXPECT_EQ(toF64(a), std::vector<double>{1.0});
  EXPECT_EQ(toF32(a), std::vector<float>{1.0f});
}

} // namespace
