#!/usr/bin/env bash
# scripts/deps.sh: installs the Debian 12 packages ducto needs to build and test, and only those
# that are missing. Does nothing (no apt at all) when everything is there, so it is cheap to call
# from every other script. Runs as root without a TTY (CI); as another user it only reports.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Everything the build, the tests and the demo use, including what the machine image already has
# (listing it costs nothing and keeps this the single inventory).
REQUIRED_PACKAGES=(
  make g++ binutils cmake clang-14 python3
  postgresql-15 postgresql-client-15 libpq-dev
  # server headers for the PGXS build (pulls a minor-version upgrade of the server, harmless)
  postgresql-server-dev-15
  libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
  # libFuzzer runtime for clang-14 (-fsanitize=fuzzer)
  libclang-rt-14-dev
  # the client tests in test/client/ (run with /usr/bin/python3, not a pyenv one)
  python3-psycopg
)

is_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == "installed" ]]
}

missing=()
for package in "${REQUIRED_PACKAGES[@]}"; do
  is_installed "$package" || missing+=("$package")
done

if ((${#missing[@]} == 0)); then
  echo "deps: all ${#REQUIRED_PACKAGES[@]} packages present"
  exit 0
fi

echo "deps: missing ${missing[*]}"
((EUID == 0)) || die "run as root to install them (apt-get install ${missing[*]})"

export DEBIAN_FRONTEND=noninteractive
apt_get() {
  apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}
# One retry: a mirror hiccup should not fail a CI run.
apt_get update || { sleep 5; apt_get update; }
apt_get install --no-install-recommends "${missing[@]}" \
  || { sleep 5; apt_get install --no-install-recommends "${missing[@]}"; }

for package in "${missing[@]}"; do
  is_installed "$package" || die "package $package is still not installed"
done
echo "deps: installed ${missing[*]}"
