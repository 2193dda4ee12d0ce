import type { IncomingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import type { KubeObject } from '../api/object.js';

/** Who is calling (user.Info). */
export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** The request as authorization sees it (authorizer.Attributes). */
export interface RequestAttributes {
  user: UserInfo;
  /** get list watch create update patch delete deletecollection (resource requests); get/post/put/... (non-resource) */
  verb: string;
  isResourceRequest: boolean;
  /** the URL path, for non-resource requests (/healthz, /version, /api ...) */
  path: string;
  apiGroup: string;
  apiVersion: string;
  namespace?: string;
  resource?: string;
  subresource?: string;
  name?: string;
}

export interface AuthRequest {
  headers: IncomingHttpHeaders;
  /** the TLS socket when served over HTTPS (peer certificate for x509 client auth) */
  socket: TLSSocket | { encrypted?: false } | unknown;
  url: string;
}

export interface Authenticator {
  /** null = no credentials presented; throw an error with statusCode 401 for bad credentials. */
  authenticate(req: AuthRequest): Promise<UserInfo | null>;
}

export interface Decision {
  allowed: boolean;
  reason?: string;
}

export interface Authorizer {
  authorize(attrs: RequestAttributes): Promise<Decision>;
}

/** A write about to be persisted (after defaulting and validation). Throw a StatusError to refuse it. */
export interface AdmissionRequest {
  attrs: RequestAttributes;
  operation: 'CREATE' | 'UPDATE' | 'DELETE';
  object?: KubeObject;
  oldObject?: KubeObject;
  dryRun: boolean;
}

export type AdmissionHook = (req: AdmissionRequest) => Promise<void>;

/**
 * Optional security and extension hooks of the apiserver. Without them every request is served
 * as the anonymous admin (tests of the core API); `skiff up` always passes them.
 */
export interface ApiserverHooks {
  authenticator?: Authenticator;
  authorizer?: Authorizer;
  /** paths anonymous requests may reach (default /healthz /livez /readyz /version) */
  anonymousPaths?: string[];
  admission?: AdmissionHook[];
  /** extra routes (TokenReview, SubjectAccessReview, pod streaming proxy, eviction ...) */
  plugins?: ((app: FastifyInstance) => Promise<void> | void)[];
}
