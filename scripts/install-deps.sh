#!/usr/bin/env bash
# Installs everything needle's build, tests, example and benchmarks need on Debian 12, as root.
# Idempotent: when every package is already there it does no apt work at all, so reruns are fast.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  build-essential cmake g++ clang-14 libclang-rt-14-dev clang-format clang-tidy
  libasio-dev node-llhttp libtomlplusplus-dev libcli11-dev libfmt-dev libgtest-dev googletest
  libjemalloc-dev libssl-dev openssl nginx-light haproxy wrk strace prometheus curl python3
  iproute2 procps slowhttptest python3-yaml
  libre2-dev libc-ares-dev python3-dnslib
)
# Node may come from another source (e.g. NodeSource's nodejs, which bundles npm); installing
# Debian's npm next to it would conflict, so each is added only when its command is missing.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for pkg in "${packages[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: must run as root to install packages" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all Debian packages present"
fi

# Debian's nginx and haproxy packages start system services; needle's tests start their own
# instances on free ports, so the system ones are left as they are (they bind :80 and nothing
# the tests use).

app_dir="$repo_root/examples/app"
if [[ -f "$app_dir/package.json" ]]; then
  # npm writes node_modules/.package-lock.json; a lock file newer than it means a stale tree.
  installed_lock="$app_dir/node_modules/.package-lock.json"
  if [[ ! -d "$app_dir/node_modules/express" || ! -f "$installed_lock" ||
        "$app_dir/package-lock.json" -nt "$installed_lock" ]]; then
    echo "install-deps: installing the example app's npm packages"
    if [[ -f "$app_dir/package-lock.json" ]]; then
      (cd "$app_dir" && npm ci --no-audit --no-fund)
    else
      (cd "$app_dir" && npm install --no-audit --no-fund)
    fi
  else
    echo "install-deps: example app's npm packages present"
  fi
fi
