import type { Host } from '../host/host.js';

/** Address label that marks the /32s the proxy added (so only those are ever removed). */
export function lbLabel(device: string): string {
  return `${device}:lb`.slice(0, 15);
}

/**
 * Makes LoadBalancer ingress IPs local to the node: each one as a /32 on `device` (a bridge,
 * since this kernel has no dummy links), labelled so stale ones can be told from anyone else's.
 * The device is only created when there is an address to hold.
 */
export async function applyLoadBalancerAddresses(host: Host, device: string, ips: string[]): Promise<{ added: string[]; removed: string[] }> {
  const label = lbLabel(device);
  const show = await host.exec('ip', ['-4', '-o', 'addr', 'show', 'dev', device], { allowFail: true });
  const exists = show.exitCode === 0;
  if (!exists && ips.length === 0) return { added: [], removed: [] };
  if (!exists) {
    await host.exec('ip', ['link', 'add', device, 'type', 'bridge']);
  }
  await host.exec('ip', ['link', 'set', device, 'up']);
  const have = new Set<string>();
  for (const line of show.stdout.split('\n')) {
    const m = /inet (\d+\.\d+\.\d+\.\d+)\/32\b/.exec(line);
    const words = line.split(/\s+/).map((w) => w.replace(/\\$/, ''));
    if (m && words.includes(label)) have.add(m[1]);
  }
  const want = new Set(ips);
  const added: string[] = [];
  const removed: string[] = [];
  for (const ip of [...want].sort()) {
    if (have.has(ip)) continue;
    const res = await host.exec('ip', ['addr', 'add', `${ip}/32`, 'dev', device, 'label', label], { allowFail: true });
    if (res.exitCode === 0 || /exists/i.test(res.stderr)) added.push(ip);
  }
  for (const ip of [...have].sort()) {
    if (want.has(ip)) continue;
    await host.exec('ip', ['addr', 'del', `${ip}/32`, 'dev', device], { allowFail: true });
    removed.push(ip);
  }
  return { added, removed };
}
