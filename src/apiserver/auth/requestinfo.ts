import type { RequestAttributes, UserInfo } from '../hooks.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Subresources that keep a connection open (never counted against in-flight limits). */
const STREAMING = new Set(['exec', 'attach', 'portforward', 'proxy']);

export function isMutatingMethod(method: string): boolean {
  return MUTATING.has(method.toUpperCase());
}

/**
 * Kubernetes' RequestInfoFactory: turns a method + URL into authorization attributes.
 * `/api/v1/namespaces/ns/pods/p/log` → {verb:get, apiGroup:'', resource:pods, subresource:log, name:p, namespace:ns}.
 */
export function requestAttributes(method: string, url: string, user: UserInfo): RequestAttributes {
  const u = new URL(url, 'http://x');
  const path = u.pathname.replace(/\/+$/, '') || '/';
  const m = method.toUpperCase();
  const nonResource: RequestAttributes = { user, verb: m.toLowerCase(), isResourceRequest: false, path, apiGroup: '', apiVersion: '' };
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  let rest: string[];
  let apiGroup = '';
  let apiVersion: string;
  if (parts[0] === 'api' && parts.length >= 3) {
    apiVersion = parts[1];
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    apiGroup = parts[1];
    apiVersion = parts[2];
    rest = parts.slice(3);
  } else {
    return nonResource;
  }
  let legacyWatch = false;
  if (rest[0] === 'watch') {
    legacyWatch = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length > 1) {
    namespace = rest[1];
    // /namespaces/NAME and /namespaces/NAME/status are the Namespace itself
    rest = rest.length > 2 ? rest.slice(2) : ['namespaces', rest[1]];
    if (rest[0] === 'finalize' || rest[0] === 'status') rest = ['namespaces', namespace, rest[0]];
  }
  const [resource, name, subresource] = rest;
  if (resource === 'namespaces' && name) namespace = name;
  const watch = legacyWatch || isTrue(u.searchParams.get('watch'));
  let verb: string;
  switch (m) {
    case 'GET':
    case 'HEAD':
      verb = watch ? 'watch' : name ? 'get' : 'list';
      break;
    case 'POST':
      verb = 'create';
      break;
    case 'PUT':
      verb = 'update';
      break;
    case 'PATCH':
      verb = 'patch';
      break;
    case 'DELETE':
      verb = name ? 'delete' : 'deletecollection';
      break;
    default:
      verb = m.toLowerCase();
  }
  const attrs: RequestAttributes = { user, verb, isResourceRequest: true, path, apiGroup, apiVersion, resource };
  if (namespace !== undefined) attrs.namespace = namespace;
  if (name !== undefined) attrs.name = name;
  if (subresource !== undefined) attrs.subresource = subresource;
  return attrs;
}

function isTrue(v: string | null): boolean {
  return v === 'true' || v === '1';
}

/** Watches, log follows and streams are long-running: they are capped per client, not counted in flight. */
export function isLongRunning(method: string, url: string): boolean {
  const a = requestAttributes(method, url, { username: '', groups: [] });
  if (!a.isResourceRequest) return false;
  if (a.verb === 'watch') return true;
  if (a.subresource && STREAMING.has(a.subresource)) return true;
  if (a.subresource === 'log' && isTrue(new URL(url, 'http://x').searchParams.get('follow'))) return true;
  return false;
}
