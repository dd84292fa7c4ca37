#!/usr/bin/env bash
# Side-by-side load benchmark: our server (release build) and nginx-rtmp
# under the same load, in alternation, on loopback.
#
#   scripts/bench.sh [N ...]        (default: 10 100 300 players)
#
# One 2 Mbps H.264 + AAC publisher (a test FLV made once with ffmpeg and
# cached in target/bench/) and N players per run, measured over a steady
# 30 s window by target/release/rtmp-bench. Prints a table and the ratios
# ours/nginx-rtmp. WINDOW=seconds shortens or lengthens the window;
# OURS_FLAGS="-write-coalesce 20ms" passes flags to our server.
set -euo pipefail
cd "$(dirname "$0")/.."

counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(10 100 300)
window=${WINDOW:-30}
ours_flags=${OURS_FLAGS:-}

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || missing+=(libnginx-mod-rtmp)
scripts/apt-install.sh "${missing[@]}"

cargo build --release --locked --bins --features bench -q
work=target/bench
mkdir -p "$work"
flv="$work/test-2mbps.flv"
if [ ! -s "$flv" ]; then
  echo "making $flv (60 s of 720p30 H.264 at 2 Mbps, GOP 2 s, AAC 128 kbps)"
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=44100 \
    -t 60 -c:v libx264 -preset veryfast -b:v 1850k -maxrate 2M -bufsize 2M -g 60 -keyint_min 60 \
    -pix_fmt yuv420p -c:a aac -b:a 128k -f flv "$flv"
fi

results="$work/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
ours_port=19351
nginx_port=19352
nginx_dir=$(mktemp -d)
cat > "$nginx_dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
error_log $nginx_dir/error.log warn;
pid $nginx_dir/nginx.pid;
events { worker_connections 4096; }
rtmp {
    server {
        listen 127.0.0.1:$nginx_port;
        chunk_size 4096;
        application live { live on; }
    }
}
CONF

server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap 'stop_server; rm -rf "$nginx_dir"' EXIT

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

bench() { # label port players
  target/release/rtmp-bench run --label "$1" --url "rtmp://127.0.0.1:$2/live/bench" --flv "$flv" \
    --players "$3" --window "$window" --server-pid "$server_pid" | tee -a "$results"
}

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -sr)"
echo "nginx: $(nginx -v 2>&1 | cut -d/ -f2)"
echo "command: scripts/bench.sh ${counts[*]} (window ${window}s${ours_flags:+, our flags: $ours_flags})"
for n in "${counts[@]}"; do
  # shellcheck disable=SC2086 # flags are words
  target/release/rtmp-server -listen "127.0.0.1:$ours_port" -log-level warn $ours_flags &
  server_pid=$!
  wait_port $ours_port
  bench ours $ours_port "$n"
  stop_server

  nginx -c "$nginx_dir/nginx.conf" -p "$nginx_dir" &
  server_pid=$!
  wait_port $nginx_port
  bench nginx-rtmp $nginx_port "$n"
  stop_server
done
echo
target/release/rtmp-bench report "$results" --ours ours --peer nginx-rtmp
