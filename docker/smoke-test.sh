#!/usr/bin/env bash
# Proves that docker/Dockerfile builds and that the image answers, on a
# machine with no Docker engine and no registry (CI's): Debian's buildah
# builds the unchanged Dockerfile and podman runs the image, so its own
# USER, ENV, CMD and HEALTHCHECK are what runs.
#
# The base images cannot be pulled here, so they are made locally first:
# debian:bookworm-slim from `debootstrap --variant=minbase`, and a stand-in
# for the official Rust image from that root filesystem plus this machine's
# Rust toolchain (gcc, libc6-dev and ca-certificates, as the official slim
# image has). Both are cached in podman's storage, the root filesystem in
# $HARK_DOCKER_CACHE, and buildah keeps the dependency layer, so a second
# run rebuilds only what changed.
#
# Needs root (rootful podman). Usage: docker/smoke-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${HARK_DOCKER_CACHE:-/var/cache/hark-docker}
IMAGE=localhost/hark:smoke
NAME=hark-smoke
PORT=${HARK_SMOKE_PORT:-18080}
RUST_IMAGE=docker.io/library/$(sed -n 's/^ARG RUST_IMAGE=//p' docker/Dockerfile)
DEBIAN_IMAGE=docker.io/library/$(sed -n 's/^ARG RUNTIME_IMAGE=//p' docker/Dockerfile)
AUDIO=../shared/data/ljspeech-dev/LJ001-0001.wav
# crun fails on this kind of machine; runc works. No systemd: cgroupfs.
PODMAN=(podman --runtime runc --cgroup-manager=cgroupfs)

step() { printf '\n== %s (%ds)\n' "$*" "$SECONDS"; }
fail() { echo "smoke test FAILED: $*" >&2; exit 1; }

step "tools"
missing=()
for tool in buildah podman runc debootstrap curl; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        buildah podman runc debootstrap curl ca-certificates uidmap >/dev/null
fi
buildah --version

step "base image $DEBIAN_IMAGE"
if ! podman image exists "$DEBIAN_IMAGE"; then
    if [[ ! -f $CACHE/rootfs.tar ]]; then
        mkdir -p "$CACHE"
        rm -rf "$CACHE/rootfs"
        debootstrap --variant=minbase bookworm "$CACHE/rootfs" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 \
            || { tail -20 "$CACHE/debootstrap.log"; fail "debootstrap"; }
        tar -C "$CACHE/rootfs" -cf "$CACHE/rootfs.tar" .
        rm -rf "$CACHE/rootfs"
    fi
    podman import "$CACHE/rootfs.tar" "$DEBIAN_IMAGE" >/dev/null
fi

step "build image stand-in $RUST_IMAGE (this machine's $(rustc --version))"
if ! podman image exists "$RUST_IMAGE"; then
    sysroot=$(rustc --print sysroot)
    container=$(buildah from --isolation chroot "$DEBIAN_IMAGE")
    buildah run --isolation chroot --network host "$container" -- sh -c \
        'apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcc libc6-dev ca-certificates >/dev/null && rm -rf /var/lib/apt/lists/*'
    buildah copy "$container" "$sysroot/bin/rustc" "$sysroot/bin/cargo" /usr/local/rust/bin/ >/dev/null
    buildah copy "$container" "$sysroot/lib" /usr/local/rust/lib >/dev/null
    buildah config --env CARGO_HOME=/usr/local/cargo \
        --env PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$container"
    buildah commit --format docker "$container" "$RUST_IMAGE" >/dev/null
    buildah rm "$container" >/dev/null
fi

step "buildah bud -f docker/Dockerfile"
# Outbound HTTPS (crates.io) goes through a proxy whose CA this host trusts.
buildah bud --isolation chroot --network host --format docker --layers \
    --volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
    -f docker/Dockerfile -t "$IMAGE" .
config=$(podman image inspect "$IMAGE" --format '{{.Config.User}} {{json .Config.Cmd}} {{json .Config.ExposedPorts}}')
echo "image: user, cmd, ports = $config"
[[ $config == hark:hark* ]] || fail "the image does not run as the hark user: $config"
podman image inspect "$IMAGE" --format '{{json .Config.Healthcheck}}' | grep -q healthcheck || fail "no HEALTHCHECK in the image"

step "podman run"
"${PODMAN[@]}" rm -f "$NAME" >/dev/null 2>&1 || true
# Only the address differs from the image's defaults (host networking here).
# Without systemd podman cannot schedule the HEALTHCHECK (it says so in two
# error lines); it is run by hand below.
# The sandbox forbids raising rlimits to podman's defaults: ask for less.
"${PODMAN[@]}" run -d --name "$NAME" --network host --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
    -e HARK_ADDR=127.0.0.1:$PORT "$IMAGE" >/dev/null
cleanup() { "${PODMAN[@]}" rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
    [[ $("${PODMAN[@]}" inspect "$NAME" --format '{{.State.Running}}') == true ]] || { "${PODMAN[@]}" logs "$NAME"; fail "the container exited"; }
    sleep 1
done
curl -sf "http://127.0.0.1:$PORT/readyz" || { "${PODMAN[@]}" logs "$NAME"; fail "not ready in 120 s"; }
echo

step "a real recording through the container, compared with this checkout's hark"
want=$(cargo run --quiet --bin hark -- transcribe --model models/hark-en "$AUDIO")
got=$(curl -sf -H 'x-request-id: smoke-1' --data-binary @"$AUDIO" "http://127.0.0.1:$PORT/v1/transcribe" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["text"])')
echo "container: $got"
echo "host:      $want"
[[ -n $got && $got == "$want" ]] || fail "the container's transcript differs from the host's"
"${PODMAN[@]}" logs "$NAME" 2>&1 | grep -q '"request_id":"smoke-1"' || fail "the request is not in the JSON logs"
"${PODMAN[@]}" logs "$NAME" 2>&1 | grep -q '"message":"ready: model hark-en' || fail "no start-up summary in the logs"

step "the page at /"
curl -sf "http://127.0.0.1:$PORT/" | grep -q '<title>hark</title>' || fail "GET / does not serve the page"
echo served

step "HEALTHCHECK"
"${PODMAN[@]}" healthcheck run "$NAME" || fail "the image's HEALTHCHECK failed"
echo healthy

step "docker stop: SIGTERM, drain, exit 0"
"${PODMAN[@]}" stop -t 30 "$NAME" >/dev/null
code=$("${PODMAN[@]}" inspect "$NAME" --format '{{.State.ExitCode}}')
[[ $code == 0 ]] || { "${PODMAN[@]}" logs "$NAME"; fail "exit code $code after SIGTERM"; }
"${PODMAN[@]}" logs "$NAME" 2>&1 | grep -q 'shutting down' || fail "the shutdown is not logged"

step "smoke test passed"
