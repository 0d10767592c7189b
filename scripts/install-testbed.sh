#!/usr/bin/env bash
# Installs what the integration test bed needs on Debian bookworm, as root, for every engine
# flavour the suite runs against (testbed/ENGINES.md):
#   docker20, the bookworm docker.io package;
#   docker26 and docker26-containerd, the dockerd of Debian trixie's docker.io package, fetched
#     with `apt-get download` through a private, temporary apt configuration (the machine's own
#     sources are neither read nor changed) and unpacked with `dpkg -x` into $DOCKER26_DIR; it
#     runs with bookworm's containerd, runc and tini (docker-init), which docker.io brings;
#   podman, the bookworm podman package (with conmon, containers-common and the CNI plugins);
#   for the ssh:// tests, openssh-client (ssh-keygen, ssh-agent, ssh-add) and bookworm's sshd,
#     fetched with `apt-get download` (openssh-server and libwrap0) and unpacked with `dpkg -x`
#     into $OPENSSH_DIR, so that no sshd service is installed or started: the tests run their own.
# Idempotent: installs only what is missing, and starts no service, because the bed runs its own
# private engines and a system one would be an engine the tests must never see.
set -euo pipefail

PACKAGES=(docker.io docker-registry busybox-static podman openssh-client)
POLICY=/usr/sbin/policy-rc.d
# Where the trixie dockerd is unpacked; testbed/engine.ts reads the same default.
DOCKER26_DIR=${RECLAIM_DOCKER26_DIR:-/opt/reclaim-testbed/docker26}
DOCKER26_SUITE=trixie
DOCKER26_MAJOR=26
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

# The trixie dockerd, unpacked once per machine. A finished unpack leaves VERSION behind, so an
# interrupted one is redone.
docker26_ok() {
  [[ -s $DOCKER26_DIR/VERSION && -x $DOCKER26_DIR/root/usr/sbin/dockerd ]] &&
    "$DOCKER26_DIR/root/usr/sbin/dockerd" --version | grep -q "version ${DOCKER26_MAJOR}\."
}

if docker26_ok; then
  echo "install-testbed: docker.io $(cat "$DOCKER26_DIR/VERSION") from $DOCKER26_SUITE already unpacked in $DOCKER26_DIR"
else
  apt_dir=$(mktemp -d /tmp/reclaim-apt-XXXXXX)
  cleanup_apt() { rm -rf "$apt_dir"; }
  trap cleanup_apt EXIT
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/download"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
    "$DOCKER26_SUITE" >"$apt_dir/sources.list"
  # Only this private list, lists directory and cache: the machine's apt state stays as it was.
  apt_opts=(
    -o "Dir::Etc::sourcelist=$apt_dir/sources.list"
    -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Get::List-Cleanup=0"
  )
  # apt drops to the _apt user to download; it must be able to write there.
  chown -R _apt:root "$apt_dir" 2>/dev/null || true
  apt-get "${apt_opts[@]}" update
  version=$(apt-cache "${apt_opts[@]}" show --no-all-versions docker.io | sed -n 's/^Version: //p' | head -n1)
  if [[ $version != "$DOCKER26_MAJOR".* ]]; then
    echo "install-testbed: $DOCKER26_SUITE's docker.io is '$version', not $DOCKER26_MAJOR.x" >&2
    exit 1
  fi
  (cd "$apt_dir/download" && apt-get "${apt_opts[@]}" download "docker.io=$version")
  rm -rf "$DOCKER26_DIR"
  mkdir -p "$DOCKER26_DIR"
  dpkg -x "$apt_dir"/download/docker.io_*.deb "$DOCKER26_DIR/root"
  echo "$version" >"$DOCKER26_DIR/VERSION"
  cleanup_apt
  trap - EXIT
  docker26_ok || { echo "install-testbed: unpacked dockerd in $DOCKER26_DIR does not run" >&2; exit 1; }
  echo "install-testbed: unpacked docker.io $version from $DOCKER26_SUITE into $DOCKER26_DIR"
fi

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

echo "install-testbed: ready ($(/usr/sbin/dockerd --version | sed 's/,.*//'); $("$DOCKER26_DIR/root/usr/sbin/dockerd" --version | sed 's/,.*//'); $(/usr/bin/podman --version); registry $(/usr/bin/docker-registry --version | awk '{print $NF}'))"
