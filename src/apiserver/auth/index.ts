import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import { R } from '../../api/registry.js';
import type { ApiClient, Informer } from '../../client/types.js';
import { InformerFactory } from '../../client/factory.js';
import { componentLogger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import { ensurePki, type Pki } from '../../util/pki.js';
import type { ApiserverHooks, Authorizer, Decision, RequestAttributes } from '../hooks.js';
import type { KubeObject } from '../../api/object.js';
import { authorizeNode } from './nodeauthz.js';
import { escalationAdmission, nodeRestrictionAdmission } from './admission.js';
import { readerFromClient, SkiffAuthenticator, type ObjectReader } from './authn.js';
import { ensureBootstrapPolicy } from './bootstrap.js';
import { snapshotFromObjects } from './convert.js';
import { limitsPlugin, type LimitsOptions } from './limits.js';
import { authorizeRbac, buildIndex, type RbacIndex } from './rbac.js';
import { requestUser, reviewRoutes } from './reviews.js';
import { requestAttributes } from './requestinfo.js';
import { TokenSigner, issueServiceAccountToken, type IssueOptions } from './tokens.js';

const log = componentLogger('auth');
const decisions = counter({ name: 'skiff_authorization_decisions_total', help: 'Authorization decisions', labelNames: ['decision'] as const });

export interface SecurityOptions {
  /** a privileged loopback client (system:masters cert) the RBAC informers and bootstrap use */
  client: ApiClient;
  dataDir: string;
  /** the cluster PKI (default: ensurePki(dataDir)) */
  pki?: Pki;
  /** how token checks read ServiceAccounts, Pods and Secrets (default: through `client`) */
  reader?: ObjectReader;
  /** share informers with other in-process components */
  informers?: InformerFactory;
  limits?: LimitsOptions;
  /** audit log (default DIR/audit.log; false disables) */
  auditPath?: string | false;
  issuer?: string;
  audiences?: string[];
}

export interface SecurityHooks extends ApiserverHooks {
  authenticator: SkiffAuthenticator;
  authorizer: Authorizer;
  signer: TokenSigner;
  /** current RBAC index (for callers that evaluate several decisions) */
  rbac(): RbacIndex;
  /** call once the apiserver listens: starts the RBAC informers, writes the bootstrap roles, waits for the caches (non-masters are denied until then) */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** requests in flight and open watches (tests, debugging) */
  limitsStats(): { mutating: number; readonly: number; watches: number };
  /** a ServiceAccount JWT (TokenRequest does the same over HTTP) */
  issueServiceAccountToken(o: IssueOptions): { token: string; expirationTimestamp?: string };
}

/**
 * The Node authorizer over the pod cache. A kubelet asks for a new pod's secrets right after it
 * sees the pod bound, possibly before our cache has the binding: a denial is re-checked for up to 1 s.
 */
async function authorizeNodeSettled(attrs: RequestAttributes, podsOnNode: (node: string) => KubeObject[]): Promise<Decision | undefined> {
  let d = authorizeNode(attrs, podsOnNode);
  const end = Date.now() + 1000;
  while (d && !d.allowed && /no relationship/.test(d.reason ?? '') && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    d = authorizeNode(attrs, podsOnNode);
  }
  return d;
}

/** Keeps an RBAC index built from four informers, rebuilt lazily after any change. */
class RbacCache {
  private idx?: RbacIndex;
  private readonly informers: Informer[];
  constructor(factory: InformerFactory) {
    this.informers = [R.roles, R.clusterroles, R.rolebindings, R.clusterrolebindings].map((ref) => factory.get(ref));
    const dirty = () => (this.idx = undefined);
    for (const inf of this.informers) inf.addHandlers({ add: dirty, update: dirty, delete: dirty });
  }
  synced(): boolean {
    return this.informers.every((i) => i.hasSynced());
  }
  async waitSynced(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.synced()));
  }
  start(): void {
    for (const i of this.informers) i.start();
  }
  index(): RbacIndex {
    if (!this.idx) {
      const [roles, clusterRoles, roleBindings, clusterRoleBindings] = this.informers.map((i) => i.list());
      this.idx = buildIndex(snapshotFromObjects({ roles, clusterRoles, roleBindings, clusterRoleBindings }));
    }
    return this.idx;
  }
}

/**
 * Everything issue 3 adds to the apiserver: x509/token/ServiceAccount authentication, RBAC
 * authorization, escalation-prevention and NodeRestriction admission, the review and TokenRequest
 * routes, and the limits/audit plugin (registered first).
 */
export async function securityHooks(opts: SecurityOptions): Promise<SecurityHooks> {
  const pki = opts.pki ?? (await ensurePki(opts.dataDir));
  const signer = new TokenSigner(pki);
  const reader = opts.reader ?? readerFromClient(opts.client);
  const factory = opts.informers ?? new InformerFactory(opts.client);
  const cache = new RbacCache(factory);
  const index = () => cache.index();
  const authenticator = new SkiffAuthenticator({ dataDir: opts.dataDir, signer, reader, issuer: opts.issuer, audiences: opts.audiences });

  const pods = factory.get(R.pods);
  pods.addIndex('node', (p) => [String((p.spec as { nodeName?: string } | undefined)?.nodeName ?? '')]);
  const podsOnNode = (node: string) => pods.byIndex('node', node);

  const authorizer: Authorizer = {
    async authorize(given: RequestAttributes) {
      // The apiserver only parses paths of kinds it serves; API paths of other groups (authorization.k8s.io
      // reviews, TokenRequest...) arrive as non-resource requests. Parse them as Kubernetes does.
      const attrs = !given.isResourceRequest && /^\/apis?\/.+\/.+/.test(given.path) ? requestAttributes(given.verb.toUpperCase(), given.path, given.user) : given;
      const byNode = await authorizeNodeSettled(attrs, podsOnNode);
      if (byNode) {
        decisions.inc({ decision: byNode.allowed ? 'allow' : 'deny' });
        return byNode;
      }
      if (!attrs.user.groups.includes('system:masters') && !cache.synced()) {
        decisions.inc({ decision: 'not_synced' });
        return { allowed: false, reason: 'RBAC caches are not synced yet' };
      }
      const d = authorizeRbac(index(), attrs);
      decisions.inc({ decision: d.allowed ? 'allow' : 'deny' });
      return d;
    },
  };

  const auditPath = opts.auditPath === false ? undefined : (opts.auditPath ?? join(opts.dataDir, 'audit.log'));
  const userOf = async (req: FastifyRequest) => requestUser(req, authenticator);
  const limits = limitsPlugin({ ...opts.limits, auditPath, userOf });

  return {
    authenticator,
    authorizer,
    signer,
    anonymousPaths: ['/healthz', '/livez', '/readyz', '/version'],
    admission: [escalationAdmission(index), nodeRestrictionAdmission()],
    plugins: [limits.plugin, reviewRoutes({ authenticator, index, signer, reader })],
    rbac: index,
    limitsStats: limits.stats,
    async start() {
      cache.start();
      pods.start();
      const r = await ensureBootstrapPolicy(opts.client);
      log.info({ created: r.created, updated: r.updated }, 'bootstrap RBAC policy ensured');
      await cache.waitSynced();
    },
    async stop() {
      if (!opts.informers) factory.stop();
    },
    issueServiceAccountToken: (o) => issueServiceAccountToken(signer, o),
  };
}

export { issueServiceAccountToken, TokenSigner } from './tokens.js';
export { ensureNodeToken, ensureStaticToken } from './tokens.js';
export { forbiddenMessage } from './rbac.js';
export { requestAttributes } from './requestinfo.js';
