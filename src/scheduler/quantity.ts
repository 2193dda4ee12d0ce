import { SkiffError } from '../util/errors.js';

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** A resource.Quantity string ("100m", "1.5", "128Mi", "1e3") as a number of base units. */
export function parseQuantity(q: string | number | undefined | null): number {
  if (q === undefined || q === null || q === '') return 0;
  if (typeof q === 'number') return q;
  const m = String(q).trim().match(/^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$/);
  if (!m) throw new SkiffError('ERR_BAD_QUANTITY', `quantities must match the regular expression: ${JSON.stringify(q)}`);
  const n = Number(m[1]);
  if (m[2]) return n * 10 ** Number(m[2].slice(1));
  const suffix = m[3] ?? '';
  return n * (BINARY[suffix] ?? DECIMAL[suffix]);
}

/** CPU as integer millicores (rounded up, as Kubernetes does for MilliValue). */
export function parseCpuMilli(q: string | number | undefined | null): number {
  return Math.ceil(Math.round(parseQuantity(q) * 1e6) / 1e3);
}

/** Memory/storage as integer bytes (rounded up). */
export function parseBytes(q: string | number | undefined | null): number {
  return Math.ceil(parseQuantity(q));
}

/** Millicores as the shortest Quantity string ("250m", "2"). */
export function formatCpuMilli(m: number): string {
  return m % 1000 === 0 ? String(m / 1000) : `${m}m`;
}
