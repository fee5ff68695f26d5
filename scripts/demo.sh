#!/usr/bin/env bash
# Sets up a fresh machine (scripts/setup.sh) and runs the demo end to end on the
# emulated STM32F405: prepare -> compile -> firmware -> QEMU -> bench -> reports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec tinyml demo "$@"
