#!/usr/bin/env bash
# Installs everything tinyml needs on a fresh Debian machine, from this
# repository's own files: Debian packages (cross compilers, QEMU), then the
# CPU build of torch (pinned first: any other torch spec pulls GBs of CUDA
# wheels), then this package with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    gcc cmake make
    gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib
    qemu-system-arm
    gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc
    nodejs npm
)

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

PIP="python3 -m pip"
if ! python3 -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
    echo "setup: installing torch==2.13.0 (CPU build)"
    $PIP install -q torch==2.13.0
fi
echo "setup: installing tinyml and its dependencies"
$PIP install -q -e ".[dev]"

# MicroPython (WebAssembly) for the MicroPython runtime's tests: the pinned npm package.
echo "setup: installing the MicroPython wasm bridge (npm ci)"
(cd firmware/micropython/wasm_bridge && npm ci --no-audit --no-fund --silent)

# The test suite skips a toolchain test only where a tool is missing; after this
# script nothing may be missing, so a skip can never hide a broken set-up.
for tool in node cmake arm-none-eabi-gcc qemu-system-arm riscv64-unknown-elf-gcc qemu-system-riscv32; do
    command -v "$tool" >/dev/null || { echo "setup: $tool is still missing after installation" >&2; exit 1; }
done
