#!/usr/bin/env bash
# Installs Debian's `influxdb` package (InfluxDB 1.x, provides `influxd`) when `influxd` is missing,
# and makes sure the packaged service is not left running on the default port 8086/8088:
# the integration tests and benchmarks start their own influxd on free ports with a temp data dir.
set -euo pipefail

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

if ! command -v influxd >/dev/null 2>&1; then
  # policy-rc.d exit 101 tells invoke-rc.d not to start the service during the install
  # (on machines without systemd running); it is removed again right after.
  POLICY=/usr/sbin/policy-rc.d
  ADDED_POLICY=""
  if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod +x "$POLICY"
    ADDED_POLICY=1
  fi
  cleanup() { if [ -n "$ADDED_POLICY" ]; then $SUDO rm -f "$POLICY"; fi; }
  trap cleanup EXIT
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends influxdb >/dev/null
fi

# Stop and disable the packaged service if some init system started it.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now influxdb >/dev/null 2>&1 || true
elif [ -x /etc/init.d/influxdb ]; then
  $SUDO /etc/init.d/influxdb stop >/dev/null 2>&1 || true
fi
# A daemon started by the package runs as the influxdb user with the packaged config.
PIDS="$(pgrep -u influxdb -x influxd || true)"
if [ -n "$PIDS" ]; then
  $SUDO kill $PIDS || true
fi

command -v influxd >/dev/null 2>&1 || { echo "install_influxdb.sh: influxd still missing" >&2; exit 1; }
influxd version
