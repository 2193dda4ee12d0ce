/**
 * Profiling aid for the ingress: one in-process proxy (workers: 1) in front of one nginx upstream,
 * loaded by wrk for PROFILE_SECONDS (10); prints CPU µs per request of this process as JSON. Run
 * with PROFILE_OUT=FILE.cpuprofile to get a CPU profile of the load window only (node:inspector).
 * Env: PROFILE_TLS=1 loads the HTTPS listener instead; PROFILE_ACCESS_LOG=1 turns the access log on;
 * PROFILE_FASTPATH=0 serves every request through node:http (no raw-socket fast path).
 */
import { spawn, execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from 'node:inspector';
import { R } from '../../../src/api/registry.js';
import { FakeApiClient } from '../../../src/client/fake.js';
import { startIngress } from '../../../src/ingress/index.js';
import { freePort } from './ports.js';

const SECONDS = Number(process.env.PROFILE_SECONDS ?? 10);

/** CPU ms per thread of this process (name: ms). */
function threadCpu(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const st = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      out[`${name}#${tid}`] = (Number(f[11]) + Number(f[12])) * 10;
    } catch {
      // thread gone
    }
  }
  return out;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-prof-ingress-'));
  const upPort = await freePort('127.0.0.2');
  writeFileSync(join(dir, 'nginx.conf'), `worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn; events {}
http { access_log off; keepalive_requests 1000000; client_body_temp_path ${dir}/b; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;
  server { listen 127.0.0.2:${upPort}; location / { return 200 "hello\\n"; } } }`);
  const nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  const client = new FakeApiClient();
  client.seed(R.ingressclasses, { metadata: { name: 'skiff' }, spec: { controller: 'skiff.io/ingress' } });
  client.seed(R.services, { metadata: { name: 'backend', namespace: 'default' }, spec: { ports: [{ name: 'http', port: 80, targetPort: upPort }] } });
  client.seed(R.endpointslices, {
    metadata: { name: 'backend-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'backend' } },
    ports: [{ name: 'http', port: upPort }], endpoints: [{ addresses: ['127.0.0.2'], conditions: { ready: true } }],
  });
  client.seed(R.ingresses, {
    metadata: { name: 'bench', namespace: 'default', annotations: { 'nginx.ingress.kubernetes.io/ssl-redirect': 'false' } },
    spec: { ingressClassName: 'skiff', rules: [{ host: 'bench.local', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'backend', port: { number: 80 } } } }] } }] },
  });
  const ing = await startIngress({ client, httpPort: await freePort(), httpsPort: await freePort(), bindAddress: '127.0.0.1', workers: 1, accessLog: process.env.PROFILE_ACCESS_LOG === '1', publishAddresses: ['127.0.0.1'], statusLease: false, fastPath: process.env.PROFILE_FASTPATH !== '0' });
  try {
    await new Promise((r) => setTimeout(r, 300));
    const url = process.env.PROFILE_TLS === '1' ? `https://127.0.0.1:${ing.httpsPort}/api/x?y=1` : `http://127.0.0.1:${ing.httpPort}/api/x?y=1`;
    const session = process.env.PROFILE_OUT ? new Session() : undefined;
    const post = (method: string, params?: object) => new Promise<unknown>((resolve, reject) => session!.post(method, params ?? {}, (err, r) => (err ? reject(err) : resolve(r))));
    if (session) {
      session.connect();
      await post('Profiler.enable');
      await post('Profiler.setSamplingInterval', { interval: 200 });
      await post('Profiler.start');
    }
    const threads0 = threadCpu();
    const c0 = process.cpuUsage();
    const out = await new Promise<string>((resolve, reject) => {
      execFile('wrk', ['-t1', '-c32', `-d${SECONDS}s`, '-H', 'Host: bench.local', url], { encoding: 'utf8' }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    const c = process.cpuUsage(c0);
    const threads1 = threadCpu();
    if (session) {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      writeFileSync(process.env.PROFILE_OUT!, JSON.stringify(profile));
      session.disconnect();
    }
    const perThread = Object.fromEntries(Object.entries(threads1).map(([k, v]) => [k, v - (threads0[k] ?? 0)]).filter(([, v]) => (v as number) > 0));
    if (process.env.PROFILE_DEBUG) process.stderr.write(out);
    const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
    process.stdout.write(JSON.stringify({ requests, rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]), cpuUsPerRequest: Math.round((c.user + c.system) / requests), threadCpuMs: perThread, load1m: Number(execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).split(' ')[0]) }) + '\n');
  } finally {
    await ing.stop();
    nginx.kill('SIGQUIT');
    await new Promise((r) => setTimeout(r, 300));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
