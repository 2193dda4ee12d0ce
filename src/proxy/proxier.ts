import { EventEmitter } from 'node:events';
import type { Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import type { KubeObject } from '../api/object.js';
import { objectKey } from '../api/object.js';
import type { Informer } from '../client/types.js';
import type { Host } from '../host/host.js';
import { HINT_CHAIN, chainsInSave, type Iptables } from '../host/iptables.js';
import { componentLogger } from '../util/log.js';
import { errorMessage, SkiffError } from '../util/errors.js';
import { jumpRules, isProxyChain } from './chains.js';
import { applyConntrackCleanup, planConntrackCleanup, type UdpPortState } from './conntrack.js';
import { ServiceHealthServers, type ProxyHealthStatus, type ServiceHealth } from './healthcheck.js';
import { applyLoadBalancerAddresses } from './lbaddr.js';
import { proxyMetrics } from './metrics.js';
import { endpointsOf, sliceServiceKey, servicePortsOf, usableEndpoints, type EndpointInfo, type ServicePortInfo } from './model.js';
import {
  assembleRuleset,
  countRules,
  isLargeCluster,
  renderRestore,
  renderRestoreChanges,
  renderServicePort,
  renderSharedChains,
  sharedFragmentsDiffer,
  type ChainChanges,
  type RenderContext,
  type RestoreDocument,
  type Ruleset,
  type ServiceRules,
} from './render.js';
import { SyncRunner } from './runner.js';

const log = componentLogger('proxy');

/** Annotation the EndpointSlice controller sets to when the change that caused the slice happened. */
export const TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

export interface ProxierOptions {
  iptables: Iptables;
  host: Host;
  services: Informer<KubeObject>;
  slices: Informer<KubeObject>;
  nodes?: Informer<KubeObject>;
  ctx: RenderContext;
  minSyncIntervalMs: number;
  fullResyncIntervalMs: number;
  /** Bridge that holds LoadBalancer ingress IPs as /32s; null to leave addresses alone. */
  lbDevice: string | null;
  /** Where healthCheckNodePorts listen; null to not serve them. */
  healthCheckBindAddress: string | null;
  /** Delete stale UDP conntrack entries (default true). */
  conntrack?: boolean;
}

export interface SyncReport {
  mode: 'full' | 'partial' | 'noop';
  durationMs: number;
  chains: number;
  rules: number;
  /** Network programming latency of the EndpointSlice changes this sync carried, in ms. */
  latenciesMs: number[];
}

interface PortState {
  sp: ServicePortInfo;
  endpoints: EndpointInfo[];
}

/**
 * Keeps the kernel's SKIFF- service rules equal to the render of the informer caches. Handlers only
 * mark services dirty; `syncProxyRules` re-renders dirty services, diffs against what was applied
 * and restores only changed chains (a full rewrite at start, periodically and after failures).
 */
export class Proxier extends EventEmitter {
  private readonly runner: SyncRunner;
  private readonly dirty = new Set<string>();
  private readonly changeTimes = new Map<string, number>();
  private readonly rendered = new Map<string, ServiceRules>();
  private readonly portsBySvc = new Map<string, string[]>();
  private readonly ports = new Map<string, PortState>();
  /** Ports as rendered by this sync, by service key; become `ports` once applied. */
  private readonly pendingPorts = new Map<string, { sps: ServicePortInfo[]; eps: Map<string, EndpointInfo[]> }>();
  private readonly healthServers?: ServiceHealthServers;
  /** The render context: the node's settings plus large-cluster mode, which follows the endpoint count. */
  private ctx: RenderContext;
  /** Endpoints in each Service's slices, and their sum (large-cluster mode). */
  private readonly endpointCounts = new Map<string, number>();
  private totalEndpoints = 0;
  private lastApplied: Ruleset | null = null;
  private needFull = true;
  private lastSuccess = 0;
  private pendingSince = 0;
  private failures = 0;
  private lbKey?: string;
  private healthKey = '';
  private readonly metrics = proxyMetrics();

  constructor(private readonly o: ProxierOptions) {
    super();
    this.ctx = { ...o.ctx };
    this.runner = new SyncRunner(() => this.syncProxyRules(), {
      minIntervalMs: o.minSyncIntervalMs,
      maxIntervalMs: o.fullResyncIntervalMs,
      onPeriodic: () => {
        this.needFull = true;
      },
    });
    if (o.healthCheckBindAddress) this.healthServers = new ServiceHealthServers(o.healthCheckBindAddress, log);
    o.slices.addIndex('service', (s) => {
      const k = sliceServiceKey(s as unknown as EndpointSlice);
      return k ? [k] : [];
    });
    o.services.addHandlers({
      add: (s) => this.markDirty(objectKey(s)),
      update: (_old, s) => this.markDirty(objectKey(s)),
      delete: (s) => this.markDirty(objectKey(s)),
    });
    o.slices.addHandlers({
      add: (s) => this.markSlice(s),
      update: (old, s) => {
        this.markSlice(old);
        this.markSlice(s);
      },
      delete: (s) => this.markSlice(s),
    });
  }

  /** Starts syncing; call after the informers have synced (nothing renders before that). */
  start(): void {
    this.runner.start();
    this.runner.run();
  }

  async stop(): Promise<void> {
    await this.runner.stop();
    await this.healthServers?.stop();
  }

  /** Resolves when no sync is running or queued. */
  idle(): Promise<void> {
    return this.runner.idle();
  }

  /** Forces the next sync to rewrite everything. */
  requestFullSync(): void {
    this.needFull = true;
    this.runner.run();
  }

  healthStatus(): ProxyHealthStatus {
    const node = this.o.nodes?.get(this.o.ctx.nodeName);
    const nodeEligible = !this.o.nodes || (!!node && !node.metadata?.deletionTimestamp);
    return { lastUpdated: this.lastSuccess, oldestPending: this.pendingSince, nodeEligible };
  }

  healthCheckPorts(): number[] {
    return this.healthServers?.ports() ?? [];
  }

  private markSlice(s: KubeObject): void {
    const key = sliceServiceKey(s as unknown as EndpointSlice);
    if (!key) return;
    const ann = Date.parse(s.metadata?.annotations?.[TRIGGER_TIME_ANNOTATION] ?? '');
    const t = Number.isFinite(ann) ? Math.min(ann, Date.now()) : Date.now();
    const cur = this.changeTimes.get(key);
    if (cur === undefined || t < cur) this.changeTimes.set(key, t);
    this.markDirty(key);
  }

  private markDirty(svcKey: string): void {
    this.dirty.add(svcKey);
    if (this.pendingSince === 0) this.pendingSince = Date.now();
    this.runner.run();
  }

  /** Re-renders one Service's ports from the caches; returns the port keys it had and has. */
  private refreshService(svcKey: string): string[] {
    const before = this.portsBySvc.get(svcKey) ?? [];
    for (const k of before) {
      if (!this.oldRules.has(k)) this.oldRules.set(k, this.rendered.get(k));
      this.rendered.delete(k);
    }
    const svc = this.o.services.get(svcKey) as Service | undefined;
    const sps = svc ? servicePortsOf(svc) : [];
    const eps = endpointsOf(sps, this.o.slices.byIndex('service', svcKey) as unknown as EndpointSlice[]);
    const now = sps.map((sp) => sp.key);
    for (const sp of sps) {
      const list = eps.get(sp.key) ?? [];
      const rules = renderServicePort(sp, list, this.ctx);
      if (rules.anchor !== this.oldRules.get(sp.key)?.anchor) this.orderedKeys = undefined;
      this.rendered.set(sp.key, rules);
    }
    if (before.join('\n') !== now.join('\n')) this.orderedKeys = undefined;
    if (sps.length > 0) this.portsBySvc.set(svcKey, now);
    else this.portsBySvc.delete(svcKey);
    this.pendingPorts.set(svcKey, { sps, eps });
    return [...new Set([...before, ...now])];
  }

  private orderedKeys?: string[];
  /** Rules of the ports this sync re-rendered, as they were before (for the delta). */
  private readonly oldRules = new Map<string, ServiceRules | undefined>();

  /** Rendered ports in restore order (descending anchor), re-sorted only when a port or anchor changed. */
  private orderedPorts(): ServiceRules[] {
    const r = this.rendered;
    this.orderedKeys ??= [...r.keys()].sort((a, b) => {
      const x = r.get(a)!.anchor;
      const y = r.get(b)!.anchor;
      return x < y ? 1 : x > y ? -1 : 0;
    });
    return this.orderedKeys.map((k) => r.get(k)!);
  }

  /** One sync: render what changed, restore it, then conntrack, LB addresses and health ports. */
  async syncProxyRules(): Promise<void> {
    if (!this.o.services.hasSynced() || !this.o.slices.hasSynced()) return;
    const started = performance.now();
    let full = this.needFull;
    const everything = () => new Set([...this.o.services.list().map((s) => objectKey(s)), ...this.portsBySvc.keys(), ...this.dirty]);
    let work = full ? everything() : new Set(this.dirty);
    this.countEndpoints(work);
    if (isLargeCluster(this.totalEndpoints) !== !!this.ctx.largeCluster) {
      // The mode changes every endpoint rule: re-render everything.
      this.ctx = { ...this.o.ctx, largeCluster: isLargeCluster(this.totalEndpoints) };
      if (!full) {
        full = true;
        work = everything();
        this.countEndpoints(work);
      }
    }
    this.dirty.clear();
    const times = new Map<string, number>();
    for (const k of work) {
      const t = this.changeTimes.get(k);
      if (t !== undefined) times.set(k, t);
      this.changeTimes.delete(k);
    }
    this.oldRules.clear();
    const touchedPorts = [...work].flatMap((k) => this.refreshService(k));
    try {
      let next: Ruleset;
      let doc: RestoreDocument;
      const rewriteAll = full || !this.lastApplied;
      if (rewriteAll) {
        next = assembleRuleset(this.orderedPorts(), this.ctx);
        const stale = this.lastApplied ? staleAfter(this.lastApplied, next) : await this.staleChains(next);
        doc = renderRestore(next, null, stale, this.o.iptables.backend);
      } else {
        next = this.lastApplied!;
        doc = this.renderDelta(next, touchedPorts);
      }
      if (doc.text !== '') await this.o.iptables.restore(doc.text, { noflush: true });
      // After the restore, so the chains they jump to exist (no -N per chain first).
      if (rewriteAll) await this.ensureJumps();
      this.lastApplied = next;
      this.needFull = false;
      this.failures = 0;
      this.lastSuccess = Date.now();
      if (this.dirty.size === 0) this.pendingSince = 0;
      const latencies = [...times.values()].map((t) => Date.now() - t);
      const mode = doc.text === '' ? 'noop' : full ? 'full' : 'partial';
      this.recordSuccess(mode, started, next, latencies);
      await this.afterApply(touchedPorts);
      const report: SyncReport = { mode, durationMs: performance.now() - started, chains: doc.chains, rules: doc.rules, latenciesMs: latencies };
      this.emit('synced', report);
    } catch (err) {
      this.onSyncFailure(err, work, times);
    }
  }

  /**
   * Partial sync: updates `rs` (the applied ruleset) in place for the re-rendered ports and returns
   * the document for just the chains that changed; the shared chains are rebuilt only when some
   * port's fragment in them changed. On failure the caller drops `rs` and syncs fully.
   */
  private renderDelta(rs: Ruleset, touchedPorts: string[]): RestoreDocument {
    const write: ChainChanges = { nat: [], filter: [] };
    const remove: ChainChanges = { nat: [], filter: [] };
    let sharedChanged = false;
    for (const k of touchedPorts) {
      const before = this.oldRules.get(k);
      const after = this.rendered.get(k);
      const keep = new Set((after?.chains ?? []).map(([name]) => name));
      for (const [name] of before?.chains ?? []) if (!keep.has(name) && rs.nat.delete(name)) remove.nat.push(name);
      for (const [name, rules] of after?.chains ?? []) {
        if (rs.nat.get(name)?.text === rules.text) continue;
        rs.nat.set(name, rules);
        write.nat.push(name);
      }
      sharedChanged ||= sharedFragmentsDiffer(before, after);
    }
    if (sharedChanged) {
      rs.ports = this.orderedPorts();
      const shared = renderSharedChains(rs.ports, this.ctx);
      rs.servicesHead = shared.servicesHead;
      rs.servicesTail = shared.servicesTail;
      for (const table of ['nat', 'filter'] as const) {
        for (const [name, rules] of shared[table]) {
          if (rs[table].get(name)?.text === rules.text) continue;
          rs[table].set(name, rules);
          write[table].push(name);
        }
      }
    }
    return renderRestoreChanges(rs, write, remove, this.o.iptables.backend);
  }

  /** Updates the endpoint counts of these Services from the slice cache (a length per slice, no parsing). */
  private countEndpoints(svcKeys: Iterable<string>): void {
    for (const k of svcKeys) {
      let n = 0;
      for (const s of this.o.slices.byIndex('service', k) as unknown as EndpointSlice[]) n += s.endpoints?.length ?? 0;
      this.totalEndpoints += n - (this.endpointCounts.get(k) ?? 0);
      if (n > 0) this.endpointCounts.set(k, n);
      else this.endpointCounts.delete(k);
    }
  }

  private recordSuccess(mode: SyncReport['mode'], started: number, next: Ruleset, latencies: number[]): void {
    const m = this.metrics;
    m.syncDuration.observe({ mode }, (performance.now() - started) / 1000);
    m.lastSync.set(this.lastSuccess / 1000);
    m.syncs.inc({ mode });
    for (const l of latencies) m.programming.observe(l / 1000);
    for (const table of ['nat', 'filter'] as const) m.rules.set({ table }, countRules(next[table]));
    if (mode !== 'noop') log.debug({ mode, ms: Math.round(performance.now() - started) }, 'synced proxy rules');
  }

  private onSyncFailure(err: unknown, work: Set<string>, times: Map<string, number>): void {
    this.metrics.restoreFailures.inc();
    this.lastApplied = null;
    this.needFull = true;
    for (const k of work) this.dirty.add(k);
    for (const [k, t] of times) if (!this.changeTimes.has(k)) this.changeTimes.set(k, t);
    this.failures++;
    const details = err instanceof SkiffError ? err.details : undefined;
    log.error({ err: errorMessage(err), code: (err as SkiffError).code, line: details?.line, failingLine: details?.failingLine, context: details?.context }, 'proxy sync failed; next sync is full');
    this.emit('syncFailed', err);
    this.runner.retryAfter(Math.min(1000 * 2 ** Math.min(this.failures - 1, 5), 30_000));
  }

  /** Work that follows a successful restore: UDP conntrack, LB addresses, health check ports. */
  private async afterApply(touchedPorts: string[]): Promise<void> {
    const cleanup: string[][] = [];
    const fresh = new Map<string, PortState>();
    for (const { sps, eps } of this.pendingPorts.values()) for (const sp of sps) fresh.set(sp.key, { sp, endpoints: eps.get(sp.key) ?? [] });
    this.pendingPorts.clear();
    let lbTouched = false;
    let hcTouched = false;
    for (const k of touchedPorts) {
      const prev = this.ports.get(k);
      const now = fresh.get(k);
      lbTouched ||= (prev?.sp.loadBalancerIPs.length ?? 0) > 0 || (now?.sp.loadBalancerIPs.length ?? 0) > 0;
      hcTouched ||= prev?.sp.healthCheckNodePort !== undefined || now?.sp.healthCheckNodePort !== undefined;
      if (this.o.conntrack !== false) cleanup.push(...planConntrackCleanup(prev as UdpPortState | undefined, now));
      if (now) this.ports.set(k, now);
      else this.ports.delete(k);
    }
    if (cleanup.length > 0) {
      const failed = await applyConntrackCleanup(this.o.host, cleanup);
      if (failed > 0) log.warn({ failed, total: cleanup.length }, 'some conntrack deletions failed');
    }
    if (lbTouched || this.lbKey === undefined) await this.syncLoadBalancerAddresses();
    if (hcTouched) await this.syncHealthServers();
  }

  private async syncLoadBalancerAddresses(): Promise<void> {
    if (!this.o.lbDevice) return;
    const ips = [...new Set([...this.ports.values()].flatMap((p) => p.sp.loadBalancerIPs))].sort();
    const key = ips.join(',');
    if (key === this.lbKey) return;
    try {
      await applyLoadBalancerAddresses(this.o.host, this.o.lbDevice, ips);
      this.lbKey = key;
    } catch (err) {
      log.warn({ err: errorMessage(err), device: this.o.lbDevice }, 'cannot program load balancer addresses');
    }
  }

  private async syncHealthServers(): Promise<void> {
    if (!this.healthServers) return;
    const wanted = new Map<number, ServiceHealth>();
    for (const { sp, endpoints } of this.ports.values()) {
      if (!sp.healthCheckNodePort) continue;
      const local = usableEndpoints(endpoints.filter((e) => e.nodeName === this.o.ctx.nodeName)).length;
      const cur = wanted.get(sp.healthCheckNodePort);
      wanted.set(sp.healthCheckNodePort, { namespace: sp.namespace, name: sp.name, localEndpoints: Math.max(local, cur?.localEndpoints ?? 0) });
    }
    const key = JSON.stringify([...wanted].sort((a, b) => a[0] - b[0]));
    if (key === this.healthKey) return;
    this.healthKey = key;
    await this.healthServers.sync(wanted);
  }

  /**
   * Our chains in the kernel that the new ruleset no longer has, from `iptables-save` (used when the
   * kernel state is not known: the first sync and after a failure; at 10k Services a save is a dump
   * of 120k rules, so a periodic full sync takes them from what it last applied instead).
   */
  private async staleChains(next: Ruleset): Promise<ChainChanges> {
    const out = { nat: [] as string[], filter: [] as string[] };
    for (const table of ['nat', 'filter'] as const) {
      const save = await this.o.iptables.save(table);
      out[table] = chainsInSave(save).filter((c) => isProxyChain(c) && !next[table].has(c));
    }
    return out;
  }

  /** The jumps from built-in chains into ours (their targets exist: the restore declares them). */
  private async ensureJumps(): Promise<void> {
    await this.o.iptables.ensureChain('mangle', HINT_CHAIN);
    for (const j of jumpRules()) await this.o.iptables.ensureRule(j);
  }
}

/** Chains of `applied` (what the kernel holds) that `next` no longer has. */
function staleAfter(applied: Ruleset, next: Ruleset): ChainChanges {
  const out: ChainChanges = { nat: [], filter: [] };
  for (const table of ['nat', 'filter'] as const) for (const name of applied[table].keys()) if (!next[table].has(name)) out[table].push(name);
  return out;
}

