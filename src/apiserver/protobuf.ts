import { errors } from './errors.js';

/** Placeholder replaced by the real decoder (protobuf-decode.ts) once its message table is loaded. */
export let decodeProtobuf: (raw: Buffer) => unknown = () => {
  throw errors.unsupportedMediaType('application/vnd.kubernetes.protobuf');
};

export function setProtobufDecoder(fn: (raw: Buffer) => unknown): void {
  decodeProtobuf = fn;
}
