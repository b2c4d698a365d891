#!/usr/bin/env bash
# hark's test command: installs the test-only Python clients (the official
# openai package, for the OpenAI-compatible route; grpcio with its tools,
# health and reflection clients, for the gRPC API) into tests/.venv, then
# runs every Rust test (and each benchmark once).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! tests/.venv/bin/python -c "import openai, grpc_tools, grpc_health, grpc_reflection" 2>/dev/null; then
    python3 -m venv tests/.venv
    tests/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
fi
# The criterion benchmarks run once each as a smoke test, then every test.
cargo test --bench pipeline --quiet
cargo test "$@"
