#!/usr/bin/env python3
"""Runs AOT kernels on PyTorch CUDA tensors through linattn.aot and checks
them against linattn.reference (float64 NumPy).

For every manifest (*.json) in the given directories, on random inputs
drawn as linattn-launch --random draws them (MATH.md 9.7), in three cases
(B = 2 with an initial state; GQA Hq/Hk/Hv = 4/2/1; packed sequences with
an empty one), the kernel's o, final state and (normalized kernels) final
normalizer must be within the ratio tolerance of its dtype (bf16 5e-3, f16
1e-3, f32 1e-5; test/python/conftest.py RATIO). One line per kernel:

    PASS gla_bf16_bthd_128  o 1.2e-03  S 9.8e-04   (worst over the cases)

    PYTHONPATH=python LINATTN_CUDA_RT=build-launch/liblinattn_cuda_rt.so \\
        python3 bench/gpu/aot_torch_check.py .gpu-kernels/test-sm90

Exit status: 0 all passed, 1 a kernel failed or errored (or numpy/torch is
missing), 77 no GPU or driver. test/python/test_aot.py runs the same checks
under pytest (on LINATTN_AOT_KERNELS).
"""

import argparse
import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

#: Ratio tolerance per manifest dtype (MATH.md 9.7, GPUTuner gpuTolerance).
TOLERANCE = {"f32": 1e-5, "f16": 1e-3, "bf16": 5e-3}

#: label, B, Hq, Hk, Hv, T, initial state, cu_seqlens.
CASES = [
    ("B=2 T=130 s0", 2, 2, 2, 2, 130, True, None),
    ("gqa T=63", 2, 4, 2, 1, 63, False, None),
    ("varlen s0", 1, 2, 2, 2, 200, True, [0, 1, 64, 64, 200]),
]


def die(msg, code=1):
    print(f"aot_torch_check: {msg}", file=sys.stderr)
    sys.exit(code)


def import_deps():
    """(torch, aot), or exit naming what is missing."""
    try:
        import numpy  # noqa: F401 (linattn.reference needs it)
    except ImportError:
        die("numpy is required (linattn.reference is NumPy): pip install "
            "numpy")
    try:
        import torch
    except ImportError:
        die("PyTorch is required (the kernels run on torch CUDA tensors)")
    sys.path.insert(0, os.path.join(ROOT, "python"))
    from linattn import aot
    return torch, aot


def make_inputs(manifest, case, device, seed):
    """Keyword arguments of a Module call (and of the reference) for one
    case, drawn on the CPU with a fixed seed and moved to `device`."""
    import torch
    from linattn import aot
    s = manifest["spec"]
    _, B, hq, hk, hv, T, with_s0, offsets = case
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return torch.randn(shape, generator=gen, dtype=torch.float64) * scale

    bthd = s["layout"] == "bthd"

    def lay(h, d=None):  # [B, T, H(, D)] or [B, H, T(, D)]
        dims = [B, T, h] if bthd else [B, h, T]
        return dims + ([d] if d is not None else [])

    dt = getattr(torch, aot._DTYPES[s["dtype"]])
    d, dv = int(s["key_dim"]), int(s["value_dim"])
    dphi = aot.feature_dim(manifest)
    spec = aot.manifest_spec(manifest)
    H = max(hq, hk, hv)
    q, k, v = randn(*lay(hq, d), scale=0.5), randn(*lay(hk, d), scale=0.5), \
        randn(*lay(hv, dv))
    fm = s["feature_map"]
    if spec.normalized and fm in ("identity", "elu_plus_one", "relu"):
        # Positive q and k keep q . z away from 0 (the width-changing maps
        # are positive by themselves).
        q, k = (torch.nn.functional.elu(x) + 1 for x in (q, k))
    decay = s["decay"]
    if decay in ("delta", "gated_delta"):
        q, k = (x / (x.norm(dim=-1, keepdim=True) + 1e-12) for x in (q, k))
    kw = {"q": q.to(dt), "k": k.to(dt), "v": v.to(dt)}

    def logsig(x):
        return torch.nn.functional.logsigmoid(x) / 16

    gate_dt = getattr(torch, aot._DTYPES[s.get("gate_dtype", "f32")])
    if decay == "constant" and spec.has_gate:
        kw["gate"] = logsig(randn(H)).float()
    elif decay in ("scalar", "gated_delta"):
        kw["gate"] = logsig(randn(*lay(H))).to(gate_dt)
    elif decay == "vector":
        kw["gate"] = logsig(randn(*lay(H, dphi))).to(gate_dt)
    if decay in ("delta", "gated_delta"):
        kw["beta"] = torch.sigmoid(randn(*lay(H))).float()
    n = len(offsets) - 1 if offsets else B
    if with_s0:
        shape = [n, H] + ([dv, dphi] if s.get("state_value_major")
                          else [dphi, dv])
        kw["initial_state"] = randn(*shape).float()
        if spec.normalized:
            kw["initial_normalizer"] = (randn(n, H, dphi).abs() + 0.5).float()
    if fm in ("hedgehog", "hedgehog_joint"):
        f = d if fm == "hedgehog_joint" else int(s["feature_count"])
        kw["map_weight"] = randn(d, f, scale=d ** -0.5).float()
        kw["map_bias"] = randn(f, scale=0.1).float()
    elif fm in ("performer", "performer_hyperbolic"):
        kw["map_weight"] = randn(int(s["feature_count"]), d).float()
    if offsets:
        kw["cu_seqlens"] = torch.tensor(offsets, dtype=torch.int64)
    return {key: x.to(device) for key, x in kw.items()}


def check_case(kernel, manifest, case, device, seed):
    """Runs `kernel` (an aot.Module, or anything called like one) on one
    case; returns {"o": ratio, "S": ratio[, "z": ratio]}."""
    from linattn import aot, reference
    kw = make_inputs(manifest, case, device, seed)
    o, final = kernel(**kw, output_final_state=True)
    spec = aot.manifest_spec(manifest)
    host = {key: reference.to_numpy(x) for key, x in kw.items()}
    s0 = host.pop("initial_state", None)
    z0 = host.pop("initial_normalizer", None)
    offsets = host.pop("cu_seqlens", None)
    want_o, want_s, want_z = reference.run(
        spec, host.pop("q"), host.pop("k"), host.pop("v"),
        initial_state=s0 if z0 is None else (s0, z0),
        cu_seqlens=None if offsets is None else [int(x) for x in offsets],
        **host)
    got_s, got_z = final if spec.normalized else (final, None)
    ratios = {"o": reference.ratio(o, want_o),
              "S": reference.ratio(got_s, want_s)}
    if spec.normalized:
        ratios["z"] = reference.ratio(got_z, want_z)
    for name, got in (("o", o), ("S", got_s), ("z", got_z)):
        if got is not None and not bool(got.isfinite().all().item()):
            ratios[name] = float("inf")  # NaN/Inf in the kernel's output
    return ratios


def check_kernel(module, device, seed=1):
    """Every case of CASES on one module: (ok, line)."""
    m = module.manifest
    tol = TOLERANCE[m["spec"]["dtype"]]
    worst, errors = {}, []
    for i, case in enumerate(CASES):
        try:
            r = check_case(module, m, case, device, seed + i)
        except (ValueError, RuntimeError) as e:
            errors.append(f"{case[0]}: {e}")
            continue
        for key, x in r.items():
            if x > tol:
                errors.append(f"{case[0]}: {key} ratio {x:.3g} > {tol:g}")
            worst[key] = max(worst.get(key, 0.0), x)
    name = os.path.splitext(os.path.basename(module.path))[0]
    ratios = "  ".join(f"{k} {v:.1e}" for k, v in worst.items())
    line = f"{'FAIL' if errors else 'PASS'} {name:40s} {ratios}"
    if errors:
        line += "\n    " + "\n    ".join(errors)
    return not errors, line


def manifests(dirs):
    out = []
    for d in dirs:
        found = sorted(p for p in glob.glob(os.path.join(d, "*.json"))
                       if not p.endswith(".variants.json"))
        if not found:
            die(f"no *.json manifests in {d}")
        out += found
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", metavar="KERNEL_DIR")
    ap.add_argument("--lib", help="liblinattn_cuda_rt.so (default: "
                    "$LINATTN_CUDA_RT, then the build directories)")
    ap.add_argument("--device", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch, aot = import_deps()
    paths = manifests(args.dirs)
    if not torch.cuda.is_available():
        die("skipped: torch sees no CUDA device", 77)
    try:
        aot.load_library(args.lib)
        dev = aot.Device(args.device)
    except aot.Unavailable as e:
        die(f"skipped: {e}", 77)
    except (OSError, RuntimeError) as e:
        die(str(e))
    print(f"aot_torch_check: {dev.name} ({dev.chip}), {len(paths)} kernels")
    device = torch.device("cuda", args.device)
    failed = 0
    for p in paths:
        try:
            module = aot.Module(dev, p)
        except (ValueError, RuntimeError, OSError) as e:
            failed += 1
            print(f"ERROR {os.path.basename(p)}: {e}", flush=True)
            continue
        ok, line = check_kernel(module, device, args.seed)
        failed += not ok
        print(line, flush=True)
        module.unload()
    print(f"aot_torch_check: {len(paths) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
