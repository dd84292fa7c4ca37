#!/usr/bin/env bash
# Installs the given Debian packages with apt-get (through sudo unless
# root). Callers pass only the packages they found missing.
set -euo pipefail
(($# > 0)) || exit 0
echo "installing $*"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
