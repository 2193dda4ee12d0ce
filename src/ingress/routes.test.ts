import t from 'tap';
import { renderRoutes } from './routes.js';
import { compileTable, matchRequest, rewriteUrl } from './match.js';
import type { IngressInfo, IngressSnapshot, PathType } from './model.js';

type P = [path: string, type: PathType, svc: string];
let seq = 0;
function ing(name: string, rules: { host?: string; paths: P[] }[], extra: Partial<IngressInfo> = {}): IngressInfo {
  seq++;
  return {
    key: `default/${name}`, namespace: 'default', name, uid: name, created: `2024-01-01T00:00:${String(seq).padStart(2, '0')}Z`,
    annotations: {}, className: 'skiff', rules: rules.map((r) => ({ host: r.host ?? '', paths: r.paths.map(([path, pathType, service]) => ({ path, pathType, backend: { service, port: { number: 80 } } })) })),
    tls: [], statusAddresses: [], ...extra,
  };
}
function snap(ingresses: IngressInfo[], services = ['a', 'b', 'c', 'd', 'e']): IngressSnapshot {
  return {
    ingresses,
    classes: [{ name: 'skiff', controller: 'skiff.io/ingress', isDefault: false }],
    services: services.map((s) => ({ key: `default/${s}`, ports: [{ name: 'http', port: 80, targetPort: 8080 }] })),
    slices: services.map((s, i) => ({ serviceKey: `default/${s}`, ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: [`10.0.0.${i + 1}`], ready: true, serving: true, terminating: false }] })),
    secrets: [],
  };
}
function route(s: IngressSnapshot, host: string | undefined, url: string): string {
  const m = matchRequest(compileTable(renderRoutes(s, 'skiff.io/ingress').table), host, url);
  return m ? m.route.target.service.replace('default/', '') : '404';
}

t.test('Kubernetes path-type table (PT1-PT18)', async (t) => {
  const cases: [string, P[], string, string][] = [
    ['PT1', [['/', 'Prefix', 'a']], '/anything/at/all', 'a'],
    ['PT2', [['/foo', 'Exact', 'a']], '/foo', 'a'],
    ['PT3', [['/foo', 'Exact', 'a']], '/bar', '404'],
    ['PT4', [['/foo', 'Exact', 'a']], '/foo/', '404'],
    ['PT5', [['/foo/', 'Exact', 'a']], '/foo', '404'],
    ['PT6a', [['/foo', 'Prefix', 'a']], '/foo', 'a'],
    ['PT6b', [['/foo', 'Prefix', 'a']], '/foo/', 'a'],
    ['PT7a', [['/foo/', 'Prefix', 'a']], '/foo', 'a'],
    ['PT7b', [['/foo/', 'Prefix', 'a']], '/foo/', 'a'],
    ['PT8', [['/aaa/bb', 'Prefix', 'a']], '/aaa/bbb', '404'],
    ['PT9', [['/aaa/bbb', 'Prefix', 'a']], '/aaa/bbb', 'a'],
    ['PT10', [['/aaa/bbb/', 'Prefix', 'a']], '/aaa/bbb', 'a'],
    ['PT11', [['/aaa/bbb', 'Prefix', 'a']], '/aaa/bbb/', 'a'],
    ['PT12', [['/aaa/bbb', 'Prefix', 'a']], '/aaa/bbb/ccc', 'a'],
    ['PT13', [['/aaa/bbb', 'Prefix', 'a']], '/aaa/bbbxyz', '404'],
    ['PT14', [['/', 'Prefix', 'a'], ['/aaa', 'Prefix', 'b']], '/aaa/ccc', 'b'],
    ['PT15', [['/', 'Prefix', 'a'], ['/aaa', 'Prefix', 'b'], ['/aaa/bbb', 'Prefix', 'c']], '/aaa/bbb', 'c'],
    ['PT16', [['/', 'Prefix', 'a'], ['/aaa', 'Prefix', 'b'], ['/aaa/bbb', 'Prefix', 'c']], '/ccc', 'a'],
    ['PT17', [['/aaa', 'Prefix', 'a']], '/ccc', '404'],
    ['PT18', [['/foo', 'Prefix', 'a'], ['/foo', 'Exact', 'b']], '/foo', 'b'],
    ['PX1', [['/foo', 'Prefix', 'a'], ['/foo', 'Exact', 'b']], '/foo/', 'a'],
    ['PX2', [['/foo', 'Prefix', 'a']], '/FOO', '404'],
    ['PX3', [['/foo', 'Prefix', 'a']], '/foo?x=1', 'a'],
    ['PX4', [['/foo', 'Prefix', 'a']], '/foobar', '404'],
    ['PX5a', [['/', 'Prefix', 'a'], ['/', 'Exact', 'b']], '/', 'b'],
    ['PX5b', [['/', 'Prefix', 'a'], ['/', 'Exact', 'b']], '/x', 'a'],
    ['PX6a', [['/foo/bar', 'Prefix', 'a'], ['/foo', 'Prefix', 'b']], '/foo/bar/baz', 'a'],
    ['PX6b', [['/foo/bar', 'Prefix', 'a'], ['/foo', 'Prefix', 'b']], '/foo/barbaz', 'b'],
    ['PX7', [['/foo', 'Prefix', 'b'], ['/foo/', 'Prefix', 'a']], '/foo/x', 'a'],
    ['IS-as-prefix', [['/foo', 'ImplementationSpecific', 'a']], '/foo/x', 'a'],
    ['IS-not-string-prefix', [['/foo', 'ImplementationSpecific', 'a']], '/foox', '404'],
  ];
  for (const [name, paths, url, want] of cases) {
    t.equal(route(snap([ing('x', [{ host: 'h.example', paths }])]), 'h.example', url), want, `${name}: ${url}`);
    // list order must not matter
    t.equal(route(snap([ing('x', [{ host: 'h.example', paths: [...paths].reverse() }])]), 'h.example', url), want, `${name} reversed`);
  }
});

t.test('conformance path_rules feature', async (t) => {
  const s = snap([
    ing('path-rules', [
      { host: 'exact-path-rules', paths: [['/foo', 'Exact', 'a']] },
      { host: 'prefix-path-rules', paths: [['/foo', 'Prefix', 'b'], ['/aaa/bbb', 'Prefix', 'c'], ['/aaa', 'Prefix', 'd']] },
      { host: 'mixed-path-rules', paths: [['/foo', 'Prefix', 'b'], ['/foo', 'Exact', 'a']] },
      { host: 'trailing-slash-path-rules', paths: [['/aaa/bbb/', 'Prefix', 'e'], ['/foo/', 'Exact', 'a']] },
    ]),
  ]);
  const rows: [string, string, string][] = [
    ['exact-path-rules', '/foo', 'a'], ['exact-path-rules', '/foo/', '404'], ['exact-path-rules', '/FOO', '404'], ['exact-path-rules', '/bar', '404'],
    ['prefix-path-rules', '/foo', 'b'], ['prefix-path-rules', '/foo/', 'b'], ['prefix-path-rules', '/FOO', '404'], ['prefix-path-rules', '/aaa/bbb', 'c'],
    ['prefix-path-rules', '/aaa/bbb/ccc', 'c'], ['prefix-path-rules', '/aaa/ccc', 'd'], ['prefix-path-rules', '/aaaccc', '404'],
    ['mixed-path-rules', '/foo', 'a'], ['trailing-slash-path-rules', '/aaa/bbb', 'e'], ['trailing-slash-path-rules', '/aaa/bbb/', 'e'],
    ['trailing-slash-path-rules', '/foo', '404'],
  ];
  for (const [host, url, want] of rows) t.equal(route(s, host, url), want, `${host}${url}`);
});

t.test('hosts: exact beats wildcard beats host-less, one-label wildcards, ports and case', async (t) => {
  const s = snap([
    ing('hosts', [
      { host: '*.foo.com', paths: [['/', 'Prefix', 'a']] },
      { host: 'foo.bar.com', paths: [['/', 'Prefix', 'b']] },
      { host: 'x.foo.com', paths: [['/', 'Prefix', 'c']] },
    ]),
  ]);
  t.equal(route(s, 'bar.foo.com', '/'), 'a', 'HW1 wildcard');
  t.equal(route(s, 'baz.bar.foo.com', '/'), '404', 'HW2 only one label');
  t.equal(route(s, 'foo.com', '/'), '404', 'HW3 needs a label');
  t.equal(route(s, 'x.foo.com', '/'), 'c', 'exact beats wildcard');
  t.equal(route(s, 'FOO.bar.com:8080', '/'), 'b', 'case-insensitive, port ignored');
  t.equal(route(s, 'subdomain.bar.com', '/'), '404', 'HR3');
  const withHostless = snap([ing('a', [{ host: 'first.bar.com', paths: [['/', 'Prefix', 'a']] }, { paths: [['/', 'Prefix', 'c']] }])]);
  t.equal(route(withHostless, 'first.bar.com', '/'), 'a');
  t.equal(route(withHostless, 'third.example', '/'), 'c', 'X2 host-less rule');
  t.equal(route(withHostless, undefined, '/'), 'c', 'no Host header');
  t.equal(route(withHostless, '10.1.2.3', '/'), 'c', 'IP host goes to host-less rules');
});

t.test('precedence across Ingresses: merge per host, oldest wins, defaultBackend scope', async (t) => {
  const old = ing('old', [{ host: 'h', paths: [['/x', 'Prefix', 'a']] }]);
  const young = ing('young', [{ host: 'h', paths: [['/x', 'Prefix', 'b'], ['/y', 'Prefix', 'c']] }]);
  t.equal(route(snap([young, old]), 'h', '/x'), 'a', 'X10 oldest wins on the same path');
  t.equal(route(snap([young, old]), 'h', '/y/z'), 'c', 'X9 paths merged');
  const longer = ing('longer', [{ host: 'h', paths: [['/x/deep', 'Prefix', 'd']] }]);
  t.equal(route(snap([old, longer]), 'h', '/x/deep/1'), 'd', 'longest match across Ingresses');
  const withDefault = ing('withdef', [{ host: 'h', paths: [['/x', 'Prefix', 'a']] }], { defaultBackend: { service: 'e', port: { number: 80 } } });
  t.equal(route(snap([withDefault]), 'h', '/nope'), 'e', 'defaultBackend serves unmatched paths of its hosts');
  t.equal(route(snap([withDefault]), 'other', '/'), '404', 'but is not the catch-all');
  const catchAll = ing('catch', [], { defaultBackend: { service: 'b', port: { number: 80 } } });
  t.equal(route(snap([catchAll]), 'my-host', '/sub-path'), 'b', 'DB rule-less Ingress takes everything');
  t.equal(route(snap([catchAll, old]), 'h', '/nomatch'), '404', 'known host without match is 404');
  t.equal(route(snap([catchAll, old]), 'unknown', '/'), 'b', 'unknown host goes to the catch-all');
});

t.test('class filter', async (t) => {
  const base = snap([]);
  const mk = (extra: Partial<IngressInfo>) => ing('c', [{ host: 'h', paths: [['/', 'Prefix', 'a']] }], extra);
  const claimed = (i: IngressInfo, classes = base.classes) => renderRoutes({ ...base, ingresses: [i], classes }, 'skiff.io/ingress').claimed.length === 1;
  t.ok(claimed(mk({})), 'ingressClassName of ours');
  t.notOk(claimed(mk({ className: 'some-invalid-class-name' })), 'IC1 unknown class ignored');
  t.notOk(claimed(mk({ className: 'other' }), [...base.classes, { name: 'other', controller: 'x.io/other', isDefault: true }]), 'foreign class');
  t.ok(claimed(mk({ className: undefined, legacyClass: 'skiff' })), 'X8 legacy annotation');
  t.notOk(claimed(mk({ className: undefined })), 'no class, no default');
  t.ok(claimed(mk({ className: undefined }), [{ name: 'skiff', controller: 'skiff.io/ingress', isDefault: true }]), 'no class, ours is default');
  t.equal(route({ ...base, ingresses: [mk({ className: 'nope' })] }, 'h', '/'), '404');
});

t.test('backends: port by name or number, ready endpoints only, missing service', async (t) => {
  const s = snap([ing('p', [{ host: 'h', paths: [['/', 'Prefix', 'a'], ['/missing', 'Prefix', 'zzz']] }])]);
  s.ingresses[0].rules[0].paths[0].backend = { service: 'a', port: { name: 'http' } };
  s.slices[0].endpoints.push({ addresses: ['10.0.0.99'], ready: false, serving: false, terminating: false }, { addresses: ['10.0.0.98'], ready: false, serving: true, terminating: true });
  const { table } = renderRoutes(s, 'skiff.io/ingress');
  const be = table.backends[table.hosts.h.paths.find((p) => p.path === '/')!.target.backendId!];
  t.same(be.endpoints, [{ address: '10.0.0.1', port: 8080 }]);
  t.same(be.draining, [{ address: '10.0.0.98', port: 8080 }]);
  t.equal(table.hosts.h.paths.find((p) => p.path === '/missing')!.target.backendId, undefined, 'missing service has no backend (503)');
  t.equal(JSON.stringify(renderRoutes(s, 'skiff.io/ingress').table), JSON.stringify(table), 'deterministic');
});

t.test('regex mode and rewrite-target', async (t) => {
  const i = ing('rw', [{ host: 'rewrite.bar.com', paths: [['/something(/|$)(.*)', 'ImplementationSpecific', 'a']] }], {
    annotations: { 'nginx.ingress.kubernetes.io/rewrite-target': '/$2', 'nginx.ingress.kubernetes.io/use-regex': 'true' },
  });
  const tbl = compileTable(renderRoutes(snap([i]), 'skiff.io/ingress').table);
  for (const [inUrl, out] of [['/something', '/'], ['/something/', '/'], ['/something/new', '/new'], ['/something/new?q=1', '/new?q=1']]) {
    const m = matchRequest(tbl, 'rewrite.bar.com', inUrl);
    t.ok(m, inUrl);
    t.equal(rewriteUrl(m!.route.config.rewriteTarget!, m!.captures, inUrl), out, `${inUrl} -> ${out}`);
  }
  t.equal(matchRequest(tbl, 'rewrite.bar.com', '/other'), undefined);
  const bad = ing('bad', [{ host: 'r', paths: [['/(', 'Prefix', 'a']] }], { annotations: { 'nginx.ingress.kubernetes.io/use-regex': 'true' } });
  const r = renderRoutes(snap([bad]), 'skiff.io/ingress');
  t.ok(r.problems.some((p) => p.reason === 'InvalidPath'), 'invalid regex reported');
});

t.test('canary attaches to the main route; alone it is not routed', async (t) => {
  const main = ing('main', [{ host: 'h', paths: [['/', 'Prefix', 'a']] }]);
  const canary = ing('canary', [{ host: 'h', paths: [['/', 'Prefix', 'b']] }], { annotations: { 'nginx.ingress.kubernetes.io/canary': 'true', 'nginx.ingress.kubernetes.io/canary-by-header': 'X-Canary' } });
  const { table } = renderRoutes(snap([main, canary]), 'skiff.io/ingress');
  t.equal(table.hosts.h.paths.length, 1);
  t.equal(table.hosts.h.paths[0].canary?.target.service, 'default/b');
  const alone = renderRoutes(snap([canary]), 'skiff.io/ingress');
  t.equal(route(snap([canary]), 'h', '/'), '404');
  t.ok(alone.problems.some((p) => p.reason === 'CanaryWithoutMain'));
});

t.test('annotation problems and TLS table', async (t) => {
  const i = ing('a', [{ host: 'a.com', paths: [['/', 'Prefix', 'a']] }], {
    annotations: { 'nginx.ingress.kubernetes.io/proxy-body-size': 'lots', 'ingress.skiff.io/nonsense': 'x', 'nginx.ingress.kubernetes.io/server-snippet': 'x', 'nginx.ingress.kubernetes.io/ssl-redirect': 'false' },
    tls: [{ hosts: ['a.com', '*.w.com'], secretName: 'good' }, { hosts: ['b.com'], secretName: 'missing' }],
  });
  const s = snap([i]);
  s.secrets = [{ key: 'default/good', cert: 'C', privateKey: 'K' }];
  const r = renderRoutes(s, 'skiff.io/ingress');
  t.same(r.problems.map((p) => p.reason).sort(), ['IgnoredAnnotation', 'InvalidAnnotation', 'TLSSecretMissing', 'UnknownAnnotation']);
  t.same(r.table.sni, { 'a.com': 'default/good', '*.w.com': 'default/good' });
  t.same(r.table.tlsHosts, ['*.w.com', 'a.com', 'b.com']);
  t.equal(r.table.hosts['a.com'].paths[0].config.sslRedirect, false);
  t.equal(r.table.hosts['a.com'].paths[0].config.bodySizeLimit, 1024 * 1024, 'invalid value keeps the default');
});
