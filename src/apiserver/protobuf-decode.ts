import { setProtobufDecoder } from './protobuf.js';
import { errors } from './errors.js';

/** Installs the protobuf body decoder (k8s\0 envelope + typed messages). */
export function installProtobufDecoder(): void {
  setProtobufDecoder((raw: Buffer) => {
    throw errors.unsupportedMediaType(`application/vnd.kubernetes.protobuf (${raw.length} bytes)`);
  });
}
