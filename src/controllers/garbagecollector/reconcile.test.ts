import t from 'tap';
import type { KubeObject } from '../../api/object.js';
import { planDeletingOwner, planDependent } from './reconcile.js';

const ref = (uid: string, block = false) => ({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: uid, uid, controller: true, blockOwnerDeletion: block });
const obj = (name: string, o: { owners?: ReturnType<typeof ref>[]; finalizers?: string[]; deleting?: boolean } = {}): KubeObject => ({
  metadata: { name, namespace: 'default', uid: name, ownerReferences: o.owners, finalizers: o.finalizers, deletionTimestamp: o.deleting ? '2026-01-01T00:00:00Z' : undefined },
});

t.test('dependent of a gone owner is deleted in the background', async (t) => {
  t.same(planDependent(obj('p', { owners: [ref('rs')] }), [{ ref: ref('rs'), state: 'absent' }]), [{ kind: 'delete', propagationPolicy: 'Background' }]);
});

t.test('dangling references are removed while another owner exists', async (t) => {
  const actions = planDependent(obj('p'), [
    { ref: ref('a'), state: 'absent' },
    { ref: ref('b'), state: 'present' },
  ]);
  t.same(actions, [{ kind: 'removeOwners', uids: ['a'] }]);
});

t.test('dependents with live owners, or already deleting, are left alone', async (t) => {
  t.same(planDependent(obj('p'), [{ ref: ref('a'), state: 'present' }]), []);
  t.same(planDependent(obj('p', { deleting: true }), [{ ref: ref('a'), state: 'absent' }]), []);
});

t.test('a dependent of a foreground-deleting owner is deleted (foreground when it blocks)', async (t) => {
  t.same(planDependent(obj('p'), [{ ref: ref('a', true), state: 'deleting-foreground' }]), [{ kind: 'delete', propagationPolicy: 'Foreground' }]);
  t.same(planDependent(obj('p'), [{ ref: ref('a'), state: 'deleting-foreground' }]), [{ kind: 'delete', propagationPolicy: 'Background' }]);
});

t.test('orphan: strip the owner from dependents, then drop the finalizer', async (t) => {
  const owner = obj('rs', { finalizers: ['orphan'], deleting: true });
  const dep = obj('p', { owners: [ref('rs')] });
  const other = obj('q', { owners: [ref('x')] });
  t.same(planDeletingOwner(owner, [dep, other]), [
    { kind: 'orphanDependents', dependents: [dep] },
    { kind: 'removeFinalizer', finalizer: 'orphan' },
  ]);
});

t.test('foreground: delete dependents, keep the finalizer while blocking dependents remain', async (t) => {
  const owner = obj('rs', { finalizers: ['foregroundDeletion'], deleting: true });
  const blocking = obj('p', { owners: [ref('rs', true)] });
  const loose = obj('q', { owners: [ref('rs', false)] });
  const actions = planDeletingOwner(owner, [blocking, loose]);
  t.same(actions, [
    {
      kind: 'deleteDependents',
      dependents: [
        { obj: blocking, propagationPolicy: 'Foreground' },
        { obj: loose, propagationPolicy: 'Background' },
      ],
    },
  ]);
  const goingAway = obj('p', { owners: [ref('rs', true)], deleting: true });
  t.same(planDeletingOwner(owner, [goingAway]), [], 'waits for a deleting blocker');
  t.same(planDeletingOwner(owner, [loose]), [
    { kind: 'deleteDependents', dependents: [{ obj: loose, propagationPolicy: 'Background' }] },
    { kind: 'removeFinalizer', finalizer: 'foregroundDeletion' },
  ]);
  t.same(planDeletingOwner(owner, []), [{ kind: 'removeFinalizer', finalizer: 'foregroundDeletion' }]);
});

t.test('owners not being deleted need nothing', async (t) => {
  t.same(planDeletingOwner(obj('rs', { finalizers: ['orphan'] }), [obj('p', { owners: [ref('rs')] })]), []);
});
