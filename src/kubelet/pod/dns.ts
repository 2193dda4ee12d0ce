import type { Pod } from 'kubernetes-types/core/v1.js';

export interface DnsSettings {
  clusterDNS: string;
  clusterDomain: string;
  /** the node's own resolv.conf text, for dnsPolicy Default */
  hostResolvConf: string;
}

/** Pure: /etc/resolv.conf for a pod per its dnsPolicy (ClusterFirst, Default, None + dnsConfig). */
export function renderResolvConf(pod: Pod, s: DnsSettings): string {
  const ns = pod.metadata?.namespace ?? 'default';
  let policy = pod.spec?.dnsPolicy ?? 'ClusterFirst';
  if (policy === 'ClusterFirstWithHostNet') policy = 'ClusterFirst';
  if (policy === 'ClusterFirst' && pod.spec?.hostNetwork) policy = 'Default';
  let nameservers: string[] = [];
  let searches: string[] = [];
  let options: string[] = [];
  if (policy === 'ClusterFirst') {
    nameservers = [s.clusterDNS];
    searches = [`${ns}.svc.${s.clusterDomain}`, `svc.${s.clusterDomain}`, s.clusterDomain];
    options = ['ndots:5'];
  } else if (policy === 'Default') {
    for (const line of s.hostResolvConf.split('\n')) {
      const [k, ...rest] = line.trim().split(/\s+/);
      if (k === 'nameserver' && rest[0]) nameservers.push(rest[0]);
      else if (k === 'search' || k === 'domain') searches.push(...rest);
      else if (k === 'options') options.push(...rest);
    }
  }
  const cfg = pod.spec?.dnsConfig;
  if (cfg) {
    nameservers.push(...(cfg.nameservers ?? []));
    searches.push(...(cfg.searches ?? []));
    for (const o of cfg.options ?? []) {
      if (!o.name) continue;
      options = options.filter((x) => x.split(':')[0] !== o.name);
      options.push(o.value !== undefined ? `${o.name}:${o.value}` : o.name);
    }
  }
  const lines: string[] = [];
  if (searches.length) lines.push(`search ${[...new Set(searches)].join(' ')}`);
  for (const n of [...new Set(nameservers)].slice(0, 3)) lines.push(`nameserver ${n}`);
  if (options.length) lines.push(`options ${options.join(' ')}`);
  return lines.join('\n') + '\n';
}

/** Pure: the pod's hostname (spec.hostname or the pod name, at most 63 chars). */
export function podHostname(pod: Pod): string {
  return (pod.spec?.hostname ?? pod.metadata?.name ?? 'pod').slice(0, 63);
}

/** Pure: /etc/hosts with localhost, the pod IP + hostname (and its FQDN with a subdomain), hostAliases. */
export function renderHosts(pod: Pod, podIP: string, clusterDomain: string): string {
  const host = podHostname(pod);
  const sub = pod.spec?.subdomain;
  const names = sub ? `${host}.${sub}.${pod.metadata?.namespace ?? 'default'}.svc.${clusterDomain}\t${host}` : host;
  const lines = [
    '# Kubernetes-managed hosts file (skiff).',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'fe00::1\tip6-allnodes',
    'fe00::2\tip6-allrouters',
  ];
  if (podIP) lines.push(`${podIP}\t${names}`);
  for (const a of pod.spec?.hostAliases ?? []) if (a.ip && a.hostnames?.length) lines.push(`${a.ip}\t${a.hostnames.join('\t')}`);
  return lines.join('\n') + '\n';
}
