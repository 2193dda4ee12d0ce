import type { Server as NetServer } from 'node:net';
import { IngressServer } from './server.js';
import { IngressMetrics } from './metrics.js';
import type { FromWorker, ToWorker } from './workers.js';

/**
 * Entry of an ingress proxy worker process (forked by WorkerPool): adopts the listening sockets,
 * serves from the route tables it is sent, ships its metrics every 2s.
 */
const metrics = new IngressMetrics();
let server: IngressServer | undefined;
const handles: { http?: NetServer; https?: NetServer } = {};
const send = (m: FromWorker) => process.send?.(m);

async function maybeAdopt(): Promise<void> {
  if (!server || !handles.http || !handles.https) return;
  await server.adopt(handles.http, handles.https);
  send({ type: 'ready' });
}

const timer = setInterval(() => {
  void metrics.local.getMetricsAsJSON().then((m) => send({ type: 'metrics', metrics: m }));
}, 2000);

process.on('message', (m: ToWorker, handle?: NetServer) => {
  if (m.type === 'init') {
    server = new IngressServer(m.options, metrics);
    void maybeAdopt();
  } else if (m.type === 'listen' && handle) {
    handles[m.which] = handle;
    void maybeAdopt();
  } else if (m.type === 'table') {
    server?.swap(m.table);
  } else if (m.type === 'stop') {
    clearInterval(timer);
    void (server?.close() ?? Promise.resolve()).then(() => process.exit(0));
  }
});

process.on('disconnect', () => process.exit(0));
