/** An error with a stable code (ERR_PROXY_RESTORE, ...) and an optional cause. */
export class SkiffError extends Error {
  readonly code: string;
  readonly details?: Record<string, unknown>;
  constructor(code: string, message: string, opts: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'SkiffError';
    this.code = code;
    this.details = opts.details;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
