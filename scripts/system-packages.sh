#!/usr/bin/env bash
# The Debian/Ubuntu packages the registry needs, installed with apt-get when this user may
# (root, or sudo without a password); otherwise one line with the exact command, and exit 1.
#
#   scripts/system-packages.sh run    what `make run` needs: WeasyPrint's Pango, HarfBuzz and fonts
#   scripts/system-packages.sh test   that, plus what the suite runs for real: Chromium (browser
#                                     tests), poppler-utils (PDF checks), nginx and systemd-analyze
#                                     (the deploy/ configuration)
#   scripts/system-packages.sh bench  that of `run`, plus wrk (the load of `make bench`)
#
# REGISTRY_SKIP_SYSTEM_PACKAGES=1 skips the check (a machine that provides them another way).
set -euo pipefail

RUN_PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0
              fonts-dejavu-core fonts-noto-core)
TEST_PACKAGES=(chromium poppler-utils nginx-light systemd)
BENCH_PACKAGES=(wrk)

case "${1:-run}" in
  run) wanted=("${RUN_PACKAGES[@]}") ;;
  test) wanted=("${RUN_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  bench) wanted=("${RUN_PACKAGES[@]}" "${BENCH_PACKAGES[@]}") ;;
  *) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

if [[ -n "${REGISTRY_SKIP_SYSTEM_PACKAGES:-}" ]]; then
  exit 0
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "note: not a Debian-based system; make sure these (or their equivalents) are installed:" \
       "${wanted[*]}" >&2
  exit 0
fi

missing=()
for package in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  if [[ "$status" != "installed" ]]; then
    missing+=("$package")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

command_line="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo)
else
  echo "Missing Debian packages. Install them, then run make again:" >&2
  echo "  sudo apt-get update && sudo $command_line" >&2
  exit 1
fi

echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
