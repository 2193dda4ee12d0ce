import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { KubeObject } from '../../api/object.js';
import { R } from '../../api/registry.js';
import type { RequestAttributes, UserInfo } from '../hooks.js';
import { StatusError } from '../errors.js';
import { decodeBody } from '../body.js';
import { authorizeRbac, forbiddenMessage, rulesFor, type RbacIndex } from './rbac.js';
import { requestAttributes } from './requestinfo.js';
import type { ObjectReader, SkiffAuthenticator } from './authn.js';
import { AuthError, issueServiceAccountToken, type TokenSigner } from './tokens.js';

export interface ReviewDeps {
  authenticator: SkiffAuthenticator;
  index: () => RbacIndex;
  signer: TokenSigner;
  reader: ObjectReader;
}

export const ANONYMOUS: UserInfo = { username: 'system:anonymous', groups: ['system:unauthenticated'] };

/** The caller: what the apiserver's auth hook put on the request, else authenticated here. */
export async function requestUser(req: FastifyRequest, authn: SkiffAuthenticator): Promise<UserInfo> {
  const set = (req as unknown as { user?: UserInfo }).user;
  if (set) return set;
  const user = await authn.authenticate({ headers: req.headers, socket: req.raw.socket, url: req.url });
  return user ?? ANONYMOUS;
}

type Body = { apiVersion?: string; kind?: string; metadata?: Record<string, unknown>; spec?: Record<string, unknown> };

function sendStatus(reply: FastifyReply, err: StatusError): FastifyReply {
  return reply.code(err.code).type('application/json').send(err.toStatus());
}

/** The apiserver hands raw Buffers to routes; decode them like its own handlers do (JSON, YAML, protobuf). */
function bodyOf(req: FastifyRequest): Body {
  const b = (Buffer.isBuffer(req.body) ? decodeBody(req.body, req.headers['content-type']) : req.body) as Body | undefined;
  if (!b || typeof b !== 'object') throw new StatusError(400, 'BadRequest', 'request body must be a JSON object');
  return b;
}

/** Authenticates and authorizes a call to one of these routes (the apiserver may already have done it). */
async function guard(req: FastifyRequest, deps: ReviewDeps): Promise<{ user: UserInfo; attrs: RequestAttributes }> {
  const user = await requestUser(req, deps.authenticator);
  if (user === ANONYMOUS) throw new StatusError(401, 'Unauthorized', 'Unauthorized');
  const attrs = requestAttributes(req.method, req.url, user);
  const d = authorizeRbac(deps.index(), attrs);
  if (!d.allowed) throw new StatusError(403, 'Forbidden', forbiddenMessage(attrs, d.reason));
  return { user, attrs };
}

function reviewAttributes(spec: Record<string, unknown>, user: UserInfo, namespaceOverride?: string): RequestAttributes {
  const ra = spec.resourceAttributes as Record<string, string> | undefined;
  const nra = spec.nonResourceAttributes as Record<string, string> | undefined;
  if (ra) {
    const a: RequestAttributes = { user, verb: ra.verb ?? '', isResourceRequest: true, path: '', apiGroup: ra.group ?? '', apiVersion: ra.version ?? '', resource: ra.resource ?? '' };
    const ns = namespaceOverride ?? ra.namespace;
    if (ns) a.namespace = ns;
    if (ra.subresource) a.subresource = ra.subresource;
    if (ra.name) a.name = ra.name;
    return a;
  }
  if (nra) return { user, verb: nra.verb ?? '', isResourceRequest: false, path: nra.path ?? '', apiGroup: '', apiVersion: '' };
  throw new StatusError(422, 'Invalid', 'spec: exactly one of resourceAttributes or nonResourceAttributes must be set');
}

function userFromSpec(spec: Record<string, unknown>): UserInfo {
  const u: UserInfo = { username: String(spec.user ?? ''), groups: Array.isArray(spec.groups) ? spec.groups.map(String) : [] };
  if (spec.uid) u.uid = String(spec.uid);
  if (spec.extra && typeof spec.extra === 'object') u.extra = spec.extra as Record<string, string[]>;
  return u;
}

function review(body: Body, kind: string, apiVersion: string, status: Record<string, unknown>, spec?: unknown): KubeObject {
  return { kind, apiVersion, metadata: { ...(body.metadata ?? {}), creationTimestamp: null } as unknown as KubeObject['metadata'], spec: spec ?? body.spec ?? {}, status };
}

function decide(deps: ReviewDeps, a: RequestAttributes): { allowed: boolean; reason?: string; denied?: boolean } {
  const d = authorizeRbac(deps.index(), a);
  return d.allowed ? { allowed: true, reason: d.reason } : { allowed: false };
}

const userInfoOut = (u: UserInfo) => ({ username: u.username, ...(u.uid ? { uid: u.uid } : {}), groups: u.groups, ...(u.extra ? { extra: u.extra } : {}) });

/** TokenReview, (Self|Local)SubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview and TokenRequest. */
export function reviewRoutes(deps: ReviewDeps) {
  return async (app: FastifyInstance): Promise<void> => {
    const route = (url: string, handler: (req: FastifyRequest) => Promise<{ code: number; body: unknown }>) =>
      app.post(url, async (req, reply) => {
        try {
          const out = await handler(req);
          return reply.code(out.code).type('application/json').send(out.body);
        } catch (err) {
          if (err instanceof StatusError) return sendStatus(reply, err);
          throw err;
        }
      });

    route('/apis/authentication.k8s.io/v1/tokenreviews', async (req) => {
      await guard(req, deps);
      const body = bodyOf(req);
      const spec = body.spec ?? {};
      const audiences = Array.isArray(spec.audiences) ? spec.audiences.map(String) : undefined;
      let status: Record<string, unknown>;
      try {
        const user = await deps.authenticator.authenticateToken(String(spec.token ?? ''), audiences);
        status = { authenticated: true, user: userInfoOut(user), ...(audiences ? { audiences } : {}) };
      } catch (err) {
        status = { authenticated: false, error: err instanceof AuthError ? err.detail : String(err) };
      }
      return { code: 201, body: review(body, 'TokenReview', 'authentication.k8s.io/v1', status, { ...spec, token: undefined }) };
    });

    route('/apis/authorization.k8s.io/v1/subjectaccessreviews', async (req) => {
      await guard(req, deps);
      const body = bodyOf(req);
      const a = reviewAttributes(body.spec ?? {}, userFromSpec(body.spec ?? {}));
      return { code: 201, body: review(body, 'SubjectAccessReview', 'authorization.k8s.io/v1', decide(deps, a)) };
    });

    route('/apis/authorization.k8s.io/v1/namespaces/:ns/localsubjectaccessreviews', async (req) => {
      await guard(req, deps);
      const body = bodyOf(req);
      const ns = (req.params as { ns: string }).ns;
      const a = reviewAttributes(body.spec ?? {}, userFromSpec(body.spec ?? {}), ns);
      return { code: 201, body: review(body, 'LocalSubjectAccessReview', 'authorization.k8s.io/v1', decide(deps, a)) };
    });

    route('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', async (req) => {
      const { user } = await guard(req, deps);
      const body = bodyOf(req);
      const a = reviewAttributes(body.spec ?? {}, user);
      return { code: 201, body: review(body, 'SelfSubjectAccessReview', 'authorization.k8s.io/v1', decide(deps, a)) };
    });

    route('/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', async (req) => {
      const { user } = await guard(req, deps);
      const body = bodyOf(req);
      const ns = (body.spec?.namespace as string | undefined) || undefined;
      const rules = rulesFor(deps.index(), user, ns);
      const resourceRules = rules.filter((r) => !r.nonResourceURLs?.length).map((r) => ({ verbs: r.verbs, apiGroups: r.apiGroups ?? [], resources: r.resources ?? [], ...(r.resourceNames?.length ? { resourceNames: r.resourceNames } : {}) }));
      const nonResourceRules = rules.filter((r) => r.nonResourceURLs?.length).map((r) => ({ verbs: r.verbs, nonResourceURLs: r.nonResourceURLs }));
      return { code: 201, body: review(body, 'SelfSubjectRulesReview', 'authorization.k8s.io/v1', { resourceRules, nonResourceRules, incomplete: false }) };
    });

    for (const v of ['v1', 'v1beta1']) {
      route(`/apis/authentication.k8s.io/${v}/selfsubjectreviews`, async (req) => {
        const { user } = await guard(req, deps);
        return { code: 201, body: { kind: 'SelfSubjectReview', apiVersion: `authentication.k8s.io/${v}`, metadata: { creationTimestamp: null }, status: { userInfo: userInfoOut(user) } } };
      });
    }

    route('/api/v1/namespaces/:ns/serviceaccounts/:name/token', async (req) => {
      await guard(req, deps);
      return tokenRequest(req, deps);
    });
  };
}

/** TokenRequest: a JWT for the ServiceAccount, optionally bound to a Pod or Secret that must exist. */
async function tokenRequest(req: FastifyRequest, deps: ReviewDeps): Promise<{ code: number; body: unknown }> {
  const { ns, name } = req.params as { ns: string; name: string };
  const body = bodyOf(req);
  const spec = body.spec ?? {};
  const sa = await deps.reader.get(R.serviceaccounts, name, ns);
  if (!sa) throw new StatusError(404, 'NotFound', `serviceaccounts "${name}" not found`, { name, kind: 'serviceaccounts' });
  const ref = spec.boundObjectRef as { kind?: string; name?: string; uid?: string } | undefined;
  let bound: { kind: 'Pod' | 'Secret'; name: string; uid: string } | undefined;
  let node: { name: string } | undefined;
  if (ref) {
    if (ref.kind !== 'Pod' && ref.kind !== 'Secret') throw new StatusError(422, 'Invalid', `spec.boundObjectRef.kind: Unsupported value: "${ref.kind}": supported values: "Pod", "Secret"`);
    const obj = await deps.reader.get(ref.kind === 'Pod' ? R.pods : R.secrets, ref.name ?? '', ns);
    if (!obj) throw new StatusError(404, 'NotFound', `${ref.kind === 'Pod' ? 'pods' : 'secrets'} "${ref.name}" not found`);
    if (ref.uid && ref.uid !== obj.metadata?.uid) throw new StatusError(409, 'Conflict', `the UID in the bound object reference (${ref.uid}) does not match the UID in record (${obj.metadata?.uid})`);
    bound = { kind: ref.kind, name: ref.name ?? '', uid: obj.metadata?.uid ?? '' };
    const nodeName = ref.kind === 'Pod' ? (obj.spec as { nodeName?: string } | undefined)?.nodeName : undefined;
    if (nodeName) node = { name: nodeName };
  }
  const expirationSeconds = typeof spec.expirationSeconds === 'number' ? spec.expirationSeconds : 3600;
  if (expirationSeconds < 600) throw new StatusError(422, 'Invalid', 'spec.expirationSeconds: Invalid value: may not specify a duration less than 10 minutes');
  const audiences = Array.isArray(spec.audiences) ? spec.audiences.map(String) : undefined;
  const issued = issueServiceAccountToken(deps.signer, {
    namespace: ns,
    serviceAccount: { name, uid: sa.metadata?.uid ?? '' },
    boundObject: bound,
    node,
    audiences,
    expirationSeconds,
  });
  return {
    code: 201,
    body: {
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { name, namespace: ns, creationTimestamp: null },
      spec: { audiences: issued.claims.aud, expirationSeconds, ...(ref ? { boundObjectRef: ref } : {}) },
      status: { token: issued.token, expirationTimestamp: issued.expirationTimestamp },
    },
  };
}
