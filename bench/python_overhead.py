#!/usr/bin/env python3
"""Python call overhead of linattn vs the C++ API.

Times one kernel (simple GLA: scalar gates, fp32, FLA layout, 1 thread) on a
tiny and a medium shape, as the median of many calls, through
  1. linattn.chunk_simple_gla(...)      the FLA-style function (spec from the
                                        tensors, cache lookup, allocation)
  2. kernel(q, k, v, gate=g)            a kernel from linattn.compile()
  3. _linattn.Kernel.run(..., output=o) the binding alone, outputs preallocated
and, when build/bin/linattn-run exists, C++ Kernel::run on the same shape
(linattn-run --bench, median). Usage:
  python bench/python_overhead.py [--linattn-run build/bin/linattn-run]
"""

import argparse
import os
import re
import subprocess
import time

import numpy as np

import linattn

SHAPES = [  # B, H, T, D, calls
    (1, 1, 16, 16, 3000),
    (1, 8, 1024, 64, 100),
]


def median_us(fn, calls, warmup=20):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e6


def cpp_median_us(tool, B, H, T, D, calls):
    if not tool or not os.path.exists(tool):
        return None
    out = subprocess.run(
        [tool, "--decay=scalar", f"--dk={D}", f"--dv={D}", "--layout=bthd",
         f"--random={B},{H},{T}", "--bench", f"--reps={calls}",
         "--warmup=20", "--num-threads=1"],
        capture_output=True, text=True, check=True).stdout
    m = re.search(r"median ([0-9.]+) ms", out)
    return float(m.group(1)) * 1e3 if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--linattn-run", default="build/bin/linattn-run")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    linattn.set_num_threads(1)
    print(f"host: {linattn.host_description()}")
    print("| B, H, T, D | chunk_simple_gla | compiled kernel | binding only "
          "| C++ Kernel::run |")
    print("|---|---|---|---|---|")
    for B, H, T, D, calls in SHAPES:
        q, k, v = (rng.standard_normal((B, T, H, D)).astype(np.float32)
                   for _ in range(3))
        g = -rng.uniform(0, 0.1, (B, T, H)).astype(np.float32)
        spec = linattn.Spec(decay="scalar", dtype="float32", key_dim=D,
                            value_dim=D)
        kernel = linattn.compile(spec)
        o = np.empty_like(v)
        full = median_us(lambda: linattn.chunk_simple_gla(q, k, v, g),
                         calls)
        comp = median_us(lambda: kernel(q, k, v, gate=g, num_threads=1),
                         calls)
        raw_kernel = kernel._kernel
        raw = median_us(lambda: raw_kernel.run(q, k, v, o, gate=g,
                                               num_threads=1), calls)
        cpp = cpp_median_us(args.linattn_run, B, H, T, D, calls)
        cpp_s = f"{cpp:.1f} us" if cpp is not None else "n/a"
        print(f"| {B}, {H}, {T}, {D} | {full:.1f} us | {comp:.1f} us | "
              f"{raw:.1f} us | {cpp_s} |")


if __name__ == "__main__":
    main()
