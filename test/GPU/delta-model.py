#!/usr/bin/env python3
"""fp64 model of the GPU delta-rule chunk (GPUKernel.cpp emitDeltaValues +
emitChunk) checked against a direct token-by-token recurrence (the
definition in lib/Reference/Recurrent.cpp, MATH.md 5.1).

The model mirrors what the kernel computes per chunk of C rows, with rows
past the end of the sequence padded exactly as the kernel stages them (zero
q, k, v, gate and beta):
  b   = inclusive cumsum of the clamped log-gates (0 without gates)
  X   = diag(beta) (V - diag(e^b) K S)           (over V in vt)
  A   = beta_t (k_t . k_s) e^{b_t - b_s}, s < t  (am, lower triangle)
  T   = (I + A)^{-1}, blocked by 16 rows (solve_blocked)
  Vt  = T X
  O   = diag(e^b) Q S + ((Q K^T) (.) Gamma (.) M) Vt   (M: s <= t or s < t)
  S  <- e^{b_C} S + (diag(e^{b_C - b}) K)^T Vt
Usage: delta-model.py (exits 1 on a mismatch above 1e-10).
"""
import sys

import numpy as np

MIN_LOG_GATE = -1000.0


def recurrent(q, k, v, beta, g, s0, exclusive):
    s = s0.copy()
    o = np.zeros((q.shape[0], v.shape[1]))
    for t in range(q.shape[0]):
        if g is not None:
            s *= np.exp(max(g[t], MIN_LOG_GATE))
        if exclusive:
            o[t] = q[t] @ s
        u = beta[t] * (v[t] - k[t] @ s)
        s += np.outer(k[t], u)
        if not exclusive:
            o[t] = q[t] @ s
    return o, s


def solve_blocked(am):
    """T = (I + A)^{-1} as the kernel computes it, in place in `am` (fp32
    [C][C + 1], A below the diagonal):
      1. each 16x16 diagonal block by forward substitution, one column per
         thread; T[i][j] of a diagonal block goes to am[j][i] (above);
      2. block row r0 = 16, 32, ...: for i in [r0, r0 + 16), j < r0,
         U[i][j] = A[i][j] + sum_{j<m<r0} A[i][m] T[m][j], written to
         am[j][i] (above the diagonal, free until then); after a barrier,
         T[i][j] = -(U[i][j] + sum_{r0<=m<i} T[i][m] U[m][j]) over A at
         am[i][j] (A[r0 block row] is no longer needed).
    So off-diagonal blocks of T sit below the diagonal, diagonal blocks
    above. Returns T as a full matrix (the 16-bit tile tb)."""
    am = am.copy()
    c = am.shape[0]

    def same_block(i, j):
        return i // 16 == j // 16

    def t_at(m, j):  # T[m][j] for m > j
        return am[j, m] if same_block(m, j) else am[m, j]

    for j in range(c):  # 1. one thread per column, within its block
        end = j // 16 * 16 + 16
        for i in range(j + 1, end):
            acc = am[i, j]
            for m in range(j + 1, i):
                acc += am[i, m] * am[j, m]
            am[j, i] = -acc
    for r0 in range(16, c, 16):  # 2. block rows
        for i in range(r0, r0 + 16):
            for j in range(r0):
                acc = am[i, j]
                end = j // 16 * 16 + 16
                for m in range(j + 1, end):
                    acc += am[i, m] * am[j, m]
                for m in range(end, r0):
                    acc += am[i, m] * am[m, j]
                am[j, i] = acc  # U
        for i in range(r0, r0 + 16):
            for j in range(r0):
                acc = am[j, i]
                for m in range(r0, i):
                    acc += am[m, i] * am[j, m]
                am[i, j] = -acc
    return np.array([[t_at(i, j) if i > j else float(i == j)
                      for j in range(c)] for i in range(c)])


def kernel_chunk(q, k, v, beta, g, s, exclusive):
    """One chunk as the kernel computes it (all C rows, padded)."""
    c = q.shape[0]
    b = np.cumsum(np.maximum(g, MIN_LOG_GATE)) if g is not None else np.zeros(c)
    x = beta[:, None] * (v - np.exp(b)[:, None] * (k @ s))
    am = np.zeros((c, c))
    for t in range(c):
        for u in range(t):
            am[t, u] = beta[t] * (k[t] @ k[u]) * np.exp(b[t] - b[u])
    tm = solve_blocked(am)
    vt = tm @ x
    keep = np.tril(np.ones((c, c), dtype=bool), -1 if exclusive else 0)
    # Selected, not multiplied: above the diagonal exp(b_t - b_s) may be inf.
    with np.errstate(over="ignore", invalid="ignore"):
        p = np.where(keep, (q @ k.T) * np.exp(b[:, None] - b[None, :]), 0.0)
    o = np.exp(b)[:, None] * (q @ s) + p @ vt
    s = np.exp(b[-1]) * s + (np.exp(b[-1] - b)[:, None] * k).T @ vt
    return o, s


def kernel(q, k, v, beta, g, s0, exclusive, c):
    n = q.shape[0]
    o = np.zeros((n, v.shape[1]))
    s = s0.copy()
    for c0 in range(0, n, c):
        rows = min(c, n - c0)

        def pad(a):
            out = np.zeros((c,) + a.shape[1:])
            out[:rows] = a[c0:c0 + rows]
            return out

        oc, s = kernel_chunk(pad(q), pad(k), pad(v), pad(beta),
                             pad(g) if g is not None else None, s, exclusive)
        o[c0:c0 + rows] = oc[:rows]
    return o, s


def main():
    rng = np.random.default_rng(7)
    worst = 0.0
    for n, dk, dv, c in [(70, 16, 8, 16), (64, 32, 16, 64), (100, 64, 32, 64),
                         (5, 8, 8, 16), (129, 16, 24, 32)]:
        for gated in (False, True):
            for exclusive in (False, True):
                q = rng.standard_normal((n, dk))
                k = rng.standard_normal((n, dk))
                k /= np.linalg.norm(k, axis=1, keepdims=True)  # as randomInputs
                v = rng.standard_normal((n, dv))
                beta = rng.uniform(0.0, 1.0, n)
                g = np.log(rng.uniform(0.9, 1.0, n)) if gated else None
                if gated:
                    g[n // 3] = -2000.0  # clamped to MIN_LOG_GATE
                s0 = rng.standard_normal((dk, dv))
                o_ref, s_ref = recurrent(q, k, v, beta, g, s0, exclusive)
                o, s = kernel(q, k, v, beta, g, s0, exclusive, c)
                err = max(np.abs(o - o_ref).max() / max(1.0, np.abs(o_ref).max()),
                          np.abs(s - s_ref).max() / max(1.0, np.abs(s_ref).max()))
                worst = max(worst, err) if np.isfinite(err) else np.inf
                print(f"T={n} Dk={dk} Dv={dv} C={c} gated={gated} "
                      f"exclusive={exclusive}: rel err {err:.2e}")
    print(f"worst {worst:.2e}")
    return 0 if worst < 1e-10 else 1


if __name__ == "__main__":
    sys.exit(main())
