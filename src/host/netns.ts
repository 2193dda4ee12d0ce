import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { LocalHost } from './host.js';

/** Creates a named network namespace with loopback up. Names must be unique per test. */
export async function createNetns(name: string): Promise<LocalHost> {
  await execa('ip', ['netns', 'add', name]);
  await execa('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  return new LocalHost(name);
}

export async function deleteNetns(name: string): Promise<void> {
  await execa('ip', ['netns', 'delete', name], { reject: false });
}

/** A short unique name such as `sk-proxy-3fa9c1` (netns, veth and bridge names must stay <= 15 chars). */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`.slice(0, 15);
}
