#!/usr/bin/env bash
# Runs the README's "run the server" command exactly as written, taken from
# the README so that the two cannot drift apart, and checks that the server
# answers RTMP (a handshake) and HTTP (/healthz) on the ports it names and
# exits 0 on SIGTERM. When one of those ports is already taken on this
# machine, a free port is put in its place; nothing else changes.
set -euo pipefail
cd "$(dirname "$0")/.."

# The first ```sh block after the line "Run the server".
cmd=$(awk '/^Run the server/ { found = 1 } found && /^```sh$/ { getline; print; exit }' README.md)
case "$cmd" in
  "cargo run "*) ;;
  *) echo "check-readme-run: no 'cargo run' command under 'Run the server' in README.md" >&2; exit 1 ;;
esac
echo "README run command: $cmd"

listening() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
free_port() {
  local port
  for port in $(seq 20000 20999); do
    listening "$port" || { echo "$port"; return; }
  done
  return 1
}
port_of() { # flag -> the port after "-flag :PORT"
  sed -n "s/.*-$1 :\([0-9]*\).*/\1/p" <<<"$cmd"
}
rtmp_port=$(port_of listen)
http_port=$(port_of metrics-addr)
[ -n "$rtmp_port" ] && [ -n "$http_port" ] || { echo "check-readme-run: expected -listen :PORT and -metrics-addr :PORT" >&2; exit 1; }
run=$cmd
for flag in listen metrics-addr; do
  port=$(port_of "$flag")
  if listening "$port"; then
    new=$(free_port)
    echo "port $port is taken here: using $new for -$flag"
    run=${run/-$flag :$port/-$flag :$new}
    [ "$flag" = listen ] && rtmp_port=$new || http_port=$new
  fi
done

log=$(mktemp)
# `cargo run` execs the server, so $! becomes the server's pid.
bash -c "exec $run" >"$log" 2>&1 &
pid=$!
fail() {
  echo "check-readme-run: $*" >&2
  echo "--- output of: $run" >&2
  cat "$log" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$log"
  exit 1
}

# The first run builds the release binary: allow for it.
for _ in $(seq 1 600); do
  grep -q "RTMP server listening on" "$log" && break
  kill -0 "$pid" 2>/dev/null || fail "the command exited early"
  sleep 0.5
done
grep -q "RTMP server listening on" "$log" || fail "no 'RTMP server listening' line"

# RTMP: C0 + C1 in, S0 + S1 + S2 (3073 bytes, version 3 first) back.
exec 3<>/dev/tcp/127.0.0.1/"$rtmp_port" || fail "nothing accepts on RTMP port $rtmp_port"
{ printf '\003'; head -c 1536 /dev/zero; } >&3
reply=$(timeout 10 head -c 3073 <&3 | od -An -v -tx1 | tr -s ' \n' ' ')
exec 3<&-
words=($reply)
[ "${#words[@]}" -eq 3073 ] || fail "RTMP handshake: got ${#words[@]} of 3073 bytes"
[ "${words[0]}" = 03 ] || fail "RTMP handshake: S0 is ${words[0]}, not 03"

# HTTP: /healthz answers 200 ok.
exec 4<>/dev/tcp/127.0.0.1/"$http_port" || fail "nothing accepts on HTTP port $http_port"
printf 'GET /healthz HTTP/1.0\r\n\r\n' >&4
health=$(timeout 10 cat <&4 | tr -d '\r')
exec 4<&-
grep -q '^HTTP/1.[01] 200' <<<"$health" || fail "/healthz: $health"
[ "$(tail -n 1 <<<"$health")" = ok ] || fail "/healthz body: $health"

kill -TERM "$pid"
status=0
timeout 10 tail --pid="$pid" -f /dev/null || fail "still running 10 s after SIGTERM"
wait "$pid" || status=$?
[ "$status" -eq 0 ] || fail "exit status $status after SIGTERM"
grep -q "shutting down" "$log" || fail "no 'shutting down' line"
rm -f "$log"
echo "README run command: answered RTMP on :$rtmp_port and HTTP on :$http_port, exited 0 on SIGTERM"
