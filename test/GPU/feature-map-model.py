#!/usr/bin/env python3
"""fp64 model of the GPU feature-map prepass (GPUFeatureMap.cpp, kernel
`linattn_map`) checked against the maps of MATH.md 3 written directly.

The model follows the kernel's per-warp structure: lane l of the warp that
owns a row computes features l, l + 32, ... (`slots` per lane); lanes past
the feature count hold -3e38 for the maxima and 0 for the sums; Taylor
features are a[I]·a[J]·c with a = [1, x] and (I, J, c) from the feature
index (symmetric pairs: the row is the number of row starts <= the pair
index); rows are padded with zeros to a multiple of 16.
Usage: feature-map-model.py (exits 1 on a mismatch above 1e-12).
"""
import math
import sys

import numpy as np

LOWEST = -3.0e38


def padded(width):
    return (width + 15) // 16 * 16


# --- MATH.md 3, written directly -------------------------------------------

def taylor_direct(x, symmetric):
    d = len(x)
    rd = math.sqrt(d)
    out = [1.0] + list(x / math.sqrt(rd))
    if not symmetric:
        return np.array(out + [x[i] * x[j] / (math.sqrt(2) * rd)
                               for i in range(d) for j in range(d)])
    out += [x[i] ** 2 / (math.sqrt(2) * rd) for i in range(d)]
    out += [x[i] * x[j] / rd for i in range(d) for j in range(i + 1, d)]
    return np.array(out)


def softmax(y):
    e = np.exp(y - y.max())
    return e / e.sum()


def hedgehog_direct(x, w, bias, joint):
    y = x @ w + (bias if bias is not None else 0.0)
    if joint:
        return softmax(np.concatenate([2 * y, -2 * y]))
    return np.concatenate([softmax(y), softmax(-y)])


def performer_direct(x, w, hyperbolic):
    d = len(x)
    xh = x / d ** 0.25
    proj = w @ xh
    sq = xh @ xh
    if hyperbolic:
        m = w.shape[0]
        return np.concatenate([np.exp(proj - sq / 2), np.exp(-proj - sq / 2)]) \
            / math.sqrt(2 * m)
    return np.exp(proj - sq / 2) / math.sqrt(w.shape[0])


# --- the kernel -------------------------------------------------------------

def lane_features(count):
    """(lane, n) pairs in the kernel's order: slot s, lane l -> n = 32 s + l."""
    for s in range((count + 31) // 32):
        for lane in range(32):
            n = 32 * s + lane
            if n < count:
                yield lane, n


def taylor_kernel(x, symmetric):
    d = len(x)
    rd = math.sqrt(d)
    lin_s, quad_s = 1 / math.sqrt(rd), 1 / (math.sqrt(2) * rd)
    width = 1 + d + (d * (d + 1) // 2 if symmetric else d * d)
    out = np.full(padded(width), np.nan)

    def a(i):
        return 1.0 if i == 0 else x[max(i, 1) - 1]

    for _, n in lane_features(padded(width)):
        lin, quad = n <= d, n < width
        m = 0 if lin else (n if quad else d + 1) - (d + 1)
        scale = quad_s if quad else 0.0
        if not symmetric:
            i, j = m // d + 1, m % d + 1
        else:
            square = m < d
            p = 0 if square else m - d
            row = sum(1 for r in range(1, d) if r * d - r * (r + 1) // 2 <= p)
            start = row * (2 * d - 1 - row) // 2
            col = p - start + row + 1
            i = (m if square else row) + 1
            j = (m if square else col) + 1
            scale = scale if square else (1 / rd if quad else 0.0)
        if lin:
            i, j, scale = 0, n, (1.0 if n == 0 else lin_s)
        out[n] = a(i) * a(j) * scale
    return out, width


def warp_reduce(values, op):
    v = list(values)
    for lanes in (16, 8, 4, 2, 1):
        v = [op(v[l], v[l ^ lanes]) for l in range(32)]
    assert all(e == v[0] for e in v)
    return v[0]


def hedgehog_kernel(x, w, bias, joint):
    nf = w.shape[1]
    slots = (nf + 31) // 32
    width = 2 * nf
    out = np.full(padded(width), np.nan)
    pos = np.full((32, slots), LOWEST)
    neg = np.full((32, slots), LOWEST)
    valid = np.zeros((32, slots), dtype=bool)
    for lane in range(32):
        for s in range(slots):
            j = 32 * s + lane
            valid[lane, s] = j < nf
            col = j if j < nf else 0
            y = bias[col] if bias is not None else 0.0
            for i in range(len(x)):
                y += x[i] * w[i, col]
            if joint:
                y *= 2
            if valid[lane, s]:
                pos[lane, s], neg[lane, s] = y, -y
    max_pos = warp_reduce([max(pos[l].max(), LOWEST) for l in range(32)], max)
    max_neg = warp_reduce([max(neg[l].max(), LOWEST) for l in range(32)], max)
    if joint:
        max_pos = max_neg = max(max_pos, max_neg)
    ep = np.where(valid, np.exp(np.where(valid, pos - max_pos, 0.0)), 0.0)
    en = np.where(valid, np.exp(np.where(valid, neg - max_neg, 0.0)), 0.0)
    sum_pos = warp_reduce(list(ep.sum(axis=1)), lambda u, v: u + v)
    sum_neg = warp_reduce(list(en.sum(axis=1)), lambda u, v: u + v)
    if joint:
        sum_pos = sum_neg = sum_pos + sum_neg
    for lane in range(32):
        for s in range(slots):
            if valid[lane, s]:
                j = 32 * s + lane
                out[j] = ep[lane, s] / sum_pos
                out[nf + j] = en[lane, s] / sum_neg
    out[width:] = 0.0  # zeroPadding
    return out, width


def performer_kernel(x, w, hyperbolic):
    m, d = w.shape
    inv = 1 / math.sqrt(math.sqrt(d))
    norm = math.sqrt(2 * m if hyperbolic else m)
    width = 2 * m if hyperbolic else m
    out = np.full(padded(width), np.nan)
    sq = sum(x[i] * x[i] for i in range(d))
    half = sq * (-0.5 * inv * inv)
    for lane, r in lane_features(m):
        proj = sum(x[i] * w[r, i] for i in range(d)) * inv
        out[r] = math.exp(proj + half) / norm
        if hyperbolic:
            out[m + r] = math.exp(half - proj) / norm
    out[width:] = 0.0
    return out, width


def check(name, got, width, want):
    assert len(want) == width, (name, len(want), width)
    assert not np.isnan(got).any(), f"{name}: a feature was never written"
    err = max(np.abs(got[:width] - want).max() / max(1.0, np.abs(want).max()),
              np.abs(got[width:]).max() if len(got) > width else 0.0)
    print(f"{name}: width {width} padded {len(got)}: rel err {err:.2e}")
    return err


def main():
    rng = np.random.default_rng(3)
    worst = 0.0
    for d in (2, 5, 8, 16):
        x = rng.standard_normal(d)
        for sym in (False, True):
            got, width = taylor_kernel(x, sym)
            worst = max(worst, check(f"taylor2{'_symmetric' if sym else ''} "
                                     f"d={d}", got, width,
                                     taylor_direct(x, sym)))
    for d, f in ((16, 8), (32, 40), (64, 64)):
        x = rng.standard_normal(d)
        w = rng.standard_normal((d, f)) / math.sqrt(d)
        bias = rng.standard_normal(f) * 0.1
        for b in (None, bias):
            got, width = hedgehog_kernel(x, w, b, joint=False)
            worst = max(worst, check(f"hedgehog d={d} f={f} bias={b is not None}",
                                     got, width, hedgehog_direct(x, w, b, False)))
        wj = rng.standard_normal((d, d)) / math.sqrt(d)
        got, width = hedgehog_kernel(x, wj, None, joint=True)
        worst = max(worst, check(f"hedgehog_joint d={d}", got, width,
                                 hedgehog_direct(x, wj, None, True)))
    for d, m in ((16, 24), (32, 70)):
        x = rng.standard_normal(d)
        w = rng.standard_normal((m, d))
        for hyp in (False, True):
            got, width = performer_kernel(x, w, hyp)
            worst = max(worst, check(f"performer{'_hyperbolic' if hyp else ''} "
                                     f"d={d} m={m}", got, width,
                                     performer_direct(x, w, hyp)))
    print(f"worst {worst:.2e}")
    return 0 if worst < 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main())
