import 'reflect-metadata';
import { webcrypto, X509Certificate as NodeX509, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { hostname as osHostname } from 'node:os';
import * as x509 from '@peculiar/x509';
import { SkiffError } from './errors.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const subtle = webcrypto.subtle;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 24 * 3600 * 1000;

/** The kubernetes Service ClusterIP (first address of the default service CIDR). */
export const KUBERNETES_SERVICE_IP = '10.96.0.1';
const SERVICE_DNS = ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'];

/** A PEM certificate and its PEM (PKCS#8) private key. */
export interface CertPair {
  cert: string;
  key: string;
}

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
  /** PEM key pair that signs ServiceAccount JWTs */
  saKey: string;
  saPub: string;
  /** the SANs of the serving certificate */
  sans: { ips: string[]; dns: string[] };
}

export interface PkiOptions {
  nodeIPs?: string[];
  hostnames?: string[];
  /** CA lifetime (default 10 years); leaf certs default to 1 year */
  caDays?: number;
  certDays?: number;
}

function pem(tag: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${tag}-----\n${b64}\n-----END ${tag}-----\n`;
}

function unpem(text: string): Buffer {
  return Buffer.from(text.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

async function newKeyPair(): Promise<CryptoKeyPair> {
  return (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function exportKey(key: CryptoKey): Promise<string> {
  return pem('PRIVATE KEY', await subtle.exportKey('pkcs8', key));
}

async function importSigningKey(keyPem: string): Promise<CryptoKey> {
  return subtle.importKey('pkcs8', unpem(keyPem), EC, true, ['sign']);
}

function serial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f; // positive
  return b.toString('hex');
}

function subjectName(cn: string, orgs: string[] = []): x509.JsonName {
  return [...orgs.map((o) => ({ O: [o] })), { CN: [cn] }];
}

/** Writes a file atomically with the given mode (keys 0600). */
export function writeSecretFile(path: string, data: string | Buffer, mode = 0o600): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

async function createCa(days: number): Promise<CertPair> {
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: subjectName('skiff-ca'),
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + days * DAY),
    signingAlgorithm: SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: await exportKey(keys.privateKey) };
}

interface LeafSpec {
  cn: string;
  orgs?: string[];
  usage: 'server' | 'client';
  dns?: string[];
  ips?: string[];
  days?: number;
}

async function issueLeaf(ca: CertPair, spec: LeafSpec): Promise<CertPair> {
  const caCert = new x509.X509Certificate(ca.cert);
  const signingKey = await importSigningKey(ca.key);
  const keys = await newKeyPair();
  const eku = spec.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension([eku]),
    await x509.AuthorityKeyIdentifierExtension.create(caCert),
  ];
  const names = [...(spec.dns ?? []).map((value) => ({ type: 'dns' as const, value })), ...(spec.ips ?? []).map((value) => ({ type: 'ip' as const, value }))];
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: subjectName(spec.cn, spec.orgs),
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + (spec.days ?? 365) * DAY),
    signingAlgorithm: SIGN,
    publicKey: keys.publicKey,
    signingKey,
    extensions,
  });
  return { cert: cert.toString('pem') + '\n', key: await exportKey(keys.privateKey) };
}

/** A client certificate signed by the cluster CA: CN = user name, O = groups (kubelets, components, users). */
export async function issueClientCert(ca: CertPair, cn: string, orgs: string[] = [], days = 365): Promise<CertPair> {
  return issueLeaf(ca, { cn, orgs, usage: 'client', days });
}

/** A serving certificate signed by the cluster CA. */
export async function issueServerCert(ca: CertPair, cn: string, sans: { dns: string[]; ips: string[] }, days = 365): Promise<CertPair> {
  return issueLeaf(ca, { cn, usage: 'server', dns: sans.dns, ips: sans.ips, days });
}

function readPair(dir: string, base: string): CertPair | undefined {
  const c = join(dir, `${base}.crt`);
  const k = join(dir, `${base}.key`);
  if (!existsSync(c) || !existsSync(k)) return undefined;
  return { cert: readFileSync(c, 'utf8'), key: readFileSync(k, 'utf8') };
}

function writePair(dir: string, base: string, p: CertPair): void {
  writeSecretFile(join(dir, `${base}.key`), p.key, 0o600);
  writeSecretFile(join(dir, `${base}.crt`), p.cert, 0o644);
}

async function loadOrCreate(dir: string, base: string, make: () => Promise<CertPair>): Promise<CertPair> {
  const existing = readPair(dir, base);
  if (existing) return existing;
  const p = await make();
  writePair(dir, base, p);
  return p;
}

/** The SANs the serving certificate must carry. */
export function servingSans(opts: PkiOptions): { ips: string[]; dns: string[] } {
  const ips = [...new Set(['127.0.0.1', KUBERNETES_SERVICE_IP, ...(opts.nodeIPs ?? [])])].sort();
  const dns = [...new Set(['localhost', ...SERVICE_DNS, osHostname(), ...(opts.hostnames ?? [])])].sort();
  return { ips, dns };
}

/** True when the certificate carries every wanted SAN. */
export function certCoversSans(certPem: string, sans: { ips: string[]; dns: string[] }): boolean {
  const c = new NodeX509(certPem);
  const have = new Set((c.subjectAltName ?? '').split(', ').map((s) => s.replace(/^IP Address:/, 'ip:').replace(/^DNS:/, 'dns:')));
  return sans.ips.every((ip) => have.has(`ip:${ip}`)) && sans.dns.every((d) => have.has(`dns:${d}`));
}

/**
 * Creates (first start) or loads (later starts) the cluster PKI under DIR/pki: CA, apiserver serving
 * cert, admin client cert (O=system:masters) and the ServiceAccount signing key. Keys are 0600.
 * Nothing is regenerated on restart, except that the serving cert is re-issued (same CA) when a
 * requested SAN (a new node IP or host name) is missing from it.
 */
export async function ensurePki(dataDir: string, opts: PkiOptions = {}): Promise<Pki> {
  const dir = join(dataDir, 'pki');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = await loadOrCreate(dir, 'ca', () => createCa(opts.caDays ?? 3650));
  const sans = servingSans(opts);
  let server = await loadOrCreate(dir, 'apiserver', () => issueServerCert(ca, 'kube-apiserver', sans, opts.certDays));
  if (!certCoversSans(server.cert, sans)) {
    server = await issueServerCert(ca, 'kube-apiserver', sans, opts.certDays);
    writePair(dir, 'apiserver', server);
  }
  const admin = await loadOrCreate(dir, 'admin', () => issueClientCert(ca, 'kubernetes-admin', ['system:masters'], opts.certDays));
  const sa = await ensureSaKeys(dir);
  return { dir, caCert: ca.cert, caKey: ca.key, serverCert: server.cert, serverKey: server.key, adminCert: admin.cert, adminKey: admin.key, saKey: sa.key, saPub: sa.pub, sans };
}

async function ensureSaKeys(dir: string): Promise<{ key: string; pub: string }> {
  const kp = join(dir, 'sa.key');
  const pp = join(dir, 'sa.pub');
  if (existsSync(kp) && existsSync(pp)) return { key: readFileSync(kp, 'utf8'), pub: readFileSync(pp, 'utf8') };
  const keys = await newKeyPair();
  const key = await exportKey(keys.privateKey);
  const pub = pem('PUBLIC KEY', await subtle.exportKey('spki', keys.publicKey));
  writeSecretFile(kp, key, 0o600);
  writeSecretFile(pp, pub, 0o644);
  return { key, pub };
}

/** A kubelet client certificate for a node (CN=system:node:NAME, O=system:nodes), persisted under DIR/pki/nodes. */
export async function ensureNodeCert(pki: Pki, nodeName: string): Promise<CertPair> {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(nodeName)) throw new SkiffError('ERR_PKI_NODE_NAME', `invalid node name "${nodeName}"`);
  return loadOrCreate(join(pki.dir, 'nodes'), nodeName, () => issueClientCert({ cert: pki.caCert, key: pki.caKey }, `system:node:${nodeName}`, ['system:nodes']));
}

/** Options for Node's https.createServer: TLS >= 1.2, client certs requested (verified against the CA) but optional. */
export function tlsServerOptions(pki: Pick<Pki, 'caCert' | 'serverCert' | 'serverKey'>): {
  key: string;
  cert: string;
  ca: string;
  requestCert: true;
  rejectUnauthorized: false;
  minVersion: 'TLSv1.2';
} {
  return { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' };
}

export interface KubeconfigCreds {
  caCert: string;
  user?: string;
  clientCert?: string;
  clientKey?: string;
  token?: string;
  namespace?: string;
}

/** The kubeconfig YAML (JSON is valid YAML) with CA and credentials embedded. */
export function renderKubeconfig(server: string, creds: KubeconfigCreds, name = 'skiff'): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const user: Record<string, string> = {};
  if (creds.clientCert) user['client-certificate-data'] = b64(creds.clientCert);
  if (creds.clientKey) user['client-key-data'] = b64(creds.clientKey);
  if (creds.token) user.token = creds.token;
  const userName = creds.user ?? 'admin';
  const context: Record<string, string> = { cluster: name, user: userName };
  if (creds.namespace) context.namespace = creds.namespace;
  const cfg = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server, 'certificate-authority-data': b64(creds.caCert) } }],
    users: [{ name: userName, user }],
    contexts: [{ name, context }],
    'current-context': name,
    preferences: {},
  };
  return JSON.stringify(cfg, null, 2) + '\n';
}

/** Writes a kubeconfig 0600; `owner` hands a copy to another user (e.g. SUDO_UID/SUDO_GID). */
export function writeKubeconfig(path: string, server: string, creds: KubeconfigCreds, opts: { owner?: { uid: number; gid: number }; name?: string } = {}): void {
  writeSecretFile(path, renderKubeconfig(server, creds, opts.name), 0o600);
  if (opts.owner) chownSync(path, opts.owner.uid, opts.owner.gid);
}
