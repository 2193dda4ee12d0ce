import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeHost } from '../host/host.js';
import { labDown, netpolBinding, nodeArgv, planLab, usage } from './lab.js';

t.test('planLab: names, addresses, paths', async (t) => {
  const s = planLab({ nodes: 3, dataDir: '/d', runtime: 'netns', name: 'x1' });
  t.same(s.nodes.map((n) => [n.name, n.netns, n.ip, n.port, n.dataDir, n.log]), [
    ['x1-node1', 'skiff-x1-n1', '192.168.250.11', 'p1', '/d/lab/x1-node1', '/d/lab/x1-node1.log'],
    ['x1-node2', 'skiff-x1-n2', '192.168.250.12', 'p2', '/d/lab/x1-node2', '/d/lab/x1-node2.log'],
    ['x1-node3', 'skiff-x1-n3', '192.168.250.13', 'p3', '/d/lab/x1-node3', '/d/lab/x1-node3.log'],
  ]);
  t.equal(s.switchNetns, 'skiff-x1-sw');
  t.equal(s.server, 'https://192.168.250.11:6443');
  t.equal(s.caFile, '/d/lab/x1-node1/pki/ca.crt');
  t.equal(planLab({ nodes: 1, dataDir: '/d', runtime: 'docker' }).nodes[0].name, 'lab-node1', 'default name');
  t.throws(() => planLab({ nodes: 0, dataDir: '/d', runtime: 'docker' }), { code: 'ERR_LAB_NODES' });
  t.throws(() => planLab({ nodes: 2.5, dataDir: '/d', runtime: 'docker' }), { code: 'ERR_LAB_NODES' });
  t.throws(() => planLab({ nodes: 2, dataDir: '/d', runtime: 'docker', name: 'Bad_Name' }), { code: 'ERR_LAB_NAME' });
});

t.test('nodeArgv: node 1 runs up, the others agent against node 1', async (t) => {
  const s = planLab({ nodes: 2, dataDir: '/d', runtime: 'docker', name: 'y' });
  t.same(nodeArgv(s, s.nodes[0], '/bin/skiff.js', undefined, { serverArgs: ['--pod-eviction-timeout', '5'] }), [
    '/bin/skiff.js', 'up', '--data-dir', '/d/lab/y-node1', '--node-ip', '192.168.250.11', '--node-name', 'y-node1', '--runtime', 'docker', '--pod-eviction-timeout', '5',
  ]);
  t.same(nodeArgv(s, s.nodes[1], '/bin/skiff.js', 'TOK', {}), [
    '/bin/skiff.js', 'agent', '--data-dir', '/d/lab/y-node2', '--node-ip', '192.168.250.12', '--node-name', 'y-node2', '--runtime', 'docker',
    '--server', 'https://192.168.250.11:6443', '--token', 'TOK', '--ca-file', '/d/lab/y-node1/pki/ca.crt', '--no-dns', '--no-ingress',
  ]);
});

t.test('netpolBinding binds skiff:netpol to the nodes group', async (t) => {
  t.match(netpolBinding(), { kind: 'ClusterRoleBinding', roleRef: { name: 'skiff:netpol' }, subjects: [{ kind: 'Group', name: 'system:nodes' }] });
});

t.test('usage names every node and how to reach the cluster', async (t) => {
  const s = planLab({ nodes: 2, dataDir: '/d', runtime: 'docker', name: 'z' });
  const u = usage(s);
  t.match(u, /z-node1 +192\.168\.250\.11/);
  t.match(u, /z-node2 +192\.168\.250\.12/);
  t.match(u, /ip netns exec skiff-z-n1 kubectl --kubeconfig \/d\/lab\/z-node1\/kubeconfig/);
  t.match(u, /skiff lab down --data-dir \/d/);
});

t.test('labDown without a recorded lab does nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-lab-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const host = new FakeHost();
  t.equal(await labDown(dir, host), undefined);
  t.same(host.calls, []);
});
