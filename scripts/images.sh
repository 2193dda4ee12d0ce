#!/usr/bin/env bash
# Builds the local test images from busybox-static with `docker import` (no registry, no network):
#   skiff/busybox:1.36  - busybox applets on PATH (sh, httpd, nc, wget, sleep ...), CMD sh
#   skiff/pause:3.9     - holds a pod's namespaces; sleeps until SIGTERM/SIGKILL
# Idempotent: an image that already exists is left alone (pass --force to rebuild).
set -euo pipefail
BUSYBOX=${BUSYBOX:-/bin/busybox}
FORCE=${1:-}
[ -x "$BUSYBOX" ] || { echo "busybox-static not found at $BUSYBOX (apt-get install busybox-static)" >&2; exit 1; }

have() { [ -z "$FORCE" ] && docker image inspect "$1" >/dev/null 2>&1; }

build() { # build IMAGE CHANGE...
  local image=$1; shift
  local dir; dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/var/www" "$dir/root"
  cp "$BUSYBOX" "$dir/bin/busybox"
  for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/etc/passwd"
  echo 'root:x:0:' > "$dir/etc/group"
  tar -C "$dir" -c . | docker import "$@" - "$image" >/dev/null
  echo "built $image"
}

have skiff/busybox:1.36 || build skiff/busybox:1.36 --change 'ENV PATH=/bin' --change 'CMD ["sh"]'
have skiff/pause:3.9 || build skiff/pause:3.9 --change 'ENV PATH=/bin' \
  --change 'ENTRYPOINT ["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"]'
