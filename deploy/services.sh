#!/usr/bin/env bash
# Install the operations tools the tests run for real: Debian's `prometheus` (prometheus, promtool),
# `prometheus-alertmanager` (prometheus-alertmanager, amtool) and `chromium` (/usr/bin/chromium, which the
# browser tests drive with Playwright; never `playwright install`, which downloads a browser). Only what is
# missing is installed; a no-op when everything is present. Needs root. System services are not started
# (a temporary policy-rc.d denies it, and any daemon the packages started anyway is stopped), so nothing
# stays on :9090/:9093 and the tests start their own Prometheus and Alertmanager on free loopback ports.
#   deploy/services.sh install
set -euo pipefail

PROMETHEUS_PACKAGES=(prometheus prometheus-alertmanager)
# fonts-dejavu-core: with --no-install-recommends chromium brings no font, and text would not render.
BROWSER_PACKAGES=(chromium fonts-dejavu-core)
CHROMIUM=/usr/bin/chromium
BROWSER_FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

have_tools() {
  command -v promtool >/dev/null && command -v amtool >/dev/null &&
    command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null
}

have_browser() {
  [ -x "$CHROMIUM" ] && [ -f "$BROWSER_FONT" ]
}

# The Debian packages that provide what is missing.
missing_packages() {
  have_tools || echo "${PROMETHEUS_PACKAGES[@]}"
  have_browser || echo "${BROWSER_PACKAGES[@]}"
}

# Stop a system service the packages may have started (systemd, or the sysvinit scripts Debian ships).
stop_system_service() {
  local svc=$1
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    if systemctl is-active --quiet "$svc"; then systemctl stop "$svc" || true; fi
  elif [ -x "/etc/init.d/$svc" ]; then
    if "/etc/init.d/$svc" status >/dev/null 2>&1; then "/etc/init.d/$svc" stop >/dev/null 2>&1 || true; fi
  fi
}

# Warn (not fail) when something still listens on Prometheus' or Alertmanager's default port.
check_ports_free() {
  command -v ss >/dev/null || return 0
  local port
  for port in 9090 9093; do
    if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
      echo "services.sh: warning: something listens on :$port ($(ss -Hltnp "sport = :$port" 2>/dev/null | head -1))" >&2
    fi
  done
}

case "${1:-}" in
  install)
    read -r -a PACKAGES <<< "$(missing_packages | tr '\n' ' ')"
    if [ "${#PACKAGES[@]}" = 0 ]; then exit 0; fi
    if [ "$(id -u)" != 0 ]; then
      echo "services.sh: run as root, or install Debian's ${PACKAGES[*]}" >&2
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
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
    for svc in "${PROMETHEUS_PACKAGES[@]}"; do stop_system_service "$svc"; done
    check_ports_free
    have_tools || { echo "services.sh: the packages installed, but promtool/amtool are still missing" >&2; exit 1; }
    have_browser || { echo "services.sh: the packages installed, but $CHROMIUM or its font is still missing" >&2; exit 1; }
    echo "services.sh: $(promtool --version 2>&1 | head -1); $(amtool --version 2>&1 | head -1); $("$CHROMIUM" --version 2>&1 | head -1)"
    ;;
  *)
    echo "usage: services.sh install" >&2
    exit 2
    ;;
esac
