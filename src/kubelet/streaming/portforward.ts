// Server side of kubectl port-forward: SPDY/3.1 sessions (portforward.k8s.io) over a byte stream
// (the WebSocket tunnel `SPDY/3.1+portforward.k8s.io`), each data stream piped to the port on the
// pod's localhost (a relay inside the pod's network namespace).
import { spawn } from 'node:child_process';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { connect } from 'node:net';
import { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../../util/log.js';
import type { NetnsRef } from '../runtime/types.js';
import { counter } from '../../util/metrics.js';
import {
  encodeControl, encodeData, encodeGoaway, encodeRst, FLAG_FIN, HeaderCodec, parseFrames, RST_PROTOCOL_ERROR, RST_REFUSED_STREAM,
  type SpdyFrame, TYPE_GOAWAY, TYPE_PING, TYPE_RST_STREAM, TYPE_SYN_REPLY, TYPE_SYN_STREAM,
} from './portforward-spdy.js';

const HIGH_WATER = 1 << 20;

export const PORTFORWARD_WS_PROTOCOL = 'SPDY/3.1+portforward.k8s.io';

const forwarded = counter({ name: 'skiff_kubelet_portforward_connections_total', help: 'port-forward connections to pods', labelNames: ['result'] as const });

/**
 * Completes a WebSocket upgrade for the SPDY tunnel. `ws` rejects `SPDY/3.1+portforward.k8s.io` as a
 * subprotocol ('/' is not an RFC 7230 token char), so the header is taken off the request and the
 * answer names it by hand when the client asked for it (kubectl checks the negotiated protocol).
 */
export function acceptSpdyTunnel(req: IncomingMessage, socket: Duplex, head: Buffer, done: (ws: WebSocket) => void): void {
  const asked = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).includes(PORTFORWARD_WS_PROTOCOL);
  delete req.headers['sec-websocket-protocol'];
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  if (asked) wss.on('headers', (headers) => headers.push(`Sec-WebSocket-Protocol: ${PORTFORWARD_WS_PROTOCOL}`));
  wss.handleUpgrade(req, socket, head, (ws) => {
    wss.close();
    done(ws);
  });
}

const SPDY_101 = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n'
  + 'X-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n';

/** True for the legacy form: `Upgrade: SPDY/3.1` on a plain HTTP/1.1 request (no WebSocket). */
export function isSpdyUpgrade(req: IncomingMessage): boolean {
  return String(req.headers.upgrade ?? '').toLowerCase() === 'spdy/3.1';
}

/** Answers the legacy SPDY upgrade with 101; the socket then carries SPDY frames. */
export function acceptSpdyUpgrade(socket: Duplex, head: Buffer): Duplex {
  socket.write(SPDY_101);
  if (head.length > 0) socket.unshift(head);
  return socket;
}

/**
 * Relays a legacy SPDY upgrade (the client's socket, already hijacked) to the kubelet's
 * /portForward: same upgrade upstream, then bytes both ways. fail() gets non-101 answers.
 */
export function relaySpdyUpgrade(url: string, opts: RequestOptions, client: Duplex, fail: (code: number, message: string) => void): void {
  const headers = { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'portforward.k8s.io' };
  const r = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, { ...opts, method: 'POST', headers });
  r.on('upgrade', (_res, upstream, head) => {
    client.write(SPDY_101);
    if (head.length > 0) client.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  r.on('response', (res) => {
    let body = '';
    res.on('data', (d: Buffer) => (body += d.toString()));
    res.on('end', () => fail(res.statusCode ?? 500, body.trim() || `kubelet answered ${res.statusCode}`));
  });
  r.on('error', (err) => fail(502, err.message));
  r.end();
}

/** Opens a byte stream to a port of the pod; the stream errors when it cannot connect. */
export type PodDialer = (port: number) => Duplex;

/** Dials `ip:port` from this process (tests; a pod whose network namespace is not known). */
export function tcpDialer(ip: string): PodDialer {
  return (port) => connect(port, ip);
}

// runs in the pod's netns: a plain TCP relay on stdin/stdout, the connect error on stderr
const RELAY = "const s=require('net').connect(+process.argv[2],process.argv[1]);"
  + "s.on('error',e=>{process.stderr.write(e.message);process.exit(1)});"
  + "process.stdin.pipe(s);s.pipe(process.stdout);s.on('close',()=>process.exit(0));";

/**
 * Pure: the command that relays to 127.0.0.1:port inside the pod's network namespace (what the
 * kubelet does: a server bound to the pod's localhost is reachable). `nsenter` enters only the
 * network namespace, so `node` is the node's own binary.
 */
export function renderRelayCommand(ref: NetnsRef, port: number, node = process.execPath): [string, string[]] {
  const netns = 'pid' in ref ? `/proc/${ref.pid}/ns/net` : `/var/run/netns/${ref.name}`;
  return ['nsenter', [`--net=${netns}`, node, '-e', RELAY, '127.0.0.1', String(port)]];
}

/** Dials the pod's localhost through a relay process in its network namespace. */
export function podNetnsDialer(ref: NetnsRef): PodDialer {
  return (port) => relayDuplex(...renderRelayCommand(ref, port));
}

/** A Duplex over a relay process's stdin/stdout; it errors with the relay's stderr when the relay fails. */
function relayDuplex(file: string, args: string[]): Duplex {
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  // the readable side ends only once the relay's exit code says the connection was fine
  const d = new Duplex({
    read: () => { child.stdout.resume(); },
    write: (chunk: Buffer, _enc, cb) => { child.stdin.write(chunk, cb); },
    final: (cb) => { child.stdin.end(); cb(); },
    destroy: (err, cb) => { child.kill(); cb(err); },
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.on('data', (c: Buffer) => { if (!d.push(c)) child.stdout.pause(); });
  child.stdin.on('error', () => undefined); // EPIPE once the relay is gone; its exit code tells why
  child.on('error', (err) => d.destroy(err));
  child.on('close', (code) => {
    if (code) d.destroy(new Error(stderr.trim() || `relay exited ${code}`));
    else d.push(null);
  });
  return d;
}

interface Pair {
  error?: number;
  data?: number;
  conn?: Duplex;
}

export interface PortForwardSessionOptions {
  /** The pod's IP (status.podIP), for messages. */
  podIP: string;
  dial: PodDialer;
  log: Logger;
}

/**
 * One SPDY/3.1 session: answers each SYN_STREAM with a SYN_REPLY, pairs `error`/`data` streams by
 * `requestID`, pipes data streams to the pod's port and reports dial failures on the error stream.
 */
export class PortForwardSession {
  private buf: Buffer = Buffer.alloc(0);
  private inChain: Promise<void> = Promise.resolve();
  private outChain: Promise<void> = Promise.resolve();
  private readonly codec = new HeaderCodec();
  private readonly pairs = new Map<string, Pair>();
  private readonly byStream = new Map<number, string>();
  private lastStreamId = 0;
  private closed = false;

  constructor(private readonly transport: Duplex, private readonly o: PortForwardSessionOptions) {
    transport.on('data', (chunk: Buffer) => this.onBytes(chunk));
    transport.on('close', () => this.close());
    transport.on('end', () => this.close());
    transport.on('error', (err) => { this.o.log.debug({ err: err.message }, 'port-forward transport error'); this.close(); });
  }

  private onBytes(chunk: Buffer): void {
    const { frames, rest } = parseFrames(Buffer.concat([this.buf, chunk]));
    this.buf = rest;
    for (const f of frames) this.inChain = this.inChain.then(() => this.onFrame(f)).catch((err: Error) => this.fail(err));
  }

  private fail(err: Error): void {
    this.o.log.warn({ err: err.message }, 'port-forward session failed');
    this.send(encodeGoaway(this.lastStreamId));
    this.close();
  }

  /** Queues bytes (or a pending frame) on the transport in order. */
  private send(frame: Buffer | Promise<Buffer>): void {
    this.outChain = this.outChain.then(async () => {
      const b = await frame;
      if (!this.closed && this.transport.writable) this.transport.write(b);
    }).catch((err: Error) => this.o.log.debug({ err: err.message }, 'port-forward write failed'));
  }

  private async onFrame(f: SpdyFrame): Promise<void> {
    if (this.closed) return;
    if (!f.control) return this.onData(f.streamId, f.flags, f.data);
    if (f.type === TYPE_SYN_STREAM) return this.onSynStream(f.flags, f.data);
    if (f.type === TYPE_PING) return this.send(encodeControl(TYPE_PING, 0, Buffer.from(f.data)));
    if (f.type === TYPE_RST_STREAM) return this.onReset(f.data.readUInt32BE(0) & 0x7fffffff);
    if (f.type === TYPE_GOAWAY) return this.close();
    // SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do (spdystream does no flow control)
  }

  private async onSynStream(flags: number, data: Buffer): Promise<void> {
    const streamId = data.readUInt32BE(0) & 0x7fffffff;
    const headers = await this.codec.decode(data.subarray(10));
    this.lastStreamId = Math.max(this.lastStreamId, streamId);
    const type = headers.streamtype;
    const port = Number(headers.port);
    const requestID = headers.requestid ?? `stream-${streamId}`;
    if ((type !== 'error' && type !== 'data') || !Number.isInteger(port) || port < 1 || port > 65535) {
      this.send(encodeRst(streamId, type ? RST_PROTOCOL_ERROR : RST_REFUSED_STREAM));
      return;
    }
    const reply = Buffer.alloc(4);
    reply.writeUInt32BE(streamId);
    this.send(this.codec.encode({}).then((block) => encodeControl(TYPE_SYN_REPLY, 0, Buffer.concat([reply, block]))));
    const key = `${requestID}`;
    const pair = this.pairs.get(key) ?? {};
    this.pairs.set(key, pair);
    this.byStream.set(streamId, key);
    if (type === 'error') pair.error = streamId;
    else {
      pair.data = streamId;
      this.dial(key, pair, port);
    }
    if (flags & FLAG_FIN) this.onData(streamId, FLAG_FIN, Buffer.alloc(0));
  }

  private dial(key: string, pair: Pair, port: number): void {
    const conn = this.o.dial(port);
    const dataId = pair.data!;
    pair.conn = conn;
    conn.on('data', (d: Buffer) => {
      this.send(encodeData(dataId, 0, d));
      // backpressure: stop reading the pod while the tunnel has a lot queued
      if (this.transport.writableLength > HIGH_WATER) {
        conn.pause();
        this.transport.once('drain', () => conn.resume());
      }
    });
    conn.on('end', () => { forwarded.inc({ result: 'ok' }); this.finish(pair); });
    conn.on('close', () => this.pairs.delete(key));
    conn.on('error', (err) => {
      forwarded.inc({ result: 'error' });
      const msg = `error forwarding port ${port} to pod ${this.o.podIP}: ${err.message}`;
      if (pair.error !== undefined) this.send(encodeData(pair.error, 0, Buffer.from(msg)));
      this.finish(pair);
    });
  }

  /** Half-closes both streams of a request towards the client (FIN), once. */
  private finish(pair: Pair): void {
    if (pair.data === undefined) return;
    this.send(encodeData(pair.data, FLAG_FIN, Buffer.alloc(0)));
    if (pair.error !== undefined) this.send(encodeData(pair.error, FLAG_FIN, Buffer.alloc(0)));
    for (const id of [pair.data, pair.error]) if (id !== undefined) this.byStream.delete(id);
    pair.data = undefined;
    pair.error = undefined;
  }

  private onData(streamId: number, flags: number, data: Buffer): void {
    const key = this.byStream.get(streamId);
    const pair = key !== undefined ? this.pairs.get(key) : undefined;
    if (!pair || pair.data !== streamId || !pair.conn) return; // error stream (client never writes) or gone
    if (data.length > 0) pair.conn.write(data);
    if (flags & FLAG_FIN) pair.conn.end();
  }

  private onReset(streamId: number): void {
    const key = this.byStream.get(streamId);
    const pair = key !== undefined ? this.pairs.get(key) : undefined;
    if (pair?.data === streamId) pair.conn?.destroy();
    this.byStream.delete(streamId);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pairs.values()) p.conn?.destroy();
    this.pairs.clear();
    this.byStream.clear();
    this.codec.close();
    this.transport.end();
  }
}
