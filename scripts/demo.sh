#!/usr/bin/env bash
# Sets up a fresh machine (scripts/setup.sh, which makes the project venv .venv/)
# and runs the demo end to end on the emulated STM32F405 with the venv's tinyml:
# prepare -> compile -> firmware -> QEMU -> bench -> reports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/tinyml demo "$@"
