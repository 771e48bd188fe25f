#!/usr/bin/env bash
# Installs every build and test dependency of Cybersyn from Debian 12 packages.
# Idempotent: installs only what is missing; runs unattended as root (or via sudo).
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl python3
  librdkafka-dev kcat
  libmosquitto-dev mosquitto python3-paho-mqtt python3-protobuf
  protobuf-compiler libprotobuf-dev
  libgrpc++-dev protobuf-compiler-grpc
  librocksdb-dev
  prometheus-cpp-dev
  libabsl-dev libcli11-dev libyaml-cpp-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcpp-httplib-dev libssl-dev openssl
  openjdk-17-jre-headless maven
  clang-format
)
# Extra groups, opt-in: CYBERSYN_SETUP_EXTRAS="browser prometheus deploy fuzz"
# (./dev.sh test asks for the ones the suite uses).
for extra in ${CYBERSYN_SETUP_EXTRAS:-}; do
  case "$extra" in
    # Chromium for the Opsroom browser test, driven by playwright-core from npm (installed at
    # test time); Debian's nodejs/npm unless a node with npm is already there (e.g. NodeSource).
    browser) PKGS+=(chromium); command -v npm >/dev/null || PKGS+=(nodejs npm) ;;
    prometheus) PKGS+=(prometheus prometheus-alertmanager) ;;
    deploy) PKGS+=(docker-compose python3-venv python3-pip) ;;
    fuzz) PKGS+=(clang libclang-rt-14-dev) ;;
    *) echo "setup.sh: unknown extra '$extra' (known: browser prometheus deploy fuzz)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all ${#PKGS[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup.sh: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup.sh: done"
