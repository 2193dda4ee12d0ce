import { Agent, request } from 'node:http';
import { SkiffError } from '../../util/errors.js';

/** `docker inspect` / `GET /containers/{id}/json`: the fields the kubelet reads. */
export interface DockerInspect {
  Id: string;
  Created: string;
  Image: string;
  Config: { Image: string; Labels: Record<string, string> | null };
  State: { Status: string; Running: boolean; ExitCode: number; OOMKilled: boolean; Pid: number; StartedAt: string; FinishedAt: string };
}

/** One row of `GET /containers/json` (what `docker ps` shows). */
export interface DockerSummary {
  Id: string;
  State: string;
}

/** Pure: the Engine API socket named by DOCKER_HOST (default /var/run/docker.sock); undefined for tcp:// and others. */
export function engineSocketPath(dockerHost: string | undefined): string | undefined {
  if (!dockerHost) return '/var/run/docker.sock';
  return dockerHost.startsWith('unix://') ? dockerHost.slice('unix://'.length) : undefined;
}

/** Pure: the `GET /containers/json` path listing every container (any state) carrying all `labels`. */
export function containerListPath(labels: string[]): string {
  return `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ label: labels }))}`;
}

/**
 * Read-only client of the Docker Engine API on its unix socket. The Docker CLI stays the runtime's
 * way to change anything; reading state here costs one HTTP request instead of a `docker` process.
 * `ERR_ENGINE_UNREACHABLE` means the socket is not there (or refused us): callers fall back to the CLI.
 */
export class DockerEngine {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 8 });
  constructor(readonly socketPath: string) {}

  /** GET `path`; resolves with the status and the parsed JSON body (undefined on 404). */
  get<T>(path: string, timeoutMs = 30_000): Promise<{ status: number; body?: T }> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socketPath, path, method: 'GET', agent: this.agent, timeout: timeoutMs, headers: { Host: 'docker' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          if (status === 404) return resolve({ status });
          if (status < 200 || status >= 300) return reject(new SkiffError('ERR_ENGINE', `docker engine GET ${path}: ${status} ${text.trim()}`));
          try {
            resolve({ status, body: JSON.parse(text) as T });
          } catch (err) {
            reject(new SkiffError('ERR_ENGINE', `docker engine GET ${path}: bad JSON`, { cause: err }));
          }
        });
      });
      req.on('timeout', () => req.destroy(new SkiffError('ERR_ENGINE', `docker engine GET ${path}: timed out`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'EACCES') reject(new SkiffError('ERR_ENGINE_UNREACHABLE', `docker engine at ${this.socketPath}: ${err.code}`, { cause: err }));
        else reject(err);
      });
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
