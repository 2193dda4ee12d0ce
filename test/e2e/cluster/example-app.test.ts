// The newcomer's example app (examples/web.yaml and friends) on a whole `skiff up` running inside its
// own network namespace with real dockerd pods, driven by real kubectl: Service by ClusterIP and
// NodePort, Ingress over HTTPS with our own certificate, a LoadBalancer address, cluster DNS from a
// pod, the NetworkPolicy blocking an unlabelled pod (and its drop log), and `kubectl rollout undo`.
// Every request stays inside the cluster's netns.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Service } from 'kubernetes-types/core/v1.js';
import type { Deployment, ReplicaSet } from 'kubernetes-types/apps/v1.js';
import { startNetnsCluster, type NetnsCluster } from '../../helpers/netns-cluster.js';
import { EXAMPLES, WEB_YAML, curl, kubectl, kubectlJson, podExec, podLogs, rolloutStatus, runIn, waitFor } from './lib.js';

const run = promisify(execFile);
const HOST = 'web.example.test';
/** An HTTP GET with busybox nc (busybox-static's wget segfaults), for `sh -c` inside a pod. */
const HTTP_GET = (ip: string) => `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} 80`;

/** The kernel only logs netfilter LOG hits of non-initial netns with this sysctl on. */
async function enableNetnsLogging(t: Test): Promise<void> {
  const key = '/proc/sys/net/netfilter/nf_log_all_netns';
  const before = readFileSync(key, 'utf8').trim();
  if (before === '1') return;
  // Host-wide and turned on by scripts/setup.sh; never turned back off (concurrent tests rely on it).
  await run('sysctl', ['-qw', 'net.netfilter.nf_log_all_netns=1']);
  void t;
}

/**
 * A self-signed P-256 certificate for HOST, as the examples README makes it (RSA Secrets are covered
 * by the ingress's own TLS tests).
 */
async function makeCert(t: Test): Promise<{ crt: string; key: string; fingerprint: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-e2e-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const crt = join(dir, 'web.crt');
  const key = join(dir, 'web.key');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${HOST}`,
    '-addext', `subjectAltName=DNS:${HOST}`, '-keyout', key, '-out', crt]);
  const fingerprint = (await run('openssl', ['x509', '-in', crt, '-noout', '-fingerprint', '-sha256'])).stdout.trim();
  return { crt, key, fingerprint };
}

async function checkServiceAndIngress(t: Test, c: NetnsCluster): Promise<void> {
  const svc = await kubectlJson<Service>(c, ['get', 'svc', 'web']);
  const clusterIP = svc.spec!.clusterIP!;
  const nodePort = svc.spec!.ports![0].nodePort!;
  t.match(clusterIP, /^10\.96\./, 'ClusterIP from the service range');
  t.match(await waitFor('ClusterIP answers', () => curl(c, [`http://${clusterIP}/`])), /hello from web-/, 'Service answers on its ClusterIP');
  t.match(await waitFor('NodePort answers', () => curl(c, [`http://${c.nodeIP}:${nodePort}/`])), /hello from web-/, `NodePort ${nodePort} answers`);
  t.match(await waitFor('ingress answers by host', () => curl(c, ['-H', `Host: ${HOST}`, `http://${c.nodeIP}/`])), /hello from web-/, 'plain-HTTP Ingress answers by Host header');
  t.equal(await curl(c, ['-H', 'Host: nobody.example.test', `http://${c.nodeIP}/`]), undefined, 'an unknown host is not routed');
}

async function checkTls(t: Test, c: NetnsCluster): Promise<void> {
  const cert = await makeCert(t);
  await kubectl(c, ['create', 'secret', 'tls', 'web-tls', '--cert', cert.crt, '--key', cert.key]);
  await kubectl(c, ['apply', '-f', '-'], readFileSync(join(EXAMPLES, 'extras/web-tls.yaml'), 'utf8'));
  const resolve = ['--resolve', `${HOST}:443:${c.nodeIP}`, '--resolve', `${HOST}:80:${c.nodeIP}`];
  // --cacert with our self-signed certificate: curl only succeeds if the ingress serves exactly it
  const body = await waitFor('HTTPS with our certificate', () => curl(c, [...resolve, '--cacert', cert.crt, `https://${HOST}/index.html`]));
  t.match(body, /hello from web-/, 'HTTPS by host and path, verified against our certificate');
  const served = await runIn(c, 'sh', ['-c', `openssl s_client -connect ${c.nodeIP}:443 -servername ${HOST} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256`]);
  t.equal(served.stdout.trim(), cert.fingerprint, 'the served certificate is the one in the Secret');
  t.equal(await curl(c, [...resolve, '--cacert', cert.crt, `https://${HOST}/no-such-page`]), undefined, 'a path the backend lacks is an error (curl --fail)');
  const redirect = await runIn(c, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', '--max-time', '3', ...resolve, `http://${HOST}/`]);
  t.equal(redirect.stdout, `308 https://${HOST}/`, 'plain HTTP for a TLS host is redirected to HTTPS');
}

async function checkLoadBalancer(t: Test, c: NetnsCluster): Promise<void> {
  await kubectl(c, ['apply', '-f', '-'], readFileSync(join(EXAMPLES, 'extras/web-lb.yaml'), 'utf8'));
  const ip = await waitFor('LoadBalancer ingress IP', async () =>
    (await kubectlJson<Service>(c, ['get', 'svc', 'web-lb'])).status?.loadBalancer?.ingress?.[0]?.ip, 30_000);
  t.match(ip, /^192\.168\.240\.(10\d|110)$/, `LoadBalancer address ${ip} from --lb-pool`);
  t.match(await waitFor('LoadBalancer answers', () => curl(c, [`http://${ip}/`])), /hello from web-/, 'Service answers on its LoadBalancer IP');
}

async function checkDnsFromPod(t: Test, c: NetnsCluster): Promise<void> {
  const pod = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'dns-check', labels: { access: 'true' } },
    spec: {
      restartPolicy: 'Never', terminationGracePeriodSeconds: 1,
      containers: [{ name: 'c', image: 'skiff/busybox:1.36', command: ['sh', '-c',
        // busybox-static's wget segfaults (static libc), so the pod speaks HTTP with nc to the address nslookup gave
        'cat /etc/resolv.conf; nslookup web.default.svc.cluster.local; ' +
        'ip=$(nslookup web.default.svc.cluster.local | awk \'/^Address/ {a=$NF} END {print a}\'); echo "RESOLVED=$ip"; ' +
        `i=0; until ${HTTP_GET('$ip')} | grep hello; do i=$((i+1)); [ $i -ge 30 ] && exit 1; sleep 1; done; echo HTTP-OK`] }],
    },
  };
  await kubectl(c, ['apply', '-f', '-'], JSON.stringify(pod));
  const phase = await waitFor('dns-check pod finished', async () => {
    const p = (await kubectl(c, ['get', 'pod', 'dns-check', '-o', 'jsonpath={.status.phase}'])).trim();
    return p === 'Succeeded' || p === 'Failed' ? p : undefined;
  }, 90_000, 1000);
  const logs = await podLogs(c, 'dns-check');
  const clusterIP = (await kubectl(c, ['get', 'svc', 'web', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
  t.equal(phase, 'Succeeded', `dns-check pod succeeded; logs:\n${logs}`);
  t.match(logs, new RegExp(`Address:?\\s+${clusterIP.replace(/\./g, '\\.')}`), 'nslookup from a pod resolves web.default.svc.cluster.local to the ClusterIP');
  t.match(logs, /^search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local/m, 'the pod\'s resolv.conf has the Kubernetes search path');
  t.match(logs, `RESOLVED=${clusterIP}\n`, 'the pod resolved the Service name to its ClusterIP');
  t.match(logs, /hello from web-[\s\S]*HTTP-OK/, 'HTTP from the pod to the resolved address reaches the web pods');
}

async function checkPolicy(t: Test, c: NetnsCluster): Promise<void> {
  await kubectl(c, ['apply', '-f', '-'], readFileSync(join(EXAMPLES, 'extras/clients.yaml'), 'utf8'));
  await kubectl(c, ['wait', '--for=condition=Ready', 'pod/allowed', 'pod/denied', '--timeout=90s']);
  const ip = (await kubectl(c, ['get', 'svc', 'web', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
  const get = (pod: string) => podExec(c, pod, ['sh', '-c', HTTP_GET(ip)]);
  const ok = await waitFor('allowed pod reaches web', async () => { const r = await get('allowed'); return /hello/.test(r.stdout) ? r.stdout : undefined; }, 60_000, 1000);
  t.match(ok, /hello from web-/, 'a pod with access=true reaches the web pods');
  // the denied pod's network works (cluster DNS at the node answers it) ...
  const ns = await podExec(c, 'denied', ['nslookup', 'web.default.svc.cluster.local']);
  t.equal(ns.code, 0, `the denied pod resolves names: ${ns.stdout}${ns.stderr}`);
  // ... but the policy drops its connection to the web pods
  const denied = await get('denied');
  t.notMatch(denied.stdout, /hello/, `a pod without access=true gets no page from the web pods (nc exit ${denied.code}: ${denied.stderr.trim()})`);
  const dropLog = join(c.dataDir, 'netpol-drops.log');
  const line = await waitFor('a drop log line naming default/denied', async () => {
    const text = (() => { try { return readFileSync(dropLog, 'utf8'); } catch { return ''; } })();
    return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.verdict === 'DROP' && e.srcPod === 'default/denied');
  }, 20_000);
  t.equal(line.dstPod && String(line.dstPod).startsWith('default/web-'), true, `drop log names the web pod as destination: ${JSON.stringify(line)}`);
  // giving it the label lets it through: the block was the policy, not a broken pod
  await kubectl(c, ['label', 'pod', 'denied', 'access=true']);
  t.match(await waitFor('relabelled pod reaches web', async () => { const r = await get('denied'); return /hello/.test(r.stdout) ? r.stdout : undefined; }, 30_000, 1000),
    /hello from web-/, 'after `kubectl label access=true` the same pod gets through');
}

async function checkRollback(t: Test, c: NetnsCluster): Promise<void> {
  const rsOf = async () => (await kubectlJson<{ items: ReplicaSet[] }>(c, ['get', 'rs', '-l', 'app=web'])).items;
  const before = await rsOf();
  t.equal(before.length, 1, 'one ReplicaSet before the change');
  // skiff/pause:3.9 is built from the same busybox-static, so the changed pods still serve
  await kubectl(c, ['set', 'image', 'deployment/web', 'web=skiff/pause:3.9']);
  await rolloutStatus(c, 'web');
  const after = await rsOf();
  t.equal(after.length, 2, 'a new ReplicaSet for the changed image');
  const fresh = after.find((r) => r.metadata!.name !== before[0].metadata!.name)!;
  t.equal(fresh.spec!.template!.spec!.containers[0].image, 'skiff/pause:3.9', 'the new ReplicaSet runs the new image');
  await kubectl(c, ['rollout', 'undo', 'deployment/web']);
  await rolloutStatus(c, 'web');
  const d = await kubectlJson<Deployment>(c, ['get', 'deployment', 'web']);
  t.equal(d.spec!.template!.spec!.containers[0].image, 'skiff/busybox:1.36', 'rollout undo brings the old template back');
  // the old pods terminate with their grace period after the rollout completes. (Upstream scales the
  // original ReplicaSet back up; skiff's deployment controller makes a third one with the old
  // template today — see examples/README.md, known gaps — so this checks templates, not RS names.)
  let state = '';
  const images = await waitFor('the old template ready and the new one drained', async () => {
    const list = await rsOf();
    const images = (await kubectl(c, ['get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[*].spec.containers[0].image}'])).trim();
    state = `${list.map((r) => `${r.metadata!.name} ${r.spec!.template!.spec!.containers[0].image} spec=${r.spec!.replicas} ready=${r.status?.readyReplicas ?? 0}`).join('; ')}; pods: ${images}`;
    const ready = list.filter((r) => r.spec!.template!.spec!.containers[0].image === 'skiff/busybox:1.36').reduce((n, r) => n + (r.status?.readyReplicas ?? 0), 0);
    const freshNow = list.find((r) => r.metadata!.name === fresh.metadata!.name);
    return ready === 2 && freshNow?.spec?.replicas === 0 && !images.includes('pause') ? images : undefined;
  }, 90_000, 1000).catch((err: Error) => { throw new Error(`${err.message}; last state: ${state}`); });
  t.pass(`old-template pods ready again, the changed ReplicaSet at 0 (${state})`);
  t.match(images, /^(skiff\/busybox:1\.36\s*)+$/, `only old-template pods remain (${images})`);
}



t.test('example app on one node: ingress (HTTPS), NodePort, LoadBalancer, DNS, policy, rollback', async (t) => {
  await enableNetnsLogging(t);
  const c = await startNetnsCluster({ extraArgs: ['--lb-pool', '192.168.240.100-192.168.240.110'] });
  t.teardown(() => c.stop());
  await kubectl(c, ['apply', '-f', '-'], WEB_YAML);
  await rolloutStatus(c, 'web');
  await checkServiceAndIngress(t, c);
  await checkTls(t, c);
  await checkLoadBalancer(t, c);
  await checkDnsFromPod(t, c);
  await checkPolicy(t, c);
  await checkRollback(t, c);
});
