import type { NetworkPolicy } from 'kubernetes-types/networking/v1.js';
import { parseAllDocuments } from 'yaml';
import { SkiffError } from '../../util/errors.js';
import { parsePortDecl } from '../testing.js';

/**
 * Policy-lab suite files (YAML; format in policies/README.md): namespaces with labels, pods with
 * labels and ports, the probed ports, and scenarios made of steps with a truth table per step.
 */

export interface PodDecl {
  labels: Record<string, string>;
  ports: string[];
  ip?: string;
}

export interface Expectation {
  /** probe ports this block covers (`80/TCP`); undefined = all of the suite's */
  ports?: string[];
  default: 'allow' | 'deny';
  /** `allow|deny FROM -> TO`, later lines win; patterns `*`, `ns/*`, `*\/pod`, `ns/pod`, comma lists */
  rules: string[];
  /** a text matrix: header of pod keys, then one row per source, `.` allowed, `X` denied */
  table?: string;
}

export interface Step {
  name: string;
  apply: NetworkPolicy[];
  delete: string[];
  labelPods: Record<string, Record<string, string>>;
  labelNamespaces: Record<string, Record<string, string>>;
  addPods: Record<string, PodDecl>;
  removePods: string[];
  expect: Expectation[];
}

export interface Scenario {
  name: string;
  steps: Step[];
}

export interface Suite {
  file: string;
  name: string;
  namespaces: Record<string, Record<string, string>>;
  pods: Record<string, PodDecl>;
  probePorts: string[];
  scenarios: Scenario[];
}

type Raw = Record<string, unknown>;

function bad(file: string, msg: string): never {
  throw new SkiffError('ERR_LAB_SUITE', `${file}: ${msg}`);
}

function obj(v: unknown, file: string, what: string): Raw {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) bad(file, `${what} must be a mapping`);
  return v as Raw;
}

function list(v: unknown, file: string, what: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) bad(file, `${what} must be a list`);
  return v;
}

function labels(v: unknown, file: string, what: string): Record<string, string> {
  return Object.fromEntries(Object.entries(obj(v, file, what)).map(([k, x]) => [k, String(x)]));
}

function podDecl(v: unknown, file: string, key: string, defaultPorts: string[]): PodDecl {
  if (!/^[a-z0-9-]+\/[a-z0-9-]+$/.test(key)) bad(file, `pod key ${JSON.stringify(key)} must be ns/name`);
  const o = obj(v, file, `pod ${key}`);
  const ports = o.ports === undefined ? defaultPorts : list(o.ports, file, `pod ${key} ports`).map(String);
  for (const p of ports) parsePortDecl(p);
  return { labels: labels(o.labels, file, `pod ${key} labels`), ports, ip: o.ip === undefined ? undefined : String(o.ip) };
}

function expectation(v: unknown, file: string, where: string): Expectation {
  const o = obj(v, file, where);
  const def = o.default ?? 'allow';
  if (def !== 'allow' && def !== 'deny') bad(file, `${where}: default must be allow or deny`);
  const rules = list(o.rules, file, `${where} rules`).map(String);
  for (const r of rules) if (!/^(allow|deny)\s+\S+\s*->\s*\S+$/.test(r.trim())) bad(file, `${where}: bad rule ${JSON.stringify(r)} (want "allow|deny FROM -> TO")`);
  return { ports: o.ports === undefined ? undefined : list(o.ports, file, `${where} ports`).map(String), default: def, rules, table: o.table === undefined ? undefined : String(o.table) };
}

function step(v: unknown, file: string, where: string, defaultPorts: string[]): Step {
  const o = obj(v, file, where);
  const apply = list(o.apply, file, `${where} apply`).map((p) => {
    const np = obj(p, file, `${where} policy`) as unknown as NetworkPolicy;
    if (!np.metadata?.name || !np.metadata.namespace) bad(file, `${where}: every policy needs metadata.name and metadata.namespace`);
    return np;
  });
  const addPods = Object.fromEntries(Object.entries(obj(o.addPods, file, `${where} addPods`)).map(([k, d]) => [k, podDecl(d, file, k, defaultPorts)]));
  const expectRaw = o.expect;
  if (expectRaw === undefined) bad(file, `${where}: expect is required`);
  const expect = Array.isArray(expectRaw) ? expectRaw.map((e, i) => expectation(e, file, `${where} expect[${i}]`)) : [expectation(expectRaw, file, `${where} expect`)];
  return {
    name: String(o.name ?? where),
    apply,
    delete: list(o.delete, file, `${where} delete`).map(String),
    labelPods: Object.fromEntries(Object.entries(obj(o.labelPods, file, `${where} labelPods`)).map(([k, l]) => [k, labels(l, file, k)])),
    labelNamespaces: Object.fromEntries(Object.entries(obj(o.labelNamespaces, file, `${where} labelNamespaces`)).map(([k, l]) => [k, labels(l, file, k)])),
    addPods,
    removePods: list(o.removePods, file, `${where} removePods`).map(String),
    expect,
  };
}

export function parseSuite(text: string, file: string): Suite {
  const docs = parseAllDocuments(text);
  if (docs.length !== 1) bad(file, 'expected exactly one YAML document');
  if (docs[0].errors.length) bad(file, docs[0].errors[0].message);
  const root = obj(docs[0].toJSON(), file, 'suite');
  const probePorts = list(root.ports ?? ['80/TCP'], file, 'ports').map(String);
  for (const p of probePorts) {
    const d = parsePortDecl(p);
    if (d.protocol === 'SCTP') bad(file, 'SCTP cannot be probed here (no SCTP sockets): render-test it instead');
  }
  const defaultPodPorts = root.podPorts === undefined ? probePorts : list(root.podPorts, file, 'podPorts').map(String);
  for (const p of defaultPodPorts) parsePortDecl(p);
  const namespaces = Object.fromEntries(Object.entries(obj(root.namespaces, file, 'namespaces')).map(([k, l]) => [k, labels(l, file, `namespace ${k}`)]));
  const pods = Object.fromEntries(Object.entries(obj(root.pods, file, 'pods')).map(([k, d]) => [k, podDecl(d, file, k, defaultPodPorts)]));
  for (const key of Object.keys(pods)) if (!namespaces[key.split('/')[0]]) bad(file, `pod ${key}: namespace not declared`);
  const scenarios = list(root.scenarios, file, 'scenarios').map((s, i) => {
    const o = obj(s, file, `scenario ${i}`);
    const name = String(o.name ?? `scenario ${i}`);
    return { name, steps: list(o.steps, file, `${name} steps`).map((st, j) => step(st, file, `${name} step ${j}`, defaultPodPorts)) };
  });
  if (scenarios.length === 0) bad(file, 'no scenarios');
  return { file, name: String(root.name ?? file), namespaces, pods, probePorts, scenarios };
}

function patternMatches(pattern: string, key: string): boolean {
  return pattern.split(',').some((p) => {
    if (p === '*' || p === '*/*') return true;
    const [ns, name] = p.split('/');
    const [kns, kname] = key.split('/');
    return (ns === '*' || ns === kns) && (name === undefined || name === '*' || name === kname);
  });
}

function parseTable(table: string): Map<string, boolean> {
  const rows = table.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => l.split(/\s+/));
  const header = rows[0] ?? [];
  const out = new Map<string, boolean>();
  for (const row of rows.slice(1)) {
    const from = row[0];
    if (row.length - 1 !== header.length) throw new SkiffError('ERR_LAB_SUITE', `table row ${from}: ${row.length - 1} cells for ${header.length} columns`);
    row.slice(1).forEach((cell, i) => out.set(`${from}>${header[i]}`, cell === '.'));
  }
  return out;
}

/** The expected verdict of one probe; a pod always reaches itself. */
export function expected(step: Step, from: string, to: string, port: string): boolean {
  if (from === to) return true;
  const block = [...step.expect].reverse().find((e) => !e.ports || e.ports.includes(port));
  if (!block) return true;
  if (block.table) {
    const v = parseTable(block.table).get(`${from}>${to}`);
    if (v !== undefined) return v;
  }
  let verdict = block.default === 'allow';
  for (const rule of block.rules) {
    const m = rule.trim().match(/^(allow|deny)\s+(\S+)\s*->\s*(\S+)$/)!;
    if (patternMatches(m[2], from) && patternMatches(m[3], to)) verdict = m[1] === 'allow';
  }
  return verdict;
}
