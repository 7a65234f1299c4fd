"""The fp64 models of GPU kernel math in test/GPU (no GPU needed): each
mirrors what an emitter computes (index arithmetic, blocking, warp
reductions) and compares it with the definition. They run here because this
suite has NumPy."""

import pathlib
import subprocess
import sys

import pytest

GPU_DIR = pathlib.Path(__file__).resolve().parents[1] / "GPU"


@pytest.mark.parametrize("model", ["delta-model.py", "feature-map-model.py"])
def test_gpu_model(model):
    run = subprocess.run([sys.executable, str(GPU_DIR / model)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "worst" in run.stdout
