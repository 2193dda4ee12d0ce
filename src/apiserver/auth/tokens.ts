import { createPrivateKey, createPublicKey, randomBytes, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SkiffError } from '../../util/errors.js';
import { writeSecretFile } from '../../util/pki.js';
import type { UserInfo } from '../hooks.js';
import { StatusError } from '../errors.js';

export const DEFAULT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
export const DEFAULT_AUDIENCES = ['https://kubernetes.default.svc.cluster.local'];
/** Legacy (Secret-based) tokens carry this issuer, as in Kubernetes. */
const LEGACY_ISSUER = 'kubernetes/serviceaccount';

/** An authentication failure: the apiserver answers 401 Unauthorized. */
export class AuthError extends StatusError {
  readonly statusCode = 401;
  /** why (for logs and TokenReview); the client only sees "Unauthorized" */
  constructor(readonly errCode: string, readonly detail: string) {
    super(401, 'Unauthorized', 'Unauthorized');
  }
}

/** The private claims of a Kubernetes bound service-account token. */
export interface ServiceAccountClaims {
  iss: string;
  sub: string;
  aud: string[];
  iat: number;
  nbf: number;
  exp?: number;
  jti: string;
  'kubernetes.io': {
    namespace: string;
    serviceaccount: { name: string; uid: string };
    pod?: { name: string; uid: string };
    secret?: { name: string; uid: string };
    node?: { name: string; uid?: string };
  };
}

export interface IssueOptions {
  namespace: string;
  serviceAccount: { name: string; uid: string };
  /** the object the token lives and dies with (TokenRequest boundObjectRef, or the token Secret) */
  boundObject?: { kind: 'Pod' | 'Secret'; name: string; uid: string };
  node?: { name: string; uid?: string };
  audiences?: string[];
  /** omitted only for Secret-bound legacy tokens (they live as long as the Secret) */
  expirationSeconds?: number;
  issuer?: string;
  now?: number;
}

const b64u = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** Signs and verifies ES256 JWTs with the key in DIR/pki/sa.key. */
export class TokenSigner {
  private readonly priv: KeyObject;
  private readonly pub: KeyObject;
  readonly kid: string;

  constructor(keys: { saKey: string; saPub: string }) {
    this.priv = createPrivateKey(keys.saKey);
    this.pub = createPublicKey(keys.saPub);
    this.kid = b64u(this.pub.export({ format: 'der', type: 'spki' }).subarray(-16));
  }

  signJwt(claims: object): string {
    const head = b64u(JSON.stringify({ alg: 'ES256', kid: this.kid, typ: 'JWT' }));
    const body = b64u(JSON.stringify(claims));
    const sig = sign('sha256', Buffer.from(`${head}.${body}`), { key: this.priv, dsaEncoding: 'ieee-p1363' });
    return `${head}.${body}.${b64u(sig)}`;
  }

  /** Checks the signature only; returns the payload or undefined when the token is not ours. */
  verifyJwt(token: string): Record<string, unknown> | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    let head: { alg?: string };
    try {
      head = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
    } catch {
      return undefined;
    }
    if (head.alg !== 'ES256') return undefined;
    const ok = verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), { key: this.pub, dsaEncoding: 'ieee-p1363' }, Buffer.from(parts[2], 'base64url'));
    if (!ok) return undefined;
    try {
      return JSON.parse(Buffer.from(parts[1], 'base64url').toString());
    } catch {
      return undefined;
    }
  }
}

/** A ServiceAccount JWT (what TokenRequest returns and the kubelet projects into pods). */
export function issueServiceAccountToken(signer: TokenSigner, o: IssueOptions): { token: string; expirationTimestamp?: string; claims: ServiceAccountClaims } {
  const now = Math.floor((o.now ?? Date.now()) / 1000);
  const legacy = o.boundObject?.kind === 'Secret' && o.expirationSeconds === undefined;
  const claims: ServiceAccountClaims = {
    iss: legacy ? LEGACY_ISSUER : (o.issuer ?? DEFAULT_ISSUER),
    sub: `system:serviceaccount:${o.namespace}:${o.serviceAccount.name}`,
    aud: o.audiences?.length ? o.audiences : DEFAULT_AUDIENCES,
    iat: now,
    nbf: now,
    jti: randomUUID(),
    'kubernetes.io': { namespace: o.namespace, serviceaccount: { ...o.serviceAccount } },
  };
  if (!legacy) claims.exp = now + Math.max(600, o.expirationSeconds ?? 3600);
  if (o.boundObject?.kind === 'Pod') claims['kubernetes.io'].pod = { name: o.boundObject.name, uid: o.boundObject.uid };
  if (o.boundObject?.kind === 'Secret') claims['kubernetes.io'].secret = { name: o.boundObject.name, uid: o.boundObject.uid };
  if (o.node) claims['kubernetes.io'].node = { ...o.node };
  return { token: signer.signJwt(claims), expirationTimestamp: claims.exp ? new Date(claims.exp * 1000).toISOString() : undefined, claims };
}

export function serviceAccountUser(c: ServiceAccountClaims): UserInfo {
  const k = c['kubernetes.io'];
  const user: UserInfo = {
    username: `system:serviceaccount:${k.namespace}:${k.serviceaccount.name}`,
    uid: k.serviceaccount.uid,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${k.namespace}`, 'system:authenticated'],
  };
  const extra: Record<string, string[]> = {};
  if (k.pod) {
    extra['authentication.kubernetes.io/pod-name'] = [k.pod.name];
    extra['authentication.kubernetes.io/pod-uid'] = [k.pod.uid];
  }
  if (k.node) extra['authentication.kubernetes.io/node-name'] = [k.node.name];
  if (c.jti) extra['authentication.kubernetes.io/credential-id'] = [`JTI=${c.jti}`];
  if (Object.keys(extra).length) user.extra = extra;
  return user;
}

export const TOKEN_FILE = 'tokens.csv';

/** Static tokens, Kubernetes' token file format: `token,user,uid,"group1,group2"`. */
export function readStaticTokens(dataDir: string): Map<string, UserInfo> {
  const path = join(dataDir, TOKEN_FILE);
  const out = new Map<string, UserInfo>();
  if (!existsSync(path)) return out;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([^,#\s][^,]*),([^,]+),([^,]*)(?:,"?([^"]*)"?)?\s*$/.exec(line.trim());
    if (!m) continue;
    const groups = (m[4] ?? '').split(',').map((g) => g.trim()).filter(Boolean);
    out.set(m[1], { username: m[2], uid: m[3] || undefined, groups });
  }
  return out;
}

/** Returns the static token of `user`, adding one (DIR/tokens.csv, 0600) if there is none: agents, bootstrap. */
export function ensureStaticToken(dataDir: string, user: string, groups: string[] = []): string {
  if (!/^[^,"\n]+$/.test(user) || groups.some((g) => !/^[^,"\n]+$/.test(g))) throw new SkiffError('ERR_TOKEN_FILE', `invalid user or group for the token file: ${user}`);
  const tokens = readStaticTokens(dataDir);
  for (const [tok, u] of tokens) if (u.username === user) return tok;
  const token = randomBytes(24).toString('base64url');
  const path = join(dataDir, TOKEN_FILE);
  const prev = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const line = `${token},${user},${randomUUID()},"${groups.join(',')}"\n`;
  writeSecretFile(path, (prev && !prev.endsWith('\n') ? prev + '\n' : prev) + line, 0o600);
  return token;
}

/** The static token an agent uses for a node (user system:node:NAME, group system:nodes). */
export function ensureNodeToken(dataDir: string, nodeName: string): string {
  return ensureStaticToken(dataDir, `system:node:${nodeName}`, ['system:nodes']);
}
