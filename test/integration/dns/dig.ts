/** Runs `dig` against a server on loopback and parses its answer (async: the server may live in this process). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface DigResult {
  status: string;
  flags: string[];
  answer: string[];
  authority: string[];
  additional: string[];
  raw: string;
}

/** `dig @addr -p port name type [extra...]`; RR lines normalized to `name ttl TYPE rdata`. */
export async function dig(server: { address: string; port: number }, name: string, type: string, extra: string[] = []): Promise<DigResult> {
  const { stdout } = await run('dig', [`@${server.address}`, '-p', String(server.port), name, type, '+tries=1', '+time=3', ...extra], { timeout: 10_000 });
  const status = stdout.match(/status: (\w+)/)?.[1] ?? 'NONE';
  const flags = (stdout.match(/;; flags: ([a-z ]*);/)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
  const section = (title: string) => {
    const m = stdout.split(`;; ${title} SECTION:\n`)[1];
    if (!m) return [];
    return m
      .split('\n\n')[0]
      .split('\n')
      .filter((l) => l && !l.startsWith(';'))
      .map((l) => {
        const [n, ttl, , t, ...rest] = l.split(/\s+/);
        return `${n} ${ttl} ${t} ${rest.join(' ')}`;
      });
  };
  return { status, flags, answer: section('ANSWER'), authority: section('AUTHORITY'), additional: section('ADDITIONAL').filter((l) => !l.includes(' OPT ')), raw: stdout };
}
