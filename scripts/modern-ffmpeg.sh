#!/usr/bin/env bash
# Prints the path of a modern static ffmpeg (6.1 or later: Enhanced RTMP,
# HEVC/AV1/VP9/Opus in FLV), installing it once from the PyPI package
# imageio-ffmpeg into a virtual environment under target/tools.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/tools/venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c "import imageio_ffmpeg" 2>/dev/null; then
  "$venv/bin/pip" install -q "imageio-ffmpeg>=0.6" >&2
fi
"$venv/bin/python" -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"
