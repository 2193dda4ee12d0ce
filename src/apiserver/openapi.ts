import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { apiVersionOf, RESOURCES, type ResourceInfo } from '../api/registry.js';

type Obj = Record<string, unknown>;

/** Schemas generated from kubernetes-types (scripts/gen-openapi.ts): name -> OpenAPI v3 schema. */
function loadSchemas(): Record<string, Obj> {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, '../api/openapi-schemas.json'), join(here, '../../src/api/openapi-schemas.json')]) {
    if (existsSync(p)) return JSON.parse(readFileSync(p, 'utf8')) as Record<string, Obj>;
  }
  return {};
}

let schemasCache: Record<string, Obj> | undefined;
export function schemas(): Record<string, Obj> {
  return (schemasCache ??= loadSchemas());
}

/** The schema name of a kind, as upstream names it (io.k8s.api.apps.v1.Deployment). */
export function schemaName(info: { group: string; version: string; kind: string }): string {
  const g = info.group === '' ? 'core' : info.group.replace(/\.k8s\.io$/, '').replace(/\./g, '_');
  const pkg = info.group === 'rbac.authorization.k8s.io' ? 'rbac' : g;
  return `io.k8s.api.${pkg}.${info.version}.${info.kind}`;
}

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

function groupVersions(): { group: string; version: string }[] {
  const seen = new Map<string, { group: string; version: string }>();
  for (const r of RESOURCES) seen.set(`${r.group}/${r.version}`, { group: r.group, version: r.version });
  return [...seen.values()];
}

const docCache = new Map<string, { body: string; hash: string }>();

/** Collects the schema of `name` and everything it references. */
function closure(name: string, all: Record<string, Obj>, out: Record<string, Obj>): void {
  if (out[name] || !all[name]) return;
  out[name] = all[name];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v as Obj)) {
        if (k === '$ref' && typeof x === 'string') closure(x.replace('#/components/schemas/', ''), all, out);
        else walk(x);
      }
    }
  };
  walk(all[name]);
}

function resourcePathItem(info: ResourceInfo): Obj {
  const gvk = { group: info.group, version: info.version, kind: info.kind };
  const ref = { $ref: `#/components/schemas/${schemaName(info)}` };
  const params = [
    { name: 'dryRun', in: 'query', schema: { type: 'string' } },
    { name: 'fieldManager', in: 'query', schema: { type: 'string' } },
    { name: 'fieldValidation', in: 'query', schema: { type: 'string' } },
  ];
  const op = (action: string, body: boolean): Obj => ({
    'x-kubernetes-group-version-kind': gvk,
    'x-kubernetes-action': action,
    parameters: params,
    ...(body ? { requestBody: { content: { '*/*': { schema: ref } } } } : {}),
    responses: { '200': { content: { 'application/json': { schema: ref } } } },
  });
  return { get: op('get', false), put: op('put', true), patch: op('patch', true), delete: op('delete', false) };
}

/** `GET /openapi/v3/<gv>`: paths for each resource plus the schemas they reference. */
export function openapiGroupVersion(group: string, version: string): { body: string; hash: string } | null {
  const key = `${group}/${version}`;
  const cached = docCache.get(key);
  if (cached) return cached;
  const list = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (!list.length) return null;
  const paths: Obj = {};
  const comps: Record<string, Obj> = {};
  const all = schemas();
  for (const info of list) {
    const base = `/${gvPath(group, version)}${info.namespaced ? '/namespaces/{namespace}' : ''}/${info.resource}`;
    paths[`${base}/{name}`] = resourcePathItem(info);
    paths[base] = { post: (resourcePathItem(info).put as Obj) };
    closure(schemaName(info), all, comps);
    if (!comps[schemaName(info)]) comps[schemaName(info)] = { type: 'object', 'x-kubernetes-group-version-kind': [{ group, version, kind: info.kind }] };
  }
  const doc = { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.33.0' }, paths, components: { schemas: comps } };
  const body = JSON.stringify(doc);
  const out = { body, hash: createHash('sha512').update(body).digest('hex').slice(0, 64).toUpperCase() };
  docCache.set(key, out);
  return out;
}

export function openapiRoot(): Obj {
  const paths: Obj = {};
  for (const { group, version } of groupVersions()) {
    const d = openapiGroupVersion(group, version);
    if (d) paths[gvPath(group, version)] = { serverRelativeURL: `/openapi/v3/${gvPath(group, version)}?hash=${d.hash}` };
  }
  return { paths };
}

export { apiVersionOf };
