import t from 'tap';
import { affinityToken, BalancerState, cookieReader, endpointId, selectEndpoint, useCanary } from './lb.js';
import type { Backend } from './routes.js';
import { cidrContains, parseCidr } from './cidr.js';
import { parseAnnotations, parseSize } from './annotations.js';

const ep = (n: number) => ({ address: `10.0.0.${n}`, port: 80 });
const backend = (ready: number[], draining: number[] = []): Backend => ({ id: 'b', protocol: 'HTTP', endpoints: ready.map(ep), draining: draining.map(ep) });

t.test('round-robin over ready endpoints', async (t) => {
  const s = new BalancerState();
  const picks = Array.from({ length: 6 }, () => selectEndpoint(backend([1, 2, 3]), s, { now: 0 })!.address);
  t.same(picks, ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1', '10.0.0.2', '10.0.0.3']);
  t.equal(selectEndpoint(backend([]), s, { now: 0 }), undefined, 'no endpoints');
});

t.test('passive health: a failed endpoint is skipped until failTimeout passes', async (t) => {
  const s = new BalancerState(1000);
  s.markFailed(ep(2), 0);
  const picks = new Set(Array.from({ length: 10 }, () => selectEndpoint(backend([1, 2, 3]), s, { now: 500 })!.address));
  t.same([...picks].sort(), ['10.0.0.1', '10.0.0.3']);
  const later = new Set(Array.from({ length: 10 }, () => selectEndpoint(backend([1, 2, 3]), s, { now: 1500 })!.address));
  t.ok(later.has('10.0.0.2'), 'back after the timeout');
  const all = new BalancerState(1000);
  for (const n of [1, 2]) all.markFailed(ep(n), 0);
  t.ok(selectEndpoint(backend([1, 2]), all, { now: 10 }), 'all down: still tries one');
});

t.test('retry excludes endpoints already tried', async (t) => {
  const s = new BalancerState();
  const tried = new Set([endpointId(ep(1)), endpointId(ep(2))]);
  for (let i = 0; i < 5; i++) t.equal(selectEndpoint(backend([1, 2, 3]), s, { now: 0, exclude: tried })!.address, '10.0.0.3');
  tried.add(endpointId(ep(3)));
  t.equal(selectEndpoint(backend([1, 2, 3]), s, { now: 0, exclude: tried }), undefined);
});

t.test('draining endpoints serve only when nothing is ready', async (t) => {
  const s = new BalancerState();
  for (let i = 0; i < 4; i++) t.equal(selectEndpoint(backend([1], [2]), s, { now: 0 })!.address, '10.0.0.1');
  t.equal(selectEndpoint(backend([], [2]), s, { now: 0 })!.address, '10.0.0.2');
});

t.test('cookie affinity sticks while the endpoint exists and is healthy', async (t) => {
  const s = new BalancerState();
  const tok = affinityToken(ep(2));
  for (let i = 0; i < 5; i++) t.equal(selectEndpoint(backend([1, 2, 3]), s, { now: 0, affinity: tok })!.address, '10.0.0.2');
  t.not(selectEndpoint(backend([1, 3]), s, { now: 0, affinity: tok })!.address, '10.0.0.2', 'gone endpoint: rebalanced');
  s.markFailed(ep(2), 0);
  t.not(selectEndpoint(backend([1, 2, 3]), s, { now: 1, affinity: tok })!.address, '10.0.0.2', 'down endpoint: rebalanced');
});

t.test('canary order: header, cookie, weight', async (t) => {
  const none = () => undefined;
  const hdr = (v: string) => (n: string) => (n === 'X-Canary' ? v : undefined);
  const c = { byHeader: 'X-Canary', byCookie: 'canary', weight: 0, weightTotal: 100 };
  t.equal(useCanary(c, hdr('always'), none, Math.random), true);
  t.equal(useCanary(c, hdr('never'), () => 'always', Math.random), false, 'header never beats cookie');
  t.equal(useCanary(c, hdr('other'), () => 'always', Math.random), true, 'unknown header value: next rule');
  t.equal(useCanary({ ...c, byHeaderValue: 'yes' }, hdr('yes'), none, Math.random), true);
  t.equal(useCanary({ ...c, byHeaderValue: 'yes' }, hdr('always'), none, Math.random), false);
  t.equal(useCanary({ ...c, byHeaderPattern: '^ca' }, hdr('canary'), none, Math.random, /^ca/), true);
  t.equal(useCanary({ weight: 100, weightTotal: 100 }, none, none, () => 0.999), true);
  t.equal(useCanary({ weight: 0, weightTotal: 100 }, none, none, () => 0), false);
  t.equal(useCanary({ weight: 30, weightTotal: 100 }, none, none, () => 0.29), true);
  t.equal(useCanary({ weight: 30, weightTotal: 100 }, none, none, () => 0.3), false);
  t.equal(useCanary({ weight: 100, weightTotal: 200 }, none, none, () => 0.6), false);
  t.equal(cookieReader('a=1; canary=always; b=%E2%82%AC')('b'), '€');
});

t.test('cidr and annotation parsing', async (t) => {
  t.ok(cidrContains(parseCidr('10.0.0.0/24')!, '10.0.0.77'));
  t.notOk(cidrContains(parseCidr('10.0.0.0/24')!, '10.0.1.1'));
  t.ok(cidrContains(parseCidr('172.10.0.1')!, '::ffff:172.10.0.1'));
  t.ok(cidrContains(parseCidr('fd00::/8')!, 'fd12::1'));
  t.notOk(cidrContains(parseCidr('fd00::/8')!, '10.0.0.1'));
  t.equal(parseCidr('10.0.0.0/33'), undefined);
  t.equal(parseSize('8m'), 8 * 1024 * 1024);
  t.equal(parseSize('0'), 0);
  const { config, problems } = parseAnnotations({
    'nginx.ingress.kubernetes.io/whitelist-source-range': '10.0.0.0/24, bogus',
    'nginx.ingress.kubernetes.io/proxy-read-timeout': '7',
    'ingress.skiff.io/enable-cors': 'true',
    'nginx.ingress.kubernetes.io/cors-max-age': '200',
    'nginx.ingress.kubernetes.io/affinity': 'cookie',
  });
  t.same(config.allowSourceRange, [], 'invalid list fails closed');
  t.equal(config.readTimeoutMs, 7000);
  t.equal(config.cors?.maxAge, 200);
  t.equal(config.affinity?.cookieName, 'INGRESSCOOKIE');
  t.equal(problems.length, 1);
  t.match(problems[0].message, /bogus/);
});
