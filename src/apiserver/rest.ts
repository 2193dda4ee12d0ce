import type { FastifyReply, FastifyRequest } from 'fastify';
import type { KubeObject } from '../api/object.js';
import { apiVersionOf, type ResourceInfo } from '../api/registry.js';
import { matches, parseSelector, SelectorParseError, selectorToString } from '../api/labels.js';
import { FieldSelectorError, matchesFields, parseFieldSelector } from '../api/fields.js';
import type { ApiCore, WriteOptions } from './core.js';
import { errors, StatusError } from './errors.js';
import { parseResourcePath, type ParsedPath } from './paths.js';
import { decodeBody } from './body.js';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch } from './patch.js';
import { requireFieldManager, serverSideApply } from './apply.js';
import { toTable } from './tables.js';
import { checkSchema } from '../api/schema.js';
import { serveWatch } from './watch.js';
import { jsonOfWritten } from './storage.js';
import type { RequestAttributes } from './hooks.js';

type Obj = Record<string, unknown>;
type Query = Record<string, string | string[] | undefined>;

const q1 = (q: Query, k: string): string | undefined => {
  const v = q[k];
  return Array.isArray(v) ? v[0] : v;
};

export function wantsTable(req: FastifyRequest): boolean {
  return /as=Table/.test(String(req.headers.accept ?? ''));
}

export interface RestContext {
  core: ApiCore;
  admit: (attrs: RequestAttributes, op: 'CREATE' | 'UPDATE' | 'DELETE', obj?: KubeObject, old?: KubeObject, dryRun?: boolean) => Promise<void>;
  /** false when there is no admission hook: writes skip admission (and the request attributes it needs) */
  admits?: boolean;
  attrs: (req: FastifyRequest) => RequestAttributes;
}

function writeOpts(ctx: RestContext, req: FastifyRequest, p: ParsedPath): WriteOptions {
  const q = req.query as Query;
  const dryRun = q1(q, 'dryRun') === 'All';
  let attrs: RequestAttributes | undefined;
  return {
    dryRun,
    fieldManager: q1(q, 'fieldManager') ?? defaultManager(String(req.headers['user-agent'] ?? '')),
    subresource: p.subresource,
    admit: ctx.admits === false ? undefined : (op, obj, old) => ctx.admit((attrs ??= ctx.attrs(req)), op, obj, old, dryRun),
  };
}

function isJsonBody(contentType: string | undefined): boolean {
  const ct = (contentType ?? 'application/json').split(';')[0].trim().toLowerCase();
  return ct === 'application/json' || ct === '';
}

function defaultManager(ua: string): string {
  return ua.split('/')[0] || 'unknown';
}

/**
 * Field validation of a write body against the OpenAPI schemas (src/api/schema.ts): type errors are
 * always a 400 like upstream's decoding error; unknown fields are a 400 with fieldValidation=Strict,
 * a `Warning: 299` header with Warn (the default) and nothing with Ignore. For a patched object,
 * `before` (the stored object) tells which unknown fields were already there.
 */
function strictCheck(req: FastifyRequest, reply: FastifyReply | undefined, info: ResourceInfo, body: unknown, subresource?: string, before?: unknown): void {
  if (!body || typeof body !== 'object') return;
  const target = subresource === 'scale' ? { group: 'autoscaling', version: 'v1', kind: 'Scale' } : info;
  const res = checkSchema(apiVersionOf(target), target.kind, body);
  // a patched object: only the unknown fields the patch brought in are its own
  if (before && res.unknown.length) {
    const old = new Set(checkSchema(apiVersionOf(target), target.kind, before).unknown);
    res.unknown = res.unknown.filter((f) => !old.has(f));
  }
  if (res.typeErrors.length) {
    const e = res.typeErrors[0];
    throw errors.badRequest(`${target.kind} in version "${target.version}" cannot be handled as a ${target.kind}: ${e.message}`, [{ reason: 'FieldValueInvalid', field: e.field, message: e.message }]);
  }
  if (!res.unknown.length) return;
  const fv = q1(req.query as Query, 'fieldValidation') ?? 'Warn';
  if (fv === 'Strict') throw errors.badRequest(`strict decoding error: ${res.unknown.map((f) => `unknown field "${f}"`).join(', ')}`);
  if (fv === 'Warn' && reply) reply.header('Warning', res.unknown.map((f) => `299 - ${JSON.stringify(`unknown field "${f}"`)}`));
}

/** GET of one object, a list, or a watch. */
export async function handleGet(ctx: RestContext, req: FastifyRequest, reply: FastifyReply, p: ParsedPath): Promise<unknown> {
  const q = req.query as Query;
  const st = ctx.core.storage(p.info);
  if (p.name && !p.subresource) {
    const obj = await st.get(p.name, p.namespace);
    return wantsTable(req) ? toTable(p.info, [obj], { resourceVersion: obj.metadata?.resourceVersion, includeObject: q1(q, 'includeObject') }) : obj;
  }
  if (p.name && p.subresource === 'status') return st.get(p.name, p.namespace);
  if (p.name && p.subresource === 'scale') return toScale(p.info, await st.get(p.name, p.namespace));
  if (p.name) throw errors.notFound(`${p.info.resource}/${p.subresource}`, p.info.group, p.name);
  let labelSel;
  let fieldSel;
  try {
    labelSel = parseSelector(q1(q, 'labelSelector'));
    fieldSel = parseFieldSelector(q1(q, 'fieldSelector'), p.info.kind);
  } catch (err) {
    if (err instanceof SelectorParseError || err instanceof FieldSelectorError) throw errors.badRequest(err.message);
    throw err;
  }
  const filter = (o: KubeObject): boolean => matches(labelSel, o.metadata?.labels) && matchesFields(fieldSel, o);
  if (q1(q, 'watch') === 'true' || q1(q, 'watch') === '1') {
    await serveWatch(req, reply, { core: ctx.core, info: p.info, namespace: p.namespace, filter, table: wantsTable(req) });
    return reply;
  }
  return listObjects(ctx, req, p, filter);
}

async function listObjects(ctx: RestContext, req: FastifyRequest, p: ParsedPath, filter: (o: KubeObject) => boolean): Promise<unknown> {
  const q = req.query as Query;
  const limit = Number(q1(q, 'limit') ?? 0) || 0;
  let startAfter: string | undefined;
  let revision: number | undefined;
  const cont = q1(q, 'continue');
  if (cont) {
    try {
      const tok = JSON.parse(Buffer.from(cont, 'base64url').toString()) as { rv: number; start: string };
      startAfter = tok.start;
      revision = tok.rv;
    } catch {
      throw errors.badRequest('continue key is not valid: illegal base64 data');
    }
  }
  const st = ctx.core.storage(p.info);
  const items: KubeObject[] = [];
  let more = false;
  let lastKey: string | undefined;
  let rev = revision;
  // Filtered pages: keep reading until the page is full or the range is exhausted.
  for (;;) {
    const page = await st.list(p.namespace, { revision: rev, limit: limit > 0 ? Math.max(limit - items.length, 1) * (items.length ? 2 : 1) : undefined, startAfter });
    rev = page.revision;
    for (const o of page.items) {
      if (limit > 0 && items.length >= limit) {
        more = true;
        break;
      }
      lastKey = st.key(o.metadata!.name!, o.metadata!.namespace);
      if (filter(o)) items.push(o);
    }
    if (more) break;
    if (!page.more || limit <= 0) break;
    startAfter = page.lastKey;
    if (items.length >= limit) {
      more = true;
      break;
    }
  }
  const continueTok = more && lastKey ? Buffer.from(JSON.stringify({ rv: rev, start: lastKey })).toString('base64url') : undefined;
  const meta = { resourceVersion: String(rev), ...(continueTok ? { continue: continueTok } : {}) };
  if (wantsTable(req)) return toTable(p.info, items, { resourceVersion: meta.resourceVersion, continue: continueTok, includeObject: q1(q, 'includeObject') });
  return { kind: p.info.listKind, apiVersion: apiVersionOf(p.info), metadata: meta, items };
}

export function toScale(info: ResourceInfo, obj: KubeObject): Obj {
  const spec = (obj.spec ?? {}) as Obj;
  const status = (obj.status ?? {}) as Obj;
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name: obj.metadata?.name, namespace: obj.metadata?.namespace, uid: obj.metadata?.uid, resourceVersion: obj.metadata?.resourceVersion, creationTimestamp: obj.metadata?.creationTimestamp },
    spec: { replicas: spec.replicas ?? 0 },
    status: { replicas: status.replicas ?? 0, selector: selectorToString(spec.selector as never) },
  };
}

export async function handleCreate(ctx: RestContext, req: FastifyRequest, reply: FastifyReply, p: ParsedPath): Promise<unknown> {
  if (p.name && p.subresource === 'binding' && p.info.resource === 'pods') return bindPod(ctx, req, reply, p);
  if (p.name) throw errors.methodNotAllowed(`POST is not supported on ${p.info.resource}/${p.subresource ?? ''}`);
  const body = decodeBody(req.body as Buffer, req.headers['content-type']) as KubeObject;
  if (!body) throw errors.badRequest('the request body is empty');
  strictCheck(req, reply, p.info, body);
  // a JSON body is parsed fresh for this request and used only here: create may change it in place
  const obj = await ctx.core.create(p.info, p.namespace, body, { ...writeOpts(ctx, req, p), bodyOwned: isJsonBody(req.headers['content-type']) });
  reply.code(201);
  // the stored JSON's pieces make the response: no second serialization of the object
  const json = jsonOfWritten(obj);
  return json === undefined ? obj : reply.type('application/json; charset=utf-8').send(json);
}

async function bindPod(ctx: RestContext, req: FastifyRequest, reply: FastifyReply, p: ParsedPath): Promise<unknown> {
  const body = decodeBody(req.body as Buffer, req.headers['content-type']) as Obj;
  const target = (body?.target ?? {}) as Obj;
  if (!target.name) throw errors.invalid('Binding', '', p.name!, [{ reason: 'FieldValueRequired', field: 'target.name', message: 'Required value' }]);
  const st = ctx.core.storage(p.info);
  for (let i = 0; ; i++) {
    const pod = await st.get(p.name!, p.namespace);
    if ((pod.spec as Obj)?.nodeName) throw errors.conflict('pods', '', p.name!, `pod ${p.name} is already assigned to node "${(pod.spec as Obj).nodeName}"`);
    if (pod.metadata?.deletionTimestamp) throw errors.conflict('pods', '', p.name!, 'pod is being deleted');
    const next = structuredClone(pod);
    (next.spec as Obj).nodeName = target.name;
    const status = (next.status ?? {}) as Obj;
    const conds = ((status.conditions as Obj[]) ?? []).filter((c) => c.type !== 'PodScheduled');
    conds.push({ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') });
    status.conditions = conds;
    next.status = status;
    try {
      await ctx.admit(ctx.attrs(req), 'UPDATE', next, pod, false);
      await st.update(next, Number(pod.metadata!.resourceVersion));
      break;
    } catch (err) {
      if (err instanceof StatusError && err.code === 409 && err.reason === 'Conflict' && i < 5) continue;
      throw err;
    }
  }
  reply.code(201);
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };
}

export async function handleUpdate(ctx: RestContext, req: FastifyRequest, p: ParsedPath, reply?: FastifyReply): Promise<unknown> {
  if (!p.name) throw errors.methodNotAllowed('PUT requires a name');
  const body = decodeBody(req.body as Buffer, req.headers['content-type']) as KubeObject;
  if (!body) throw errors.badRequest('the request body is empty');
  strictCheck(req, reply, p.info, body, p.subresource);
  if (p.subresource === 'scale') return updateScale(ctx, req, p, (cur) => ((body.spec as Obj)?.replicas as number | undefined) ?? cur);
  if (p.subresource && !['status', 'finalize'].includes(p.subresource)) throw errors.methodNotAllowed(`PUT is not supported on ${p.info.resource}/${p.subresource}`);
  return ctx.core.update(p.info, p.namespace, p.name, body, writeOpts(ctx, req, p));
}

async function updateScale(ctx: RestContext, req: FastifyRequest, p: ParsedPath, replicas: (cur: number) => number): Promise<unknown> {
  if (!p.info.subresources.includes('scale')) throw errors.notFound(`${p.info.resource}/scale`, p.info.group, p.name!);
  for (let i = 0; ; i++) {
    const cur = await ctx.core.storage(p.info).get(p.name!, p.namespace);
    const next = structuredClone(cur);
    const spec = (next.spec ?? {}) as Obj;
    const want = replicas(Number(spec.replicas ?? 0));
    if (typeof want !== 'number' || !Number.isInteger(want) || want < 0)
      throw errors.invalid('Scale', 'autoscaling', p.name!, [{ reason: 'FieldValueInvalid', field: 'spec.replicas', message: `Invalid value: ${JSON.stringify(want)}: must be greater than or equal to 0` }]);
    spec.replicas = want;
    next.spec = spec;
    try {
      const saved = await ctx.core.update(p.info, p.namespace, p.name!, next, { ...writeOpts(ctx, req, p), subresource: undefined }, cur);
      return toScale(p.info, saved);
    } catch (err) {
      if (err instanceof StatusError && err.code === 409 && err.reason === 'Conflict' && i < 5) continue;
      throw err;
    }
  }
}

export async function handlePatch(ctx: RestContext, req: FastifyRequest, reply: FastifyReply, p: ParsedPath): Promise<unknown> {
  if (!p.name) throw errors.methodNotAllowed('PATCH requires a name');
  const ct = String(req.headers['content-type'] ?? '').split(';')[0].trim();
  const patch = decodeBody(req.body as Buffer, ct);
  if (patch === undefined) throw errors.badRequest('the request body is empty');
  const q = req.query as Query;
  const apply = (cur: unknown): unknown => {
    if (ct === 'application/json-patch+json') return applyJsonPatch(cur, patch);
    if (ct === 'application/merge-patch+json') return applyMergePatch(cur, patch);
    if (ct === 'application/strategic-merge-patch+json') return applyStrategicMergePatch(cur, patch);
    throw errors.unsupportedMediaType(ct);
  };
  if (p.subresource === 'scale') {
    return updateScale(ctx, req, p, (curReplicas) => {
      const scale = apply({ spec: { replicas: curReplicas } }) as Obj;
      return (scale?.spec as Obj)?.replicas as number;
    });
  }
  if (p.subresource && !['status'].includes(p.subresource)) throw errors.methodNotAllowed(`PATCH is not supported on ${p.info.resource}/${p.subresource}`);
  const opts = writeOpts(ctx, req, p);
  for (let i = 0; ; i++) {
    const cur = await ctx.core.storage(p.info).tryGet(p.name, p.namespace);
    try {
      if (ct === 'application/apply-patch+yaml') {
        const manager = requireFieldManager(q1(q, 'fieldManager'));
        if (!patch || typeof patch !== 'object' || Array.isArray(patch)) throw errors.badRequest('apply patch must be an object');
        strictCheck(req, reply, p.info, patch, p.subresource);
        const applied = { ...(patch as KubeObject), metadata: { ...((patch as KubeObject).metadata ?? {}), name: p.name } };
        if (!cur) {
          if (p.subresource) throw errors.notFound(p.info.resource, p.info.group, p.name);
          const obj = serverSideApply(null, ctx.core.prepareNew(p.info, p.namespace, applied), manager, q1(q, 'force') === 'true');
          const created = await ctx.core.create(p.info, p.namespace, obj, { ...opts, fieldManager: undefined });
          reply.code(201);
          return created;
        }
        const prepared = ctx.core.prepareNew(p.info, p.namespace, applied);
        const merged = serverSideApply(cur, prepared, manager, q1(q, 'force') === 'true');
        merged.metadata!.resourceVersion = cur.metadata!.resourceVersion;
        return await ctx.core.update(p.info, p.namespace, p.name, merged, { ...opts, fieldManager: undefined }, cur);
      }
      if (!cur) throw errors.notFound(p.info.resource, p.info.group, p.name);
      const next = apply(cur) as KubeObject;
      if (!next || typeof next !== 'object') throw errors.badRequest('patch produced a non-object');
      strictCheck(req, reply, p.info, next, p.subresource, cur);
      if (next.metadata && (patch as Obj)?.metadata && ((patch as Obj).metadata as Obj).resourceVersion === undefined) next.metadata.resourceVersion = cur.metadata!.resourceVersion;
      return await ctx.core.update(p.info, p.namespace, p.name, next, opts, cur);
    } catch (err) {
      if (err instanceof StatusError && err.code === 409 && err.reason === 'Conflict' && !(err.details?.causes ?? []).some((c) => c.reason === 'FieldManagerConflict') && i < 8) continue;
      throw err;
    }
  }
}

export async function handleDelete(ctx: RestContext, req: FastifyRequest, p: ParsedPath): Promise<unknown> {
  const q = req.query as Query;
  let body: Obj = {};
  const ct = String(req.headers['content-type'] ?? '');
  if (req.body && (req.body as Buffer).length) {
    try {
      body = (decodeBody(req.body as Buffer, ct) ?? {}) as Obj;
    } catch (err) {
      if (!ct.includes('protobuf')) throw err;
    }
  }
  const dryRun = q1(q, 'dryRun') === 'All' || (Array.isArray(body.dryRun) && body.dryRun.includes('All'));
  const propagation = (body.propagationPolicy ?? q1(q, 'propagationPolicy')) as 'Foreground' | 'Background' | 'Orphan' | undefined;
  const grace = body.gracePeriodSeconds ?? q1(q, 'gracePeriodSeconds');
  const attrs = ctx.attrs(req);
  const opts = {
    dryRun,
    propagationPolicy: propagation,
    gracePeriodSeconds: grace === undefined || grace === null ? undefined : Number(grace),
    preconditions: body.preconditions as { uid?: string; resourceVersion?: string } | undefined,
    admit: (op: 'CREATE' | 'UPDATE' | 'DELETE', obj?: KubeObject, old?: KubeObject) => ctx.admit(attrs, op, obj, old, dryRun),
  };
  if (!p.name) return deleteCollection(ctx, req, p, opts);
  if (p.subresource) throw errors.methodNotAllowed(`DELETE is not supported on ${p.info.resource}/${p.subresource}`);
  const { object, deleted } = await ctx.core.delete(p.info, p.namespace, p.name, opts);
  if (!deleted || p.info.resource === 'pods' || p.info.resource === 'namespaces') return object;
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: p.name, group: p.info.group || undefined, kind: p.info.resource, uid: object.metadata?.uid } };
}

async function deleteCollection(ctx: RestContext, req: FastifyRequest, p: ParsedPath, opts: Parameters<ApiCore['delete']>[3]): Promise<unknown> {
  const q = req.query as Query;
  const sel = parseSelector(q1(q, 'labelSelector'));
  const fsel = parseFieldSelector(q1(q, 'fieldSelector'), p.info.kind);
  const list = await ctx.core.storage(p.info).list(p.namespace);
  const items: KubeObject[] = [];
  for (const o of list.items) {
    if (!matches(sel, o.metadata?.labels) || !matchesFields(fsel, o)) continue;
    try {
      items.push((await ctx.core.delete(p.info, o.metadata?.namespace, o.metadata!.name!, opts)).object);
    } catch (err) {
      if (!(err instanceof StatusError && err.code === 404)) throw err;
    }
  }
  return { kind: p.info.listKind, apiVersion: apiVersionOf(p.info), metadata: { resourceVersion: String(list.revision) }, items };
}

export { parseResourcePath };
