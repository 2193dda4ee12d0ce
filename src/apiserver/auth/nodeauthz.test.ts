import t from 'tap';
import type { KubeObject } from '../../api/object.js';
import type { UserInfo } from '../hooks.js';
import { requestAttributes } from './requestinfo.js';
import { authorizeNode, podReferences } from './nodeauthz.js';

const pod: KubeObject = {
  metadata: { name: 'web', namespace: 'shop' },
  spec: {
    nodeName: 'n1',
    serviceAccountName: 'web-sa',
    imagePullSecrets: [{ name: 'pull' }],
    volumes: [{ name: 'a', secret: { secretName: 'vol-secret' } }, { name: 'b', configMap: { name: 'vol-cm' } }, { name: 'c', persistentVolumeClaim: { claimName: 'data' } }, { name: 'd', projected: { sources: [{ secret: { name: 'proj-secret' } }, { configMap: { name: 'proj-cm' } }] } }],
    containers: [{ name: 'c', env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'env-secret', key: 'k' } } }], envFrom: [{ configMapRef: { name: 'envfrom-cm' } }] }],
    initContainers: [{ name: 'i', envFrom: [{ secretRef: { name: 'init-secret' } }] }],
  },
};
const n1: UserInfo = { username: 'system:node:n1', groups: ['system:nodes', 'system:authenticated'] };
const n2: UserInfo = { username: 'system:node:n2', groups: ['system:nodes', 'system:authenticated'] };
const onNode = (node: string) => (node === 'n1' ? [pod] : []);
const decide = (user: UserInfo, method: string, url: string) => authorizeNode(requestAttributes(method, url, user), onNode);

t.test('pod references', async (t) => {
  const r = podReferences(pod);
  t.same([...r.secrets].sort(), ['env-secret', 'init-secret', 'proj-secret', 'pull', 'vol-secret']);
  t.same([...r.configmaps].sort(), ['envfrom-cm', 'proj-cm', 'vol-cm']);
  t.same([...r.persistentvolumeclaims], ['data']);
  t.same([...r.serviceaccounts], ['web-sa']);
  t.same([...podReferences({ spec: {} }).serviceaccounts], ['default']);
});

t.test('node authorizer decisions', async (t) => {
  const cases: [string, UserInfo, string, string, boolean | undefined][] = [
    ['secret used by a pod on the node', n1, 'GET', '/api/v1/namespaces/shop/secrets/vol-secret', true],
    ['env secret', n1, 'GET', '/api/v1/namespaces/shop/secrets/env-secret', true],
    ['configmap via envFrom', n1, 'GET', '/api/v1/namespaces/shop/configmaps/envfrom-cm', true],
    ['pvc', n1, 'GET', '/api/v1/namespaces/shop/persistentvolumeclaims/data', true],
    ['token for the pod SA', n1, 'POST', '/api/v1/namespaces/shop/serviceaccounts/web-sa/token', true],
    ['token for another SA', n1, 'POST', '/api/v1/namespaces/shop/serviceaccounts/default/token', false],
    ['unrelated secret', n1, 'GET', '/api/v1/namespaces/shop/secrets/other', false],
    ['same name, other namespace', n1, 'GET', '/api/v1/namespaces/default/secrets/vol-secret', false],
    ['another node', n2, 'GET', '/api/v1/namespaces/shop/secrets/vol-secret', false],
    ['list secrets', n1, 'GET', '/api/v1/namespaces/shop/secrets', false],
    ['watch secrets', n1, 'GET', '/api/v1/secrets?watch=true', false],
    ['update a used secret', n1, 'PUT', '/api/v1/namespaces/shop/secrets/vol-secret', false],
    ['pods are RBAC business', n1, 'GET', '/api/v1/pods', undefined],
    ['non-node users are RBAC business', { username: 'alice', groups: [] }, 'GET', '/api/v1/namespaces/shop/secrets/other', undefined],
  ];
  for (const [name, user, method, url, want] of cases) t.equal(decide(user, method, url)?.allowed, want, name);
  t.match(decide(n1, 'GET', '/api/v1/namespaces/shop/secrets/other')?.reason, "node 'n1' has no relationship with secrets shop/other");
});
