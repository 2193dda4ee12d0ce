import type { Kube } from '../kube.js';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfigMap, Container, Pod, Secret, Service } from 'kubernetes-types/core/v1.js';
import type { ApiClient } from '../../client/types.js';
import type { EventRecorder } from '../../client/events.js';
import { R } from '../../api/registry.js';
import type { Logger } from '../../util/log.js';
import { errorMessage, SkiffError } from '../../util/errors.js';
import type { ContainerConfig, ContainerInfo, ContainerRuntime, PullAuth, SandboxInfo } from '../runtime/types.js';
import type { PodNetwork } from '../network/index.js';
import { ContainerProber, type ProbeRunner } from '../probes.js';
import { Backoff } from './backoff.js';
import { renderHosts, renderResolvConf, podHostname, type DnsSettings } from './dns.js';
import { envReferences, renderEnv, type EnvSources } from './env.js';
import { instancesOf, sandboxOf, type RuntimeCache, type RuntimeSnapshot } from './snapshot.js';
import { renderPodStatus, type ContainerView, type PodView } from './status.js';
import { containerMounts, syncVolumes } from './volumes.js';
import { milliCpu, parseQuantity } from './quantity.js';

export interface PodWorkerDeps {
  client: ApiClient;
  runtime: ContainerRuntime;
  cache: RuntimeCache;
  network: PodNetwork;
  probes: ProbeRunner;
  dataDir: string;
  nodeName: string;
  nodeIP: string;
  dns: DnsSettings;
  backoff: Backoff;
  log: Logger;
  events?: EventRecorder;
  /** asks for another sync of the pod key, optionally later */
  enqueue(key: string, afterMs?: number): void;
  trace?: PodTrace;
  /**
   * Services from an informer's cache (service links without an API list per container start, like
   * the kubelet's service lister); when it gives undefined (not synced) they are listed from the API.
   */
  services?: () => Service[] | undefined;
}

/**
 * A pod's startup steps as the kubelet sees them: `seen` (informer add), `sandbox` (sandbox and
 * network ready), `started` (containers started), `status` (status written).
 */
export type PodTrace = (podKey: string, step: 'seen' | 'sandbox' | 'started' | 'status') => void;

/** In-memory per-pod state: waiting reasons, probers, the sandbox in use and the last status sent. */
interface PodRecord {
  uid: string;
  pod: Pod;
  podIP: string;
  /** the sandbox whose network this kubelet set up or adopted (attach runs once per sandbox, not every sync) */
  netSandbox?: string;
  waiting: Map<string, { reason: string; message?: string }>;
  probers: Map<string, ContainerProber>;
  /** the runtime's message of the last failed pull, per container */
  pullErrors: Map<string, string>;
  lastStatus?: string;
  /** resolv.conf + hosts as last written (they are rewritten only when they change) */
  etcFiles?: string;
}

/** Pure: the effective imagePullPolicy (":latest" or no tag means Always). */
export function pullPolicy(c: Container): 'Always' | 'IfNotPresent' | 'Never' {
  if (c.imagePullPolicy === 'Always' || c.imagePullPolicy === 'IfNotPresent' || c.imagePullPolicy === 'Never') return c.imagePullPolicy;
  const image = c.image ?? '';
  const lastPart = image.split('/').pop() ?? '';
  if (image.includes('@')) return 'IfNotPresent';
  return !lastPart.includes(':') || lastPart.endsWith(':latest') ? 'Always' : 'IfNotPresent';
}

/** Pure: should an exited container be started again under `policy`? */
export function shouldRestart(policy: string | undefined, exitCode: number): boolean {
  const p = policy ?? 'Always';
  return p === 'Always' || (p === 'OnFailure' && exitCode !== 0);
}

/**
 * Makes one pod real and keeps it so: sandbox + network, init containers in order, app
 * containers with restart backoff, probes, status. Level-triggered: every call converges from
 * what the runtime shows, so a restarted kubelet adopts what it finds.
 */
export class PodWorkers {
  private readonly records = new Map<string, PodRecord>();
  private closed = false;
  constructor(private readonly d: PodWorkerDeps) {}

  podDir(uid: string): string {
    return join(this.d.dataDir, 'pods', uid);
  }

  /** The record for a live pod (creates it). */
  private record(pod: Pod): PodRecord {
    const uid = pod.metadata!.uid!;
    let r = this.records.get(uid);
    if (!r) {
      r = { uid, pod, podIP: pod.status?.podIP ?? '', waiting: new Map(), probers: new Map(), pullErrors: new Map() };
      this.records.set(uid, r);
    }
    r.pod = pod;
    return r;
  }

  knownUids(): Set<string> {
    return new Set(this.records.keys());
  }

  async syncPod(pod: Pod): Promise<void> {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const rec = this.record(pod);
    if (pod.metadata?.deletionTimestamp) {
      await this.terminate(rec, this.graceOf(pod));
      await this.d.client.delete(R.pods, pod.metadata.name!, pod.metadata.namespace, { gracePeriodSeconds: 0, preconditions: { uid: rec.uid } }).catch(() => undefined);
      this.forget(rec.uid);
      return;
    }
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') {
      await this.stopSandbox(rec);
      return;
    }
    let snap = await this.d.cache.fresh();
    const sandbox = await this.ensureSandbox(rec, snap);
    if (!sandbox) {
      await this.writeStatus(rec, await this.d.cache.fresh(), false);
      return;
    }
    this.d.trace?.(key, 'sandbox');
    const volumes = await this.prepareFiles(rec).catch((err) => {
      for (const c of pod.spec?.containers ?? []) rec.waiting.set(c.name, { reason: 'CreateContainerConfigError', message: errorMessage(err) });
      return undefined;
    });
    if (volumes) {
      const changed = await this.syncContainers(rec, sandbox, snap, volumes, key);
      if (changed) snap = await this.d.cache.fresh();
      this.d.trace?.(key, 'started');
    }
    if (await this.writeStatus(rec, snap, true)) this.d.trace?.(key, 'status');
  }

  private graceOf(pod: Pod): number {
    return pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
  }

  /** Running sandbox with a network, created if missing (undefined when it could not be). */
  private async ensureSandbox(rec: PodRecord, snap: RuntimeSnapshot): Promise<SandboxInfo | undefined> {
    let sb = sandboxOf(snap, rec.uid);
    if (sb && !sb.running) {
      this.d.log.info({ pod: rec.pod.metadata?.name, sandbox: sb.id }, 'sandbox died; recreating pod');
      await this.killContainers(rec, snap, 0, true);
      await this.d.runtime.removeSandbox(sb.id);
      sb = undefined;
    }
    const sbKey = `${rec.uid}/:sandbox`;
    if (!sb && this.d.backoff.remaining(sbKey) > 0) {
      this.d.enqueue(`${rec.pod.metadata?.namespace}/${rec.pod.metadata?.name}`, this.d.backoff.remaining(sbKey) + 50);
      return undefined;
    }
    try {
      const fresh = !sb;
      if (!sb) {
        const m = rec.pod.metadata!;
        sb = await this.d.runtime.runSandbox({ podUid: rec.uid, podName: m.name!, namespace: m.namespace!, hostname: podHostname(rec.pod), netnsByNetwork: this.d.network.makesNetns });
      }
      if (!sb.netns) throw new SkiffError('ERR_SANDBOX', 'sandbox has no network namespace');
      if (rec.netSandbox !== sb.id) {
        rec.podIP = await this.d.network.attach(rec.uid, sb.netns, { fresh, makeNetns: sb.netnsPending });
        rec.netSandbox = sb.id;
      }
      this.d.backoff.reset(sbKey);
      return sb;
    } catch (err) {
      this.d.log.warn({ pod: rec.pod.metadata?.name, err: errorMessage(err) }, 'sandbox setup failed');
      this.d.events?.event(rec.pod as Kube<Pod>, 'Warning', 'FailedCreatePodSandBox', errorMessage(err));
      for (const c of rec.pod.spec?.containers ?? []) rec.waiting.set(c.name, { reason: 'ContainerCreating', message: errorMessage(err) });
      this.d.enqueue(`${rec.pod.metadata?.namespace}/${rec.pod.metadata?.name}`, this.d.backoff.next(sbKey) + 50);
      return undefined;
    }
  }

  /** resolv.conf, hosts and volumes on the node; returns volume name -> host path. */
  private async prepareFiles(rec: PodRecord): Promise<Map<string, string>> {
    const dir = this.podDir(rec.uid);
    const resolv = renderResolvConf(rec.pod as Kube<Pod>, this.d.dns);
    const hosts = renderHosts(rec.pod as Kube<Pod>, rec.podIP, this.d.dns.clusterDomain);
    if (rec.etcFiles !== resolv + '\0' + hosts) {
      await mkdir(join(dir, 'etc'), { recursive: true });
      await Promise.all([writeFile(join(dir, 'etc', 'resolv.conf'), resolv), writeFile(join(dir, 'etc', 'hosts'), hosts)]);
      rec.etcFiles = resolv + '\0' + hosts;
    }
    return syncVolumes(rec.pod as Kube<Pod>, { client: this.d.client, podDir: dir, podIP: rec.podIP, hostIP: this.d.nodeIP });
  }

  /** Init containers in order, then app containers. Returns true when it changed the runtime. */
  private async syncContainers(rec: PodRecord, sb: SandboxInfo, snap: RuntimeSnapshot, volumes: Map<string, string>, key: string): Promise<boolean> {
    const spec = rec.pod.spec!;
    for (const c of spec.initContainers ?? []) {
      const [latest] = instancesOf(snap, rec.uid, c.name, 'init');
      if (latest?.state === 'running') return false;
      if (latest?.state === 'exited' && latest.exitCode === 0) continue;
      if (latest?.state === 'exited' && spec.restartPolicy === 'Never') return false;
      return this.startOrBackoff(rec, sb, c, 'init', latest, volumes, key);
    }
    let changed = false;
    for (const c of spec.containers) {
      const [latest] = instancesOf(snap, rec.uid, c.name, 'app');
      if (latest?.state === 'running') {
        const prober = this.proberFor(rec, c, latest, key);
        if (prober.state.unhealthy) {
          const why = prober.state.unhealthy === 'liveness' ? 'Liveness' : 'Startup';
          this.d.events?.event(rec.pod as Kube<Pod>, 'Normal', 'Killing', `Container ${c.name} failed ${why.toLowerCase()} probe, will be restarted`);
          await this.stopOne(rec, c, latest, this.graceOf(rec.pod));
          changed = true;
        }
        continue;
      }
      if (latest?.state === 'exited' && !shouldRestart(spec.restartPolicy, latest.exitCode)) continue;
      changed = (await this.startOrBackoff(rec, sb, c, 'app', latest, volumes, key)) || changed;
    }
    return changed;
  }

  private proberFor(rec: PodRecord, c: Container, inst: ContainerInfo, key: string): ContainerProber {
    let p = rec.probers.get(inst.id);
    if (!p) {
      p = new ContainerProber(this.d.probes, c, inst.id, rec.podIP, () => this.d.enqueue(key));
      rec.probers.set(inst.id, p);
      if (this.closed) p.stop(); // the kubelet is stopping: no new probe timers
    }
    return p;
  }

  /** Starts (or restarts) a container unless it is backing off; records the waiting reason. */
  private async startOrBackoff(rec: PodRecord, sb: SandboxInfo, c: Container, role: 'init' | 'app', latest: ContainerInfo | undefined, volumes: Map<string, string>, key: string): Promise<boolean> {
    const bkey = `${rec.uid}/${c.name}`;
    if (latest && latest.state === 'exited' && latest.finishedAt - latest.startedAt > this.d.backoff.maxMs * 2) this.d.backoff.reset(bkey);
    const wait = Math.max(this.d.backoff.remaining(bkey), this.d.backoff.remaining(`${bkey}:pull`));
    if (wait > 0) {
      const pullError = rec.pullErrors.get(c.name);
      if (this.d.backoff.remaining(`${bkey}:pull`) > 0 && pullError !== undefined) {
        rec.waiting.set(c.name, { reason: 'ImagePullBackOff', message: `Back-off pulling image "${c.image}": ${pullError}` });
      } else {
        rec.waiting.set(c.name, { reason: 'CrashLoopBackOff', message: `back-off ${Math.round(this.d.backoff.delay(bkey) / 1000)}s restarting failed container=${c.name} pod=${rec.pod.metadata?.name}_${rec.pod.metadata?.namespace}(${rec.uid})` });
      }
      this.d.enqueue(key, wait + 50);
      return false;
    }
    const attempt = latest ? latest.attempt + 1 : 0;
    try {
      await this.d.runtime.ensureImage(c.image ?? '', pullPolicy(c), await this.pullSecrets(rec.pod));
      this.d.backoff.reset(`${bkey}:pull`);
      rec.pullErrors.delete(c.name);
    } catch (err) {
      this.d.backoff.next(`${bkey}:pull`);
      rec.pullErrors.set(c.name, errorMessage(err));
      rec.waiting.set(c.name, { reason: (err as SkiffError).code === 'ERR_IMAGE_NEVER_PULL' ? 'ErrImageNeverPull' : 'ErrImagePull', message: errorMessage(err) });
      this.d.events?.event(rec.pod as Kube<Pod>, 'Warning', 'Failed', errorMessage(err));
      this.d.enqueue(key, this.d.backoff.remaining(`${bkey}:pull`) + 50);
      return false;
    }
    let cfg: ContainerConfig;
    try {
      cfg = await this.containerConfig(rec, c, role, attempt, volumes);
    } catch (err) {
      rec.waiting.set(c.name, { reason: 'CreateContainerConfigError', message: errorMessage(err) });
      this.d.enqueue(key, 2000);
      return false;
    }
    if (latest) this.d.backoff.next(bkey);
    const { id, startError } = await this.createAndStart(sb, cfg);
    rec.waiting.delete(c.name);
    if (startError !== undefined) {
      rec.waiting.set(c.name, { reason: 'RunContainerError', message: startError });
      this.d.events?.event(rec.pod as Kube<Pod>, 'Warning', 'Failed', `Error: ${startError}`);
    } else {
      this.d.events?.event(rec.pod as Kube<Pod>, 'Normal', 'Started', `Started container ${c.name}`);
    }
    if (startError === undefined && c.lifecycle?.postStart?.exec?.command) {
      const r = await this.d.runtime.execSync(id, [...c.lifecycle.postStart.exec.command], 30_000);
      if (r.exitCode !== 0) {
        this.d.events?.event(rec.pod as Kube<Pod>, 'Warning', 'FailedPostStartHook', `PostStartHook failed: ${r.stderr.trim()}`);
        await this.d.runtime.stopContainer(id, 0);
      }
    }
    if (attempt >= 2) await this.pruneOld(rec.uid, c.name, role);
    return true;
  }

  /** One runtime call when the runtime can (docker run -d), else create then start. */
  private async createAndStart(sb: SandboxInfo, cfg: ContainerConfig): Promise<{ id: string; startError?: string }> {
    if (this.d.runtime.runContainer) return this.d.runtime.runContainer(sb, cfg);
    const id = await this.d.runtime.createContainer(sb, cfg);
    return this.d.runtime.startContainer(id).then(() => ({ id }), (err: unknown) => ({ id, startError: errorMessage(err) }));
  }

  /** Keeps the newest two instances of a container (current + previous for `logs --previous`). */
  private async pruneOld(uid: string, name: string, role: 'init' | 'app'): Promise<void> {
    const all = instancesOf(await this.d.cache.fresh(), uid, name, role);
    for (const old of all.slice(2)) if (old.state !== 'running') await this.d.runtime.removeContainer(old.id);
  }

  private async pullSecrets(pod: Pod): Promise<PullAuth[]> {
    const out: PullAuth[] = [];
    for (const ref of pod.spec?.imagePullSecrets ?? []) {
      if (!ref.name) continue;
      const s = await this.d.client.get<Kube<Secret>>(R.secrets, ref.name, pod.metadata?.namespace).catch(() => undefined);
      const raw = s?.data?.['.dockerconfigjson'];
      if (raw) out.push({ dockerConfigJson: Buffer.from(raw, 'base64').toString('utf8') });
    }
    return out;
  }

  private async containerConfig(rec: PodRecord, c: Container, role: 'init' | 'app', attempt: number, volumes: Map<string, string>): Promise<ContainerConfig> {
    const ns = rec.pod.metadata?.namespace ?? 'default';
    const refs = envReferences(c);
    const src: EnvSources = { configMaps: new Map(), secrets: new Map(), services: [], podIP: rec.podIP, hostIP: this.d.nodeIP };
    for (const n of refs.configMaps) {
      const cm = await this.d.client.get<Kube<ConfigMap>>(R.configmaps, n, ns).catch(() => undefined);
      if (cm) src.configMaps.set(n, cm);
    }
    for (const n of refs.secrets) {
      const s = await this.d.client.get<Kube<Secret>>(R.secrets, n, ns).catch(() => undefined);
      if (s) src.secrets.set(n, s);
    }
    if (rec.pod.spec?.enableServiceLinks !== false) src.services = await this.serviceLinks(ns);
    const dir = this.podDir(rec.uid);
    const mounts = [
      { hostPath: join(dir, 'etc', 'hosts'), containerPath: '/etc/hosts', readOnly: false },
      { hostPath: join(dir, 'etc', 'resolv.conf'), containerPath: '/etc/resolv.conf', readOnly: false },
      ...containerMounts(c, volumes),
    ];
    return {
      name: c.name, role, image: c.image ?? '', command: [...(c.command ?? [])], args: [...(c.args ?? [])], overrideEntrypoint: (c.command ?? []).length > 0,
      env: renderEnv(rec.pod as Kube<Pod>, c, src), mounts, workingDir: c.workingDir, tty: !!c.tty, stdin: !!c.stdin, stdinOnce: !!c.stdinOnce, attempt,
      cpuLimitMilli: milliCpu(c.resources?.limits?.cpu), cpuRequestMilli: milliCpu(c.resources?.requests?.cpu), memoryLimitBytes: Math.round(parseQuantity(c.resources?.limits?.memory)),
    };
  }

  /** Services whose environment variables a pod in `ns` gets: its namespace's, plus `kubernetes` from default. */
  private async serviceLinks(ns: string): Promise<Service[]> {
    const all = this.d.services?.();
    if (all) {
      return all.filter((s) => s.metadata?.namespace === ns || (ns !== 'default' && s.metadata?.namespace === 'default' && s.metadata.name === 'kubernetes'));
    }
    const out: Service[] = (await this.d.client.list<Kube<Service>>(R.services, { namespace: ns }).catch(() => ({ items: [] }))).items;
    if (ns !== 'default') {
      const k = await this.d.client.get<Kube<Service>>(R.services, 'kubernetes', 'default').catch(() => undefined);
      if (k) out.push(k);
    }
    return out;
  }

  /** preStop hook, then SIGTERM/grace/SIGKILL. */
  private async stopOne(rec: PodRecord, c: Container | undefined, inst: ContainerInfo, graceSeconds: number): Promise<void> {
    const deadline = Date.now() + graceSeconds * 1000;
    const hook = c?.lifecycle?.preStop;
    if (hook?.exec?.command && graceSeconds > 0) {
      await this.d.runtime.execSync(inst.id, [...hook.exec.command], graceSeconds * 1000).catch(() => undefined);
    } else if (hook?.sleep?.seconds && graceSeconds > 0) {
      await new Promise((r) => setTimeout(r, Math.min(hook.sleep!.seconds, graceSeconds) * 1000));
    }
    rec.probers.get(inst.id)?.stop();
    rec.probers.delete(inst.id);
    await this.d.runtime.stopContainer(inst.id, Math.max(0, Math.ceil((deadline - Date.now()) / 1000)));
  }

  private async killContainers(rec: PodRecord, snap: RuntimeSnapshot, graceSeconds: number, remove: boolean): Promise<void> {
    const specs = [...(rec.pod.spec?.containers ?? []), ...(rec.pod.spec?.initContainers ?? [])];
    const mine = snap.containers.filter((c) => c.podUid === rec.uid);
    await Promise.all(mine.filter((c) => c.state === 'running').map((c) => this.stopOne(rec, specs.find((s) => s.name === c.name), c, graceSeconds)));
    if (remove) for (const c of mine) await this.d.runtime.removeContainer(c.id);
  }

  /** Stops everything of a pod gracefully and removes its containers, sandbox, address and files. */
  async terminate(rec: PodRecord, graceSeconds: number): Promise<void> {
    const snap = await this.d.cache.fresh();
    await this.killContainers(rec, snap, graceSeconds, true);
    for (const sb of snap.sandboxes.filter((s) => s.podUid === rec.uid)) await this.d.runtime.removeSandbox(sb.id);
    await this.d.network.detach(rec.uid);
    rec.netSandbox = undefined;
    await rm(this.podDir(rec.uid), { recursive: true, force: true });
    rec.etcFiles = undefined;
  }

  /** A finished pod keeps its exited containers (for logs) but gives back its sandbox and address. */
  private async stopSandbox(rec: PodRecord): Promise<void> {
    const snap = await this.d.cache.fresh();
    for (const p of rec.probers.values()) p.stop();
    rec.probers.clear();
    await this.killContainers(rec, snap, this.graceOf(rec.pod), false);
    for (const sb of snap.sandboxes.filter((s) => s.podUid === rec.uid)) await this.d.runtime.removeSandbox(sb.id);
    await this.d.network.detach(rec.uid);
    rec.netSandbox = undefined;
  }

  /** Kills runtime objects of pods this node no longer has (deleted while we were away, or forcibly). */
  async cleanupOrphans(liveUids: Set<string>): Promise<void> {
    const snap = await this.d.cache.fresh();
    const orphanUids = new Set([...snap.sandboxes.map((s) => s.podUid), ...snap.containers.map((c) => c.podUid)].filter((u) => u && !liveUids.has(u)));
    for (const uid of orphanUids) {
      const rec = this.records.get(uid) ?? { uid, pod: { spec: { containers: [] } } as unknown as Pod, podIP: '', waiting: new Map(), probers: new Map(), pullErrors: new Map() };
      this.d.log.info({ uid }, 'removing containers of a pod that is gone');
      await this.terminate(rec, this.records.has(uid) ? this.graceOf(rec.pod) : 0);
      this.forget(uid);
    }
    await this.d.network.retain(liveUids);
  }

  forget(uid: string): void {
    const rec = this.records.get(uid);
    for (const p of rec?.probers.values() ?? []) p.stop();
    this.records.delete(uid);
    this.d.backoff.forgetPrefix(`${uid}/`);
  }

  stopAll(): void {
    this.closed = true;
    for (const uid of [...this.records.keys()]) {
      const rec = this.records.get(uid)!;
      for (const p of rec.probers.values()) p.stop();
    }
  }

  private view(rec: PodRecord, snap: RuntimeSnapshot, c: Container, role: 'init' | 'app'): ContainerView {
    const [latest, previous] = instancesOf(snap, rec.uid, c.name, role);
    const prober = latest?.state === 'running' ? rec.probers.get(latest.id) : undefined;
    const running = latest?.state === 'running';
    const final = !!latest && latest.state === 'exited' && (role === 'init' ? latest.exitCode === 0 || rec.pod.spec?.restartPolicy === 'Never' : !shouldRestart(rec.pod.spec?.restartPolicy, latest.exitCode));
    return {
      name: c.name, image: c.image ?? '', latest, previous, final, waiting: rec.waiting.get(c.name),
      ready: running && (role === 'app' ? (prober?.state.ready ?? (!c.readinessProbe && !c.startupProbe)) : false),
      started: running && (prober?.state.started ?? !c.startupProbe),
    };
  }

  /** Writes the pod's status when it changed; true when it wrote. */
  private async writeStatus(rec: PodRecord, snap: RuntimeSnapshot, sandboxOk: boolean): Promise<boolean> {
    const spec = rec.pod.spec!;
    const init = (spec.initContainers ?? []).map((c) => this.view(rec, snap, c, 'init'));
    const initDone = init.every((v) => v.latest?.state === 'exited' && v.latest.exitCode === 0);
    const initFailed = spec.restartPolicy === 'Never' && init.some((v) => v.latest?.state === 'exited' && v.latest.exitCode !== 0);
    const app = spec.containers.map((c) => this.view(rec, snap, c, 'app'));
    if (!initDone) for (const v of app) v.waiting ??= { reason: 'PodInitializing' };
    const pv: PodView = { init, app, podIP: sandboxOk ? rec.podIP : '', hostIP: this.d.nodeIP, initDone, initFailed, runtime: this.d.runtime.name };
    const status = renderPodStatus(rec.pod as Kube<Pod>, pv);
    const json = JSON.stringify(status);
    if (json === rec.lastStatus || json === JSON.stringify(rec.pod.status)) return false;
    const m = rec.pod.metadata!;
    await this.d.client.patch(R.pods, m.name!, { status }, { namespace: m.namespace, type: 'merge', subresource: 'status' });
    rec.lastStatus = json;
    return true;
  }
}
