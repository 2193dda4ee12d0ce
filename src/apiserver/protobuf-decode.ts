import { setProtobufDecoder } from './protobuf.js';
import { errors } from './errors.js';
import { decodeKubeProtobuf } from './protobuf/decode.js';
import { SkiffError } from '../util/errors.js';
import { counter } from '../util/metrics.js';

const decodes = counter({
  name: 'skiff_apiserver_protobuf_decodes_total',
  help: 'Protobuf request bodies decoded, by kind and result (ok, malformed, unknown_kind)',
  labelNames: ['kind', 'result'] as const,
});

/**
 * Installs the protobuf body decoder: `k8s\0` + runtime.Unknown envelope, typed message from
 * skiff's table of k8s.io/api messages (src/apiserver/protobuf), converted to the API's JSON.
 * Malformed bodies and kinds the table does not know are answered 400 BadRequest.
 */
export function installProtobufDecoder(): void {
  setProtobufDecoder((raw: Buffer) => {
    try {
      const obj = decodeKubeProtobuf(raw);
      decodes.inc({ kind: String(obj.kind), result: 'ok' });
      return obj;
    } catch (err) {
      if (!(err instanceof SkiffError)) throw err;
      // failures carry no kind label: the kind of a rejected body is client-chosen (unbounded)
      decodes.inc({ kind: '', result: err.code === 'ERR_PROTOBUF_KIND' ? 'unknown_kind' : 'malformed' });
      throw errors.badRequest(`error decoding protobuf body: ${err.message}`);
    }
  });
}
