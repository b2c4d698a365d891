#!/usr/bin/env bash
# Runs each fuzz target for the given time (default 30 minutes), one after
# the other, on one core, and prints what they found:
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# cargo-fuzz is installed if missing. libFuzzer's instrumentation needs
# unstable compiler flags: on a stable toolchain RUSTC_BOOTSTRAP=1 allows
# them. Crashes are kept in fuzz/artifacts/<target>/, the corpus in
# fuzz/corpus/<target>/ (seeded from tests/data); neither is committed.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-1800}
shift || true
[ $# -gt 0 ] || set -- wav audio multipart live
command -v cargo-fuzz > /dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
for target in "$@"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    case $target in
        wav) cp ../tests/data/*.wav "corpus/$target/" ;;
        audio) cp ../tests/data/*.wav ../tests/data/formats/* "corpus/$target/" ;;
        # A leading byte for the chunk size, then a recording.
        live) for f in ../tests/data/formats/*.webm ../tests/data/formats/*.ogg ../tests/data/formats/*.opus; do
                  [ -f "$f" ] && { printf '\x3f'; cat "$f"; } > "corpus/$target/$(basename "$f")"
              done ;;
    esac
    log="artifacts/$target.log"
    if cargo fuzz run --sanitizer none "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=262144 -rss_limit_mb=4096 \
        -artifact_prefix="artifacts/$target/" > "$log" 2>&1; then
        echo "$target: no crash in $seconds s; $(grep -a '^Done' "$log" | tail -n 1)"
    else
        echo "$target: crashed, input in fuzz/artifacts/$target/, log in fuzz/$log:"
        grep -a -m 1 -A 1 'panicked' "$log" || tail -n 5 "$log"
    fi
done
