#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: lit + GoogleTest via ctest,
# then the Python package's pytest suite (scripts/test-python.sh: installs
# the package into .venv with pip and runs test/python).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
scripts/setup.sh "$BUILD_DIR"
echo "==> running the test suite"
(
  cd "$BUILD_DIR"
  ctest --output-on-failure
  echo "==> lit details:"
  /usr/lib/llvm-22/bin/lit -q test && echo "lit: all passed"
)
scripts/test-python.sh "$BUILD_DIR"
