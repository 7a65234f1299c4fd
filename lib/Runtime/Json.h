//===- Json.h - A small strict JSON reader (standard C++ only) --*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The JSON reader behind the AOT manifest and the tuning cache, plus the
/// two helpers their writers need. The CUDA runtime must not depend
/// on LLVM (llvm::json), so this is a self-contained RFC 8259 parser: no
/// comments, no trailing commas, no duplicate object keys, nesting at most
/// 64 deep. Errors name the line and column.
///
//===----------------------------------------------------------------------===//

#ifndef LINATTN_LIB_RUNTIME_JSON_H
#define LINATTN_LIB_RUNTIME_JSON_H

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace linattn::json {

/// A parsed JSON value.
struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0.0;
  /// True if the number was written without fraction or exponent and fits
  /// in int64 (then `integer` holds it exactly).
  bool isInteger = false;
  int64_t integer = 0;
  std::string string;
  std::vector<Value> items;
  /// Object members in file order.
  std::vector<std::pair<std::string, Value>> members;

  /// The member named `key` of an object, or nullptr.
  const Value *get(const std::string &key) const;
};

/// "null", "boolean", "number", "string", "array", "object".
const char *kindName(Value::Kind kind);

/// Parses a complete JSON text. Returns "" or "line L, column C: problem"
/// (`out` untouched on error).
std::string parse(const std::string &text, Value &out);

/// `s` as a JSON string literal (quotes, escapes; bytes >= 0x80 are copied,
/// so UTF-8 stays UTF-8).
std::string quote(const std::string &s);

/// `x` as a JSON number that parses back to the same double ("null" for NaN
/// and infinities, which JSON cannot express).
std::string number(double x);

} // namespace linattn::json

#endif // LINATTN_LIB_RUNTIME_JSON_H
