import t from 'tap';
import type { KubeObject } from '../api/object.js';
import { leafPaths, recordManagedFields, setOwnership, type ManagedEntry } from './managedfields.js';

/** The general path: every leaf of the object (metadata.managedFields aside) moved to `manager`. */
function general(obj: KubeObject, manager: string, operation: 'Apply' | 'Update', subresource?: string): KubeObject {
  const stripped = { ...obj, metadata: { ...obj.metadata } };
  delete stripped.metadata.managedFields;
  setOwnership(obj, [], manager, operation, leafPaths(stripped), subresource, false);
  return obj;
}

const fixedTime = (o: KubeObject): string => JSON.stringify(o, (k, v: unknown) => (k === 'time' ? 'T' : v));

const objects: Record<string, KubeObject> = {
  pod: {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', labels: { app: 'web' }, annotations: {}, uid: 'u', creationTimestamp: '2024-01-01T00:00:00Z' },
    spec: {
      containers: [
        { name: 'c', image: 'i', ports: [{ containerPort: 80, protocol: 'TCP' }, { containerPort: 81 }], env: [{ name: 'A', value: 'b' }], resources: {} },
        { name: 'd', image: 'i', args: ['x', 'y'], securityContext: null },
      ],
      volumes: [{ name: 'v', emptyDir: {} }],
      tolerations: [],
      nodeSelector: { a: 'b' },
    },
    status: { phase: 'Pending' },
  },
  'only ignored metadata': { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'default' }, data: { a: '1' } },
  'empty metadata': { apiVersion: 'v1', kind: 'ConfigMap', metadata: {}, data: {} },
  'nothing but type': { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } },
  deployment: {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'd', labels: { a: 'b' } },
    spec: { replicas: 2, selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' }, name: 'ignored-only-at-top' }, spec: { containers: [{ name: 'c', image: 'i' }] } } },
  },
  // keyed lists valueAt cannot resolve one to one: the general path decides
  'repeated merge key': { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'a' }, { name: 'c', image: 'b', tty: true }] } },
  'non-scalar merge key': { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: { x: 1 }, image: 'a' }] } },
  'null merge key': { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: null, image: 'a' }] } },
  'non-object items': { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c' }, 'junk', 3] } },
  'undefined leaf': { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { a: undefined, b: { c: undefined } } } as unknown as KubeObject,
};

t.test('a new object: the one-walk FieldsV1 equals the general path, byte for byte', async (t) => {
  for (const [name, obj] of Object.entries(objects)) {
    for (const op of ['Update', 'Apply'] as const) {
      for (const sub of [undefined, 'status']) {
        const fast = structuredClone(obj);
        recordManagedFields(fast, undefined, 'kubectl', op, sub);
        t.equal(fixedTime(fast), fixedTime(general(structuredClone(obj), 'kubectl', op, sub)), `${name} ${op} ${sub ?? ''}`);
      }
    }
  }
});

t.test('a keyed list entry is one node with its own fields', async (t) => {
  const obj = structuredClone(objects.pod);
  recordManagedFields(obj, undefined, 'm', 'Update');
  const f = (obj.metadata!.managedFields as unknown as ManagedEntry[])[0].fieldsV1 as Record<string, Record<string, Record<string, unknown>>>;
  t.same(Object.keys(f['f:spec']['f:containers']), ['k:{"name":"c"}', 'k:{"name":"d"}']);
  t.same(Object.keys(f['f:spec']['f:containers']['k:{"name":"c"}'] as object), ['.', 'f:name', 'f:image', 'f:ports', 'f:env', 'f:resources']);
  t.notOk('f:name' in (f['f:metadata'] ?? {}), 'name is not a managed field');
});

t.test('managedFields sent on create go the general way: entries whose fields the writer does not take stay', async (t) => {
  const obj = structuredClone(objects.pod);
  obj.metadata!.managedFields = [
    { manager: 'other', operation: 'Apply', apiVersion: 'v1', time: 'x', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:nodeSelector': {} } } },
    { manager: 'taken', operation: 'Apply', apiVersion: 'v1', time: 'x', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:nodeSelector': { 'f:a': {} } } } },
  ] as never;
  recordManagedFields(obj, undefined, 'kubectl', 'Update');
  t.same((obj.metadata!.managedFields as unknown as ManagedEntry[]).map((e) => e.manager), ['other', 'kubectl']);
});
