/**
 * Ingress benchmark: wrk (apt) through skiff's ingress and, in the same run, through nginx (apt)
 * with the same routes and the same upstreams (two nginx endpoints returning a small body).
 * Prints one JSON object: rps and latency p50/p99 over HTTP and HTTPS with keep-alive at equal
 * concurrency (closed loop), p99 at equal offered load (both paced to half of skiff's rate), and
 * failed requests while routes change under load (skiff: API updates; nginx: reload).
 * A bare one-process http-proxy server and the upstream nginx itself (no proxy) are measured over
 * HTTP too, as references for the machine; every run reports the CPU time its proxy's processes used
 * per request (utime+stime from /proc, skiff: this process and its worker processes; nginx: master
 * and workers), which is what to compare when the machine is shared and wall-clock rps is noisy.
 *
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs scripts/bench/ingress/run.ts
 *
 * Env: BENCH_SECONDS (8), BENCH_CONNECTIONS (64), BENCH_THREADS (1), BENCH_WORKERS (skiff processes,
 * default one per core), BENCH_CHANGES (20 route changes during the change run), BENCH_WARMUP_SECONDS
 * (5, per skiff listener before measuring), BENCH_FASTPATH=0 (node:http for every request, for comparison).
 * Everything listens on 127.0.0.0/8; nginx config, pid and logs live in a temp dir removed at the end.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { R } from '../../../src/api/registry.js';
import { FakeApiClient } from '../../../src/client/fake.js';
import { startIngress } from '../../../src/ingress/index.js';
import { makeSelfSignedCertificate } from '../../../src/ingress/tls.js';
import { freePort } from './ports.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const THREADS = Number(process.env.BENCH_THREADS ?? 1);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 20);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 5);
/** BENCH_FASTPATH=0: node:http for every request (the forwarder before the raw-socket fast path) */
const FAST_PATH = process.env.BENCH_FASTPATH !== '0';
const HOST = 'bench.local';

interface WrkResult { rps: number; p50ms: number; p99ms: number; requests: number; failed: number; slowerThan2s: number; cpuUsPerRequest?: number; load1m?: number }

/** utime+stime of a process in ms (0 when it is gone). */
function procCpuMs(pid: number): number {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // fields 14 and 15, USER_HZ = 100
  } catch {
    return 0;
  }
}

/** Child pids of a process. */
function childrenOf(ppid: number, cmdlineMatch?: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) !== ppid) continue;
      if (cmdlineMatch && !readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(cmdlineMatch)) continue;
      out.push(Number(d));
    } catch {
      // raced with an exiting process
    }
  }
  return out;
}

const cpuOf = (pids: () => number[]) => () => pids().reduce((n, p) => n + procCpuMs(p), 0);

function ms(v: string, unit: string): number {
  return Number(v) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[unit];
}

function parseWrk(out: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const p = (q: string) => { const m = new RegExp(`\\s${q}%\\s+([\\d.]+)(us|ms|s)`).exec(out); return m ? ms(m[1], m[2]) : NaN; };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErr = sock ? sock.slice(1, 4).reduce((n, x) => n + Number(x), 0) : 0;
  // wrk's timeouts are requests slower than its 2 s limit (an overloaded machine), not errors
  return { rps: Math.round(rps), p50ms: p('50'), p99ms: p('99'), requests, failed: non2xx + sockErr, slowerThan2s: sock ? Number(sock[4]) : 0 };
}

const load = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

/** wrk, and the CPU the measured proxy used per request when `cpu` reads its processes' CPU ms. */
async function wrk(url: string, seconds = SECONDS, cpu?: () => number, paceScript?: string): Promise<WrkResult> {
  const before = cpu?.() ?? 0;
  const r = await runWrk(url, seconds, paceScript);
  if (cpu && r.requests > 0) r.cpuUsPerRequest = Math.round(((cpu() - before) * 1000) / r.requests);
  r.load1m = load();
  return r;
}

/** `paceScript`: a wrk Lua script that waits between requests on each connection (offered load). */
function runWrk(url: string, seconds: number, paceScript?: string): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const pace = paceScript ? ['-s', paceScript] : [];
    const child = spawn('timeout', [String(seconds + 20), 'wrk', `-t${THREADS}`, `-c${CONNS}`, `-d${seconds}s`, '--latency', ...pace, '-H', `Host: ${HOST}`, url]);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(parseWrk(out)) : reject(new Error(`wrk exited ${code}: ${out}`))));
  });
}

function nginxConf(dir: string, body: string): string {
  return `worker_processes ${body.includes('upstream') ? 'auto' : '1'};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
${body}
}
`;
}

async function startNginx(dir: string, conf: string): Promise<ChildProcess> {
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      readFileSync(join(dir, 'nginx.pid'));
      return child;
    } catch {
      if (Date.now() > deadline) throw new Error(`nginx did not start: ${readFileSync(join(dir, 'error.log'), 'utf8')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function proxyRoutes(extra: string): string {
  return `    location = /healthz { return 200; }
    location /api/ { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Request-ID $request_id; }
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; }
${extra}`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-ingress-'));
  const children: ChildProcess[] = [];
  let stopIngress: (() => Promise<void>) | undefined;
  try {
    const up = [{ address: '127.0.0.2', port: await freePort('127.0.0.2') }, { address: '127.0.0.3', port: await freePort('127.0.0.3') }];
    const upDir = join(dir, 'upstream');
    execFileSync('mkdir', ['-p', upDir, join(dir, 'proxy')]);
    const upstreamNginx = await startNginx(upDir, nginxConf(upDir, up.map((u) => `  server { listen ${u.address}:${u.port}; location / { return 200 "hello from ${u.address}\\n"; } }`).join('\n')));
    children.push(upstreamNginx);

    const pair = await makeSelfSignedCertificate(HOST, [HOST]);
    writeFileSync(join(dir, 'tls.crt'), pair.cert);
    writeFileSync(join(dir, 'tls.key'), pair.key);
    const nginxHttp = await freePort();
    const nginxHttps = await freePort();
    const proxyDir = join(dir, 'proxy');
    const nginxServer = (extra: string) => `  upstream backend { ${up.map((u) => `server ${u.address}:${u.port};`).join(' ')} keepalive 128; }
  server { listen 127.0.0.1:${nginxHttp}; listen 127.0.0.1:${nginxHttps} ssl http2; server_name ${HOST};
    ssl_certificate ${dir}/tls.crt; ssl_certificate_key ${dir}/tls.key; ssl_protocols TLSv1.2 TLSv1.3;
${proxyRoutes(extra)}  }`;
    const nginx = await startNginx(proxyDir, nginxConf(proxyDir, nginxServer('')));
    children.push(nginx);

    const client = new FakeApiClient();
    client.seed(R.ingressclasses, { metadata: { name: 'skiff' }, spec: { controller: 'skiff.io/ingress' } });
    client.seed(R.services, { metadata: { name: 'backend', namespace: 'default' }, spec: { ports: [{ name: 'http', port: 80, targetPort: up[0].port }] } });
    client.seed(R.endpointslices, {
      metadata: { name: 'backend-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'backend' } },
      ports: [{ name: 'http', port: up[0].port }], endpoints: [{ addresses: [up[0].address], conditions: { ready: true } }],
    });
    client.seed(R.endpointslices, {
      metadata: { name: 'backend-2', namespace: 'default', labels: { 'kubernetes.io/service-name': 'backend' } },
      ports: [{ name: 'http', port: up[1].port }], endpoints: [{ addresses: [up[1].address], conditions: { ready: true } }],
    });
    client.seed(R.secrets, { metadata: { name: 'bench-tls', namespace: 'default' }, type: 'kubernetes.io/tls', data: { 'tls.crt': Buffer.from(pair.cert).toString('base64'), 'tls.key': Buffer.from(pair.key).toString('base64') } });
    const ingressObj = (extraPaths: number) => ({
      metadata: { name: 'bench', namespace: 'default', annotations: { 'nginx.ingress.kubernetes.io/ssl-redirect': 'false' } },
      spec: {
        ingressClassName: 'skiff', tls: [{ hosts: [HOST], secretName: 'bench-tls' }],
        rules: [{ host: HOST, http: { paths: [
          { path: '/api', pathType: 'Prefix', backend: { service: { name: 'backend', port: { number: 80 } } } },
          { path: '/', pathType: 'Prefix', backend: { service: { name: 'backend', port: { number: 80 } } } },
          ...Array.from({ length: extraPaths }, (_v, i) => ({ path: `/extra${i}`, pathType: 'Exact', backend: { service: { name: 'backend', port: { number: 80 } } } })),
        ] } }],
      },
    });
    client.seed(R.ingresses, ingressObj(0));
    const workers = process.env.BENCH_WORKERS ? Number(process.env.BENCH_WORKERS) : undefined;
    const ing = await startIngress({ client, httpPort: await freePort(), httpsPort: await freePort(), bindAddress: '127.0.0.1', workers, accessLog: false, publishAddresses: ['127.0.0.1'], fastPath: FAST_PATH });
    stopIngress = () => ing.stop();

    // baseline: a bare http-proxy server (one process, keep-alive agent) in front of the same upstreams
    const barePort = await freePort();
    const bare = spawn(process.execPath, ['-e', `
      const http = require('node:http'); const httpProxy = require(${JSON.stringify(join(process.cwd(), 'node_modules/http-proxy'))});
      const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 512 }); const proxy = httpProxy.createProxyServer({});
      const targets = ${JSON.stringify(up.map((u) => ({ protocol: 'http:', host: u.address, port: u.port })))}; let i = 0;
      http.createServer((req, res) => proxy.web(req, res, { target: targets[i++ % targets.length], agent }, () => { res.statusCode = 502; res.end(); }))
        .listen(${barePort}, '127.0.0.1');`], { stdio: 'ignore' });
    children.push(bare);
    await new Promise((r) => setTimeout(r, 500));

    const skiffCpu = cpuOf(() => [process.pid, ...childrenOf(process.pid, 'ingress/worker')]);
    const nginxCpu = cpuOf(() => [nginx.pid!, ...childrenOf(nginx.pid!)]);
    const bareCpu = cpuOf(() => [bare.pid!]);
    const result: Record<string, unknown> = { loadAverageAtStart: load(), seconds: SECONDS, connections: CONNS, wrkThreads: THREADS, skiffWorkers: workers ?? 'one per core', skiffFastPath: FAST_PATH, upstreams: 2 };
    const path = '/api/items?x=1';
    // warm-up: V8 compiles the hot paths on helper threads during the first seconds, which would be
    // counted as CPU per request of the first skiff run
    await wrk(`http://127.0.0.1:${ing.httpPort}${path}`, WARMUP);
    await wrk(`https://127.0.0.1:${ing.httpsPort}${path}`, WARMUP);
    await wrk(`http://127.0.0.1:${barePort}${path}`, 2);
    await wrk(`http://127.0.0.1:${nginxHttp}${path}`, 2);
    result.http = {
      nginx: await wrk(`http://127.0.0.1:${nginxHttp}${path}`, SECONDS, nginxCpu),
      skiff: await wrk(`http://127.0.0.1:${ing.httpPort}${path}`, SECONDS, skiffCpu),
      bareHttpProxy: await wrk(`http://127.0.0.1:${barePort}${path}`, SECONDS, bareCpu),
      upstreamDirect: await wrk(`http://${up[0].address}:${up[0].port}${path}`, SECONDS, cpuOf(() => [upstreamNginx.pid!, ...childrenOf(upstreamNginx.pid!)])),
    };
    result.https = {
      nginx: await wrk(`https://127.0.0.1:${nginxHttps}${path}`, SECONDS, nginxCpu),
      skiff: await wrk(`https://127.0.0.1:${ing.httpsPort}${path}`, SECONDS, skiffCpu),
    };

    // equal offered load: both paced to half of skiff's closed-loop rate (wrk waits between
    // requests on each connection), so p99 compares like with like
    const paced = async (k: 'http' | 'https', base: string, nginxUrl: string) => {
      const rate = Math.max(50, Math.round(((result[k] as { skiff: WrkResult }).skiff.rps * 0.5)));
      const script = join(dir, `pace-${k}.lua`);
      writeFileSync(script, `function delay() return ${Math.max(1, Math.round((CONNS * 1000) / rate))} end\n`);
      return { offeredRps: rate, nginx: await wrk(nginxUrl, SECONDS, nginxCpu, script), skiff: await wrk(base, SECONDS, skiffCpu, script) };
    };
    result.equalOfferedLoad = {
      http: await paced('http', `http://127.0.0.1:${ing.httpPort}${path}`, `http://127.0.0.1:${nginxHttp}${path}`),
      https: await paced('https', `https://127.0.0.1:${ing.httpsPort}${path}`, `https://127.0.0.1:${nginxHttps}${path}`),
    };

    // route changes under load
    const every = (SECONDS * 1000) / (CHANGES + 1);
    const churn = async (change: (i: number) => Promise<void> | void) => {
      for (let i = 0; i < CHANGES; i++) {
        await new Promise((r) => setTimeout(r, every));
        await change(i);
      }
    };
    const nginxPid = Number(readFileSync(join(proxyDir, 'nginx.pid'), 'utf8').trim());
    const [nginxChurn] = await Promise.all([
      wrk(`http://127.0.0.1:${nginxHttp}${path}`),
      churn((i) => {
        writeFileSync(join(proxyDir, 'nginx.conf'), nginxConf(proxyDir, nginxServer(`    location = /extra${i} { proxy_pass http://backend; }\n`)));
        process.kill(nginxPid, 'SIGHUP');
      }),
    ]);
    const [skiffChurn] = await Promise.all([
      wrk(`http://127.0.0.1:${ing.httpPort}${path}`),
      churn(async (i) => {
        const cur = await client.get(R.ingresses, 'bench', 'default');
        await client.update(R.ingresses, { ...ingressObj(i + 1), metadata: { ...cur.metadata } });
      }),
    ]);
    result.routeChangesUnderLoad = { changes: CHANGES, nginx: nginxChurn, skiff: skiffChurn };
    const ratio = (k: 'http' | 'https') => {
      const r = result[k] as { nginx: WrkResult; skiff: WrkResult };
      const eq = (result.equalOfferedLoad as Record<string, { nginx: WrkResult; skiff: WrkResult }>)[k];
      return {
        rpsRatio: Number((r.skiff.rps / r.nginx.rps).toFixed(2)),
        p99Ratio: Number((r.skiff.p99ms / r.nginx.p99ms).toFixed(2)),
        p99RatioAtEqualOfferedLoad: Number((eq.skiff.p99ms / eq.nginx.p99ms).toFixed(2)),
        cpuPerRequestRatio: Number(((r.skiff.cpuUsPerRequest ?? NaN) / (r.nginx.cpuUsPerRequest ?? NaN)).toFixed(1)),
      };
    };
    result.loadAverage1m = load();
    result.summary = { http: ratio('http'), https: ratio('https'), targets: { rpsRatio: '>= 0.5', p99Ratio: '<= 2' } };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    await stopIngress?.();
    for (const c of children) c.kill('SIGQUIT');
    await new Promise((r) => setTimeout(r, 300));
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
