import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { homedir } from 'node:os';
import type { Namespace, Pod } from 'kubernetes-types/core/v1.js';
import type { NetworkPolicy } from 'kubernetes-types/networking/v1.js';
import { parse as parseYaml } from 'yaml';
import { LocalHost } from '../host/host.js';
import { errorMessage } from '../util/errors.js';
import { explainConnection, formatExplanation, kernelRules, type Explanation } from './explain.js';
import { toNamespaceInfo, toPodInfo, toPolicyInfo, type Protocol, type Snapshot } from './model.js';

const USAGE = `usage: skiff policy explain --from NS/POD|IP --to NS/POD|IP --port PORT/PROTO
                           [--kubeconfig FILE | --server URL] [--netns NAME] [--json]

Explains whether a new connection is allowed: the policies isolating each side, the rules that
allow it, the rendered chain rule that matches, and the kernel rule with its packet counters on
this host (root namespace, or --netns NAME).`;

interface Conn {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  insecure?: boolean;
}

function b64(s: unknown): Buffer | undefined {
  return typeof s === 'string' ? Buffer.from(s, 'base64') : undefined;
}

/** The current context of a kubeconfig: server, CA, client cert/key or token. */
export function connFromKubeconfig(text: string): Conn {
  type Named<T> = { name: string } & T;
  const kc = parseYaml(text) as {
    'current-context'?: string;
    contexts?: Named<{ context: { cluster: string; user: string } }>[];
    clusters?: Named<{ cluster: Record<string, unknown> }>[];
    users?: Named<{ user: Record<string, unknown> }>[];
  };
  const ctx = kc.contexts?.find((c) => c.name === kc['current-context']) ?? kc.contexts?.[0];
  const cluster = kc.clusters?.find((c) => c.name === ctx?.context.cluster)?.cluster ?? kc.clusters?.[0]?.cluster ?? {};
  const user = kc.users?.find((u) => u.name === ctx?.context.user)?.user ?? {};
  const file = (k: string) => (typeof user[k] === 'string' ? readFileSync(user[k] as string) : undefined);
  return {
    server: String(cluster.server ?? ''),
    ca: b64(cluster['certificate-authority-data']) ?? (typeof cluster['certificate-authority'] === 'string' ? readFileSync(cluster['certificate-authority'] as string) : undefined),
    cert: b64(user['client-certificate-data']) ?? file('client-certificate'),
    key: b64(user['client-key-data']) ?? file('client-key'),
    token: typeof user.token === 'string' ? user.token : undefined,
    insecure: cluster['insecure-skip-tls-verify'] === true,
  };
}

function getJson(conn: Conn, path: string): Promise<{ items: unknown[] }> {
  const url = new URL(path, conn.server);
  const req = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const r = req(url, { method: 'GET', ca: conn.ca, cert: conn.cert, key: conn.key, rejectUnauthorized: !conn.insecure, headers: { accept: 'application/json', ...(conn.token ? { authorization: `Bearer ${conn.token}` } : {}) } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body) as { items: unknown[] }) : reject(new Error(`GET ${path}: ${res.statusCode} ${body.slice(0, 200)}`))));
    });
    r.on('error', reject);
    r.end();
  });
}

async function fetchSnapshot(conn: Conn): Promise<Snapshot> {
  const [pods, nss, nps] = await Promise.all([getJson(conn, '/api/v1/pods'), getJson(conn, '/api/v1/namespaces'), getJson(conn, '/apis/networking.k8s.io/v1/networkpolicies')]);
  return {
    nodeName: '',
    pods: (pods.items as Pod[]).map(toPodInfo).filter((p) => p !== null),
    namespaces: (nss.items as Namespace[]).map(toNamespaceInfo),
    policies: (nps.items as NetworkPolicy[]).map(toPolicyInfo),
  };
}

function flags(args: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [k, v] = a.includes('=') ? [a.slice(2, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a.slice(2), ['help', 'json'].includes(a.slice(2)) ? 'true' : args[++i]];
    if (v === undefined) throw new Error(`--${k} needs a value`);
    out.set(k, v);
  }
  return out;
}

/** `skiff policy explain --from ns/pod --to ns/pod --port 80/TCP [--kubeconfig F | --server URL]`. */
export async function runPolicyExplain(args: string[]): Promise<number> {
  let f: Map<string, string>;
  try {
    f = flags(args);
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n${USAGE}\n`);
    return 2;
  }
  if (f.has('help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const port = f.get('port')?.match(/^(\d+)(?:\/(TCP|UDP|SCTP))?$/i);
  if (!f.get('from') || !f.get('to') || !port) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  try {
    const kubeconfig = f.get('kubeconfig') ?? process.env.KUBECONFIG ?? `${homedir()}/.kube/config`;
    const conn: Conn = f.has('server') ? { server: f.get('server')! } : connFromKubeconfig(readFileSync(kubeconfig, 'utf8'));
    const snap = await fetchSnapshot(conn);
    const proto = (port[2]?.toUpperCase() ?? 'TCP') as Protocol;
    const base = explainConnection(snap, f.get('from')!, f.get('to')!, Number(port[1]), proto);
    const host = new LocalHost(f.get('netns') ?? null);
    const ip = (ref: string) => (ref.includes('/') ? snap.pods.find((p) => `${p.namespace}/${p.name}` === ref)?.ips[0] ?? '' : ref);
    const kernel = await kernelRules(host, base, ip(base.from), ip(base.to)).catch((err: unknown) => [{ direction: 'ingress' as const, rule: null, note: `kernel not readable: ${errorMessage(err)}` }]);
    const exp: Explanation = { ...base, kernel };
    process.stdout.write(f.has('json') ? `${JSON.stringify(exp, null, 2)}\n` : formatExplanation(exp));
    return exp.verdict.allowed ? 0 : 1;
  } catch (err) {
    process.stderr.write(`explain: ${errorMessage(err)}\n`);
    return 2;
  }
}
