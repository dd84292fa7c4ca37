#!/usr/bin/env bash
# Runs every test: formatting and lint checks, unit tests, integration tests
# and end-to-end tests with real clients (ffmpeg, ffprobe, rtmpdump), which
# it installs first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v rtmpdump >/dev/null 2>&1 || missing+=(rtmpdump)
scripts/apt-install.sh "${missing[@]}"

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# End-to-end tests fail (instead of skipping) when a client is missing.
RTMP_SERVER_E2E=require cargo test --all-targets --locked
