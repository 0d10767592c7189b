#!/usr/bin/env bash
# Installs what the integration test bed needs on Debian bookworm, as root, for every engine
# flavour the suite runs against (testbed/ENGINES.md):
#   docker20, the bookworm docker.io package;
#   docker26 and docker26-containerd, the dockerd of Debian trixie's docker.io package, and
#     docker28 and docker28-containerd, that of sid's, with sid's docker-buildx (the BuildKit
#     client plugin the bed's docker CLI runs against every Docker flavour): each fetched with
#     `apt-get download` through a private, temporary apt configuration (the machine's own
#     sources are neither read nor changed) and unpacked with `dpkg -x` into $DOCKER26_DIR and
#     $DOCKER28_DIR; they run with bookworm's containerd, runc and tini (docker-init), which
#     docker.io brings;
#   podman, the bookworm podman package (with conmon, containers-common and the CNI plugins);
#   for the ssh:// tests, openssh-client (ssh-keygen, ssh-agent, ssh-add) and bookworm's sshd,
#     fetched with `apt-get download` (openssh-server and libwrap0) and unpacked with `dpkg -x`
#     into $OPENSSH_DIR, so that no sshd service is installed or started: the tests run their own.
# Idempotent: installs only what is missing, and starts no service, because the bed runs its own
# private engines and a system one would be an engine the tests must never see.
set -euo pipefail

PACKAGES=(docker.io docker-registry busybox-static podman openssh-client)
POLICY=/usr/sbin/policy-rc.d
# Where the trixie and sid dockerds are unpacked; testbed/engine.ts reads the same defaults.
DOCKER26_DIR=${RECLAIM_DOCKER26_DIR:-/opt/reclaim-testbed/docker26}
DOCKER28_DIR=${RECLAIM_DOCKER28_DIR:-/opt/reclaim-testbed/docker28}
# Where bookworm's sshd is unpacked; testbed/sshd.ts reads the same default.
OPENSSH_DIR=${RECLAIM_OPENSSH_DIR:-/opt/reclaim-testbed/openssh}

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
  # No recommends: podman's would bring buildah, slirp4netns, fuse-overlayfs and uidmap, none of
  # which a root engine on loopback needs.
  apt-get install -y --no-install-recommends "${missing[@]}"
  restore_policy
  trap - EXIT
fi

# A newer dockerd (and, for docker28, sid's buildx plugin), unpacked once per machine.
# newer_docker_ok DIR MAJOR PACKAGE...: the unpack finished (VERSION is written last, so an
# interrupted one is redone), its dockerd is of that major version, and PACKAGES lists every
# package beyond the first (docker.io, whose version is VERSION).
newer_docker_ok() {
  local dir=$1 major=$2 pkg
  shift 2
  [[ -s $dir/VERSION && -x $dir/root/usr/sbin/dockerd ]] &&
    "$dir/root/usr/sbin/dockerd" --version | grep -q "version ${major}\." || return 1
  for pkg in "${@:2}"; do
    grep -q "^$pkg=" "$dir/PACKAGES" 2>/dev/null || return 1
  done
}

# unpack_newer_docker DIR SUITE MAJOR PACKAGE...: `apt-get download`s the packages from the Debian
# SUITE through a private, temporary apt configuration and unpacks them with `dpkg -x` into
# DIR/root; the first must be docker.io of that major version.
unpack_newer_docker() {
  local dir=$1 suite=$2 major=$3
  shift 3
  if newer_docker_ok "$dir" "$major" "$@"; then
    echo "install-testbed: docker.io $(cat "$dir/VERSION") from $suite already unpacked in $dir"
    return
  fi
  apt_dir=$(mktemp -d /tmp/reclaim-apt-XXXXXX)
  cleanup_apt() { rm -rf "$apt_dir"; }
  trap cleanup_apt EXIT
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/download"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
    "$suite" >"$apt_dir/sources.list"
  # Only this private list, lists directory and cache: the machine's apt state stays as it was.
  local apt_opts=(
    -o "Dir::Etc::sourcelist=$apt_dir/sources.list"
    -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Get::List-Cleanup=0"
  )
  # apt drops to the _apt user to download; it must be able to write there.
  chown -R _apt:root "$apt_dir" 2>/dev/null || true
  apt-get "${apt_opts[@]}" update
  local pkg version pinned=()
  for pkg in "$@"; do
    version=$(apt-cache "${apt_opts[@]}" show --no-all-versions "$pkg" | sed -n 's/^Version: //p' | head -n1)
    [[ -n $version ]] || { echo "install-testbed: $suite has no $pkg" >&2; exit 1; }
    pinned+=("$pkg=$version")
  done
  version=${pinned[0]#*=}
  if [[ ${pinned[0]} != docker.io=* || $version != "$major".* ]]; then
    echo "install-testbed: $suite's ${pinned[0]} is not docker.io $major.x" >&2
    exit 1
  fi
  (cd "$apt_dir/download" && apt-get "${apt_opts[@]}" download "${pinned[@]}")
  rm -rf "$dir"
  mkdir -p "$dir"
  for pkg in "$@"; do dpkg -x "$apt_dir/download/${pkg}_"*.deb "$dir/root"; done
  printf '%s\n' "${pinned[@]}" >"$dir/PACKAGES"
  echo "$version" >"$dir/VERSION"
  cleanup_apt
  trap - EXIT
  newer_docker_ok "$dir" "$major" "$@" || { echo "install-testbed: unpacked dockerd in $dir does not run" >&2; exit 1; }
  echo "install-testbed: unpacked ${pinned[*]} from $suite into $dir"
}

unpack_newer_docker "$DOCKER26_DIR" trixie 26 docker.io
# docker-buildx: the BuildKit client the bed's docker CLI runs as a plugin, for every Docker flavour.
unpack_newer_docker "$DOCKER28_DIR" sid 28 docker.io docker-buildx

openssh_ok() {
  [[ -x $OPENSSH_DIR/root/usr/sbin/sshd ]] &&
    LD_LIBRARY_PATH="$OPENSSH_DIR/root/usr/lib/x86_64-linux-gnu" "$OPENSSH_DIR/root/usr/sbin/sshd" -V 2>&1 | grep -q OpenSSH
}

if openssh_ok; then
  echo "install-testbed: sshd already unpacked in $OPENSSH_DIR"
else
  ssh_dir=$(mktemp -d /tmp/reclaim-ssh-XXXXXX)
  cleanup_ssh() { rm -rf "$ssh_dir"; }
  trap cleanup_ssh EXIT
  chown _apt:root "$ssh_dir" 2>/dev/null || true
  (cd "$ssh_dir" && { apt-get download openssh-server libwrap0 || { apt-get update && apt-get download openssh-server libwrap0; }; })
  rm -rf "$OPENSSH_DIR"
  mkdir -p "$OPENSSH_DIR"
  for deb in "$ssh_dir"/*.deb; do dpkg -x "$deb" "$OPENSSH_DIR/root"; done
  cleanup_ssh
  trap - EXIT
  openssh_ok || { echo "install-testbed: unpacked sshd in $OPENSSH_DIR does not run" >&2; exit 1; }
  echo "install-testbed: unpacked openssh-server into $OPENSSH_DIR"
fi

# The bed's dockerd would attach to a system containerd instead of starting a private one.
# Only reported: a service this script did not start is not its to stop.
for sock in /run/containerd/containerd.sock /run/docker.sock /run/podman/podman.sock; do
  if [[ -S $sock ]]; then
    echo "install-testbed: warning: $sock exists; a system engine is running (not started by this script)" >&2
  fi
done

engine_version() { "$1" --version | sed 's/,.*//'; }
echo "install-testbed: ready ($(engine_version /usr/sbin/dockerd); $(engine_version "$DOCKER26_DIR/root/usr/sbin/dockerd"); $(engine_version "$DOCKER28_DIR/root/usr/sbin/dockerd"); buildx $(sed -n 's/^docker-buildx=//p' "$DOCKER28_DIR/PACKAGES"); $(/usr/bin/podman --version); registry $(/usr/bin/docker-registry --version | awk '{print $NF}'))"
