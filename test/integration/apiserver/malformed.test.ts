import t from 'tap';
import { SqliteStore } from '../../../src/store/sqlite.js';
import { build } from '../../../src/apiserver/app.js';

type Case = { name: string; method: 'POST' | 'PUT' | 'PATCH' | 'GET' | 'DELETE'; url: string; body?: string | Buffer; ct?: string; code: number; reason: string; field?: RegExp; message?: RegExp };

const dep = (over: Record<string, unknown>) =>
  JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'd1' },
    spec: { replicas: 1, selector: { matchLabels: { app: 'a' } }, template: { metadata: { labels: { app: 'a' } }, spec: { containers: [{ name: 'c', image: 'i:1' }] } } },
    ...over,
  });

const cases: Case[] = [
  { name: 'bad name', method: 'POST', url: '/api/v1/namespaces/default/configmaps', body: '{"metadata":{"name":"Bad_Name"}}', code: 422, reason: 'Invalid', field: /^metadata\.name$/ },
  { name: 'missing name', method: 'POST', url: '/api/v1/namespaces/default/configmaps', body: '{"metadata":{}}', code: 422, reason: 'Invalid', field: /^metadata\.name$/ },
  { name: 'bad label value', method: 'POST', url: '/api/v1/namespaces/default/configmaps', body: '{"metadata":{"name":"x","labels":{"a":"-bad-"}}}', code: 422, reason: 'Invalid', field: /^metadata\.labels$/ },
  { name: 'bad label key', method: 'POST', url: '/api/v1/namespaces/default/configmaps', body: '{"metadata":{"name":"x","labels":{"a/b/c":"v"}}}', code: 422, reason: 'Invalid', field: /^metadata\.labels$/ },
  { name: 'pod without containers', method: 'POST', url: '/api/v1/namespaces/default/pods', body: '{"metadata":{"name":"p"},"spec":{}}', code: 422, reason: 'Invalid', field: /^spec\.containers$/ },
  { name: 'container without image', method: 'POST', url: '/api/v1/namespaces/default/pods', body: '{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}', code: 422, reason: 'Invalid', field: /^spec\.containers\[0\]\.image$/ },
  { name: 'service port out of range', method: 'POST', url: '/api/v1/namespaces/default/services', body: '{"metadata":{"name":"s"},"spec":{"ports":[{"port":0}]}}', code: 422, reason: 'Invalid', field: /^spec\.ports\[0\]\.port$/ },
  { name: 'service port wrong type', method: 'POST', url: '/api/v1/namespaces/default/services', body: '{"metadata":{"name":"s"},"spec":{"ports":[{"port":"eighty"}]}}', code: 400, reason: 'BadRequest', field: /^spec\.ports\[0\]\.port$/, message: /cannot unmarshal string into Go struct field ServicePort\.spec\.ports\.port of type int32/ },
  { name: 'bad service type', method: 'POST', url: '/api/v1/namespaces/default/services', body: '{"metadata":{"name":"s"},"spec":{"type":"Magic","ports":[{"port":80}]}}', code: 422, reason: 'Invalid', field: /^spec\.type$/ },
  { name: 'deployment selector mismatch', method: 'POST', url: '/apis/apps/v1/namespaces/default/deployments', body: dep({ spec: { selector: { matchLabels: { app: 'x' } }, template: { metadata: { labels: { app: 'a' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } } }), code: 422, reason: 'Invalid', field: /^spec\.template\.metadata\.labels$/ },
  { name: 'deployment negative replicas', method: 'POST', url: '/apis/apps/v1/namespaces/default/deployments', body: dep({ spec: { replicas: -1, selector: { matchLabels: { app: 'a' } }, template: { metadata: { labels: { app: 'a' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } } }), code: 422, reason: 'Invalid', field: /^spec\.replicas$/ },
  { name: 'deployment replicas wrong type', method: 'POST', url: '/apis/apps/v1/namespaces/default/deployments', body: dep({ spec: { replicas: 'three', selector: { matchLabels: { app: 'a' } }, template: { metadata: { labels: { app: 'a' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } } }), code: 400, reason: 'BadRequest', field: /^spec\.replicas$/, message: /cannot unmarshal string into Go struct field DeploymentSpec\.spec\.replicas of type int32/ },
  { name: 'deployment without selector', method: 'POST', url: '/apis/apps/v1/namespaces/default/deployments', body: dep({ spec: { template: { spec: { containers: [{ name: 'c', image: 'i' }] } } } }), code: 422, reason: 'Invalid', field: /^spec\.selector$/ },
  { name: 'job with restartPolicy Always', method: 'POST', url: '/apis/batch/v1/namespaces/default/jobs', body: '{"metadata":{"name":"j"},"spec":{"template":{"spec":{"restartPolicy":"Always","containers":[{"name":"c","image":"i"}]}}}}', code: 422, reason: 'Invalid', field: /restartPolicy$/ },
  { name: 'broken JSON', method: 'POST', url: '/api/v1/namespaces/default/configmaps', body: '{"metadata": {"name": "x"', code: 400, reason: 'BadRequest', message: /JSON/ },
  { name: 'broken YAML apply', method: 'PATCH', url: '/api/v1/namespaces/default/configmaps/x?fieldManager=t', body: 'a: [b\n  c: :', ct: 'application/apply-patch+yaml', code: 400, reason: 'BadRequest', message: /YAML/ },
  { name: 'apply without fieldManager', method: 'PATCH', url: '/api/v1/namespaces/default/configmaps/x', body: '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}', ct: 'application/apply-patch+yaml', code: 400, reason: 'BadRequest', message: /fieldManager/ },
  { name: '5 MiB body', method: 'POST', url: '/api/v1/namespaces/default/configmaps', body: JSON.stringify({ metadata: { name: 'big' }, data: { a: 'x'.repeat(5 * 1024 * 1024) } }), code: 413, reason: 'RequestEntityTooLarge' },
  { name: 'unknown resource', method: 'GET', url: '/api/v1/namespaces/default/widgets', code: 404, reason: 'NotFound' },
  { name: 'unknown group', method: 'POST', url: '/apis/example.com/v1/namespaces/default/widgets', body: '{}', code: 404, reason: 'NotFound' },
  { name: 'kind mismatch', method: 'POST', url: '/api/v1/namespaces/default/configmaps', body: '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}', code: 400, reason: 'BadRequest' },
  { name: 'namespace mismatch', method: 'POST', url: '/api/v1/namespaces/default/configmaps', body: '{"metadata":{"name":"x","namespace":"other"}}', code: 400, reason: 'BadRequest', message: /namespace/ },
  { name: 'missing namespace', method: 'POST', url: '/api/v1/namespaces/nope/configmaps', body: '{"metadata":{"name":"x"}}', code: 404, reason: 'NotFound', message: /namespaces "nope" not found/ },
  { name: 'stale resourceVersion', method: 'PUT', url: '/api/v1/namespaces/default/configmaps/exists', body: '{"metadata":{"name":"exists","resourceVersion":"1"},"data":{"a":"b"}}', code: 409, reason: 'Conflict' },
  { name: 'unsupported patch type', method: 'PATCH', url: '/api/v1/namespaces/default/configmaps/exists', body: '{}', ct: 'application/x-foo', code: 415, reason: 'UnsupportedMediaType' },
  { name: 'bad label selector', method: 'GET', url: '/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20(', code: 400, reason: 'BadRequest' },
  { name: 'unsupported field selector', method: 'GET', url: '/api/v1/namespaces/default/configmaps?fieldSelector=spec.foo%3Dbar', code: 400, reason: 'BadRequest', message: /field label not supported/ },
  { name: 'json patch that fails', method: 'PATCH', url: '/api/v1/namespaces/default/configmaps/exists', body: '[{"op":"test","path":"/data/a","value":"nope"}]', ct: 'application/json-patch+json', code: 422, reason: 'Invalid' },
  { name: 'strict: unknown field', method: 'POST', url: '/api/v1/namespaces/default/configmaps?fieldValidation=Strict', body: '{"metadata":{"name":"x"},"dta":{"a":"b"}}', code: 400, reason: 'BadRequest', message: /unknown field "dta"/ },
];

t.test('malformed requests get the right Status and leave nothing half-written', async (t) => {
  const store = new SqliteStore(':memory:');
  const app = await build({ store });
  t.teardown(async () => {
    await app.close();
    await store.close();
  });
  const ok = await app.inject({ method: 'POST', url: '/api/v1/namespaces/default/configmaps', payload: '{"metadata":{"name":"exists"},"data":{"a":"b"}}', headers: { 'content-type': 'application/json' } });
  t.equal(ok.statusCode, 201);
  const revBefore = await store.currentRevision();
  for (const c of cases) {
    const res = await app.inject({ method: c.method, url: c.url, payload: c.body, headers: { 'content-type': c.ct ?? 'application/json' } });
    const st = res.json() as { kind: string; code: number; reason: string; message: string; details?: { causes?: { field?: string }[] } };
    t.equal(res.statusCode, c.code, `${c.name}: HTTP ${c.code} (${st.message})`);
    t.equal(st.kind, 'Status', `${c.name}: a Status`);
    t.equal(st.reason, c.reason, `${c.name}: reason ${c.reason}`);
    if (c.field) t.ok((st.details?.causes ?? []).some((x) => c.field!.test(x.field ?? '')), `${c.name}: a cause names the field (${JSON.stringify(st.details?.causes)})`);
    if (c.message) t.match(st.message, c.message, `${c.name}: message`);
  }
  t.equal(await store.currentRevision(), revBefore, 'no write happened for any malformed request');
  t.ok(cases.length >= 20);
});
