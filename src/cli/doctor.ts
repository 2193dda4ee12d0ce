import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { execa } from 'execa';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

async function cmd(file: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  const r = await execa(file, args, { reject: false, timeout: 10_000 });
  return { ok: r.exitCode === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

function portFree(port: number, host = '0.0.0.0'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** Host checks for `skiff doctor`: what skiff needs and what is wrong, in plain words. */
export async function runChecks(ports: number[] = [6443, 80, 443, 10250]): Promise<Check[]> {
  const checks: Check[] = [];
  const ipt = await cmd('iptables', ['--version']);
  checks.push({
    name: 'iptables',
    ok: ipt.ok,
    detail: ipt.ok ? `${ipt.out} (${/nf_tables/.test(ipt.out) ? 'nft backend: keep the number of chains small' : 'legacy backend'})` : 'iptables is not installed',
    fix: 'apt-get install iptables',
  });
  const legacy = await cmd('iptables-legacy', ['--version']);
  checks.push({ name: 'iptables-legacy', ok: legacy.ok, detail: legacy.ok ? legacy.out : 'not available (optional: faster full syncs at scale)', fix: 'apt-get install iptables' });
  for (const [bin, pkg, args] of [
    ['ipset', 'ipset', ['version']],
    ['conntrack', 'conntrack', ['--version']],
    ['ip', 'iproute2', ['-V']],
  ] as const) {
    const r = await cmd(bin, [...args]);
    checks.push({ name: bin, ok: r.ok, detail: r.ok ? r.out.split('\n')[0] : `${bin} is missing`, fix: `apt-get install ${pkg}` });
  }
  const brnf = existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables');
  checks.push({ name: 'br_netfilter', ok: brnf, detail: brnf ? 'loaded: bridged pod traffic passes iptables (NetworkPolicy works on one node)' : 'not loaded: policies cannot see traffic between pods on the same bridge', fix: 'modprobe br_netfilter' });
  const fwd = existsSync('/proc/sys/net/ipv4/ip_forward') && readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() === '1';
  checks.push({ name: 'ip_forward', ok: fwd, detail: fwd ? 'enabled' : 'disabled: pods cannot reach Services on other nodes', fix: 'sysctl -w net.ipv4.ip_forward=1' });
  const docker = await cmd('docker', ['info', '--format', '{{.ServerVersion}}']);
  checks.push({ name: 'docker', ok: docker.ok, detail: docker.ok ? `dockerd ${docker.out} is running` : 'dockerd is not running (pods with the docker runtime will not start)', fix: 'bash scripts/setup.sh (starts dockerd with --bridge=none --iptables=false --ip-masq=false)' });
  if (docker.ok) {
    const img = await cmd('docker', ['image', 'inspect', 'skiff/pause:3.9']);
    checks.push({ name: 'pause image', ok: img.ok, detail: img.ok ? 'skiff/pause:3.9 is present' : 'skiff/pause:3.9 is missing', fix: 'bash scripts/images.sh' });
  }
  for (const p of ports) {
    const free = await portFree(p);
    checks.push({ name: `port ${p}`, ok: free, detail: free ? 'free' : `in use by another process (skiff already running, or another service)`, fix: `ss -ltnp 'sport = :${p}'` });
  }
  return checks;
}

export function formatChecks(checks: Check[]): string {
  return checks.map((c) => `${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}${c.ok || !c.fix ? '' : `\n    fix: ${c.fix}`}`).join('\n');
}
