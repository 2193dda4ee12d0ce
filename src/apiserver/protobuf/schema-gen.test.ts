// The committed table is exactly what the generator derives from kubectl's own descriptors and
// struct tags (so nobody hand-edits schema.ts), and the table parser rejects malformed input.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findGoTags, generateSchemaModule } from './schema-gen.js';
import { kubernetesTool } from './capture.js';
import { parseSchema } from './table.js';

const HERE = dirname(fileURLToPath(import.meta.url));

t.test('schema.ts regenerates byte-identical from kubectl v1.33', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-pb-gen-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const binary = readFileSync(await kubernetesTool('kubectl', dir));
  t.equal(generateSchemaModule(binary), readFileSync(join(HERE, 'schema.ts'), 'utf8'));
  const tags = findGoTags(binary);
  t.equal(tags.renames.get('uID'), 'uid', 'BoundObjectReference.uID is uid in JSON');
  t.ok(tags.inline.has('volumeSource') && tags.inline.has('localObjectReference'), 'embedded structs found');
});

t.test('parseSchema rejects malformed tables', async (t) => {
  const bad = (text: string) => t.throws(() => parseSchema(text), { name: 'SkiffError', code: 'ERR_PROTOBUF_SCHEMA' }, text.split('\n').pop() ?? text);
  bad('A x=1:string');
  bad('package a p\nA x:string');
  bad('package a p\nA x=1:b:B');
  bad('package a p\nA x=1:Missing');
  bad('package a p\nA ...x=1:string');
  const ok = parseSchema('package a p\nA x?=1:B ys=2:string[] m=3:map<string,bytes>\nB ...a=1:A');
  t.strictSame(ok.get('p.A')?.fields, [
    { name: 'x', id: 1, type: 'p.B', repeated: false, pointer: true, inline: false },
    { name: 'ys', id: 2, type: 'string', repeated: true, pointer: false, inline: false },
    { name: 'm', id: 3, type: 'bytes', keyType: 'string', repeated: false, pointer: false, inline: false },
  ]);
  t.equal(ok.get('p.B')?.fields[0].inline, true);
});
