#!/usr/bin/env bash
# Downloads the FLA wheels (pure Python + Triton) into bench/gpu/wheels so they
# can be carried to the GPU machine, which has torch and triton but no
# network. Run here, where pip works. The wheels are git-ignored.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p wheels
# The GPU machine runs CPython 3.12 on x86-64 (see the device notes); both
# packages are py3-none-any, the platform flags only keep pip from picking a
# source distribution.
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d wheels flash-linear-attention fla-core
ls -la wheels
du -sh wheels
