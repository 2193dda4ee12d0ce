let second = -1;
let text = '';

/**
 * Now as metav1.Time (RFC 3339, whole seconds), the way the apiserver stamps creationTimestamp and
 * managedFields times. Formatted once per second: every write of that second reuses the string.
 */
export function nowIso(): string {
  const s = Math.floor(Date.now() / 1000);
  if (s !== second) {
    second = s;
    text = new Date(s * 1000).toISOString().replace('.000Z', 'Z');
  }
  return text;
}
