#!/usr/bin/env bash
# Runs every test: formatting and lint checks, unit tests, integration and
# end-to-end tests with real clients and peers (ffmpeg, ffprobe, rtmpdump,
# nginx with its RTMP module, a modern static ffmpeg from the PyPI package
# imageio-ffmpeg, headless Chromium with ChromeDriver for the dashboard),
# the systemd unit's checks (systemd-analyze), and the
# README's run command as written. Installs with apt (and pip, into
# target/tools) whatever of those tools is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v rtmpdump >/dev/null 2>&1 || missing+=(rtmpdump)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || missing+=(libnginx-mod-rtmp)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
# Headless Chromium for the dashboard's tests, driven through ChromeDriver.
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
scripts/apt-install.sh "${missing[@]}"
# A modern static ffmpeg for Enhanced RTMP codecs (HEVC, AV1, VP9, Opus).
RTMP_SERVER_MODERN_FFMPEG="$(scripts/modern-ffmpeg.sh)"
export RTMP_SERVER_MODERN_FFMPEG

cargo fmt --all -- --check
cargo clippy --all-targets --all-features --locked -- -D warnings
# Tests that need a tool fail (instead of skipping) when it is missing.
RTMP_SERVER_E2E=require cargo test --all-targets --all-features --locked
# The README's first set-up command, exactly as the README has it.
scripts/check-readme-run.sh
