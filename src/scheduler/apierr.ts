/** Reads the HTTP status of an API error, whichever client threw it (REST client or FakeApiClient). */
export function apiErrorStatus(err: unknown): number | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; status?: unknown; statusCode?: unknown; reason?: unknown; body?: { code?: unknown } };
  for (const v of [e.statusCode, e.status, e.code, e.body?.code]) if (typeof v === 'number') return v;
  if (e.reason === 'NotFound') return 404;
  if (e.reason === 'AlreadyExists' || e.reason === 'Conflict') return 409;
  return undefined;
}

export const isNotFound = (err: unknown): boolean => apiErrorStatus(err) === 404;
export const isConflict = (err: unknown): boolean => apiErrorStatus(err) === 409;
