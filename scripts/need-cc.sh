#!/usr/bin/env bash
# Makes sure a C compiler is present for the NVML build and the fake NVML
# driver (make test-fake-nvml): installs Debian's gcc when cc is missing and
# apt can be used; otherwise fails saying what is missing (the fake-NVML test
# must not pass by not running).
set -euo pipefail
cc=${CC:-cc}
command -v "$cc" >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1; then
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo -n)
  echo "need-cc: no C compiler ($cc): installing gcc (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -qq gcc libc6-dev >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -qq >/dev/null
    "${sudo[@]}" apt-get install -y -qq gcc libc6-dev >/dev/null
  fi
  command -v "$cc" >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 && exit 0
fi
echo "need-cc: no C compiler ($cc) and none could be installed: the NVML build and the fake NVML driver need one" >&2
exit 1
