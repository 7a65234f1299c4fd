#!/usr/bin/env python3
"""Times FLA's chunked forward kernels and linattn's AOT kernels on one GPU.

For each shape (B, H, T, D) in bf16 with FLA's [B, T, H, D] layout:
  - FLA chunk_simple_gla (scalar gate), chunk_gla (vector gate) and
    chunk_linear_attn (no decay, unnormalized), plus chunk_delta_rule and
    chunk_gated_delta_rule (L2-normalized keys, beta in (0, 1)) as extra
    rows, median over CUDA-event timed runs, with the final state written
    (as linattn does);
  - `linattn-launch --bench` on the matching AOT kernel from --kernels
    (manifest spec: decay scalar/vector/none/delta/gated_delta, dtype bf16,
    layout bthd, key_dim = value_dim = D), when one exists.
Prints a table with milliseconds, achieved bandwidth (bytes every
implementation must move once: q, k, v, o, gate, final state) as % of the
HBM roofline, and the linattn/FLA time ratio.

Runs on the GPU machine (torch + triton present, no network); FLA comes from
wheels carried there (see README.md).
"""

import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys

SHAPES = [(4, 16, 4096, 128), (2, 16, 16384, 128), (8, 32, 8192, 64)]
OPS = [("chunk_simple_gla", "scalar"), ("chunk_gla", "vector"),
       ("chunk_linear_attn", "none"), ("chunk_delta_rule", "delta"),
       ("chunk_gated_delta_rule", "gated_delta")]


def die(msg, code=1):
    print(f"bench_fla: {msg}", file=sys.stderr)
    sys.exit(code)


def load_fla():
    try:
        import torch  # noqa: F401
    except Exception as e:  # pragma: no cover - depends on the machine
        die(f"cannot import torch ({e}); run this on the GPU machine")
    try:
        from fla.ops.gla import chunk_gla
        from fla.ops.linear_attn import chunk_linear_attn
        from fla.ops.simple_gla import chunk_simple_gla
    except Exception as e:
        die("cannot import FLA (flash-linear-attention / fla-core): "
            f"{type(e).__name__}: {e}\n  install the carried wheels first: "
            "python3 -m pip install -q --no-index --no-deps --target "
            "/tmp/site bench/gpu/wheels/*.whl && export PYTHONPATH=/tmp/site")
    fns = {"chunk_simple_gla": chunk_simple_gla, "chunk_gla": chunk_gla,
           "chunk_linear_attn": chunk_linear_attn}
    # The delta rules are extra rows (not in the target list); an
    # FLA without them just leaves the rows to linattn.
    try:
        from fla.ops.delta_rule import chunk_delta_rule
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule
        fns.update(chunk_delta_rule=chunk_delta_rule,
                   chunk_gated_delta_rule=chunk_gated_delta_rule)
    except Exception as e:
        print(f"note: FLA delta rules unavailable ({type(e).__name__}: {e})")
    return fns


def time_cuda(fn, warmup, reps):
    import torch
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def bytes_moved(b, h, t, d, decay):
    tokens = b * t * h
    n = 4 * tokens * d * 2                     # q, k, v, o in bf16
    n += {"none": 0, "scalar": tokens * 4, "vector": tokens * d * 4,
          "delta": tokens * 4,                 # beta
          "gated_delta": 2 * tokens * 4}[decay]  # beta and the gate
    n += b * h * d * d * 4                     # final state, f32
    return n


def run_fla(fns, op, decay, shape, warmup, reps):
    import torch
    import torch.nn.functional as F
    b, h, t, d = shape
    dev = "cuda"
    torch.manual_seed(0)
    q = torch.randn(b, t, h, d, device=dev, dtype=torch.bfloat16) * 0.5
    k = torch.randn(b, t, h, d, device=dev, dtype=torch.bfloat16) * 0.5
    v = torch.randn(b, t, h, d, device=dev, dtype=torch.bfloat16)
    scale = d ** -0.5
    fn = fns[op]
    if decay in ("delta", "gated_delta"):
        # Keys L2-normalized (MATH.md 9.6), beta in (0, 1), as linattn-launch
        # draws them.
        k = F.normalize(k.float(), dim=-1).to(torch.bfloat16)
        beta = torch.rand(b, t, h, device=dev, dtype=torch.bfloat16)
        if decay == "delta":
            call = lambda: fn(q, k, v, beta, scale=scale,
                              output_final_state=True)
        else:
            g = F.logsigmoid(torch.randn(b, t, h, device=dev)) / 16
            call = lambda: fn(q, k, v, g, beta, scale=scale,
                              output_final_state=True)
    elif decay == "scalar":
        g = F.logsigmoid(torch.randn(b, t, h, device=dev)) / 16
        call = lambda: fn(q, k, v, g=g, scale=scale, output_final_state=True)
    elif decay == "vector":
        g = F.logsigmoid(torch.randn(b, t, h, d, device=dev)) / 16
        call = lambda: fn(q, k, v, g, scale=scale, output_final_state=True)
    else:
        call = lambda: fn(q, k, v, scale=scale, output_final_state=True,
                          normalize=False)
    return time_cuda(call, warmup, reps)


def find_kernel(kdir, decay, d):
    for path in sorted(glob.glob(os.path.join(kdir, "*.json"))):
        try:
            with open(path) as f:
                m = json.load(f)
            s = m["spec"]
        except Exception:
            continue
        if (s.get("decay") == decay and s.get("dtype") == "bf16"
                and s.get("layout") == "bthd" and s.get("key_dim") == d
                and s.get("value_dim") == d
                and s.get("feature_map") == "identity"
                and not s.get("normalized")):
            return path
    return None


def run_linattn(launch, manifest, shape, reps, peak):
    b, h, t, _ = shape
    cmd = [launch, manifest, f"--random={b},{h},{t}", "--no-initial-state",
           "--bench", "--reps", str(reps), "--peak-tbps", str(peak)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return None, (r.stderr.strip().splitlines() or ["failed"])[-1]
    m = re.search(r"median ([0-9.]+) ms", r.stdout)
    return (float(m.group(1)), "") if m else (None, "no timing in output")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", default="aot",
                    help="directory of AOT kernels (*.json + *.ptx)")
    ap.add_argument("--launch", default="build-launch/linattn-launch",
                    help="linattn-launch binary")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--peak-tbps", type=float, default=3.35,
                    help="HBM peak in TB/s (H100 SXM: 3.35, H200: 4.8)")
    ap.add_argument("--skip-fla", action="store_true")
    args = ap.parse_args()

    fns = None if args.skip_fla else load_fla()
    if fns is not None:
        import torch
        if not torch.cuda.is_available():
            die("torch sees no CUDA device", 77)
        print(f"device: {torch.cuda.get_device_name()}, torch "
              f"{torch.__version__}")
    have_launch = os.access(args.launch, os.X_OK)
    if not have_launch:
        print(f"note: no linattn-launch at {args.launch} "
              "(scripts/build-launch.sh builds it); FLA only")

    hdr = (f"{'op':<18} {'B,H,T,D':<16} {'FLA ms':>9} {'FLA %HBM':>9} "
           f"{'linattn ms':>11} {'lin %HBM':>9} {'lin/FLA':>8}  note")
    print(hdr)
    print("-" * len(hdr))
    for shape in SHAPES:
        for op, decay in OPS:
            b, h, t, d = shape
            gb = bytes_moved(b, h, t, d, decay)
            pct = lambda ms: 100 * gb / (ms * 1e-3) / (args.peak_tbps * 1e12)
            fla_ms, lin_ms, note = None, None, ""
            if fns is not None and op in fns:
                try:
                    fla_ms = run_fla(fns, op, decay, shape, args.warmup,
                                     args.reps)
                except Exception as e:
                    note = f"FLA failed: {type(e).__name__}: {e}"[:80]
            kernel = find_kernel(args.kernels, decay, d)
            if not kernel:
                note = note or f"no {decay}/bf16/bthd/D={d} kernel"
            elif have_launch:
                lin_ms, err = run_linattn(args.launch, kernel, shape,
                                          args.reps, args.peak_tbps)
                note = note or err
            fmt = lambda x, f: f.format(x) if x is not None else "-"
            ratio = lin_ms / fla_ms if lin_ms and fla_ms else None
            print(f"{op:<18} {','.join(map(str, shape)):<16} "
                  f"{fmt(fla_ms, '{:9.3f}'):>9} "
                  f"{fmt(fla_ms and pct(fla_ms), '{:8.1f}%'):>9} "
                  f"{fmt(lin_ms, '{:11.3f}'):>11} "
                  f"{fmt(lin_ms and pct(lin_ms), '{:8.1f}%'):>9} "
                  f"{fmt(ratio, '{:7.2f}x'):>8}  {note}")


if __name__ == "__main__":
    main()
