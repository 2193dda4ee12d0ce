import type { NetworkPolicy } from 'kubernetes-types/networking/v1.js';
import { NetpolApplier } from '../apply.js';
import { toNamespaceInfo, toPodInfo, toPolicyInfo, type Snapshot } from '../model.js';
import { renderNetpol } from '../render.js';
import { makeNamespace, makePod, parsePortDecl } from '../testing.js';
import { LAB_POD_CIDR, LabNetwork } from './network.js';
import { expected, type PodDecl, type Step, type Suite } from './scenario.js';

/**
 * Runs a suite: builds the lab network once, then per scenario resets pods, labels and policies to
 * the suite's start, and per step changes the model, programs the node netns with the agent's own
 * render + apply, probes every pair on every probe port and compares with the truth table.
 */

export const LAB_NODE = 'lab-node';

export interface ProbeResult {
  from: string;
  to: string;
  port: string;
  expected: boolean;
  actual: boolean;
}

export interface StepResult {
  scenario: string;
  step: string;
  pods: string[];
  ports: string[];
  probes: ProbeResult[];
  mismatches: number;
  error?: string;
}

export interface SuiteResult {
  file: string;
  name: string;
  steps: StepResult[];
  ok: boolean;
}

export interface RunOptions {
  /** first-try probe timeout; mismatches are retried with `retryTimeoutMs` */
  timeoutMs?: number;
  retryTimeoutMs?: number;
  retries?: number;
  /** called as the lab is built so a Ctrl-C handler can tear it down */
  onLab?: (lab: LabNetwork | null) => void;
}

interface LabState {
  namespaces: Map<string, Record<string, string>>;
  pods: Map<string, PodDecl & { ip: string }>;
  policies: Map<string, NetworkPolicy>;
}

class LabRun {
  readonly net = new LabNetwork();
  readonly applier = new NetpolApplier(this.net.node);
  state: LabState = { namespaces: new Map(), pods: new Map(), policies: new Map() };
  private nextIp = 10;

  constructor(readonly suite: Suite, readonly opts: RunOptions) {}

  allocIp(decl: PodDecl): string {
    return decl.ip ?? `10.244.0.${this.nextIp++}`;
  }

  snapshot(): Snapshot {
    const pods = [...this.state.pods.entries()].map(([key, d]) => {
      const [ns, name] = key.split('/');
      return toPodInfo(makePod(ns, name, { labels: d.labels, ip: d.ip, node: LAB_NODE, ports: d.ports }))!;
    });
    return {
      nodeName: LAB_NODE,
      pods,
      namespaces: [...this.state.namespaces.entries()].map(([n, l]) => toNamespaceInfo(makeNamespace(n, l))),
      policies: [...this.state.policies.values()].map(toPolicyInfo),
    };
  }

  async program(): Promise<void> {
    await this.applier.apply(renderNetpol(this.snapshot(), { podCIDR: LAB_POD_CIDR }));
    await this.net.flushConntrack();
  }

  private async addPod(key: string, decl: PodDecl): Promise<void> {
    const ip = this.allocIp(decl);
    const listen = decl.ports.map(parsePortDecl).map((p) => ({ port: p.port, protocol: p.protocol }));
    await this.net.addPod(key, ip, listen);
    this.state.pods.set(key, { ...decl, ip });
  }

  /** Brings pods, labels and policies back to the suite's start (pods kept when unchanged). */
  async reset(): Promise<void> {
    this.state.policies.clear();
    this.state.namespaces = new Map(Object.entries(this.suite.namespaces));
    for (const key of [...this.state.pods.keys()]) {
      if (!this.suite.pods[key]) {
        this.state.pods.delete(key);
        await this.net.removePod(key);
      }
    }
    for (const [key, decl] of Object.entries(this.suite.pods)) {
      const cur = this.state.pods.get(key);
      if (cur) this.state.pods.set(key, { ...decl, ip: cur.ip });
      else await this.addPod(key, decl);
    }
  }

  async applyStep(step: Step): Promise<void> {
    for (const key of step.removePods) {
      this.state.pods.delete(key);
      await this.net.removePod(key);
    }
    for (const [key, decl] of Object.entries(step.addPods)) await this.addPod(key, decl);
    for (const [key, labels] of Object.entries(step.labelPods)) {
      const pod = this.state.pods.get(key);
      if (!pod) throw new Error(`labelPods: no pod ${key}`);
      this.state.pods.set(key, { ...pod, labels });
    }
    for (const [ns, labels] of Object.entries(step.labelNamespaces)) this.state.namespaces.set(ns, labels);
    for (const key of step.delete) this.state.policies.delete(key);
    for (const np of step.apply) this.state.policies.set(`${np.metadata!.namespace}/${np.metadata!.name}`, np);
  }

  async probeAll(step: Step): Promise<ProbeResult[]> {
    const keys = [...this.state.pods.keys()].sort();
    const jobs: Promise<ProbeResult>[] = [];
    for (const from of keys) for (const to of keys) for (const port of this.suite.probePorts) {
      jobs.push(this.probeOne(step, from, to, port));
    }
    return Promise.all(jobs);
  }

  private async probeOne(step: Step, from: string, to: string, port: string): Promise<ProbeResult> {
    const want = expected(step, from, to, port);
    const p = parsePortDecl(port);
    const agent = this.net.agent(from)!;
    const req = { host: this.state.pods.get(to)!.ip, port: p.port, protocol: p.protocol as 'TCP' | 'UDP' };
    let actual = await agent.probe({ ...req, timeoutMs: this.opts.timeoutMs ?? 1000 });
    for (let i = 0; actual !== want && i < (this.opts.retries ?? 2); i++) actual = await agent.probe({ ...req, timeoutMs: this.opts.retryTimeoutMs ?? 3000 });
    return { from, to, port, expected: want, actual };
  }
}

export async function runSuite(suite: Suite, opts: RunOptions = {}): Promise<SuiteResult> {
  const run = new LabRun(suite, opts);
  const steps: StepResult[] = [];
  opts.onLab?.(run.net);
  try {
    await run.net.create();
    await run.applier.ensureBase({ podCIDR: LAB_POD_CIDR });
    for (const sc of suite.scenarios) {
      await run.reset();
      for (const step of sc.steps) {
        const res: StepResult = { scenario: sc.name, step: step.name, pods: [], ports: suite.probePorts, probes: [], mismatches: 0 };
        steps.push(res);
        try {
          await run.applyStep(step);
          await run.program();
          res.pods = [...run.state.pods.keys()].sort();
          res.probes = await run.probeAll(step);
          res.mismatches = res.probes.filter((p) => p.expected !== p.actual).length;
        } catch (err) {
          res.error = err instanceof Error ? err.message : String(err);
        }
      }
    }
  } finally {
    await run.net.destroy();
    opts.onLab?.(null);
  }
  return { file: suite.file, name: suite.name, steps, ok: steps.every((s) => !s.error && s.mismatches === 0) };
}
