//===- linattn-opt.cpp - linattn optimizer driver ---------------*- C++ -*-===//
//
// An mlir-opt with the linattn dialect, its passes and pipelines, and the
// upstream dialects and passes they build on.
//
//===----------------------------------------------------------------------===//

#include "linattn/InitAll.h"

#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  mlir::linattn::registerAllDialects(registry);
  mlir::linattn::registerAllPasses();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "linattn optimizer driver\n", registry));
}
