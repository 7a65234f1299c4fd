//===- KernelTestUtil.h - Tensor helpers of the kernel tests ----*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Rounding fp64 reference tensors to a kernel dtype and packing them into
// the byte buffers the runtime reads (KernelTest, FeatureMapKernelTest).
//
//===----------------------------------------------------------------------===//

#ifndef LINATTN_TEST_UNIT_RUNTIME_KERNELTESTUTIL_H
#define LINATTN_TEST_UNIT_RUNTIME_KERNELTESTUTIL_H

#include "linattn/Reference/Reference.h"
#include "linattn/Runtime/Npy.h"
#include "linattn/Runtime/Runtime.h"

#include <cstdint>
#include <vector>

namespace linattn::test_util {

/// Rounds every element to `t` (the kernel sees exactly these values).
inline void roundTo(reference::Tensor &x, DType t) {
  for (double &e : x.data) {
    if (t == DType::F32)
      e = static_cast<float>(e);
    else if (t == DType::BF16)
      e = npy::bfloat16ToFloat(npy::doubleToBFloat16(e));
    else if (t == DType::F16)
      e = npy::halfToFloat(npy::doubleToHalf(e));
  }
}

/// A tensor packed in a kernel dtype.
struct Buffer {
  std::vector<uint8_t> bytes;
  std::vector<int64_t> shape;
  DType dtype = DType::F32;
  TensorView view() { return TensorView(bytes.data(), dtype, shape); }
};

/// `x` packed in `t`, optionally with dims 1 and 2 swapped (BHTD <-> BTHD).
inline Buffer pack(const reference::Tensor &x, DType t, bool swap12 = false) {
  reference::Tensor y = swap12 ? reference::swapDims(x, 1, 2) : x;
  Buffer b;
  b.dtype = t;
  b.shape = y.shape;
  b.bytes = npy::fromF64(y.data, y.shape, toNpy(t)).data;
  return b;
}

/// The fp64 tensor of `b`, optionally with dims 1 and 2 swapped back.
inline reference::Tensor unpack(const Buffer &b, bool swap12 = false) {
  npy::Array a;
  a.dtype = toNpy(b.dtype);
  a.shape = b.shape;
  a.data = b.bytes;
  reference::Tensor x(b.shape);
  x.data = npy::toF64(a);
  return swap12 ? reference::swapDims(x, 1, 2) : x;
}

} // namespace linattn::test_util

#endif // LINATTN_TEST_UNIT_RUNTIME_KERNELTESTUTIL_H
