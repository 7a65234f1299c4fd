# -*- Python -*-
# lit configuration of the linattn test suite.

import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "LINATTN"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.linattn_obj_root, "test")
config.excludes = ["Unit", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]

config.substitutions.append(("%PATH%", config.environment["PATH"]))
llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()
# Caches: never the user's; kernels shared in memory only unless a test asks
# for the disk cache (with its own LINATTN_CACHE_DIR).
config.environment["LINATTN_CACHE_DIR"] = os.path.join(
    config.test_exec_root, "linattn-cache")
config.environment["LINATTN_KERNEL_CACHE"] = "memory"
config.environment.pop("LINATTN_TUNE", None)

tool_dirs = [config.linattn_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(
    ["linattn-opt", "linattn-reference", "linattn-run", "linattn-launch"],
    tool_dirs)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

# ptxas from the CUDA toolkit checks generated PTX where it is installed.
ptxas = os.path.join(config.cuda_dir, "bin", "ptxas")
if os.path.exists(ptxas):
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", ptxas))

# A C compiler for test helpers built at test time (the fake libcuda): cc,
# else the clang-22 that scripts/setup.sh installs.
import shutil
cc = shutil.which("cc") or shutil.which("clang-22")
if cc:
    config.available_features.add("cc")
    config.substitutions.append(("%cc", cc))

# The CUDA driver emulator (docs/gpu-emulator.md).
config.substitutions.append(
    ("%emulib", os.path.join(config.linattn_obj_root, "lib",
                             "liblinattn_cuda_emu.so")))
