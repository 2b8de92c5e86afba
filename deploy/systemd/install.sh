#!/usr/bin/env bash
# Installs helseid-broker as a systemd service from an unpacked release (this repository, built).
# Usage: sudo deploy/systemd/install.sh [--prefix /opt/helseid-broker]
set -euo pipefail

prefix=/opt/helseid-broker
if [ "${1:-}" = "--prefix" ]; then prefix=$2; fi
source_dir=$(cd "$(dirname "$0")/../.." && pwd)

if [ "$(id -u)" -ne 0 ]; then echo "run as root (sudo)" >&2; exit 1; fi
command -v node >/dev/null || { echo "node (20.19+, 22 or 24) is required" >&2; exit 1; }
[ -f "$source_dir/dist/src/bin.js" ] || { echo "build first: npm ci && npm run build" >&2; exit 1; }

# A system user without a shell or home, owning nothing but the key store and the audit log.
if ! id helseid-broker >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin helseid-broker
fi

install -d -m 0755 "$prefix"
cp -a "$source_dir/dist" "$source_dir/node_modules" "$source_dir/package.json" "$source_dir/README.md" "$prefix/"
install -d -m 0750 -o root -g helseid-broker /etc/helseid-broker
install -d -m 0700 -o helseid-broker -g helseid-broker /etc/helseid-broker/keys
if [ ! -f /etc/helseid-broker/helseid-broker.yaml ]; then
  install -m 0640 -o root -g helseid-broker "$source_dir/deploy/helseid-broker.example.yaml" /etc/helseid-broker/helseid-broker.yaml
  echo "edit /etc/helseid-broker/helseid-broker.yaml, then import a client:"
  echo "  sudo -u helseid-broker node $prefix/dist/src/bin.js import <download.zip> --tenant <name> --config /etc/helseid-broker/helseid-broker.yaml"
fi
node_bin=$(command -v node)
sed -e "s#/opt/helseid-broker#$prefix#g" -e "s#/usr/bin/node#$node_bin#" "$source_dir/deploy/systemd/helseid-broker.service" > /etc/systemd/system/helseid-broker.service
systemd-analyze verify /etc/systemd/system/helseid-broker.service
systemctl daemon-reload
echo "check the config:  sudo -u helseid-broker node $prefix/dist/src/bin.js check --config /etc/helseid-broker/helseid-broker.yaml"
echo "then start:        systemctl enable --now helseid-broker"
