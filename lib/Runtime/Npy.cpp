//===- Npy.cpp - Reader and writer for NumPy .npy files --------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/Npy.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>

namespace linattn::npy {

//===----------------------------------------------------------------------===//
// DType
//===----------------------------------------------------------------------===//

const char *toString(DType t) {
  switch (t) {
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  case DType::F32:
    return "f32";
  case DType::F64:
    return "f64";
  case DType::I32:
    return "i32";
  case DType::I64:
    return "i64";
  }
  return "?";
}

size_t elementSize(DType t) {
  switch (t) {
  case DType::F16:
  case DType::BF16:
    return 2;
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F64:
  case DType::I64:
    return 8;
  }
  return 1;
}

const char *numpyDescr(DType t) {
  switch (t) {
  case DType::F16:
    return "<f2";
  case DType::BF16:
    return "<V2";
  case DType::F32:
    return "<f4";
  case DType::F64:
    return "<f8";
  case DType::I32:
    return "<i4";
  case DType::I64:
    return "<i8";
  }
  return "?";
}

//===----------------------------------------------------------------------===//
// Array
//===----------------------------------------------------------------------===//

int64_t Array::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d <= 0)
      return 0;
  for (int64_t d : shape) {
    if (n > std::numeric_limits<int64_t>::max() / d)
      return std::numeric_limits<int64_t>::max();
    n *= d;
  }
  return n;
}

/// Python's repr of a shape tuple: "()", "(3,)", "(2, 3)".
static std::string shapeRepr(const std::vector<int64_t> &shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1)
    s += ",";
  return s + ")";
}

/// Computes the byte size of `shape` x `esize` into `bytes`; returns an error
/// for negative extents or a size that cannot be held in memory.
static std::string byteSize(const std::vector<int64_t> &shape, size_t esize,
                            uint64_t &bytes) {
  bool zero = false;
  for (int64_t d : shape) {
    if (d < 0)
      return "negative extent " + std::to_string(d) + " in shape " +
             shapeRepr(shape);
    zero |= d == 0;
  }
  if (zero) {
    bytes = 0;
    return "";
  }
  // Bound by PTRDIFF_MAX: the largest size a std::vector can hold.
  const uint64_t limit =
      static_cast<uint64_t>(std::numeric_limits<std::ptrdiff_t>::max());
  uint64_t n = esize;
  for (int64_t d : shape) {
    if (n > limit / static_cast<uint64_t>(d))
      return "shape " + shapeRepr(shape) + " is too large";
    n *= static_cast<uint64_t>(d);
  }
  bytes = n;
  return "";
}

std::string validate(const Array &a) {
  uint64_t bytes = 0;
  std::string err = byteSize(a.shape, a.elementSize(), bytes);
  if (!err.empty())
    return err;
  if (a.data.size() != bytes)
    return "shape/size mismatch: shape " + shapeRepr(a.shape) + " of " +
           toString(a.dtype) + " needs " + std::to_string(bytes) +
           " bytes but the data has " + std::to_string(a.data.size());
  return "";
}

/// Reorders the column-major `src` of the given shape to row-major.
static std::vector<uint8_t> transposeToC(const std::vector<uint8_t> &src,
                                         const std::vector<int64_t> &shape,
                                         size_t esize) {
  std::vector<uint8_t> dst(src.size());
  size_t rank = shape.size();
  if (src.empty() || rank < 2) {
    dst = src;
    return dst;
  }
  // Column-major strides (in elements).
  std::vector<uint64_t> stride(rank);
  uint64_t s = 1;
  for (size_t k = 0; k < rank; ++k) {
    stride[k] = s;
    s *= static_cast<uint64_t>(shape[k]);
  }
  std::vector<int64_t> idx(rank, 0);
  uint64_t off = 0; // Column-major offset of idx.
  size_t n = src.size() / esize;
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(&dst[i * esize], &src[off * esize], esize);
    // Advance the row-major odometer (last index fastest).
    for (size_t k = rank; k-- > 0;) {
      if (++idx[k] < shape[k]) {
        off += stride[k];
        break;
      }
      off -= stride[k] * static_cast<uint64_t>(shape[k] - 1);
      idx[k] = 0;
    }
  }
  return dst;
}

std::string toCOrder(Array &a) {
  if (!a.fortranOrder)
    return "";
  std::string err = validate(a);
  if (!err.empty())
    return err;
  a.data = transposeToC(a.data, a.shape, a.elementSize());
  a.fortranOrder = false;
  return "";
}

//===----------------------------------------------------------------------===//
// Header parsing
//===----------------------------------------------------------------------===//

namespace {

const char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

struct Header {
  std::string descr;
  std::vector<int64_t> shape;
  bool fortranOrder = false;
};

/// Recursive-descent parser for the subset of Python literals NumPy writes.
class HeaderParser {
public:
  HeaderParser(const char *begin, const char *end) : p(begin), end(end) {}

  /// Parses the dict into `h`; returns a description of the problem or "".
  std::string parse(Header &h) {
    if (!eat('{'))
      return "expected '{' at the start of the header dict";
    bool haveDescr = false, haveFortran = false, haveShape = false;
    while (true) {
      if (eat('}'))
        break;
      std::string key;
      if (!parseString(key))
        return err.empty() ? "expected a quoted key or '}'" : err;
      if (!eat(':'))
        return "expected ':' after key '" + key + "'";
      if (key == "descr") {
        if (haveDescr)
          return "duplicate key 'descr'";
        haveDescr = true;
        skipWs();
        if (p < end && *p == '[')
          return "structured dtypes (a list descr) are not supported";
        if (!parseString(h.descr))
          return err.empty() ? "descr must be a string" : err;
      } else if (key == "fortran_order") {
        if (haveFortran)
          return "duplicate key 'fortran_order'";
        haveFortran = true;
        if (eatWord("True"))
          h.fortranOrder = true;
        else if (eatWord("False"))
          h.fortranOrder = false;
        else
          return "fortran_order must be True or False";
      } else if (key == "shape") {
        if (haveShape)
          return "duplicate key 'shape'";
        haveShape = true;
        std::string e = parseShape(h.shape);
        if (!e.empty())
          return e;
      } else {
        return "unexpected key '" + key + "'";
      }
      if (eat(','))
        continue;
      if (eat('}'))
        break;
      return "expected ',' or '}' after the value of '" + key + "'";
    }
    skipWs();
    if (p != end)
      return "unexpected text after the header dict";
    if (!haveDescr)
      return "missing key 'descr'";
    if (!haveFortran)
      return "missing key 'fortran_order'";
    if (!haveShape)
      return "missing key 'shape'";
    return "";
  }

private:
  const char *p;
  const char *end;
  std::string err;

  static bool isSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
  }
  static bool isDigit(char c) { return c >= '0' && c <= '9'; }
  static bool isIdent(char c) {
    return isDigit(c) || c == '_' || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
  }

  void skipWs() {
    while (p < end && isSpace(*p))
      ++p;
  }

  bool eat(char c) {
    skipWs();
    if (p < end && *p == c) {
      ++p;
      return true;
    }
    return false;
  }

  /// Consumes `word` if it is next and not followed by an identifier char.
  bool eatWord(const char *word) {
    skipWs();
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end - p) < n || std::strncmp(p, word, n) != 0)
      return false;
    if (p + n < end && isIdent(p[n]))
      return false;
    p += n;
    return true;
  }

  /// Parses a '...' or "..." string without escapes. On failure returns false
  /// and sets `err` if a string was started.
  bool parseString(std::string &out) {
    skipWs();
    if (p >= end || (*p != '\'' && *p != '"'))
      return false;
    char quote = *p++;
    const char *start = p;
    while (p < end && *p != quote) {
      if (*p == '\\') {
        err = "escape sequences in header strings are not supported";
        return false;
      }
      if (*p == '\n') {
        err = "unterminated string";
        return false;
      }
      ++p;
    }
    if (p >= end) {
      err = "unterminated string";
      return false;
    }
    out.assign(start, p);
    ++p;
    return true;
  }

  /// Parses a tuple of non-negative ints: "()", "(3,)", "(2, 3)", "(2, 3,)".
  std::string parseShape(std::vector<int64_t> &shape) {
    if (!eat('('))
      return "shape must be a tuple of ints";
    std::vector<int64_t> dims;
    bool trailingComma = false;
    while (!eat(')')) {
      skipWs();
      bool negative = false;
      if (p < end && (*p == '-' || *p == '+')) {
        negative = *p == '-';
        ++p;
        skipWs();
      }
      if (p >= end || !isDigit(*p))
        return "shape must be a tuple of ints";
      uint64_t v = 0;
      const uint64_t max =
          static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      bool overflow = false;
      while (p < end && isDigit(*p)) {
        uint64_t digit = static_cast<uint64_t>(*p - '0');
        if (v > (max - digit) / 10)
          overflow = true;
        else
          v = v * 10 + digit;
        ++p;
      }
      if (p < end && (*p == 'L' || *p == 'l')) // Python 2 long.
        ++p;
      if (p < end && isIdent(*p))
        return "shape must be a tuple of ints";
      if (overflow)
        return "extent in shape does not fit in int64";
      if (negative && v != 0)
        return "negative extent -" + std::to_string(v) + " in shape";
      dims.push_back(static_cast<int64_t>(v));
      trailingComma = eat(',');
      if (!trailingComma) {
        if (eat(')'))
          break;
        return "expected ',' or ')' in shape";
      }
    }
    if (dims.size() == 1 && !trailingComma)
      return "shape (" + std::to_string(dims[0]) +
             ") is not a tuple (a 1-d shape is written (" +
             std::to_string(dims[0]) + ",))";
    shape = std::move(dims);
    return "";
  }
};

/// Maps a descr to a DType, or returns an error.
std::string parseDescr(const std::string &descr, DType &t) {
  const std::string supported =
      " (supported: '<f2', '<f4', '<f8', '<i4', '<i8', and '<V2' or "
      "'bfloat16' for bf16)";
  if (descr == "bfloat16") {
    t = DType::BF16;
    return "";
  }
  char order = 0;
  std::string code = descr;
  if (!descr.empty() && std::strchr("<>|=", descr[0])) {
    order = descr[0];
    code = descr.substr(1);
  }
  DType d = DType::F32;
  if (code == "f2")
    d = DType::F16;
  else if (code == "f4")
    d = DType::F32;
  else if (code == "f8")
    d = DType::F64;
  else if (code == "i4")
    d = DType::I32;
  else if (code == "i8")
    d = DType::I64;
  else if (code == "V2")
    d = DType::BF16;
  else
    return "unsupported dtype '" + descr + "'" + supported;
  if (order == '>')
    return "big-endian dtype '" + descr +
           "' is not supported; re-save it little-endian, e.g. "
           "a.astype('<" +
           code + "')";
  if (order == '|' && d != DType::BF16)
    return "byte-order mark '|' is not meaningful for the multi-byte dtype '" +
           descr + "'";
  t = d;
  return "";
}

/// Printable excerpt of header text for error messages.
std::string excerpt(const char *begin, const char *end) {
  std::string s;
  for (const char *q = begin; q < end && s.size() < 160; ++q) {
    unsigned char c = static_cast<unsigned char>(*q);
    if (c >= 0x20 && c < 0x7f) {
      s += static_cast<char>(c);
    } else if (c == '\n') {
      s += "\\n";
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      s += buf;
    }
  }
  while (!s.empty() && s.back() == ' ')
    s.pop_back();
  if (end - begin > 160)
    s += "...";
  return s;
}

uint64_t readLE(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i)
    v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

void appendLE(std::vector<uint8_t> &out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i)
    out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

/// parse() without the "<name>: " prefix on errors.
std::string parseImpl(const uint8_t *bytes, size_t size, Array &out,
                      const LoadOptions &options) {
  if (size == 0)
    return "truncated: the file is empty";
  if (bytes == nullptr)
    return "no data (null buffer)";
  size_t cmp = size < kMagicLen ? size : kMagicLen;
  if (std::memcmp(bytes, kMagic, cmp) != 0)
    return "bad magic: not a .npy file (it does not start with "
           "\"\\x93NUMPY\")";
  if (size < kMagicLen + 2)
    return "truncated header: " + std::to_string(size) + " bytes";
  unsigned major = bytes[6], minor = bytes[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    return "unsupported format version " + std::to_string(major) + "." +
           std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)";
  size_t lenBytes = major == 1 ? 2 : 4;
  size_t prefix = kMagicLen + 2 + lenBytes;
  if (size < prefix)
    return "truncated header: " + std::to_string(size) + " bytes";
  uint64_t headerLen = readLE(bytes + kMagicLen + 2, lenBytes);
  if (headerLen > size - prefix)
    return "truncated header: the header length is " +
           std::to_string(headerLen) + " bytes but only " +
           std::to_string(size - prefix) + " follow";
  const char *hBegin = reinterpret_cast<const char *>(bytes + prefix);
  const char *hEnd = hBegin + headerLen;

  Header h;
  HeaderParser parser(hBegin, hEnd);
  std::string err = parser.parse(h);
  if (!err.empty())
    return "malformed header: " + err + ": " + excerpt(hBegin, hEnd);

  DType dtype = DType::F32;
  err = parseDescr(h.descr, dtype);
  if (!err.empty())
    return err;
  if (h.fortranOrder && options.fortran == FortranOrder::Reject)
    return "fortran_order=True is not supported; re-save the array with "
           "np.ascontiguousarray (or load with FortranOrder::Keep or "
           "FortranOrder::Transpose)";

  uint64_t need = 0;
  err = byteSize(h.shape, elementSize(dtype), need);
  if (!err.empty())
    return err;
  size_t dataOff = prefix + static_cast<size_t>(headerLen);
  uint64_t have = size - dataOff;
  std::string what = "shape " + shapeRepr(h.shape) + " of " + toString(dtype) +
                     " needs " + std::to_string(need) + " data bytes but ";
  if (have < need)
    return "truncated data: " + what + "only " + std::to_string(have) +
           " follow the header";
  if (have > need)
    return "shape/size mismatch: " + what + std::to_string(have) +
           " follow the header";

  Array a;
  a.dtype = dtype;
  a.shape = std::move(h.shape);
  a.fortranOrder = h.fortranOrder;
  a.data.assign(bytes + dataOff, bytes + size);
  if (a.fortranOrder && options.fortran == FortranOrder::Transpose) {
    a.data = transposeToC(a.data, a.shape, a.elementSize());
    a.fortranOrder = false;
  }
  out = std::move(a);
  return "";
}

} // namespace

//===----------------------------------------------------------------------===//
// Load / save
//===----------------------------------------------------------------------===//

std::string parse(const uint8_t *bytes, size_t size, Array &out,
                  const LoadOptions &options) {
  std::string err = parseImpl(bytes, size, out, options);
  return err.empty() ? err : "<memory>: " + err;
}

std::string loadFromMemory(const std::vector<uint8_t> &bytes, Array &out,
                           const LoadOptions &options) {
  return parse(bytes.data(), bytes.size(), out, options);
}

std::string load(const std::string &path, Array &out,
                 const LoadOptions &options) {
  std::FILE *f = std::fopen(path.c_str(), "rb");
  if (!f)
    return path + ": cannot open for reading: " + std::strerror(errno);
  std::vector<uint8_t> buf;
  uint8_t chunk[1 << 16];
  size_t n = std::fread(chunk, 1, sizeof(chunk), f);
  buf.insert(buf.end(), chunk, chunk + n);
  // Reserve the file size, but only once a read has succeeded: ftell on a
  // directory returns LONG_MAX. Non-seekable inputs just grow the buffer.
  if (n == sizeof(chunk)) {
    long pos = std::ftell(f);
    if (pos >= 0 && std::fseek(f, 0, SEEK_END) == 0) {
      long size = std::ftell(f);
      if (size > pos && static_cast<uint64_t>(size) <= (uint64_t(1) << 36))
        buf.reserve(static_cast<size_t>(size));
      if (std::fseek(f, pos, SEEK_SET) != 0) {
        int e = errno;
        std::fclose(f);
        return path + ": read error: " + std::strerror(e);
      }
    }
    while ((n = std::fread(chunk, 1, sizeof(chunk), f)) > 0)
      buf.insert(buf.end(), chunk, chunk + n);
  }
  bool failed = std::ferror(f) != 0;
  int e = errno;
  std::fclose(f);
  if (failed)
    return path + ": read error: " + std::strerror(e);
  std::string err = parseImpl(buf.data(), buf.size(), out, options);
  return err.empty() ? err : path + ": " + err;
}

std::string serialize(const Array &a, std::vector<uint8_t> &out) {
  std::string err = validate(a);
  if (!err.empty())
    return err;
  // Exactly what NumPy's _write_array_header produces.
  std::string dict =
      std::string("{'descr': '") + numpyDescr(a.dtype) +
      "', 'fortran_order': " + (a.fortranOrder ? "True" : "False") +
      ", 'shape': " + shapeRepr(a.shape) + ", }";
  if (!a.shape.empty()) {
    // Spare room to grow the first (C) or last (Fortran) axis in place.
    size_t digits =
        std::to_string(a.fortranOrder ? a.shape.back() : a.shape.front())
            .size();
    if (digits < 21)
      dict.append(21 - digits, ' ');
  }
  size_t hlen = dict.size() + 1; // + '\n'
  unsigned major = 1;
  size_t prefix = kMagicLen + 2 + 2;
  size_t pad = 64 - (prefix + hlen) % 64;
  if (hlen + pad > 0xFFFF) {
    major = 2;
    prefix = kMagicLen + 2 + 4;
    pad = 64 - (prefix + hlen) % 64;
    if (hlen + pad > 0xFFFFFFFFull)
      return "header of " + std::to_string(hlen) + " bytes is too large";
  }
  std::vector<uint8_t> bytes;
  bytes.reserve(prefix + hlen + pad + a.data.size());
  bytes.insert(bytes.end(), kMagic, kMagic + kMagicLen);
  bytes.push_back(static_cast<uint8_t>(major));
  bytes.push_back(0);
  appendLE(bytes, hlen + pad, prefix - kMagicLen - 2);
  bytes.insert(bytes.end(), dict.begin(), dict.end());
  bytes.insert(bytes.end(), pad, ' ');
  bytes.push_back('\n');
  bytes.insert(bytes.end(), a.data.begin(), a.data.end());
  out = std::move(bytes);
  return "";
}

std::string save(const std::string &path, const Array &a) {
  std::vector<uint8_t> bytes;
  std::string err = serialize(a, bytes);
  if (!err.empty())
    return path + ": " + err;
  std::FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    return path + ": cannot open for writing: " + std::strerror(errno);
  size_t n = std::fwrite(bytes.data(), 1, bytes.size(), f);
  int e = errno;
  bool failed = n != bytes.size();
  if (std::fclose(f) != 0 && !failed) {
    failed = true;
    e = errno;
  }
  if (failed) {
    std::remove(path.c_str());
    return path + ": write error: " + std::strerror(e);
  }
  return "";
}

//===----------------------------------------------------------------------===//
// Scalar conversions
//===----------------------------------------------------------------------===//

static float bitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

static uint64_t doubleToBits(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof(bits));
  return bits;
}

static double bitsToDouble(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof(d));
  return d;
}

static uint32_t floatToBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

/// Rounds `value` to the nearest (ties to even) IEEE-style binary format with
/// `expBits` exponent and `manBits` mantissa bits (<= 16 bits in all), with
/// overflow to infinity and gradual underflow. NaN becomes a quiet NaN with
/// the sign and the top payload bits kept.
static uint16_t roundDouble(double value, int expBits, int manBits) {
  uint64_t bits = doubleToBits(value);
  uint16_t sign = static_cast<uint16_t>((bits >> 63) << (expBits + manBits));
  int exp = static_cast<int>((bits >> 52) & 0x7FF);
  uint64_t mant = bits & ((uint64_t(1) << 52) - 1);
  uint16_t expAllOnes = static_cast<uint16_t>(((1u << expBits) - 1) << manBits);
  if (exp == 0x7FF) {
    if (mant == 0)
      return sign | expAllOnes; // +-inf
    uint16_t quiet = static_cast<uint16_t>(1u << (manBits - 1));
    uint16_t payload = static_cast<uint16_t>(mant >> (52 - manBits));
    return sign | expAllOnes | quiet | payload;
  }
  if (exp == 0 && mant == 0)
    return sign; // +-0
  // value = sig * 2^(e - 52) with sig < 2^53.
  uint64_t sig = exp == 0 ? mant : (mant | (uint64_t(1) << 52));
  int e = exp == 0 ? -1022 : exp - 1023;
  int bias = (1 << (expBits - 1)) - 1;
  int minExp = 1 - bias;
  int te = e > minExp ? e : minExp; // Target exponent (subnormal: minExp).
  // Quantum 2^(te - manBits); shift sig right by (te - manBits) - (e - 52).
  int shift = (te - manBits) - (e - 52); // > 0 for the formats used here.
  uint64_t n;
  if (shift >= 64) {
    n = 0; // Below half the smallest subnormal.
  } else {
    n = sig >> shift;
    uint64_t rem = sig & ((uint64_t(1) << shift) - 1);
    uint64_t half = uint64_t(1) << (shift - 1);
    if (rem > half || (rem == half && (n & 1)))
      ++n;
  }
  // Uniform encoding for subnormals (te == minExp, n <= 2^manBits) and
  // normals; a carry out of the mantissa bumps the exponent field.
  uint64_t enc = (static_cast<uint64_t>(te - minExp) << manBits) + n;
  if (enc >= expAllOnes)
    return sign | expAllOnes; // Overflow to inf.
  return sign | static_cast<uint16_t>(enc);
}

uint16_t doubleToHalf(double value) { return roundDouble(value, 5, 10); }
uint16_t doubleToBFloat16(double value) { return roundDouble(value, 8, 7); }
// float -> double is exact, so these round once.
uint16_t floatToHalf(float value) { return doubleToHalf(value); }
uint16_t floatToBFloat16(float value) { return doubleToBFloat16(value); }

float halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  if (exp == 0x1F)
    return bitsToFloat(sign | 0x7F800000u | (mant << 13));
  if (exp == 0) {
    // Subnormal or zero: mant * 2^-24 is exact in float.
    float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  return bitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

float bfloat16ToFloat(uint16_t b) {
  return bitsToFloat(static_cast<uint32_t>(b) << 16);
}

//===----------------------------------------------------------------------===//
// Array conversions
//===----------------------------------------------------------------------===//

/// Element `i` of `a` as a double (exact except for |i64| > 2^53).
static double elementAsDouble(const Array &a, size_t i) {
  size_t es = a.elementSize();
  const uint8_t *p = a.data.data() + i * es;
  uint64_t v = readLE(p, es);
  switch (a.dtype) {
  case DType::F16:
    return halfToFloat(static_cast<uint16_t>(v));
  case DType::BF16:
    return bfloat16ToFloat(static_cast<uint16_t>(v));
  case DType::F32:
    return bitsToFloat(static_cast<uint32_t>(v));
  case DType::F64:
    return bitsToDouble(v);
  case DType::I32:
    return static_cast<int32_t>(static_cast<uint32_t>(v));
  case DType::I64:
    return static_cast<double>(static_cast<int64_t>(v));
  }
  return 0.0;
}

std::vector<float> toF32(const Array &a) {
  size_t n = a.data.size() / a.elementSize();
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (a.dtype == DType::I64) {
      // Round once, not via double.
      uint64_t v = readLE(a.data.data() + i * 8, 8);
      out[i] = static_cast<float>(static_cast<int64_t>(v));
    } else {
      // f16/bf16/f32/i32 are exact in double; f64 rounds once here.
      out[i] = static_cast<float>(elementAsDouble(a, i));
    }
  }
  return out;
}

std::vector<double> toF64(const Array &a) {
  size_t n = a.data.size() / a.elementSize();
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i)
    out[i] = elementAsDouble(a, i);
  return out;
}

/// Rounds to nearest even and saturates to [lo, hi]; NaN -> 0.
static int64_t roundToInt(double x, double lo, double hiExclusive,
                          int64_t loVal, int64_t hiVal) {
  if (std::isnan(x))
    return 0;
  double r = std::nearbyint(x);
  if (r < lo)
    return loVal;
  if (r >= hiExclusive)
    return hiVal;
  return static_cast<int64_t>(r);
}

/// Encodes `x` as the bits of one `t` element.
static uint64_t encode(double x, DType t) {
  switch (t) {
  case DType::F16:
    return doubleToHalf(x);
  case DType::BF16:
    return doubleToBFloat16(x);
  case DType::F32:
    return floatToBits(static_cast<float>(x));
  case DType::F64:
    return doubleToBits(x);
  case DType::I32:
    return static_cast<uint32_t>(static_cast<int32_t>(roundToInt(
        x, -2147483648.0, 2147483648.0, std::numeric_limits<int32_t>::min(),
        std::numeric_limits<int32_t>::max())));
  case DType::I64:
    return static_cast<uint64_t>(
        roundToInt(x, -9223372036854775808.0, 9223372036854775808.0,
                   std::numeric_limits<int64_t>::min(),
                   std::numeric_limits<int64_t>::max()));
  }
  return 0;
}

template <typename T>
static Array fromValues(const std::vector<T> &values,
                        std::vector<int64_t> shape, DType target) {
  Array a;
  a.dtype = target;
  a.shape = std::move(shape);
  a.fortranOrder = false;
  size_t es = a.elementSize();
  a.data.reserve(values.size() * es);
  for (T v : values)
    appendLE(a.data, encode(static_cast<double>(v), target), es);
  return a;
}

Array fromF32(const std::vector<float> &values, std::vector<int64_t> shape,
              DType target) {
  // float -> double is exact, so every target is rounded once.
  return fromValues(values, std::move(shape), target);
}

Array fromF64(const std::vector<double> &values, std::vector<int64_t> shape,
              DType target) {
  return fromValues(values, std::move(shape), target);
}

} // namespace linattn::npy
