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
targets=("${@:-wav audio multipart}")
command -v cargo-fuzz > /dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
for target in ${targets[@]}; do
    mkdir -p "corpus/$target" "artifacts/$target"
    case $target in
        wav) cp ../tests/data/*.wav "corpus/$target/" ;;
        audio) cp ../tests/data/*.wav ../tests/data/formats/* "corpus/$target/" ;;
    esac
    cargo fuzz run --sanitizer none "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=262144 -rss_limit_mb=4096 -jobs=1 -workers=1 \
        -artifact_prefix="artifacts/$target/" 2>&1 | tail -n 5
    echo "$target: $(ls "artifacts/$target" | wc -l) crash(es) in fuzz/artifacts/$target"
done
