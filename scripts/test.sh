#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian machine, then runs the whole suite.
# Installs: Debian's Chromium (browser tests), Mosquitto (MQTT tests), InfluxDB (storage tests), poppler-utils
# and DejaVu fonts (discharge summary PDF), coturn (the video tests' TURN relay), nats-server (JetStream tests), npm and the test tools of package.json
# (axe-core, run in the browser tests),
# and a virtualenv with teleicu[test]. Extra args go to pytest, which runs the files on two workers (pytest-xdist).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
need=""
command -v chromium >/dev/null 2>&1 || need="$need chromium"            # browser tests
command -v mosquitto >/dev/null 2>&1 || need="$need mosquitto"          # MQTT driver tests
command -v mosquitto_pub >/dev/null 2>&1 || need="$need mosquitto-clients"
command -v pdftotext >/dev/null 2>&1 || need="$need poppler-utils"      # the discharge summary PDF tests
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need="$need fonts-dejavu-core"  # the PDF's font
command -v npm >/dev/null 2>&1 || need="$need npm"                      # axe-core for the accessibility test
command -v turnserver >/dev/null 2>&1 || need="$need coturn"            # the TURN relay of the video tests
command -v nats-server >/dev/null 2>&1 || need="$need nats-server"      # JetStream: the tests' own 3-node clusters
if [ -n "$need" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi
# the MQTT integration tests talk to a broker on 127.0.0.1:1883
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  $SUDO mosquitto -d -c /etc/mosquitto/mosquitto.conf
fi
# the JetStream tests also use a local server with JetStream on 127.0.0.1:4222 (on CI it already runs)
if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  mkdir -p "${TMPDIR:-/tmp}/teleicu-nats"
  setsid nats-server -a 127.0.0.1 -p 4222 -js -sd "${TMPDIR:-/tmp}/teleicu-nats" -l "${TMPDIR:-/tmp}/teleicu-nats/nats.log" \
    </dev/null >/dev/null 2>&1 &
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.1; done
fi

npm ci --no-audit --no-fund --loglevel=error >/dev/null   # package-lock.json: axe-core, MPL-2.0, its licence in node_modules

bash scripts/install_influxdb.sh >/dev/null   # Debian's influxd; the tests start their own on free ports

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"  # two workers, each test file on one (its fixtures and ports stay its own)
