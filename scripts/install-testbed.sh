#!/usr/bin/env bash
# Installs what the integration test bed needs on Debian bookworm, as root.
# Idempotent: installs only missing packages, and starts no service, because the bed runs
# its own private dockerd and a system one would be an engine the tests must never see.
set -euo pipefail

PACKAGES=(docker.io docker-registry busybox-static)
POLICY=/usr/sbin/policy-rc.d

if [[ $(id -u) -ne 0 ]]; then
  echo "install-testbed: run as root" >&2
  exit 1
fi

installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-testbed: ${PACKAGES[*]} already installed"
else
  # invoke-rc.d and deb-systemd-invoke ask policy-rc.d before starting anything; 101 means "no".
  # A policy already in place (Docker base images ship one) is put back afterwards.
  backup=""
  if [[ -e $POLICY ]]; then
    backup=$(mktemp)
    cp -p "$POLICY" "$backup"
  fi
  restore_policy() {
    if [[ -n $backup ]]; then
      mv -f "$backup" "$POLICY"
    else
      rm -f "$POLICY"
    fi
  }
  trap restore_policy EXIT
  printf '#!/bin/sh\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"

  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi

# The bed's dockerd would attach to a system containerd instead of starting a private one.
# Only reported: a service this script did not start is not its to stop.
for sock in /run/containerd/containerd.sock /run/docker.sock; do
  if [[ -S $sock ]]; then
    echo "install-testbed: warning: $sock exists; a system engine is running (not started by this script)" >&2
  fi
done

echo "install-testbed: ready ($(/usr/sbin/dockerd --version), $(/usr/bin/docker-registry --version | awk '{print $NF}'))"
