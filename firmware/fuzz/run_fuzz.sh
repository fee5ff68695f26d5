#!/bin/sh
# Fuzzes the firmware core (frame parser + protocol handler) built for the
# host with AddressSanitizer and UBSan. Bounded: runs for SECONDS (default 60)
# or RUNS executions, whichever comes first (RUNS 0: the time budget alone).
#
#   firmware/fuzz/run_fuzz.sh [SECONDS] [BUILD_DIR]
#   firmware/fuzz/run_fuzz.sh [--seconds S] [--runs N] [--out BUILD_DIR]
#
# With clang (Debian package `clang`) it uses libFuzzer; otherwise gcc's
# -fsanitize-coverage=trace-pc and the bundled coverage-guided mini_fuzzer.c.
# Exit status non-zero on a crash, a sanitizer report or an invalid frame sent.
set -eu
SECONDS_TO_RUN=60
RUNS=0
OUT=${TMPDIR:-/tmp}/tinyml-fuzz
POSITIONAL=0
usage() { echo "error: $1 (usage: run_fuzz.sh [--seconds S] [--runs N] [--out DIR] | [SECONDS] [DIR])" >&2; exit 2; }
is_count() { case "$1" in ''|*[!0-9]*) return 1 ;; *) return 0 ;; esac; }
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds|--runs|--out)
        [ $# -ge 2 ] || usage "$1 needs a value"
        case "$1" in
        --seconds) is_count "$2" || usage "--seconds wants a whole number, got '$2'"; SECONDS_TO_RUN=$2 ;;
        --runs) is_count "$2" || usage "--runs wants a whole number, got '$2'"; RUNS=$2 ;;
        --out) OUT=$2 ;;
        esac
        shift 2 ;;
    -*) usage "unknown option $1" ;;
    *)
        POSITIONAL=$((POSITIONAL + 1))
        case $POSITIONAL in
        1) is_count "$1" || usage "SECONDS wants a whole number, got '$1'"; SECONDS_TO_RUN=$1 ;;
        2) OUT=$1 ;;
        *) usage "too many arguments" ;;
        esac
        shift ;;
    esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
FW=$(dirname "$HERE")
mkdir -p "$OUT"
SOURCES="$FW/core/tm_core.c $FW/core/tm_frame.c $FW/backends/engine/tm_model_engine.c"
MODEL=${TINYML_FUZZ_MODEL_DIR:-$FW/../tinyml/testing/fixture_firmware}
INCLUDES="-I$FW/core -I$MODEL"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if command -v clang >/dev/null 2>&1 && echo 'int LLVMFuzzerTestOneInput(const char*d,unsigned long s){(void)d;(void)s;return 0;}' \
      | clang -x c -fsanitize=fuzzer - -o "$OUT/probe" >/dev/null 2>&1; then
    clang -std=c99 $SAN -fsanitize=fuzzer $INCLUDES $SOURCES "$MODEL/model.c" "$HERE/fuzz_core.c" -o "$OUT/fuzz_core"
    mkdir -p "$OUT/corpus"
    LIBFUZZER_RUNS=$RUNS
    [ "$RUNS" -gt 0 ] || LIBFUZZER_RUNS=-1
    exec "$OUT/fuzz_core" -max_total_time="$SECONDS_TO_RUN" -runs="$LIBFUZZER_RUNS" -max_len=12000 "$OUT/corpus"
fi

CC=${CC:-gcc}
for f in $SOURCES "$MODEL/model.c" "$HERE/fuzz_core.c"; do
    $CC -std=c99 -Wall -Wextra -Werror $SAN -fsanitize-coverage=trace-pc $INCLUDES -c "$f" \
        -o "$OUT/$(basename "$f" .c).o"
done
$CC -std=c99 -Wall -Wextra -Werror $SAN $INCLUDES -c "$HERE/mini_fuzzer.c" -o "$OUT/mini_fuzzer.o"
$CC $SAN "$OUT"/tm_core.o "$OUT"/tm_frame.o "$OUT"/tm_model_engine.o "$OUT"/model.o "$OUT"/fuzz_core.o \
    "$OUT"/mini_fuzzer.o -o "$OUT/mini_fuzzer"
exec "$OUT/mini_fuzzer" -seconds "$SECONDS_TO_RUN" -runs "$RUNS" -seed "${FUZZ_SEED:-1}"
