#!/usr/bin/env bash
# Installs what some tests need beyond Go, from Debian's packages, when it is
# missing: Optuna and pandas for Debian's /usr/bin/python3 (the export tests
# load sgtune's Optuna journal in Optuna itself) and Chromium (the live page is
# tested in headless Chromium). Quick and silent when everything is present.
# Where apt is unavailable (not Debian, or not root) it says so and the tests
# that need these skip with the same message.
set -euo pipefail

missing=()
if ! /usr/bin/python3 -c 'import optuna, pandas' >/dev/null 2>&1; then
  /usr/bin/python3 -c 'import optuna' >/dev/null 2>&1 || missing+=(python3-optuna)
  /usr/bin/python3 -c 'import pandas' >/dev/null 2>&1 || missing+=(python3-pandas)
fi
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: apt-get not found; not installing ${missing[*]} (the tests that need them skip)" >&2
  exit 0
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "test-deps: not root and no password-less sudo; not installing ${missing[*]} (the tests that need them skip)" >&2
    exit 0
  fi
fi
echo "test-deps: installing ${missing[*]} (Debian packages)" >&2
export DEBIAN_FRONTEND=noninteractive
# A stale or empty package list finds nothing: refresh it once, then install.
if ! "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update -qq >/dev/null
  "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
