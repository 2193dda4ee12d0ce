import t from 'tap';
import { execa } from 'execa';
import type { Lease } from 'kubernetes-types/coordination/v1.js';
import type { Node } from 'kubernetes-types/core/v1.js';
import { R } from '../../../src/api/registry.js';
import type { Kube } from '../../../src/kubelet/kube.js';
import { cidrContains, parseCidr } from '../../../src/kubelet/network/cidr.js';
import { dockerAvailable, getPod, isReady, podSpec, startTestNode, waitFor } from './harness.js';

const HTTPD = ['sh', '-c', 'mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www'];

t.test('docker runtime: 3 httpd pods get IPs from the node range, answer, and reach each other', async (t) => {
  if (!(await dockerAvailable())) return t.fail('docker with skiff/busybox:1.36 and skiff/pause:3.9 is required (scripts/images.sh)');
  const node = await startTestNode(t);
  const n = await node.client.get<Kube<Node>>(R.nodes, node.nodeName);
  t.equal(n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address, '192.0.2.10', 'node registered with its InternalIP');
  t.ok((n.status?.daemonEndpoints?.kubeletEndpoint?.Port ?? 0) > 0, 'node reports its kubelet port');
  t.equal(n.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True', 'node Ready');
  const lease = await waitFor('node lease', () => node.client.get<Kube<Lease>>(R.leases, node.nodeName, 'kube-node-lease'));
  t.equal(lease.spec?.holderIdentity, node.nodeName, 'lease heartbeat');

  const names = ['web-0', 'web-1', 'web-2'];
  for (const name of names) {
    await node.client.create(R.pods, podSpec(name, node.nodeName, {
      containers: [{ name: 'web', image: 'skiff/busybox:1.36', command: HTTPD, readinessProbe: { httpGet: { path: '/', port: 80 }, periodSeconds: 1 } }],
    }, { app: 'web' }), 'default');
  }
  const pods = await waitFor('3 ready pods', async () => {
    const ps = await Promise.all(names.map((nm) => getPod(node.client, nm)));
    return ps.every((p) => isReady(p) && p.status?.phase === 'Running') ? ps : undefined;
  }, 60_000);
  const range = parseCidr(node.podCidr);
  const ips = pods.map((p) => p.status!.podIP!);
  t.equal(new Set(ips).size, 3, 'distinct pod IPs');
  for (const ip of ips) t.ok(cidrContains(range, ip), `${ip} inside ${node.podCidr}`);
  const cs = pods[0].status!.containerStatuses![0];
  t.equal(cs.ready, true);
  t.match(cs.containerID, /^docker:\/\//);
  t.equal(cs.restartCount, 0);
  t.equal(pods[0].status?.qosClass, 'BestEffort');
  t.equal(pods[0].status?.hostIP, '192.0.2.10');

  for (const [i, ip] of ips.entries()) {
    const r = await node.host.exec('busybox', ['wget', '-q', '-O', '-', `http://${ip}/`]);
    t.equal(r.stdout.trim(), `hello from ${names[i]}`, `node reaches ${names[i]} and its hostname is the pod name`);
  }
  // pod to pod, through the bridge
  const a = pods[0].status!.containerStatuses![0].containerID!.replace('docker://', '');
  const r = await execa('docker', ['exec', a, 'wget', '-q', '-O', '-', `http://${ips[1]}/`], { reject: false });
  t.equal(String(r.stdout).trim(), 'hello from web-1', 'pod reaches another pod');
  const gw = await execa('docker', ['exec', a, 'ping', '-c', '1', '-W', '2', '10.244.7.1'], { reject: false });
  t.equal(gw.exitCode, 0, 'pod reaches the node (bridge address)');
  const resolv = await execa('docker', ['exec', a, 'cat', '/etc/resolv.conf']);
  t.match(String(resolv.stdout), /nameserver 10\.96\.0\.10/);
  t.match(String(resolv.stdout), /search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local/);

  // delete: containers go away, the pod object is removed after graceful termination
  await node.client.patch(R.pods, 'web-2', { metadata: { deletionTimestamp: new Date().toISOString(), deletionGracePeriodSeconds: 1 } }, { namespace: 'default' });
  await waitFor('pod web-2 removed', async () => !(await getPod(node.client, 'web-2').catch(() => undefined)), 30_000);
  await waitFor('containers of web-2 gone', async () => {
    const out = await execa('docker', ['ps', '-aq', '--filter', `label=io.skiff.pod-uid=${pods[2].metadata!.uid}`]);
    return String(out.stdout).trim() === '';
  });
});
