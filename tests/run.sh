#!/usr/bin/env bash
# hark's test command: installs the test-only Python clients (the official
# openai package, for the OpenAI-compatible route; grpcio with its tools,
# health and reflection clients, for the gRPC API) into tests/.venv, and
# chromium, opus-tools and ffmpeg when they are missing, then runs the Rust
# tests:
#
#   tests/run.sh [--slow] [CARGO TEST ARGUMENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! tests/.venv/bin/python -c "import openai, grpc_tools, grpc_health, grpc_reflection" 2>/dev/null; then
    python3 -m venv tests/.venv
    tests/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
fi
# From Debian, when missing: chromium (the page's browser test, headless),
# opus-tools and ffmpeg (tests/opus.rs makes its Opus files with them).
if ! command -v chromium >/dev/null || ! command -v opusenc >/dev/null || ! command -v ffmpeg >/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        chromium fonts-dejavu-core opus-tools ffmpeg >/dev/null
fi
# The fast tier: unit tests and the server's tests on small fixtures. With
# --slow, the slow tier too (the English model's accuracy, 10-minute audio,
# hotwords, English streaming: the tests marked `#[ignore = "slow tier…"]`)
# and each criterion benchmark run once as a smoke test. Other arguments go
# to `cargo test`.
if [ "${1:-}" = --slow ]; then
    shift
    cargo test --bench pipeline --quiet
    case " $* " in
        *" -- "*) set -- "$@" --include-ignored ;;
        *) set -- "$@" -- --include-ignored ;;
    esac
fi
cargo test --workspace "$@"
