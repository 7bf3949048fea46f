#!/usr/bin/env bash
# Install the operations tools the tests run for real: Debian's prometheus (promtool) and
# prometheus-alertmanager (amtool). A no-op when they are present. System services are not started.
set -euo pipefail
case "${1:-}" in
  install)
    if command -v promtool >/dev/null && command -v amtool >/dev/null; then exit 0; fi
    if [ "$(id -u)" != 0 ]; then echo "services.sh: run as root, or install prometheus and prometheus-alertmanager" >&2; exit 1; fi
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null
    echo "services.sh: $(promtool --version 2>&1 | head -1); $(amtool --version 2>&1 | head -1)"
    ;;
  *) echo "usage: services.sh install" >&2; exit 2 ;;
esac
