#!/usr/bin/env bash
# Install the operations tools the tests run for real: Debian's `prometheus` (prometheus, promtool) and
# `prometheus-alertmanager` (prometheus-alertmanager, amtool). A no-op when they are present.
# Needs root. System services are not started (a temporary policy-rc.d denies it), so the tests start
# their own Prometheus and Alertmanager on free loopback ports.
#   deploy/services.sh install
set -euo pipefail

have_tools() {
  command -v promtool >/dev/null && command -v amtool >/dev/null &&
    command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null
}

case "${1:-}" in
  install)
    if have_tools; then exit 0; fi
    if [ "$(id -u)" != 0 ]; then
      echo "services.sh: run as root, or install Debian's prometheus and prometheus-alertmanager" >&2
      exit 1
    fi
    policy=/usr/sbin/policy-rc.d
    backup=""
    if [ -e "$policy" ]; then backup="$(mktemp)"; cp -p "$policy" "$backup"; fi
    restore() { if [ -n "$backup" ]; then mv -f "$backup" "$policy"; else rm -f "$policy"; fi; }
    trap restore EXIT
    printf '#!/bin/sh\n# deploy/services.sh: do not start services while installing\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null
    have_tools || { echo "services.sh: the packages installed, but promtool/amtool are still missing" >&2; exit 1; }
    echo "services.sh: $(promtool --version 2>&1 | head -1); $(amtool --version 2>&1 | head -1)"
    ;;
  *)
    echo "usage: services.sh install" >&2
    exit 2
    ;;
esac
