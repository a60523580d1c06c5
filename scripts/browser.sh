#!/usr/bin/env bash
# Makes sure the browser tests' Chromium and its driver are installed (Debian's packages:
# /usr/bin/chromium, /usr/bin/chromedriver). Idempotent; quiet when they are there.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
echo "Installing chromium and chromium-driver"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  chromium chromium-driver >/dev/null
