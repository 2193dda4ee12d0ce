import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocate, release, FileIpam } from './ipam.js';
import { parseCidr, gatewayOf, podAddressRange, intToIp, cidrContains } from './cidr.js';
import { podLinkNames, renderBridgeSetup, renderHostVeth, renderPodSide, renderNodeRoutes, BridgeNetwork, ROUTE_PROTO } from './bridge.js';
import { FakeHost } from '../../host/host.js';

t.test('cidr helpers', async (t) => {
  const c = parseCidr('10.244.3.17/24');
  t.equal(intToIp(c.base), '10.244.3.0');
  t.equal(gatewayOf(c), '10.244.3.1');
  const r = podAddressRange(c);
  t.same([intToIp(r.first), intToIp(r.last)], ['10.244.3.2', '10.244.3.254']);
  t.ok(cidrContains(c, '10.244.3.200'));
  t.notOk(cidrContains(c, '10.244.4.1'));
  t.throws(() => parseCidr('10.0.0.0/31'), { code: 'ERR_BAD_CIDR' });
});

t.test('IPAM: sticky per pod, skips used, does not reuse a freed address at once, exhausts', async (t) => {
  let s = { cidr: '10.1.0.0/29', allocations: {} as Record<string, string> };
  const got: string[] = [];
  for (const uid of ['a', 'b', 'c']) {
    const r = allocate(s, uid);
    s = r.state;
    got.push(r.ip);
  }
  t.same(got, ['10.1.0.2', '10.1.0.3', '10.1.0.4']);
  t.equal(allocate(s, 'b').ip, '10.1.0.3', 'same pod, same address');
  s = release(s, 'a');
  const d = allocate(s, 'd');
  t.equal(d.ip, '10.1.0.5', 'next after the last handed out, not the freed one');
  s = d.state;
  for (const uid of ['e', 'f']) s = allocate(s, uid).state; // .6 and wraps to .2
  t.equal(s.allocations['10.1.0.2'], 'f', 'wraps around to freed addresses');
  t.throws(() => allocate(s, 'g'), { code: 'ERR_IPAM_EXHAUSTED' });
});

t.test('FileIpam survives a restart and serializes concurrent calls', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-ipam-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const a = new FileIpam(dir, '10.2.0.0/24');
  const ips = await Promise.all(Array.from({ length: 20 }, (_, i) => a.allocate(`pod${i}`)));
  t.equal(new Set(ips).size, 20, 'no duplicates under concurrency');
  const b = new FileIpam(dir, '10.2.0.0/24');
  t.same(Object.keys((await b.load()).allocations).sort(), [...ips].sort(), 'every concurrent allocation is on disk (writes coalesce)');
  t.equal(await b.allocate('pod3'), ips[3], 'a new instance reads the state');
  const fresh = await b.allocate('new');
  t.notOk(ips.includes(fresh), 'never hands out a live address');
  await b.retain(new Set(['pod1', 'new']));
  t.same(Object.values((await b.load()).allocations).sort(), ['new', 'pod1']);
});

t.test('bridge renders', async (t) => {
  const link = podLinkNames('0b7c9f9e-1111-2222-3333-444455556666');
  t.ok(link.hostIf.length <= 15);
  t.equal(podLinkNames('0b7c9f9e-1111-2222-3333-444455556666').hostIf, link.hostIf, 'stable');
  t.equal(renderBridgeSetup('skiff0', '10.244.1.0/24'), 'link add skiff0 type bridge\naddr replace 10.244.1.1/24 dev skiff0\nlink set skiff0 up\n');
  t.equal(renderHostVeth('skiff0', link, { pid: 42 }),
    `link add ${link.hostIf} type veth peer name eth0 netns 42\nlink set ${link.hostIf} master skiff0\nlink set ${link.hostIf} type bridge_slave hairpin on\nlink set ${link.hostIf} up\n`, 'the peer is born in the pod netns as eth0');
  t.match(renderHostVeth('skiff0', link, { name: 'podns' }), /peer name eth0 netns podns\n/);
  t.equal(renderHostVeth('skiff0', link, { name: 'podns' }, true), `netns add podns\n${renderHostVeth('skiff0', link, { name: 'podns' })}`, 'the netns is made first, in the same batch');
  t.equal(renderHostVeth('skiff0', link, { pid: 42 }, true), renderHostVeth('skiff0', link, { pid: 42 }), 'a pid netns exists already');
  t.equal(renderPodSide('10.244.1.7', '10.244.1.0/24'),
    'link set lo up\naddr add 10.244.1.7/24 dev eth0\nlink set eth0 up\nroute add default via 10.244.1.1 dev eth0\n');
  t.same(renderNodeRoutes([{ cidr: '10.244.2.0/24', via: '192.0.2.2' }, { cidr: '10.244.1.0/24', via: '192.0.2.1' }]), ['10.244.1.0/24 via 192.0.2.1', '10.244.2.0/24 via 192.0.2.2']);
});

t.test('route sync only adds/removes our own (proto) routes', async (t) => {
  const host = new FakeHost((cmd, args) => (cmd === 'ip' && args.includes('show') ? { stdout: '10.244.9.0/24 via 192.0.2.9 dev eth0 proto 83\n10.244.2.0/24 via 192.0.2.2 dev eth0 proto 83\n' } : undefined));
  const b = new BridgeNetwork(host, 'skiff0', '10.244.1.0/24');
  await b.syncRoutes([{ cidr: '10.244.2.0/24', via: '192.0.2.2' }, { cidr: '10.244.3.0/24', via: '192.0.2.3' }]);
  const batch = host.calls.find((c) => c.args.includes('-batch'));
  t.equal(batch?.input, `route del 10.244.9.0/24 proto ${ROUTE_PROTO}\nroute replace 10.244.3.0/24 via 192.0.2.3 proto ${ROUTE_PROTO}\n`);
});

t.test('attach: host side then pod side; a stale veth in the way is deleted and the host batch retried', async (t) => {
  const hostIf = podLinkNames('uid-1').hostIf;
  const links = new Set([hostIf]); // left by an earlier sandbox of the pod
  const host = new FakeHost((cmd, args, input) => {
    if (cmd === 'ip' && args[0] === 'link' && args[1] === 'del') { links.delete(args[2]); return undefined; }
    if (cmd === 'ip' && args[0] === '-batch' && input?.startsWith(`link add ${hostIf}`)) {
      if (links.has(hostIf)) return { exitCode: 2, stderr: 'RTNETLINK answers: File exists' };
      links.add(hostIf);
    }
    return undefined;
  });
  const b = new BridgeNetwork(host, 'skiff0', '10.244.1.0/24');
  await b.attachPod('uid-1', { name: 'skp-1' }, '10.244.1.9');
  const podSide = host.calls.find((c) => c.args.join(' ') === '-n skp-1 -batch -');
  t.equal(podSide?.input, renderPodSide('10.244.1.9', '10.244.1.0/24'), 'pod side entered with ip -n (a named netns)');
  t.equal(host.calls.filter((c) => c.args[0] === '-batch').length, 2, 'host batch retried once');
  await b.attachPod('uid-2', { pid: 77 }, '10.244.1.10');
  t.same(host.calls.at(-1)?.cmd, 'nsenter', 'a pid netns is entered with nsenter');
  t.same(host.calls.at(-1)?.args, ['-t', '77', '-n', 'ip', '-batch', '-']);
});

t.test('attach with the address still on its way: host side first, pod side once it settles; a failed IPAM undoes the veth', async (t) => {
  const host = new FakeHost();
  const b = new BridgeNetwork(host, 'skiff0', '10.244.1.0/24');
  let settle: (ip: string) => void = () => undefined;
  const ip = new Promise<string>((r) => { settle = r; });
  const done = b.attachPod('uid-3', { name: 'skp-3' }, ip);
  await new Promise((r) => setTimeout(r, 20));
  t.same(host.calls.map((c) => c.args.join(' ')), ['-batch -'], 'only the host side ran while the address was pending');
  settle('10.244.1.11');
  await done;
  t.equal(host.calls.at(-1)?.input, renderPodSide('10.244.1.11', '10.244.1.0/24'), 'the pod side got the settled address');
  const failed = Promise.reject(Object.assign(new Error('disk full'), { code: 'ERR_IPAM_STATE' }));
  failed.catch(() => undefined);
  await t.rejects(b.attachPod('uid-4', { name: 'skp-4' }, failed), { code: 'ERR_IPAM_STATE' });
  t.same(host.calls.at(-1)?.args, ['link', 'del', podLinkNames('uid-4').hostIf], 'the host veth is removed again');
});

t.test('attach making the netns: one host batch makes netns + veth; retried after a stale veth without making the netns twice', async (t) => {
  const hostIf = podLinkNames('uid-5').hostIf;
  const links = new Set([hostIf]);
  const netns = new Set<string>();
  const host = new FakeHost((cmd, args, input) => {
    if (cmd === 'ip' && args[0] === 'netns' && args[1] === 'add') {
      if (netns.has(args[2])) return { exitCode: 1, stderr: 'File exists' };
      netns.add(args[2]);
      return undefined;
    }
    if (cmd === 'ip' && args[0] === 'link' && args[1] === 'del') { links.delete(args[2]); return undefined; }
    if (cmd === 'ip' && args[0] === '-batch') {
      const lines = (input ?? '').split('\n');
      if (lines[0] === 'netns add skp-5') {
        if (netns.has('skp-5')) return { exitCode: 1, stderr: 'File exists' };
        netns.add('skp-5');
      }
      if (links.has(hostIf)) return { exitCode: 2, stderr: 'RTNETLINK answers: File exists' };
      links.add(hostIf);
    }
    return undefined;
  });
  const b = new BridgeNetwork(host, 'skiff0', '10.244.1.0/24');
  await b.attachPod('uid-5', { name: 'skp-5' }, '10.244.1.12', { makeNetns: true });
  const batches = host.calls.filter((c) => c.args[0] === '-batch');
  t.match(batches[0].input, /^netns add skp-5\nlink add /, 'the first host batch makes the netns');
  t.match(batches[1].input, /^link add /, 'the retry does not make it again');
  t.ok(netns.has('skp-5') && links.has(hostIf));
  t.equal(host.calls.at(-1)?.args.join(' '), '-n skp-5 -batch -', 'then the pod side');
});
