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
  # The lit suite runs once, below, where its failures are listed (the
  # ctest test "lit" is the same suite, for plain `ctest` runs).
  ctest --output-on-failure -E '^lit$'
  echo "==> lit:"
  /usr/lib/llvm-22/bin/lit -q test && echo "lit: all passed"
)
scripts/test-python.sh "$BUILD_DIR"
