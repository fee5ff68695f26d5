#!/usr/bin/env bash
# Installs everything tinyml needs on a fresh Debian machine, from this
# repository's own files: Debian packages (cross compilers, QEMU, python3-venv),
# then a project virtual environment in .venv/ (Debian's python3 is "externally
# managed", PEP 668: pip refuses to install outside a venv), then the CPU build
# of torch into it (pinned first: any other torch spec pulls GBs of CUDA wheels),
# then this package with its test extras. Safe to run again: each step is
# skipped when its result is already there.
#
# Use it afterwards with `source .venv/bin/activate` (then `tinyml --help`), or
# call `.venv/bin/tinyml` / `.venv/bin/python` directly.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    python3 python3-venv
    gcc cmake make
    gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib
    qemu-system-arm
    gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc
    gcc-xtensa-lx106 picolibc-xtensa-lx106-elf clang-22 llvm-22
)
# Node and npm run the MicroPython WebAssembly build. A Node.js that is already there (e.g.
# NodeSource's, which bundles npm and conflicts with Debian's npm package) is used as it is.
command -v node >/dev/null || APT_PACKAGES+=(nodejs)
command -v npm >/dev/null || APT_PACKAGES+=(npm)
VENV=.venv
TORCH_SPEC="torch==2.13.0"

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The venv is made by whatever python3 comes first on PATH (Debian's /usr/bin/python3
# on a stock machine). A venv whose interpreter no longer runs (moved folder, removed
# Python) is made again rather than patched.
if ! "$VENV/bin/python" -c "" 2>/dev/null; then
    python3 -c "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)" || {
        echo "setup: tinyml needs Python 3.11 or newer; $(command -v python3) is $(python3 --version 2>&1)" >&2
        exit 1
    }
    echo "setup: creating the virtual environment $VENV/ with $(command -v python3) ($(python3 --version 2>&1))"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
    echo "setup: installing $TORCH_SPEC (CPU build) into $VENV/"
    "$PY" -m pip install -q "$TORCH_SPEC"
fi

# pip resolves every dependency again on each install (tens of seconds), so the
# install is stamped with the hash of pyproject.toml and repeated only when it changed.
stamp="$VENV/.tinyml-installed"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1) $(pwd)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] || ! "$PY" -c "import importlib.metadata as m; m.version('tinyml-toolchain')" 2>/dev/null; then
    echo "setup: installing tinyml and its dependencies into $VENV/"
    "$PY" -m pip install -q -e ".[dev]"
    echo "$wanted" > "$stamp"
fi

# MicroPython (WebAssembly) for the MicroPython runtime's tests: the pinned npm package.
echo "setup: installing the MicroPython wasm bridge (npm ci)"
(cd firmware/micropython/wasm_bridge && npm ci --no-audit --no-fund --silent)

# The test suite skips a toolchain test only where a tool is missing; after this
# script nothing may be missing, so a skip can never hide a broken set-up.
for tool in node cmake arm-none-eabi-gcc qemu-system-arm riscv64-unknown-elf-gcc qemu-system-riscv32 \
            xtensa-lx106-elf-gcc qemu-system-xtensa clang-22 llc-22 llvm-mc-22; do
    command -v "$tool" >/dev/null || { echo "setup: $tool is still missing after installation" >&2; exit 1; }
done
echo "setup: ready; use it with: source $VENV/bin/activate"
