import type { KubeObject } from './object.js';
import { fromLabelSelector, matches, SelectorParseError } from './labels.js';

export interface FieldError {
  /** FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, FieldValueDuplicate, FieldValueForbidden, FieldValueTypeInvalid */
  reason: string;
  field: string;
  message: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

class Errs {
  readonly list: FieldError[] = [];
  required(field: string, what = 'Required value'): void {
    this.list.push({ reason: 'FieldValueRequired', field, message: what });
  }
  invalid(field: string, value: unknown, msg: string): void {
    this.list.push({ reason: 'FieldValueInvalid', field, message: `Invalid value: ${JSON.stringify(value)}: ${msg}` });
  }
  notSupported(field: string, value: unknown, allowed: string[]): void {
    this.list.push({ reason: 'FieldValueNotSupported', field, message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed.map((a) => `"${a}"`).join(', ')}` });
  }
  duplicate(field: string, value: unknown): void {
    this.list.push({ reason: 'FieldValueDuplicate', field, message: `Duplicate value: ${JSON.stringify(value)}` });
  }
  forbidden(field: string, msg: string): void {
    this.list.push({ reason: 'FieldValueForbidden', field, message: `Forbidden: ${msg}` });
  }
  type(field: string, value: unknown, want: string): void {
    this.list.push({ reason: 'FieldValueTypeInvalid', field, message: `Invalid value: ${JSON.stringify(value)}: must be ${want}` });
  }
}

export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}
export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

/** label/annotation key: [prefix/]name */
function qualifiedNameError(key: string): string | null {
  const parts = key.split('/');
  if (parts.length > 2) return 'a qualified name must consist of alphanumeric characters, \'-\', \'_\' or \'.\', with an optional DNS subdomain prefix and \'/\'';
  const name = parts.at(-1)!;
  if (parts.length === 2 && (!parts[0] || !isDns1123Subdomain(parts[0]))) return 'prefix part must be a lowercase RFC 1123 subdomain';
  if (!name) return 'name part must be non-empty';
  if (name.length > 63) return 'name part must be no more than 63 characters';
  if (!QUALIFIED_NAME.test(name)) return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  return null;
}

/** Kinds whose names must be DNS-1123 labels rather than subdomains. */
const LABEL_NAMED = new Set(['Namespace', 'Service']);
/** RBAC objects are named like path segments (`system:node`), as in Kubernetes' ValidateRBACName. */
const PATH_SEGMENT_NAMED = new Set(['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding']);
const isPathSegmentName = (n: string) => n !== '.' && n !== '..' && !/[/%]/.test(n);

function validateMeta(o: KubeObject, namespaced: boolean, e: Errs): void {
  const m = o.metadata;
  if (!isObj(m)) {
    e.required('metadata');
    return;
  }
  const name = m.name;
  if (!name) e.required('metadata.name', 'Required value: name or generateName is required');
  else if (typeof name !== 'string') e.type('metadata.name', name, 'a string');
  else if (PATH_SEGMENT_NAMED.has(o.kind ?? '')) {
    if (!isPathSegmentName(name)) e.invalid('metadata.name', name, 'may not be \'.\' or \'..\' and may not contain \'/\' or \'%\'');
  } else if (LABEL_NAMED.has(o.kind ?? '') ? !isDns1123Label(name) : !isDns1123Subdomain(name))
    e.invalid(
      'metadata.name',
      name,
      LABEL_NAMED.has(o.kind ?? '')
        ? "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
  if (namespaced && m.namespace !== undefined && !isDns1123Label(String(m.namespace))) e.invalid('metadata.namespace', m.namespace, 'a lowercase RFC 1123 label is required');
  if (m.labels !== undefined) {
    if (!isObj(m.labels)) e.type('metadata.labels', m.labels, 'an object of string values');
    else
      for (const [k, v] of Object.entries(m.labels)) {
        const ke = qualifiedNameError(k);
        if (ke) e.invalid('metadata.labels', k, ke);
        if (typeof v !== 'string') e.type(`metadata.labels.${k}`, v, 'a string');
        else if (v.length > 63 || !LABEL_VALUE.test(v))
          e.invalid('metadata.labels', v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (max 63 characters)");
      }
  }
  if (m.annotations !== undefined) {
    if (!isObj(m.annotations)) e.type('metadata.annotations', m.annotations, 'an object of string values');
    else {
      let size = 0;
      for (const [k, v] of Object.entries(m.annotations)) {
        const ke = qualifiedNameError(k);
        if (ke) e.invalid('metadata.annotations', k, ke);
        if (typeof v !== 'string') e.type(`metadata.annotations.${k}`, v, 'a string');
        size += k.length + String(v).length;
      }
      if (size > 256 * 1024) e.list.push({ reason: 'FieldValueTooLong', field: 'metadata.annotations', message: 'Too long: must have at most 262144 bytes' });
    }
  }
}

function checkPort(e: Errs, field: string, v: unknown, required = true): void {
  if (v === undefined || v === null) {
    if (required) e.required(field);
    return;
  }
  if (typeof v !== 'number' || !Number.isInteger(v)) e.type(field, v, 'an integer');
  else if (v < 1 || v > 65535) e.invalid(field, v, 'must be between 1 and 65535, inclusive');
}

function checkIntOrStringPort(e: Errs, field: string, v: unknown): void {
  if (v === undefined) return;
  if (typeof v === 'number') checkPort(e, field, v);
  else if (typeof v === 'string') {
    if (!(v.length <= 15 && IANA_SVC_NAME.test(v) && /[a-z]/.test(v))) e.invalid(field, v, 'must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), be at most 15 characters');
  } else e.type(field, v, 'an integer or a string');
}

const PROTOCOLS = ['TCP', 'UDP', 'SCTP'];

function validateContainers(list: unknown, path: string, e: Errs, required: boolean): void {
  if (list === undefined) {
    if (required) e.required(path);
    return;
  }
  if (!Array.isArray(list)) return e.type(path, list, 'an array');
  if (required && list.length === 0) e.required(path);
  const names = new Set<string>();
  list.forEach((c: unknown, i) => {
    const p = `${path}[${i}]`;
    if (!isObj(c)) return e.type(p, c, 'an object');
    if (!c.name) e.required(`${p}.name`);
    else if (typeof c.name !== 'string' || !isDns1123Label(c.name)) e.invalid(`${p}.name`, c.name, 'a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\'');
    else if (names.has(c.name)) e.duplicate(`${p}.name`, c.name);
    else names.add(c.name);
    if (!c.image || typeof c.image !== 'string') e.required(`${p}.image`);
    if (c.ports !== undefined && !Array.isArray(c.ports)) e.type(`${p}.ports`, c.ports, 'an array');
    ((c.ports as unknown[]) ?? []).forEach((port, j) => {
      if (!isObj(port)) return e.type(`${p}.ports[${j}]`, port, 'an object');
      checkPort(e, `${p}.ports[${j}].containerPort`, port.containerPort);
      if (port.protocol !== undefined && !PROTOCOLS.includes(String(port.protocol))) e.notSupported(`${p}.ports[${j}].protocol`, port.protocol, PROTOCOLS);
    });
    if (c.imagePullPolicy !== undefined && !['Always', 'IfNotPresent', 'Never'].includes(String(c.imagePullPolicy)))
      e.notSupported(`${p}.imagePullPolicy`, c.imagePullPolicy, ['Always', 'IfNotPresent', 'Never']);
    if (c.command !== undefined && !Array.isArray(c.command)) e.type(`${p}.command`, c.command, 'an array of strings');
    if (c.args !== undefined && !Array.isArray(c.args)) e.type(`${p}.args`, c.args, 'an array of strings');
    if (c.env !== undefined && !Array.isArray(c.env)) e.type(`${p}.env`, c.env, 'an array');
  });
}

export function validatePodSpec(spec: unknown, path: string, e: Errs, allowedRestart = ['Always', 'OnFailure', 'Never']): void {
  if (!isObj(spec)) return e.required(path);
  validateContainers(spec.containers, `${path}.containers`, e, true);
  validateContainers(spec.initContainers, `${path}.initContainers`, e, false);
  if (spec.restartPolicy !== undefined && !allowedRestart.includes(String(spec.restartPolicy))) e.notSupported(`${path}.restartPolicy`, spec.restartPolicy, allowedRestart);
  if (spec.dnsPolicy !== undefined && !['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'].includes(String(spec.dnsPolicy)))
    e.notSupported(`${path}.dnsPolicy`, spec.dnsPolicy, ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None']);
  if (spec.terminationGracePeriodSeconds !== undefined && (typeof spec.terminationGracePeriodSeconds !== 'number' || spec.terminationGracePeriodSeconds < 0))
    e.invalid(`${path}.terminationGracePeriodSeconds`, spec.terminationGracePeriodSeconds, 'must be a non-negative integer');
  const vols = new Set<string>();
  ((spec.volumes as unknown[]) ?? []).forEach((v, i) => {
    if (!isObj(v)) return;
    if (!v.name) e.required(`${path}.volumes[${i}].name`);
    else if (vols.has(String(v.name))) e.duplicate(`${path}.volumes[${i}].name`, v.name);
    else vols.add(String(v.name));
  });
  for (const c of [...((spec.containers as Obj[]) ?? []), ...((spec.initContainers as Obj[]) ?? [])]) {
    if (!isObj(c)) continue;
    ((c.volumeMounts as Obj[]) ?? []).forEach((vm, j) => {
      if (isObj(vm) && !vols.has(String(vm.name))) e.list.push({ reason: 'FieldValueNotFound', field: `${path}.containers[].volumeMounts[${j}].name`, message: `Not found: ${JSON.stringify(vm.name)}` });
    });
  }
}

function validateReplicas(spec: Obj, e: Errs, path = 'spec.replicas'): void {
  const r = spec.replicas;
  if (r === undefined) return;
  if (typeof r !== 'number' || !Number.isInteger(r)) e.type(path, r, 'an integer');
  else if (r < 0) e.invalid(path, r, 'must be greater than or equal to 0');
}

function validateSelectorTemplate(spec: Obj, e: Errs, restart = ['Always']): void {
  if (!isObj(spec.selector)) {
    e.required('spec.selector');
  } else {
    const sel = spec.selector;
    if (!isObj(sel.matchLabels) && !Array.isArray(sel.matchExpressions)) e.invalid('spec.selector', sel, 'empty selector is invalid for deployment');
  }
  const tpl = spec.template;
  if (!isObj(tpl)) return e.required('spec.template');
  const labels = (isObj(tpl.metadata) ? (tpl.metadata.labels as Record<string, string>) : undefined) ?? {};
  try {
    const sel = fromLabelSelector(spec.selector as never);
    if (sel && sel.length && !matches(sel, labels)) e.invalid('spec.template.metadata.labels', labels, '`selector` does not match template `labels`');
  } catch (err) {
    if (err instanceof SelectorParseError) e.invalid('spec.selector', spec.selector, err.message);
  }
  validatePodSpec(tpl.spec, 'spec.template.spec', e, restart);
}

/** ConfigMap/Secret maps: valid config keys, string values, base64 where the values are encoded. */
function validateKeyedData(o: Obj, f: string, e: Errs, base64: boolean): void {
  const d = o[f];
  if (d === undefined || d === null) return;
  if (!isObj(d)) return e.type(f, d, 'an object');
  for (const [k, v] of Object.entries(d)) {
    if (!CONFIG_KEY.test(k)) e.invalid(`${f}[${k}]`, k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'");
    if (typeof v !== 'string') e.type(`${f}[${k}]`, v, 'a string');
    else if (base64 && !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) e.invalid(`${f}[${k}]`, '<secret contents redacted>', 'illegal base64 data');
  }
}

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];

const validators: Record<string, (o: Obj, e: Errs) => void> = {
  Pod(o, e) {
    validatePodSpec(o.spec, 'spec', e);
  },
  Service(o, e) {
    const spec = o.spec;
    if (!isObj(spec)) return e.required('spec');
    if (spec.type !== undefined && !SERVICE_TYPES.includes(String(spec.type))) return e.notSupported('spec.type', spec.type, SERVICE_TYPES);
    if (spec.type === 'ExternalName') {
      if (!spec.externalName) e.required('spec.externalName');
      return;
    }
    const ports = spec.ports;
    if (ports !== undefined && !Array.isArray(ports)) return e.type('spec.ports', ports, 'an array');
    const list = (ports as unknown[]) ?? [];
    if (list.length === 0 && spec.clusterIP !== 'None') e.required('spec.ports');
    const names = new Set<string>();
    const seen = new Set<string>();
    list.forEach((p, i) => {
      const f = `spec.ports[${i}]`;
      if (!isObj(p)) return e.type(f, p, 'an object');
      checkPort(e, `${f}.port`, p.port);
      checkIntOrStringPort(e, `${f}.targetPort`, p.targetPort);
      if (p.protocol !== undefined && !PROTOCOLS.includes(String(p.protocol))) e.notSupported(`${f}.protocol`, p.protocol, PROTOCOLS);
      if (list.length > 1 && !p.name) e.required(`${f}.name`);
      if (p.name) {
        if (names.has(String(p.name))) e.duplicate(`${f}.name`, p.name);
        names.add(String(p.name));
      }
      const key = `${p.port}/${p.protocol ?? 'TCP'}`;
      if (seen.has(key)) e.duplicate(f, { port: p.port, protocol: p.protocol ?? 'TCP' });
      seen.add(key);
      if (p.nodePort !== undefined) {
        if (spec.type !== 'NodePort' && spec.type !== 'LoadBalancer') e.forbidden(`${f}.nodePort`, 'may not be used when `type` is \'ClusterIP\'');
        else checkPort(e, `${f}.nodePort`, p.nodePort);
      }
    });
  },
  Deployment(o, e) {
    const spec = o.spec;
    if (!isObj(spec)) return e.required('spec');
    validateReplicas(spec, e);
    validateSelectorTemplate(spec, e);
    const st = spec.strategy;
    if (isObj(st) && st.type !== undefined && !['RollingUpdate', 'Recreate'].includes(String(st.type))) e.notSupported('spec.strategy.type', st.type, ['Recreate', 'RollingUpdate']);
    if (isObj(st) && st.type === 'Recreate' && st.rollingUpdate) e.forbidden('spec.strategy.rollingUpdate', 'may not be specified when strategy `type` is \'Recreate\'');
  },
  ReplicaSet(o, e) {
    if (!isObj(o.spec)) return e.required('spec');
    validateReplicas(o.spec, e);
    validateSelectorTemplate(o.spec, e);
  },
  StatefulSet(o, e) {
    if (!isObj(o.spec)) return e.required('spec');
    validateReplicas(o.spec, e);
    validateSelectorTemplate(o.spec, e);
  },
  DaemonSet(o, e) {
    if (!isObj(o.spec)) return e.required('spec');
    validateSelectorTemplate(o.spec, e);
  },
  Job(o, e) {
    const spec = o.spec;
    if (!isObj(spec)) return e.required('spec');
    const tpl = spec.template;
    if (!isObj(tpl)) return e.required('spec.template');
    validatePodSpec(tpl.spec, 'spec.template.spec', e, ['OnFailure', 'Never']);
    if (isObj(tpl.spec) && tpl.spec.restartPolicy === undefined) e.required('spec.template.spec.restartPolicy', 'Required value: valid values: "OnFailure", "Never"');
    for (const f of ['parallelism', 'completions', 'backoffLimit', 'activeDeadlineSeconds']) {
      const v = spec[f];
      if (v !== undefined && v !== null && (typeof v !== 'number' || v < 0)) e.invalid(`spec.${f}`, v, 'must be greater than or equal to 0');
    }
  },
  CronJob(o, e) {
    const spec = o.spec;
    if (!isObj(spec)) return e.required('spec');
    if (!spec.schedule || typeof spec.schedule !== 'string') e.required('spec.schedule');
    else if (spec.schedule.trim().split(/\s+/).length !== 5 && !spec.schedule.startsWith('@')) e.invalid('spec.schedule', spec.schedule, 'unparseable cron schedule: expected exactly 5 fields');
    if (spec.concurrencyPolicy !== undefined && !['Allow', 'Forbid', 'Replace'].includes(String(spec.concurrencyPolicy)))
      e.notSupported('spec.concurrencyPolicy', spec.concurrencyPolicy, ['Allow', 'Forbid', 'Replace']);
    const jt = isObj(spec.jobTemplate) ? spec.jobTemplate.spec : undefined;
    if (!isObj(jt) || !isObj(jt.template)) return e.required('spec.jobTemplate.spec.template');
    validatePodSpec(jt.template.spec, 'spec.jobTemplate.spec.template.spec', e, ['OnFailure', 'Never']);
  },
  ConfigMap(o, e) {
    for (const f of ['data', 'binaryData']) validateKeyedData(o, f, e, false);
  },
  Secret(o, e) {
    validateKeyedData(o, 'data', e, true);
    validateKeyedData(o, 'stringData', e, false);
    if (o.type === 'kubernetes.io/tls') {
      const d = { ...((o.data as Obj) ?? {}), ...((o.stringData as Obj) ?? {}) };
      for (const k of ['tls.crt', 'tls.key']) if (d[k] === undefined) e.required(`data[${k}]`);
    }
  },
  Ingress(o, e) {
    const spec = o.spec;
    if (!isObj(spec)) return e.required('spec');
    if (!spec.defaultBackend && !(Array.isArray(spec.rules) && spec.rules.length)) e.required('spec.rules', 'Required value: either `defaultBackend` or `rules` must be specified');
    ((spec.rules as Obj[]) ?? []).forEach((r, i) => {
      if (!isObj(r) || !isObj(r.http)) return;
      ((r.http.paths as Obj[]) ?? []).forEach((p, j) => {
        const f = `spec.rules[${i}].http.paths[${j}]`;
        if (!p.pathType) e.required(`${f}.pathType`, 'Required value: pathType must be specified');
        else if (!['Exact', 'Prefix', 'ImplementationSpecific'].includes(String(p.pathType))) e.notSupported(`${f}.pathType`, p.pathType, ['Exact', 'ImplementationSpecific', 'Prefix']);
        if (p.pathType !== 'ImplementationSpecific' && typeof p.path === 'string' && !p.path.startsWith('/')) e.invalid(`${f}.path`, p.path, "must be an absolute path");
        if (!isObj(p.backend)) e.required(`${f}.backend`);
      });
    });
  },
  NetworkPolicy(o, e) {
    const spec = o.spec;
    if (!isObj(spec)) return e.required('spec');
    for (const dir of ['ingress', 'egress']) {
      ((spec[dir] as Obj[]) ?? []).forEach((rule, i) => {
        ((rule?.ports as Obj[]) ?? []).forEach((p, j) => {
          const f = `spec.${dir}[${i}].ports[${j}]`;
          if (p.protocol !== undefined && !PROTOCOLS.includes(String(p.protocol))) e.notSupported(`${f}.protocol`, p.protocol, PROTOCOLS);
          checkIntOrStringPort(e, `${f}.port`, p.port);
          if (p.endPort !== undefined && (typeof p.port !== 'number' || (p.endPort as number) < p.port)) e.invalid(`${f}.endPort`, p.endPort, 'must be greater than or equal to `port`');
        });
      });
    }
  },
  HorizontalPodAutoscaler(o, e) {
    const spec = o.spec;
    if (!isObj(spec)) return e.required('spec');
    if (!isObj(spec.scaleTargetRef) || !spec.scaleTargetRef.name) e.required('spec.scaleTargetRef.name');
    if (typeof spec.maxReplicas !== 'number' || spec.maxReplicas < 1) e.invalid('spec.maxReplicas', spec.maxReplicas, 'must be greater than or equal to 1');
    if (typeof spec.minReplicas === 'number' && typeof spec.maxReplicas === 'number' && spec.minReplicas > spec.maxReplicas)
      e.invalid('spec.maxReplicas', spec.maxReplicas, 'must be greater than or equal to `minReplicas`');
  },
  PersistentVolumeClaim(o, e) {
    const spec = o.spec;
    if (!isObj(spec)) return e.required('spec');
    if (!Array.isArray(spec.accessModes) || spec.accessModes.length === 0) e.required('spec.accessModes', 'Required value: at least 1 access mode is required');
    const req = isObj(spec.resources) && isObj(spec.resources.requests) ? spec.resources.requests.storage : undefined;
    if (!req) e.required('spec.resources[storage]');
  },
  PersistentVolume(o, e) {
    const spec = o.spec;
    if (!isObj(spec)) return e.required('spec');
    if (!isObj(spec.capacity) || !spec.capacity.storage) e.required('spec.capacity');
    if (!Array.isArray(spec.accessModes) || spec.accessModes.length === 0) e.required('spec.accessModes');
  },
  PodDisruptionBudget(o, e) {
    const spec = o.spec;
    if (isObj(spec) && spec.minAvailable !== undefined && spec.maxUnavailable !== undefined) e.invalid('spec', spec, 'minAvailable and maxUnavailable cannot be both set');
  },
  Lease(o, e) {
    const spec = o.spec;
    if (isObj(spec) && spec.leaseDurationSeconds !== undefined && (typeof spec.leaseDurationSeconds !== 'number' || spec.leaseDurationSeconds <= 0))
      e.invalid('spec.leaseDurationSeconds', spec.leaseDurationSeconds, 'must be greater than 0');
  },
};

/** Validates a (defaulted) object of a kind; returns every bad field. */
export function validateObject(o: KubeObject, namespaced: boolean): FieldError[] {
  const e = new Errs();
  validateMeta(o, namespaced, e);
  const fn = o.kind ? validators[o.kind] : undefined;
  if (fn) fn(o as Obj, e);
  return e.list;
}

/** Fields that may not change on update, per kind. */
export function validateUpdate(o: KubeObject, old: KubeObject): FieldError[] {
  const e = new Errs();
  const get = (x: KubeObject, path: string): unknown => path.split('.').reduce<unknown>((a, k) => (isObj(a) ? a[k] : undefined), x);
  const immutable: Record<string, string[]> = {
    Deployment: ['spec.selector'],
    ReplicaSet: ['spec.selector'],
    DaemonSet: ['spec.selector'],
    StatefulSet: ['spec.selector', 'spec.serviceName', 'spec.volumeClaimTemplates', 'spec.podManagementPolicy'],
    Job: ['spec.selector', 'spec.template', 'spec.completions', 'spec.completionMode'],
    Service: [],
    PersistentVolumeClaim: ['spec.accessModes', 'spec.storageClassName', 'spec.volumeMode', 'spec.selector'],
    Secret: ['type'],
  };
  for (const f of immutable[o.kind ?? ''] ?? []) {
    if (o.kind === 'Job' && f === 'spec.template' && get(old, 'spec.suspend') === true) continue;
    // Kubernetes >= 1.28: a PVC without a class may get one set (retroactive default StorageClass).
    if (o.kind === 'PersistentVolumeClaim' && f === 'spec.storageClassName' && get(old, f) === undefined) continue;
    if (JSON.stringify(get(o, f)) !== JSON.stringify(get(old, f))) e.invalid(f, get(o, f), 'field is immutable');
  }
  if (o.kind === 'Service') {
    const ip = get(o, 'spec.clusterIP');
    const oldIp = get(old, 'spec.clusterIP');
    if (ip !== undefined && ip !== '' && oldIp && ip !== oldIp && get(o, 'spec.type') !== 'ExternalName') e.invalid('spec.clusterIP', ip, 'field is immutable');
  }
  if ((o.kind === 'ConfigMap' || o.kind === 'Secret') && (old as Obj).immutable === true) {
    for (const f of ['data', 'binaryData', 'stringData'])
      if (JSON.stringify((o as Obj)[f] ?? null) !== JSON.stringify((old as Obj)[f] ?? null)) e.forbidden(f, 'field is immutable when `immutable` is set');
  }
  if (o.kind === 'Pod') {
    const specOf = (x: KubeObject): Obj => structuredClone((x.spec ?? {}) as Obj);
    const a = specOf(o);
    const b = specOf(old);
    // Mutable pod fields: container images, activeDeadlineSeconds, tolerations (additions), nodeName when unset.
    for (const s of [a, b]) {
      for (const c of [...((s.containers as Obj[]) ?? []), ...((s.initContainers as Obj[]) ?? [])]) delete c.image;
      delete s.activeDeadlineSeconds;
      delete s.tolerations;
      delete s.terminationGracePeriodSeconds;
    }
    if (!b.nodeName) delete a.nodeName;
    delete b.nodeName;
    delete a.nodeName;
    if (JSON.stringify(a) !== JSON.stringify(b)) e.forbidden('spec', 'pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations) or `spec.terminationGracePeriodSeconds`');
  }
  return e.list;
}
