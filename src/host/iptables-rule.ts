import { SkiffError } from '../util/errors.js';

/** One parsed match: module (or a basic selector such as `src`) and its options. */
export interface Match {
  module: string;
  negate: boolean;
  opts: Record<string, string | true>;
  /** Options written with `!` in front (e.g. `! --mark`). */
  negated: Set<string>;
}

export interface Target {
  name: string;
  opts: Record<string, string | true>;
  /** true for `-g` (goto): RETURN from the target goes back to the caller's caller. */
  goto: boolean;
}

/** A parsed `-A CHAIN ...` rule; `spec` is the canonical text after the chain name. */
export interface Rule {
  chain: string;
  matches: Match[];
  target?: Target;
  spec: string;
}

/** Splits an iptables-restore line into words, honouring double quotes and backslash escapes. */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '\\' && i + 1 < line.length) cur += line[++i];
      else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') {
      quoted = true;
      inWord = true;
    } else if (ch === ' ' || ch === '\t') {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quoted) throw new SkiffError('ERR_IPTABLES_PARSE', 'unterminated quote');
  if (inWord) out.push(cur);
  return out;
}

/** Options each match module accepts; a value of `true` means a flag without argument. */
const MODULES: Record<string, Record<string, boolean>> = {
  comment: { '--comment': true },
  tcp: { '--dport': true, '--sport': true, '--destination-port': true, '--source-port': true, '--tcp-flags': true, '--syn': false },
  udp: { '--dport': true, '--sport': true, '--destination-port': true, '--source-port': true },
  sctp: { '--dport': true, '--sport': true },
  statistic: { '--mode': true, '--probability': true, '--every': true, '--packet': true },
  recent: { '--name': true, '--set': false, '--rcheck': false, '--update': false, '--remove': false, '--seconds': true, '--reap': false, '--hitcount': true, '--mask': true, '--rsource': false, '--rdest': false, '--rttl': false },
  addrtype: { '--src-type': true, '--dst-type': true, '--limit-iface-in': false, '--limit-iface-out': false },
  mark: { '--mark': true },
  conntrack: { '--ctstate': true, '--ctorigdst': true, '--ctorigsrc': true, '--ctorigdstport': true },
  set: { '--match-set': true },
  multiport: { '--dports': true, '--sports': true, '--ports': true },
  physdev: { '--physdev-in': true, '--physdev-out': true, '--physdev-is-bridged': false, '--physdev-is-in': false, '--physdev-is-out': false },
  limit: { '--limit': true, '--limit-burst': true },
};

const TARGET_OPTS: Record<string, Record<string, boolean>> = {
  ACCEPT: {},
  DROP: {},
  RETURN: {},
  REJECT: { '--reject-with': true },
  DNAT: { '--to-destination': true, '--random': false, '--persistent': false },
  SNAT: { '--to-source': true, '--random': false, '--random-fully': false, '--persistent': false },
  MASQUERADE: { '--to-ports': true, '--random': false, '--random-fully': false },
  MARK: { '--set-xmark': true, '--set-mark': true, '--or-mark': true, '--xor-mark': true, '--and-mark': true },
  LOG: { '--log-prefix': true, '--log-level': true },
  NFLOG: { '--nflog-group': true, '--nflog-prefix': true },
  CONNMARK: { '--set-mark': true, '--save-mark': false, '--restore-mark': false },
  NOTRACK: {},
};

const BASIC: Record<string, string> = {
  '-s': 'src', '--source': 'src', '-d': 'dst', '--destination': 'dst', '-p': 'proto', '--protocol': 'proto',
  '-i': 'in', '--in-interface': 'in', '-o': 'out', '--out-interface': 'out',
};

function fail(msg: string): never {
  throw new SkiffError('ERR_IPTABLES_PARSE', msg);
}

/** Parses the words after `-A CHAIN` (or `-I CHAIN [n]`) into matches and a target. */
export function parseRule(chain: string, words: string[]): Rule {
  const matches: Match[] = [];
  let target: Target | undefined;
  let i = 0;
  let negateNext = false;
  let current: Match | undefined;
  while (i < words.length) {
    const w = words[i];
    if (w === '!') {
      negateNext = true;
      i++;
      continue;
    }
    if (BASIC[w]) {
      const v = words[i + 1] ?? fail(`option ${w} requires an argument`);
      matches.push({ module: BASIC[w], negate: negateNext, opts: { value: v }, negated: new Set() });
      negateNext = false;
      current = undefined;
      i += 2;
      continue;
    }
    if (w === '-m' || w === '--match') {
      const mod = words[i + 1] ?? fail('-m requires a module name');
      if (!MODULES[mod]) fail(`Couldn't load match \`${mod}'`);
      current = { module: mod, negate: false, opts: {}, negated: new Set() };
      matches.push(current);
      i += 2;
      continue;
    }
    if (w === '-j' || w === '--jump' || w === '-g' || w === '--goto') {
      const name = words[i + 1] ?? fail(`${w} requires a target`);
      target = { name, opts: {}, goto: w === '-g' || w === '--goto' };
      i += 2;
      const known = TARGET_OPTS[name];
      while (i < words.length && words[i].startsWith('--')) {
        const opt = words[i];
        if (!known || !(opt in known)) fail(`unknown option "${opt}" for target ${name}`);
        if (known[opt]) {
          target.opts[opt] = words[i + 1] ?? fail(`option ${opt} requires an argument`);
          i += 2;
        } else {
          target.opts[opt] = true;
          i++;
        }
      }
      if (i < words.length) fail(`unexpected "${words[i]}" after target ${name}`);
      break;
    }
    if (w.startsWith('--') && current) {
      const spec = MODULES[current.module];
      if (!(w in spec)) fail(`unknown option "${w}" for match ${current.module}`);
      if (negateNext) current.negated.add(w);
      negateNext = false;
      if (w === '--match-set') {
        current.opts[w] = `${words[i + 1] ?? fail('--match-set needs a set name')} ${words[i + 2] ?? fail('--match-set needs flags')}`;
        i += 3;
      } else if (spec[w]) {
        current.opts[w] = words[i + 1] ?? fail(`option ${w} requires an argument`);
        i += 2;
      } else {
        current.opts[w] = true;
        i++;
      }
      continue;
    }
    if (w.startsWith('--') && !current) {
      // Implicit protocol match (`-p tcp --dport 80`).
      const proto = matches.find((m) => m.module === 'proto')?.opts.value;
      if (typeof proto === 'string' && MODULES[proto] && w in MODULES[proto]) {
        current = { module: proto, negate: false, opts: {}, negated: new Set() };
        matches.push(current);
        continue;
      }
    }
    fail(`Bad argument \`${w}'`);
  }
  return { chain, matches, target, spec: words.map((x) => (/[\s"]/.test(x) ? `"${x.replace(/"/g, '\\"')}"` : x)).join(' ') };
}

/** Checks a rule against the kernel's rules for `table` (per-table targets, option sanity). */
export function validateRule(table: string, rule: Rule, chainExists: (name: string) => boolean): void {
  const t = rule.target;
  for (const m of rule.matches) {
    if (m.module === 'tcp' || m.module === 'udp' || m.module === 'sctp') {
      const proto = rule.matches.find((x) => x.module === 'proto')?.opts.value;
      if (proto !== m.module) fail(`match ${m.module} needs "-p ${m.module}"`);
    }
    if (m.module === 'statistic') {
      const p = Number(m.opts['--probability']);
      if (m.opts['--mode'] !== 'random' && m.opts['--mode'] !== 'nth') fail('statistic: --mode random|nth required');
      if (m.opts['--mode'] === 'random' && !(p >= 0 && p <= 1)) fail(`statistic: bad probability ${m.opts['--probability']}`);
    }
    if (m.module === 'recent') {
      const name = String(m.opts['--name'] ?? 'DEFAULT');
      if (name.length > 200) fail('recent: name too long');
      const ops = ['--set', '--rcheck', '--update', '--remove'].filter((o) => m.opts[o]);
      if (ops.length !== 1) fail('recent: exactly one of --set/--rcheck/--update/--remove');
      if (m.opts['--reap'] && !m.opts['--seconds']) fail('recent: --reap needs --seconds');
    }
    if (m.module === 'comment' && String(m.opts['--comment'] ?? '').length > 256) fail('comment: too long (256 max)');
  }
  if (!t) return;
  const natOnly = ['DNAT', 'SNAT', 'MASQUERADE'];
  if (natOnly.includes(t.name) && table !== 'nat') fail(`target ${t.name} only valid in nat table`);
  if (t.name === 'REJECT' && table !== 'filter') fail('target REJECT only valid in filter table');
  if (t.name === 'DROP' && table === 'nat') fail('The "nat" table is not intended for filtering, the use of DROP is therefore inhibited.');
  if (t.name === 'DNAT') {
    const to = String(t.opts['--to-destination'] ?? fail('DNAT needs --to-destination'));
    const proto = rule.matches.find((x) => x.module === 'proto')?.opts.value;
    if (to.includes(':') && proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') fail('DNAT: Need TCP, UDP, SCTP or DCCP with port specification');
  }
  if (!TARGET_OPTS[t.name] && !chainExists(t.name)) fail(`Couldn't load target \`${t.name}'`);
}
