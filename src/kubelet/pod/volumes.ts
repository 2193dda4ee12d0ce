import type { Kube } from '../kube.js';
import { mkdir, readFile, readdir, rename, rm, symlink, writeFile, readlink, chmod } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ConfigMap, Container, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Volume } from 'kubernetes-types/core/v1.js';
import type { ApiClient } from '../../client/types.js';
import { R } from '../../api/registry.js';
import { SkiffError } from '../../util/errors.js';
import type { Mount } from '../runtime/types.js';
import { podFieldValue, resourceFieldValue } from './env.js';

/** A volume's files: relative path -> { content, mode }. */
export type FileSet = Map<string, { content: Buffer; mode: number }>;

function pick(data: Record<string, Buffer>, items: readonly KeyToPath[] | undefined, mode: number, optional: boolean, what: string): FileSet {
  const out: FileSet = new Map();
  if (!items || items.length === 0) {
    for (const [k, v] of Object.entries(data)) out.set(k, { content: v, mode });
    return out;
  }
  for (const it of items) {
    if (!(it.key in data)) {
      if (optional) continue;
      throw new SkiffError('ERR_VOLUME', `${what}: key ${it.key} not found`);
    }
    out.set(it.path, { content: data[it.key], mode: it.mode ?? mode });
  }
  return out;
}

const cmData = (cm: ConfigMap | undefined): Record<string, Buffer> => ({
  ...Object.fromEntries(Object.entries(cm?.data ?? {}).map(([k, v]) => [k, Buffer.from(v)])),
  ...Object.fromEntries(Object.entries(cm?.binaryData ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
});
const secretData = (s: Secret | undefined): Record<string, Buffer> =>
  Object.fromEntries(Object.entries(s?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]));

/**
 * Writes `files` into `dir` the way the kubelet's atomic writer does: the payload lives in a
 * timestamped directory reached through the `..data` symlink, and top-level names are symlinks
 * into `..data`, so a running container sees an update appear at once and whole.
 */
export async function writeAtomicDir(dir: string, files: FileSet): Promise<boolean> {
  await mkdir(dir, { recursive: true });
  const current = await readCurrent(dir);
  if (current && sameFiles(current, files)) return false;
  const ts = `..${Date.now()}_${Math.random().toString(36).slice(2, 8)}`;
  const payload = join(dir, ts);
  for (const [rel, f] of files) {
    const p = join(payload, rel);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, f.content);
    await chmod(p, f.mode);
  }
  await mkdir(payload, { recursive: true });
  const tmpLink = join(dir, '..data_tmp');
  await rm(tmpLink, { force: true });
  await symlink(ts, tmpLink);
  await rename(tmpLink, join(dir, '..data'));
  const tops = new Set([...files.keys()].map((k) => k.split('/')[0]));
  for (const entry of await readdir(dir)) {
    if (entry.startsWith('..')) {
      if (entry !== ts && entry !== '..data') await rm(join(dir, entry), { recursive: true, force: true });
    } else if (!tops.has(entry)) await rm(join(dir, entry), { recursive: true, force: true });
  }
  for (const top of tops) {
    const link = join(dir, top);
    const target = join('..data', top);
    if ((await readlink(link).catch(() => '')) !== target) {
      await rm(link, { recursive: true, force: true });
      await symlink(target, link);
    }
  }
  return true;
}

async function readCurrent(dir: string): Promise<FileSet | undefined> {
  const data = join(dir, '..data');
  const out: FileSet = new Map();
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(data, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else out.set(r, { content: await readFile(join(data, r)), mode: 0 });
    }
  };
  try {
    await walk('');
    return out;
  } catch {
    return undefined;
  }
}

function sameFiles(a: FileSet, b: FileSet): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of b) if (!a.get(k)?.content.equals(v.content)) return false;
  return true;
}

/** Context a volume needs: the API (configMaps, secrets, PVCs, tokens) and the pod's addresses. */
export interface VolumeContext {
  client: ApiClient;
  podDir: string;
  podIP: string;
  hostIP: string;
}

async function getOpt<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if ((err as { code?: number; statusCode?: number }).code === 404 || (err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
}

/** Builds the file set of configMap/secret/downwardAPI/projected volumes. */
async function renderFiles(pod: Pod, v: Volume, ctx: VolumeContext): Promise<FileSet | undefined> {
  const ns = pod.metadata?.namespace ?? 'default';
  if (v.configMap) {
    const cm = await getOpt(ctx.client.get<Kube<ConfigMap>>(R.configmaps, v.configMap.name ?? '', ns));
    if (!cm && !v.configMap.optional) throw new SkiffError('ERR_VOLUME', `configmap "${v.configMap.name}" not found`);
    return pick(cmData(cm), v.configMap.items, v.configMap.defaultMode ?? 0o644, !!v.configMap.optional, `configmap ${v.configMap.name}`);
  }
  if (v.secret) {
    const s = await getOpt(ctx.client.get<Kube<Secret>>(R.secrets, v.secret.secretName ?? '', ns));
    if (!s && !v.secret.optional) throw new SkiffError('ERR_VOLUME', `secret "${v.secret.secretName}" not found`);
    return pick(secretData(s), v.secret.items, v.secret.defaultMode ?? 0o644, !!v.secret.optional, `secret ${v.secret.secretName}`);
  }
  if (v.downwardAPI) return downwardFiles(pod, v.downwardAPI.items ?? [], v.downwardAPI.defaultMode ?? 0o644, ctx);
  if (v.projected) {
    const out: FileSet = new Map();
    const mode = v.projected.defaultMode ?? 0o644;
    for (const src of v.projected.sources ?? []) {
      let part: FileSet | undefined;
      if (src.configMap) part = await renderFiles(pod, { name: v.name, configMap: { ...src.configMap, defaultMode: mode } }, ctx);
      else if (src.secret) part = await renderFiles(pod, { name: v.name, secret: { secretName: src.secret.name, items: src.secret.items, optional: src.secret.optional, defaultMode: mode } }, ctx);
      else if (src.downwardAPI) part = downwardFiles(pod, src.downwardAPI.items ?? [], mode, ctx);
      else if (src.serviceAccountToken) part = new Map([[src.serviceAccountToken.path, { content: Buffer.from(await serviceAccountToken(pod, src.serviceAccountToken.expirationSeconds, src.serviceAccountToken.audience, ctx)), mode }]]);
      for (const [k, f] of part ?? []) out.set(k, f);
    }
    return out;
  }
  return undefined;
}

function downwardFiles(pod: Pod, items: NonNullable<NonNullable<Volume['downwardAPI']>['items']>, mode: number, ctx: VolumeContext): FileSet {
  const out: FileSet = new Map();
  for (const it of items) {
    let val = '';
    if (it.fieldRef) val = podFieldValue(pod, it.fieldRef.fieldPath, ctx);
    else if (it.resourceFieldRef) {
      const c = pod.spec?.containers.find((x) => x.name === it.resourceFieldRef!.containerName) ?? pod.spec!.containers[0];
      val = resourceFieldValue(c, it.resourceFieldRef.resource, it.resourceFieldRef.divisor as string | undefined);
    }
    out.set(it.path, { content: Buffer.from(val), mode: it.mode ?? mode });
  }
  return out;
}

/** A bound service-account token from the TokenRequest API (empty when the API does not serve it). */
async function serviceAccountToken(pod: Pod, expirationSeconds: number | undefined, audience: string | undefined, ctx: VolumeContext): Promise<string> {
  const ns = pod.metadata?.namespace ?? 'default';
  const sa = pod.spec?.serviceAccountName ?? 'default';
  const body = {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
    spec: { audiences: audience ? [audience] : [], expirationSeconds: expirationSeconds ?? 3600, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod.metadata?.name, uid: pod.metadata?.uid } },
  };
  try {
    const r = await ctx.client.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, body);
    return (r.body as { status?: { token?: string } })?.status?.token ?? '';
  } catch {
    return '';
  }
}

async function pvcHostPath(pod: Pod, claimName: string, ctx: VolumeContext): Promise<string> {
  const ns = pod.metadata?.namespace ?? 'default';
  const pvc = await ctx.client.get<Kube<PersistentVolumeClaim>>(R.persistentvolumeclaims, claimName, ns);
  const pvName = pvc.spec?.volumeName;
  if (!pvName || pvc.status?.phase !== 'Bound') throw new SkiffError('ERR_VOLUME', `persistentvolumeclaim "${claimName}" is not bound`);
  const pv = await ctx.client.get<Kube<PersistentVolume>>(R.persistentvolumes, pvName);
  const path = pv.spec?.hostPath?.path ?? pv.spec?.local?.path;
  if (!path) throw new SkiffError('ERR_VOLUME', `persistentvolume "${pvName}" has no hostPath/local source`);
  return path;
}

/**
 * Makes every volume of the pod exist on the node (and refreshes configMap/secret/projected
 * contents). Returns volume name -> host path.
 */
export async function syncVolumes(pod: Pod, ctx: VolumeContext): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const v of pod.spec?.volumes ?? []) {
    const dir = join(ctx.podDir, 'volumes', v.name);
    if (v.hostPath) {
      const t = v.hostPath.type ?? '';
      if (t === 'DirectoryOrCreate') await mkdir(v.hostPath.path, { recursive: true });
      if (t === 'FileOrCreate') {
        await mkdir(dirname(v.hostPath.path), { recursive: true });
        await writeFile(v.hostPath.path, '', { flag: 'a' });
      }
      out.set(v.name, v.hostPath.path);
    } else if (v.persistentVolumeClaim) {
      out.set(v.name, await pvcHostPath(pod, v.persistentVolumeClaim.claimName, ctx));
    } else if (v.emptyDir || (!v.configMap && !v.secret && !v.projected && !v.downwardAPI)) {
      await mkdir(dir, { recursive: true });
      out.set(v.name, dir);
    } else {
      const files = await renderFiles(pod, v, ctx);
      await writeAtomicDir(dir, files ?? new Map());
      out.set(v.name, dir);
    }
  }
  return out;
}

/** Pure: a container's mounts from its volumeMounts (subPath joins the volume path). */
export function containerMounts(c: Container, volumes: Map<string, string>): Mount[] {
  const mounts: Mount[] = [];
  for (const m of c.volumeMounts ?? []) {
    const base = volumes.get(m.name);
    if (!base) throw new SkiffError('ERR_VOLUME', `volume "${m.name}" not found for mount ${m.mountPath}`);
    mounts.push({ hostPath: m.subPath ? join(base, m.subPath) : base, containerPath: m.mountPath, readOnly: !!m.readOnly });
  }
  return mounts;
}
