#!/usr/bin/env bash
# What a player of a -source stream sees when its input changes: the gap
# at a failover, the delay of a manual switch, and the first frame of an
# on-demand pull (README, Sources and failover).
#
#   scripts/failover-bench.sh [SWITCHES]     (default 10)
#
# Our server (release build) on loopback with
#   -source live/show=live/show.main,live/show.backup
#   -source live/pulled=rtmp://<a second instance>/live/cam
# fed by rtmp-bench's paced publishers (25 fps, a keyframe a second) and,
# on the second instance, an ffmpeg test stream. rtmp-bench's player
# times what it gets.
set -euo pipefail
cd "$(dirname "$0")/.."
switches=${1:-10}
bin=${CARGO_TARGET_DIR:-target}/release
command -v ffmpeg >/dev/null 2>&1 || scripts/apt-install.sh ffmpeg
cargo build --release --quiet --features bench --bin rtmp-server --bin rtmp-bench

dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP_LOGS:-}" ] && cp "$dir"/*.log /tmp/ ; rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
upstream=$(free_port)
edge=$(free_port)
api=$(free_port)
token=bench-$RANDOM$RANDOM

"$bin/rtmp-server" -listen "127.0.0.1:$upstream" -log-level warn 2>"$dir/upstream.log" &
pids+=($!)
"$bin/rtmp-server" -listen "127.0.0.1:$edge" -metrics-addr "127.0.0.1:$api" \
  -api-token "$token" -log-level info -failback-delay 1s -pull-idle-timeout 0 \
  -source live/show=live/show.main,live/show.backup \
  -source "live/pulled=rtmp://127.0.0.1:$upstream/live/cam" 2>"$dir/edge.log" &
pids+=($!)
for port in "$upstream" "$edge" "$api"; do
  for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
done
ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=1280x720:rate=25 \
  -c:v libx264 -preset ultrafast -tune zerolatency -g 25 -pix_fmt yuv420p \
  -f flv "rtmp://127.0.0.1:$upstream/live/cam" &
pids+=($!)
sleep 2

echo "rtmp-bench failover, $switches of each, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
"$bin/rtmp-bench" failover --url "rtmp://127.0.0.1:$edge/live/show" \
  --api "http://127.0.0.1:$api" --token "$token" --switches "$switches" \
  --pull-url "rtmp://127.0.0.1:$edge/live/pulled"
