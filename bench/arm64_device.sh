#!/usr/bin/env bash
# An emulated aarch64 Debian on this machine, reached over SSH on loopback: an sshd on 127.0.0.1
# whose logins land in the aarch64 system (ChrootDirectory), every aarch64 program run by QEMU 10
# through binfmt_misc. Built once, cached under ~/.cache/edge-lstm/arm64 (as root: debootstrap,
# binfmt_misc and bind mounts need it).
#
#   bash bench/arm64_device.sh up      # build if needed, start sshd; prints the device URL
#   bash bench/arm64_device.sh down    # stop sshd, unmount
#
# Then: edge-lstm device add arm64 "$(bash bench/arm64_device.sh url)"; edge-lstm device setup arm64
#
# The recipe and its trap (../shared/notes/arm64-device.md): Debian 12's QEMU 7.2 dies on
# `import onnxruntime` ("uncaught target signal 11"); Debian 13's QEMU 10 (qemu-user, static) works.
# Timings there are the emulator's, never an Arm CPU's: `edge-lstm device info` says "emulated".
set -euo pipefail

CACHE="${EDGE_LSTM_ARM64_CACHE:-$HOME/.cache/edge-lstm/arm64}"
ROOT="$CACHE/rootfs"
PORT="${EDGE_LSTM_ARM64_PORT:-2222}"
USER_NAME=edgedev
MAGIC='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
MASK='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'

url() { echo "ssh://$USER_NAME@127.0.0.1:$PORT?config=$CACHE/ssh_config"; }

mirror() {  # Debian's main archive as this machine's apt reaches it (its mirror or proxy), or EDGE_LSTM_DEBIAN_MIRROR
  local m="${EDGE_LSTM_DEBIAN_MIRROR:-}"
  [ -n "$m" ] || m=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)
  [ -n "$m" ] || m=$(awk '$1 == "deb" && !/security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
    /etc/apt/sources.list 2>/dev/null)
  [ -n "$m" ] || { echo "no Debian archive in this machine's apt sources: set EDGE_LSTM_DEBIAN_MIRROR to one" >&2; exit 1; }
  echo "$m"
}

chroot_path_ok() {  # sshd's ChrootDirectory refuses a path with a component others may write (/tmp)
  local p="$ROOT"
  while [ "$p" != "/" ]; do
    if [ -e "$p" ] && { [ "$(stat -c %u "$p")" != 0 ] || [ -n "$(find "$p" -maxdepth 0 -perm /022)" ]; }; then
      echo "error: $p must be owned by root and writable by root only (sshd's ChrootDirectory rule): set EDGE_LSTM_ARM64_CACHE to such a folder (default ~/.cache/edge-lstm/arm64)" >&2
      exit 1
    fi
    p=$(dirname "$p")
  done
}

need() {  # a command, from Debian's package when missing
  command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
}

qemu() {  # QEMU 10's static aarch64 user-mode emulator, from Debian 13, without switching the system to it
  [ -x "$CACHE/qemu-aarch64" ] && return
  local archive; archive=$(mirror)
  mkdir -p "$CACHE"
  echo "deb [arch=amd64] $archive trixie main" > /etc/apt/sources.list.d/edge-lstm-trixie.list
  apt-get update -qq
  (cd "$CACHE" && apt-get download -qq qemu-user/trixie)
  rm /etc/apt/sources.list.d/edge-lstm-trixie.list
  apt-get update -qq
  dpkg -x "$CACHE"/qemu-user_*.deb "$CACHE/qemu-deb"
  cp "$CACHE/qemu-deb/usr/bin/qemu-aarch64" "$CACHE/qemu-aarch64"
  rm -rf "$CACHE/qemu-deb" "$CACHE"/qemu-user_*.deb
}

binfmt() {  # aarch64 programs (children included) run through QEMU 10; F: the interpreter is opened now
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
  if [ -e "$entry" ] && ! grep -q "$CACHE/qemu-aarch64" "$entry"; then echo -1 > "$entry"; fi
  [ -e "$entry" ] || printf ':qemu-aarch64:M::%s:%s:%s:F' "$MAGIC" "$MASK" "$CACHE/qemu-aarch64" > /proc/sys/fs/binfmt_misc/register
}

tree() {  # a minimal arm64 Debian 12 with Python (venv, with ensurepip's pip, for `edge-lstm device setup`)
  [ -x "$ROOT/usr/bin/python3" ] && return
  need mmdebstrap mmdebstrap
  local archive; archive=$(mirror)
  mmdebstrap --quiet --arch=arm64 --variant=minbase \
    --include=python3,python3-venv,libgomp1,libstdc++6,ca-certificates bookworm "$ROOT" "$archive"
}

sshd_up() {
  need sshd openssh-server
  need ssh openssh-client
  id "$USER_NAME" >/dev/null 2>&1 || useradd --no-create-home --home-dir "/home/$USER_NAME" --shell /bin/sh "$USER_NAME"
  usermod -p '*' "$USER_NAME"  # no password, but not locked: sshd refuses a locked account's keys too
  local uid gid
  uid=$(id -u "$USER_NAME"); gid=$(id -g "$USER_NAME")
  grep -q "^$USER_NAME:" "$ROOT/etc/passwd" || echo "$USER_NAME:x:$uid:$gid::/home/$USER_NAME:/bin/sh" >> "$ROOT/etc/passwd"
  grep -q "^$USER_NAME:" "$ROOT/etc/group" || echo "$USER_NAME:x:$gid:" >> "$ROOT/etc/group"
  mkdir -p "$ROOT/home/$USER_NAME" && chown "$uid:$gid" "$ROOT/home/$USER_NAME"
  # pip there reaches the package index as this machine does: its name servers and the certificate
  # authorities it trusts (a proxy's own included), for pip too (pip otherwise uses its own bundle)
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$ROOT/etc/pip.conf"
  for d in proc dev; do mountpoint -q "$ROOT/$d" || mount --bind "/$d" "$ROOT/$d"; done
  [ -f "$CACHE/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C edge-lstm-arm64 -f "$CACHE/id_ed25519"
  [ -f "$CACHE/host_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -f "$CACHE/host_ed25519"
  cp "$CACHE/id_ed25519.pub" "$CACHE/authorized_keys" && chmod 644 "$CACHE/authorized_keys"
  cat > "$CACHE/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $PORT
HostKey $CACHE/host_ed25519
PidFile $CACHE/sshd.pid
AuthorizedKeysFile none
AuthorizedKeysCommand /bin/cat $CACHE/authorized_keys
AuthorizedKeysCommandUser root
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowUsers $USER_NAME
ChrootDirectory $ROOT
EOF
  cat > "$CACHE/ssh_config" <<EOF
Host 127.0.0.1
  User $USER_NAME
  Port $PORT
  IdentityFile $CACHE/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $CACHE/known_hosts
  StrictHostKeyChecking accept-new
EOF
  mkdir -p /run/sshd
  # (the key file is read by root through AuthorizedKeysCommand: the user cannot enter root's home to read it)
  if [ -f "$CACHE/sshd.pid" ] && kill -0 "$(cat "$CACHE/sshd.pid")" 2>/dev/null; then kill "$(cat "$CACHE/sshd.pid")"; sleep 0.5; fi
  "$(command -v sshd)" -f "$CACHE/sshd_config"
}

down() {
  if [ -f "$CACHE/sshd.pid" ]; then kill "$(cat "$CACHE/sshd.pid")" 2>/dev/null || true; rm -f "$CACHE/sshd.pid"; fi
  for d in dev proc; do mountpoint -q "$ROOT/$d" && umount "$ROOT/$d" || true; done
}

case "${1:-up}" in
  up) chroot_path_ok; qemu; binfmt; tree; sshd_up; url ;;
  down) down ;;
  url) url ;;
  *) echo "usage: $0 up|down|url" >&2; exit 2 ;;
esac
