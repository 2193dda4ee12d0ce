import YAML from 'yaml';
import { errors } from './errors.js';
import { decodeProtobuf } from './protobuf.js';

export const MAX_BODY = 3 * 1024 * 1024;

/** Decodes a request body by its content type: JSON, YAML (apply patches) or Kubernetes protobuf. */
export function decodeBody(raw: Buffer | undefined, contentType: string | undefined): unknown {
  if (!raw || raw.length === 0) return undefined;
  if (raw.length > MAX_BODY) throw errors.tooLarge();
  const ct = (contentType ?? 'application/json').split(';')[0].trim().toLowerCase();
  if (ct === 'application/vnd.kubernetes.protobuf') return decodeProtobuf(raw);
  const text = raw.toString('utf8');
  if (ct.endsWith('json') || ct === '' || ct === 'text/plain' || ct === '*/*') {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      if (ct === 'application/apply-patch+yaml') return parseYaml(text);
      throw errors.badRequest(`error decoding JSON body: ${(err as Error).message}`);
    }
  }
  if (ct === 'application/yaml' || ct === 'application/apply-patch+yaml' || ct === 'application/x-yaml') return parseYaml(text);
  throw errors.unsupportedMediaType(ct);
}

function parseYaml(text: string): unknown {
  try {
    const docs = YAML.parseAllDocuments(text);
    if (docs.length !== 1) throw new Error(`expected one YAML document, got ${docs.length}`);
    if (docs[0].errors.length) throw docs[0].errors[0];
    return docs[0].toJS() as unknown;
  } catch (err) {
    throw errors.badRequest(`error decoding YAML: ${(err as Error).message}`);
  }
}
