/**
 * A DNS worker process: serves the primary's UDP sockets (handed over via IPC) from its own
 * packet cache and forwarder. The primary keeps the informers and TCP, and sends every new
 * snapshot; the worker sends its stats back once a second. It exits when the primary goes away.
 */
import type dgram from 'node:dgram';
import { Forwarder, type Upstream } from './forward.js';
import { snapshotFromWire, type WireSnapshot } from './model.js';
import { ClusterZone, type ZoneConfig } from './records.js';
import { DnsServer, type RateLimit } from './server.js';

export type ToWorker =
  | { type: 'init'; cfg: ZoneConfig; snap: WireSnapshot; upstreams: Upstream[]; forwardTimeoutMs?: number; rateLimit?: RateLimit }
  | { type: 'socket' }
  | { type: 'zone'; snap: WireSnapshot }
  | { type: 'stop' };

export type FromWorker = { type: 'ready' } | { type: 'stats'; batch: import('./metrics.js').StatsBatch };

let server: DnsServer | undefined;
let forwarder: Forwarder | undefined;
let cfg: ZoneConfig | undefined;

function send(m: FromWorker): void {
  if (process.connected) process.send?.(m);
}

async function onMessage(msg: ToWorker, handle?: unknown): Promise<void> {
  switch (msg.type) {
    case 'init':
      cfg = msg.cfg;
      forwarder = new Forwarder({ upstreams: msg.upstreams, timeoutMs: msg.forwardTimeoutMs });
      server = new DnsServer({ zone: new ClusterZone(snapshotFromWire(msg.snap), cfg), forwarder, rateLimit: msg.rateLimit, statsSink: (batch) => send({ type: 'stats', batch }) });
      return;
    case 'socket':
      if (server && handle) {
        server.attachUdp(handle as dgram.Socket);
        send({ type: 'ready' });
      }
      return;
    case 'zone':
      if (server && cfg) server.setZone(new ClusterZone(snapshotFromWire(msg.snap), cfg));
      return;
    case 'stop':
      forwarder?.close();
      await server?.close();
      process.exit(0);
  }
}

process.on('message', (msg: ToWorker, handle?: unknown) => void onMessage(msg, handle));
process.on('disconnect', () => process.exit(0));
