#!/bin/bash
# Brings Berth up on this machine (run as root): Debian packages, npm
# dependencies, the build, `berth`/`berthd` on PATH, berthd on the default
# socket (unix:///run/berth/berth.sock), and a busybox:latest image made from
# the host's busybox-static when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/install-deps.sh
scripts/build.sh
ln -sf "$root/bin/berth" /usr/local/bin/berth
ln -sf "$root/bin/berthd" /usr/local/bin/berthd

sock=/run/berth/berth.sock
if ! bin/berth -H "unix://$sock" version >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup bin/berthd >> /var/log/berthd.log 2>&1 < /dev/null &
  for _ in $(seq 100); do
    bin/berth -H "unix://$sock" version >/dev/null 2>&1 && break
    sleep 0.1
  done
  bin/berth -H "unix://$sock" version >/dev/null || { echo "berthd did not start; see /var/log/berthd.log" >&2; exit 1; }
fi
if ! bin/berth -H "unix://$sock" image inspect busybox:latest >/dev/null 2>&1; then
  scripts/busybox-rootfs.sh | bin/berth -H "unix://$sock" import -c 'CMD ["sh"]' - busybox:latest >/dev/null
fi
echo "berthd is running on unix://$sock (log: /var/log/berthd.log). Try: berth run --rm busybox echo hello"
