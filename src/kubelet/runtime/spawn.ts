import { execa } from 'execa';
import type { StreamSession } from './types.js';

/**
 * Streaming processes (logs -f, exec -i, attach). The Host seam runs commands to completion; a
 * stream needs live pipes, so this is the kubelet's one other place that spawns processes.
 */
export function spawnStream(file: string, args: string[], opts: { stdin: boolean; onResize?: (cols: number, rows: number) => void }): StreamSession {
  const child = execa(file, args, {
    stdin: opts.stdin ? 'pipe' : 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    reject: false,
    buffer: false,
    stripFinalNewline: false,
  });
  const exited = child.then((r) => (typeof r.exitCode === 'number' ? r.exitCode : -1)).catch(() => -1);
  return {
    stdin: child.stdin ?? null,
    stdout: child.stdout!,
    stderr: child.stderr ?? null,
    exited,
    resize: (cols, rows) => opts.onResize?.(cols, rows),
    kill: () => {
      child.kill('SIGKILL');
    },
  };
}

/** Quotes one argument for `sh -c` / `script -c`. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
