#!/usr/bin/env bash
# Side-by-side load benchmark: our server (release build) and nginx-rtmp
# under the same load, in alternation, on loopback.
#
#   scripts/bench.sh [N ...]        (default: 10 100 300 players)
#
# One MBPS (default 2) Mbps H.264 + AAC publisher (a test FLV made once with ffmpeg and
# cached in target/bench/) and N players per run, measured over a steady
# 30 s window by rtmp-bench. Then IDLE connections that only connect,
# and what they cost each server. Prints tables and the ratios
# ours/nginx-rtmp.
#
# Environment:
#   WINDOW=seconds        the window (default 30)
#   CLIENT_MODES="..."    how the players are run, each N in each mode
#                         (default "mux threads"): mux multiplexes them on
#                         CLIENT_THREADS threads (default 1), as remote
#                         players cost a server; threads gives each one a
#                         blocking thread, whose wake-ups loopback charges
#                         to the server; CLIENT_MODES= (empty) runs no
#                         players, only the idle connections
#   IDLE=N                idle connections to measure (default 1000; 0 skips)
#   OURS_FLAGS="..."      flags for our server, e.g. "-write-coalesce 20ms"
#   OURS_ALSO="..."       our server again with these flags added, in each
#                         run, labelled "ours OURS_ALSO" (default
#                         "-write-coalesce 0": the other end of the
#                         delay/CPU trade; empty skips it)
#   MBPS=N                the publisher's video bitrate in Mbps (default
#                         2; each bitrate's FLV is made once and cached)
#   RTMPS=1               also runs our server with its players and
#                         publisher over RTMPS (-tls-listen, a self-signed
#                         certificate made once), labelled "ours rtmps",
#                         and reports it against ours over plain RTMP
#   CARGO_TARGET_DIR      where the binaries are built (default target)
set -euo pipefail
cd "$(dirname "$0")/.."

counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(10 100 300)
window=${WINDOW:-30}
read -r -a modes <<<"${CLIENT_MODES-mux threads}"
client_threads=${CLIENT_THREADS:-1}
idle=${IDLE:-1000}
ours_flags=${OURS_FLAGS:-}
ours_also=${OURS_ALSO--write-coalesce 0}
mbps=${MBPS:-2}
rtmps=${RTMPS:-}
case $mbps in
  '' | *[!0-9]*) echo "MBPS: want a whole number of Mbps" >&2; exit 2 ;;
esac
bin=${CARGO_TARGET_DIR:-target}/release

for mode in "${modes[@]}"; do
  case $mode in
    mux | threads) ;;
    *) echo "CLIENT_MODES: unknown mode $mode (want mux or threads)" >&2; exit 2 ;;
  esac
done

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || missing+=(libnginx-mod-rtmp)
scripts/apt-install.sh "${missing[@]}"

cargo build --release --locked --bins --features bench -q
work=target/bench
mkdir -p "$work"
flv="$work/test-${mbps}mbps.flv"
if [ ! -s "$flv" ]; then
  echo "making $flv (60 s of 720p30 H.264 at $mbps Mbps, GOP 2 s, AAC 128 kbps)"
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=44100 \
    -t 60 -c:v libx264 -preset veryfast -b:v $((mbps * 925))k -maxrate ${mbps}M -bufsize ${mbps}M \
    -g 60 -keyint_min 60 \
    -pix_fmt yuv420p -c:a aac -b:a 128k -f flv "$flv"
fi

# Connections at once: the most players or idle connections, and the
# publisher. Each server, and rtmp-bench, needs a descriptor for each.
most=$idle
for n in "${counts[@]}"; do [ "$n" -gt "$most" ] && most=$n; done
connections=$((most + 16))
files=$((connections + 256))
soft=$(ulimit -Sn)
if [ "$soft" != unlimited ] && [ "$soft" -lt "$files" ]; then
  hard=$(ulimit -Hn)
  if [ "$hard" = unlimited ] || [ "$hard" -ge "$files" ]; then
    ulimit -Sn "$files"
  else
    echo "warning: open files limited to $hard, $files wanted" >&2
    ulimit -Sn "$hard"
  fi
fi
# Our server refuses connections past -max-connections (default 1000).
conn_flags=()
[ "$connections" -le 1000 ] || conn_flags=(-max-connections "$connections")
worker_connections=$((connections > 4096 ? connections : 4096))

results="$work/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
ours_port=19351
nginx_port=19352
tls_port=19353
tls_flags=()
if [ -n "$rtmps" ]; then
  if [ ! -s "$work/bench.key" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=127.0.0.1" \
      -keyout "$work/bench.key" -out "$work/bench.crt" 2>/dev/null
  fi
  tls_flags=(-tls-listen "127.0.0.1:$tls_port" -tls-cert "$work/bench.crt" -tls-key "$work/bench.key")
fi
nginx_dir=$(mktemp -d)
cat > "$nginx_dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile $files;
error_log $nginx_dir/error.log warn;
pid $nginx_dir/nginx.pid;
events { worker_connections $worker_connections; }
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

start_server() { # label
  if [ "${1%% *}" = ours ]; then
    local extra=""
    case $1 in
      ours) ;;
      "ours rtmps") extra="${tls_flags[*]}" ;;
      *) extra=$ours_also ;;
    esac
    # shellcheck disable=SC2086 # flags are words
    "$bin/rtmp-server" -listen "127.0.0.1:$ours_port" -log-level warn "${conn_flags[@]}" $ours_flags $extra &
    server_pid=$!
    wait_port $ours_port
  else
    nginx -c "$nginx_dir/nginx.conf" -p "$nginx_dir" &
    server_pid=$!
    wait_port $nginx_port
  fi
}

port_of() { # label
  if [ "${1%% *}" = ours ]; then echo $ours_port; else echo $nginx_port; fi
}

url_of() { # label
  if [ "$1" = "ours rtmps" ]; then
    echo "rtmps://127.0.0.1:$tls_port"
  else
    echo "rtmp://127.0.0.1:$(port_of "$1")"
  fi
}

bench() { # label players mode
  start_server "$1"
  "$bin/rtmp-bench" run --label "$1" --url "$(url_of "$1")/live/bench" \
    --flv "$flv" --players "$2" --client-mode "$3" --client-threads "$client_threads" \
    --window "$window" --server-pid "$server_pid" | tee -a "$results"
  stop_server
}

bench_idle() { # label
  start_server "$1"
  "$bin/rtmp-bench" idle --label "$1" --url "rtmp://127.0.0.1:$(port_of "$1")/live" \
    --connections "$idle" --server-pid "$server_pid" | tee -a "$results"
  stop_server
}

command="MBPS=$mbps WINDOW=$window CLIENT_MODES=\"${modes[*]}\" CLIENT_THREADS=$client_threads IDLE=$idle"
[ -z "$ours_flags" ] || command+=" OURS_FLAGS=\"$ours_flags\""
command+=" OURS_ALSO=\"$ours_also\""
[ -z "$rtmps" ] || command+=" RTMPS=$rtmps"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -sr)"
echo "nginx: $(nginx -v 2>&1 | cut -d/ -f2)"
echo "command: $command scripts/bench.sh ${counts[*]}"
echo "open files: $(ulimit -Sn)${conn_flags[*]:+, our server with ${conn_flags[*]}}"
for n in "${counts[@]}"; do
  for mode in "${modes[@]}"; do
    bench ours "$n" "$mode"
    [ -z "$ours_also" ] || bench "ours $ours_also" "$n" "$mode"
    [ -z "$rtmps" ] || bench "ours rtmps" "$n" "$mode"
    bench nginx-rtmp "$n" "$mode"
  done
done
if [ "$idle" -gt 0 ]; then
  bench_idle ours
  bench_idle nginx-rtmp
fi
echo
"$bin/rtmp-bench" report "$results" --ours ours --peer nginx-rtmp
if [ -n "$ours_also" ]; then
  echo
  echo "With $ours_also:"
  "$bin/rtmp-bench" report "$results" --ours "ours $ours_also" --peer nginx-rtmp | sed -n '/^Ratios/,$p'
fi
if [ -n "$rtmps" ]; then
  echo
  echo "RTMPS against plain RTMP (ours):"
  "$bin/rtmp-bench" report "$results" --ours "ours rtmps" --peer ours | sed -n '/^Ratios/,$p'
fi
