#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver from Debian's packages (`chromium`,
# `chromium-driver`) when either is missing, for the browser tests (tests/ingest/readside/test_browser.py).
# Unattended: reads no stdin; apt keeps its downloads in /var/cache/apt, outside the clone.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-chromium: run as root (apt-get install -y chromium chromium-driver)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-chromium: installing chromium and chromium-driver from Debian"
apt-get update -q </dev/null
apt-get install -y -q chromium chromium-driver </dev/null
chromium --version
