import { findResource, type ResourceInfo } from '../api/registry.js';
import { errors } from './errors.js';

export interface ParsedPath {
  info: ResourceInfo;
  group: string;
  version: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/**
 * Parses /api/v1/... and /apis/{g}/{v}/... resource paths; returns null for paths that are not
 * resource requests (discovery roots are served elsewhere).
 */
export function parseResourcePath(url: string): ParsedPath | null {
  const path = url.split('?')[0];
  const segs = path.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api') {
    group = '';
    version = segs[1];
    rest = segs.slice(2);
  } else if (segs[0] === 'apis') {
    group = segs[1];
    version = segs[2];
    rest = segs.slice(3);
  } else return null;
  if (!version || rest.length === 0) return null;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(group === '' && (rest[2] === 'status' || rest[2] === 'finalize') && rest.length === 3)) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource, name, subresource, ...extra] = rest;
  const info = findResource(group, resource);
  if (!info || info.version !== version) throw notServed(group, version, resource);
  if (!info.namespaced && namespace) throw notServed(group, version, resource);
  if (extra.length && !(subresource === 'proxy')) throw notServed(group, version, rest.join('/'));
  return { info, group, version, namespace, name, subresource };
}

function notServed(group: string, version: string, resource: string): Error {
  const e = errors.notFound(resource, group, '');
  return Object.assign(e, { message: `the server could not find the requested resource (${group ? group + '/' : ''}${version} ${resource})` });
}
