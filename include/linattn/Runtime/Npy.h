//===- Npy.h - Reader and writer for NumPy .npy files ----------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// A small reader/writer for NumPy's .npy format, used to exchange inputs and
/// golden outputs with Python (NumPy, PyTorch, FLA) without a Python
/// dependency at run time.
///
/// The library depends on the C++17 standard library only (no MLIR/LLVM),
/// never throws and never crashes on malformed input: errors are reported as
/// non-empty strings that name the file (or "<memory>") and the problem, and
/// the output argument is left untouched on failure.
///
/// What is accepted on read:
///  - Format versions 1.0, 2.0 and 3.0 (2-byte or 4-byte header length;
///    the 3.0 header is UTF-8, which only matters inside strings).
///  - The header is the Python dict literal NumPy writes, with exactly the
///    keys 'descr', 'fortran_order' and 'shape' (any order, single or double
///    quotes, optional trailing commas, arbitrary whitespace, Python 2 'L'
///    suffixes on the extents). Header alignment is not required. Anything
///    after the closing brace must be whitespace.
///  - descr '<f2' '<f4' '<f8' '<i4' '<i8' (F16 F32 F64 I32 I64). '=' (native)
///    and a missing byte-order mark are read as little-endian: NumPy itself
///    never writes them, and every host linattn targets is little-endian.
///    '|' ("not applicable") is rejected for these multi-byte types, and
///    big-endian ('>') is rejected with a hint to re-save with
///    astype('<f4') etc. (no byte swapping).
///  - BF16: NumPy has no bfloat16. `np.save` of an ml_dtypes bfloat16 array
///    writes descr '<V2' (a 2-byte opaque void), so '<V2', '|V2' and 'V2' are
///    read as BF16, as is the ml_dtypes name 'bfloat16'. Caveat: any 2-byte
///    void array is thus taken to be bfloat16. BF16 is written as '<V2';
///    `np.load` returns it as V2, use `.view(ml_dtypes.bfloat16)`.
///  - fortran_order=True is rejected by default (re-save with
///    np.ascontiguousarray); LoadOptions can instead keep the column-major
///    data as is (Array::fortranOrder = true) or transpose it to row-major.
///  - The data must be exactly numel * elementSize bytes: fewer is "truncated
///    data", more is a shape/size mismatch (NumPy ignores trailing bytes; we
///    treat them as a sign of a corrupt or mislabeled file).
///  - Structured dtypes, object arrays (pickles) and other descrs (u1, i2,
///    b1, c8, ...) are rejected as unsupported.
///
/// What is written: exactly the bytes `np.save` (NumPy 2.x) writes for the
/// same array: keys in sorted order, NumPy's spare space after the dict for
/// growing the first (C order) or last (Fortran order) axis, and padding that
/// aligns the data to 64 bytes. Version 1.0 unless the header exceeds
/// 65535 bytes, then 2.0 (only very high ranks need it).
///
/// Array::data always holds the raw little-endian element bytes in storage
/// order (row-major unless fortranOrder).
///
//===----------------------------------------------------------------------===//

#ifndef LINATTN_RUNTIME_NPY_H
#define LINATTN_RUNTIME_NPY_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace linattn::npy {

/// Element types linattn exchanges through .npy files.
enum class DType { F16, BF16, F32, F64, I32, I64 };

/// Short name: "f16", "bf16", "f32", "f64", "i32", "i64".
const char *toString(DType t);
/// Size of one element in bytes.
size_t elementSize(DType t);
/// The descr written to the header: "<f2", "<V2" (BF16), "<f4", "<f8", "<i4",
/// "<i8".
const char *numpyDescr(DType t);

/// A dense array as stored in a .npy file.
struct Array {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  /// True if `data` is column-major (NumPy's fortran_order).
  bool fortranOrder = false;
  /// Raw little-endian element bytes; numel() * elementSize() of them.
  std::vector<uint8_t> data;

  /// Product of the extents (1 for rank 0; 0 if any extent is <= 0;
  /// saturates at INT64_MAX on overflow).
  int64_t numel() const;
  /// Size of one element in bytes.
  size_t elementSize() const { return npy::elementSize(dtype); }
};

/// What to do with a file whose header says fortran_order=True.
enum class FortranOrder {
  Reject,    ///< Fail with an error (the default).
  Keep,      ///< Load the column-major bytes as is; Array::fortranOrder = true.
  Transpose, ///< Reorder to row-major; Array::fortranOrder = false.
};

struct LoadOptions {
  FortranOrder fortran = FortranOrder::Reject;
};

/// Reads the .npy file at `path` into `out`. Returns "" on success, otherwise
/// an error naming the file and the problem (`out` is then unchanged).
std::string load(const std::string &path, Array &out,
                 const LoadOptions &options = {});

/// Parses a complete .npy image held in memory (same rules as load()).
std::string parse(const uint8_t *bytes, size_t size, Array &out,
                  const LoadOptions &options = {});
/// Convenience overload of parse() for a byte vector.
std::string loadFromMemory(const std::vector<uint8_t> &bytes, Array &out,
                           const LoadOptions &options = {});

/// Checks that `a` is consistent: non-negative extents, a size that fits in
/// memory, and data.size() == numel() * elementSize(). Returns "" if so.
std::string validate(const Array &a);

/// Serializes `a` (after validate()) into the bytes of a .npy file; `out` is
/// replaced on success and unchanged on failure.
std::string serialize(const Array &a, std::vector<uint8_t> &out);

/// Writes `a` to `path` as a .npy file. Returns "" on success, otherwise an
/// error naming the file and the problem.
std::string save(const std::string &path, const Array &a);

/// Reorders a column-major array to row-major in place (no-op if it is
/// already row-major). Returns "" on success; `a` is unchanged on failure.
std::string toCOrder(Array &a);

//===----------------------------------------------------------------------===//
// Conversions
//===----------------------------------------------------------------------===//
//
// Elements are converted in storage order. The readers convert only the whole
// elements present in `data`, so an inconsistent Array cannot cause an
// out-of-bounds read (use validate() to detect one).
//
// Rounding when narrowing: f16 and bf16 round to nearest, ties to even,
// overflowing to +-inf; NaN stays NaN (quiet, sign kept). f64 -> bf16/f16 is
// rounded once, directly from the double (ml_dtypes rounds f64 -> bf16 via
// f32, so it can differ by one ulp in rare double-rounding cases). To i32/i64:
// round to nearest even, saturate at the type's limits, NaN -> 0.

/// Converts every element to float (f16/bf16 exactly, f64 and large integers
/// rounded to nearest even).
std::vector<float> toF32(const Array &a);
/// Converts every element to double (exact except for |i64| > 2^53).
std::vector<double> toF64(const Array &a);

/// Builds a row-major array of type `target` from `values`. values.size()
/// should equal the product of `shape`; if it does not, the result keeps
/// `shape` and holds values.size() elements, which validate() and save()
/// report as a shape/size mismatch.
Array fromF32(const std::vector<float> &values, std::vector<int64_t> shape,
              DType target);
/// Same as fromF32() for doubles (each value is rounded once).
Array fromF64(const std::vector<double> &values, std::vector<int64_t> shape,
              DType target);

/// Scalar conversions (bit patterns of IEEE binary16 and bfloat16).
float halfToFloat(uint16_t bits);
float bfloat16ToFloat(uint16_t bits);
uint16_t floatToHalf(float value);
uint16_t floatToBFloat16(float value);
uint16_t doubleToHalf(double value);
uint16_t doubleToBFloat16(double value);

} // namespace linattn::npy

#endif // LINATTN_RUNTIME_NPY_H
