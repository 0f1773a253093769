#!/usr/bin/env bash
# Installs chatd's build and test dependencies from Debian 12's packages.
# Idempotent: skips apt-get entirely when everything is already installed.
set -euo pipefail
PKGS=(build-essential cmake pkg-config
      libcli11-dev libtoml11-dev catch2 libwebsockets-dev libwebsockets-evlib-uv libevent-dev
      libsodium-dev libsqlite3-dev libcpp-httplib-dev rapidjson-dev libuv1-dev
      sqlite3 curl python3 python3-websockets iproute2)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
