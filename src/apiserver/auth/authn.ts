import { statSync } from 'node:fs';
import { join } from 'node:path';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { TLSSocket, PeerCertificate } from 'node:tls';
import type { KubeObject } from '../../api/object.js';
import { R } from '../../api/registry.js';
import type { ResourceRef } from '../../client/types.js';
import { counter } from '../../util/metrics.js';
import type { AuthRequest, Authenticator, UserInfo } from '../hooks.js';
import { AuthError, readStaticTokens, serviceAccountUser, TOKEN_FILE, type ServiceAccountClaims, type TokenSigner, DEFAULT_AUDIENCES, DEFAULT_ISSUER } from './tokens.js';

const attempts = counter({ name: 'skiff_authentication_attempts_total', help: 'Authentication attempts by method and result', labelNames: ['method', 'result'] as const });

/** Reads current objects (a loopback client or the store): undefined when absent. */
export interface ObjectReader {
  get(ref: ResourceRef, name: string, namespace?: string): Promise<KubeObject | undefined>;
}

export interface AuthenticatorOptions {
  dataDir: string;
  signer: TokenSigner;
  reader: ObjectReader;
  issuer?: string;
  audiences?: string[];
  /** how long a verified SA token is trusted before its objects are looked up again (default 1000 ms) */
  cacheMs?: number;
  now?: () => number;
}

function asList(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function withAuthenticated(u: UserInfo): UserInfo {
  return u.groups.includes('system:authenticated') ? u : { ...u, groups: [...u.groups, 'system:authenticated'] };
}

/** x509 client certificate → user: CN is the name, O the groups. The TLS layer verified the chain (socket.authorized). */
export function userFromCertificate(socket: unknown): UserInfo | null {
  const s = socket as Partial<TLSSocket> | undefined;
  if (!s || typeof s.getPeerCertificate !== 'function') return null;
  const cert = s.getPeerCertificate() as PeerCertificate | undefined;
  if (!cert || !cert.subject) return null;
  if (!s.authorized) {
    attempts.inc({ method: 'x509', result: 'error' });
    throw new AuthError('ERR_AUTH_X509', `x509: certificate signed by unknown authority or not valid: ${String(s.authorizationError ?? 'unverified')}`);
  }
  const cn = asList(cert.subject.CN)[0];
  if (!cn) throw new AuthError('ERR_AUTH_X509', 'x509: client certificate has no common name');
  attempts.inc({ method: 'x509', result: 'ok' });
  return withAuthenticated({ username: cn, groups: asList(cert.subject.O) });
}

export function bearerToken(headers: AuthRequest['headers']): string | undefined {
  const h = headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (!m) throw new AuthError('ERR_AUTH_HEADER', 'invalid Authorization header');
  return m[1];
}

function notFound(err: unknown): boolean {
  const e = err as { code?: unknown; statusCode?: unknown; status?: unknown; reason?: unknown };
  return e?.code === 404 || e?.statusCode === 404 || e?.status === 404 || e?.reason === 'NotFound' || e?.code === 'NotFound';
}

/** ObjectReader over an ApiClient-like getter (404 → undefined). */
export function readerFromClient(client: { get(ref: ResourceRef, name: string, namespace?: string): Promise<KubeObject> }): ObjectReader {
  return {
    async get(ref, name, namespace) {
      try {
        return await client.get(ref, name, namespace);
      } catch (err) {
        if (notFound(err)) return undefined;
        throw err;
      }
    },
  };
}

/**
 * x509 client certificates, static bearer tokens (DIR/tokens.csv) and ServiceAccount JWTs. A JWT is
 * only valid while the ServiceAccount and the Pod or Secret it is bound to exist with the same uid.
 */
export class SkiffAuthenticator implements Authenticator {
  private staticTokens = new Map<string, UserInfo>();
  private staticMtime = -1;
  private readonly cache = new Map<string, { user: UserInfo; until: number }>();
  private readonly now: () => number;

  constructor(private readonly o: AuthenticatorOptions) {
    this.now = o.now ?? Date.now;
  }

  async authenticate(req: AuthRequest): Promise<UserInfo | null> {
    const fromCert = userFromCertificate(req.socket);
    if (fromCert) return fromCert;
    const token = bearerToken(req.headers);
    if (token === undefined) return null;
    return this.authenticateToken(token);
  }

  /** Validates a bearer token (TokenReview uses this too); throws AuthError when invalid. */
  async authenticateToken(token: string, audiences?: string[]): Promise<UserInfo> {
    const st = this.staticUser(token);
    if (st) {
      attempts.inc({ method: 'token', result: 'ok' });
      return withAuthenticated(st);
    }
    const claims = this.o.signer.verifyJwt(token) as ServiceAccountClaims | undefined;
    if (!claims) {
      attempts.inc({ method: 'token', result: 'error' });
      throw new AuthError('ERR_AUTH_TOKEN', 'invalid bearer token');
    }
    try {
      const user = await this.checkServiceAccount(token, claims, audiences);
      attempts.inc({ method: 'serviceaccount', result: 'ok' });
      return user;
    } catch (err) {
      attempts.inc({ method: 'serviceaccount', result: 'error' });
      throw err;
    }
  }

  private staticUser(token: string): UserInfo | undefined {
    const path = join(this.o.dataDir, TOKEN_FILE);
    let mtime: number;
    try {
      mtime = statSync(path).mtimeMs;
    } catch {
      mtime = 0;
    }
    if (mtime !== this.staticMtime) {
      this.staticTokens = readStaticTokens(this.o.dataDir);
      this.staticMtime = mtime;
    }
    const want = createHash('sha256').update(token).digest();
    for (const [tok, user] of this.staticTokens) {
      if (timingSafeEqual(createHash('sha256').update(tok).digest(), want)) return user;
    }
    return undefined;
  }

  private async checkServiceAccount(token: string, c: ServiceAccountClaims, audiences?: string[]): Promise<UserInfo> {
    const nowS = Math.floor(this.now() / 1000);
    const k = c['kubernetes.io'];
    if (!k?.namespace || !k.serviceaccount?.name) throw new AuthError('ERR_AUTH_TOKEN', 'token is not a service account token');
    if (c.exp !== undefined && nowS >= c.exp) throw new AuthError('ERR_AUTH_TOKEN_EXPIRED', 'service account token has expired');
    if (c.nbf !== undefined && nowS + 60 < c.nbf) throw new AuthError('ERR_AUTH_TOKEN', 'service account token is not valid yet');
    if (c.exp === undefined && !k.secret) throw new AuthError('ERR_AUTH_TOKEN', 'service account token without expiry must be bound to a Secret');
    if (c.iss !== (this.o.issuer ?? DEFAULT_ISSUER) && c.iss !== 'kubernetes/serviceaccount') throw new AuthError('ERR_AUTH_TOKEN', 'service account token has a foreign issuer');
    const wanted = audiences?.length ? audiences : (this.o.audiences ?? DEFAULT_AUDIENCES);
    if (c.iss !== 'kubernetes/serviceaccount' && !asList(c.aud).some((a) => wanted.includes(a))) throw new AuthError('ERR_AUTH_TOKEN_AUDIENCE', 'token audiences do not match');
    const key = `${token}|${wanted.join(',')}`;
    const hit = this.cache.get(key);
    if (hit && hit.until > this.now()) return hit.user;
    await this.checkBoundObjects(c);
    const user = serviceAccountUser(c);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { user, until: this.now() + (this.o.cacheMs ?? 1000) });
    return user;
  }

  /** The revocation check: the ServiceAccount and the bound Pod/Secret must still exist, same uid, not being deleted. */
  private async checkBoundObjects(c: ServiceAccountClaims): Promise<void> {
    const k = c['kubernetes.io'];
    const sa = await this.o.reader.get(R.serviceaccounts, k.serviceaccount.name, k.namespace);
    if (!sa || sa.metadata?.uid !== k.serviceaccount.uid) throw new AuthError('ERR_AUTH_TOKEN_REVOKED', `service account ${k.namespace}/${k.serviceaccount.name} has been deleted`);
    if (k.pod) {
      const pod = await this.o.reader.get(R.pods, k.pod.name, k.namespace);
      if (!pod || pod.metadata?.uid !== k.pod.uid || pod.metadata?.deletionTimestamp) throw new AuthError('ERR_AUTH_TOKEN_REVOKED', `pod ${k.namespace}/${k.pod.name} the token is bound to is gone`);
    }
    if (k.secret) {
      const secret = await this.o.reader.get(R.secrets, k.secret.name, k.namespace);
      if (!secret || secret.metadata?.uid !== k.secret.uid || secret.metadata?.deletionTimestamp) throw new AuthError('ERR_AUTH_TOKEN_REVOKED', `secret ${k.namespace}/${k.secret.name} the token is bound to is gone`);
    }
  }
}
