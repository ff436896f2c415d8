import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { Gunzip } from '../../src/engine/archive/gunzip.js';

/** Inflates data fed in chunks of `chunk` bytes; the error if it fails. */
async function gunzip(data: Buffer, chunk = 64 << 10): Promise<Buffer | Error> {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) parts.push(data.subarray(i, i + chunk));
  const out: Buffer[] = [];
  try {
    await pipeline(Readable.from(parts), new Gunzip(), async (source: AsyncIterable<Buffer>) => {
      for await (const piece of source) out.push(Buffer.from(piece));
    });
    return Buffer.concat(out);
  } catch (err) {
    return err as Error;
  }
}

const hello = zlib.gzipSync('hello ');
const world = zlib.gzipSync('world');

test('gunzip (ISA-L) gives what zlib gives, fed in any chunk size, with output over many buffers', async () => {
  // ~12 MiB of mixed text and random bytes: several 1 MiB output buffers, stored and coded blocks
  const plain = Buffer.concat(Array.from({ length: 24 }, (_, i) => (i % 3 === 0 ? crypto.randomBytes(1 << 19) : Buffer.from(`line ${i}\n`.repeat(60_000)))));
  const packed = zlib.gzipSync(plain, { level: 6 });
  for (const chunk of [1, 1000, 64 << 10, packed.length]) {
    const data = chunk === 1 ? packed.subarray(0, 300_000) : packed;
    const out = await gunzip(data, chunk);
    if (chunk === 1) {
      assert.ok(out instanceof Error, 'a prefix is a truncated stream');
      continue;
    }
    assert.ok(Buffer.isBuffer(out));
    assert.ok(out.equals(plain), `chunk ${chunk}`);
  }
});

test('gunzip: concatenated members are one stream; bytes after the last member that do not start one are ignored', async () => {
  assert.equal(String(await gunzip(Buffer.concat([hello, world]), 3)), 'hello world');
  assert.equal(String(await gunzip(Buffer.concat([hello, world]), 1)), 'hello world');
  assert.equal(String(await gunzip(Buffer.concat([hello, Buffer.alloc(512)]))), 'hello ');
});

test('gunzip: truncation, a wrong CRC or length, a bad header are errors', async () => {
  const badCrc = Buffer.from(hello);
  badCrc[badCrc.length - 6] ^= 1;
  const badLength = Buffer.from(hello);
  badLength[badLength.length - 2] ^= 1;
  const badMethod = Buffer.from(hello);
  badMethod[2] = 7;
  const cases: Array<[string, Buffer, RegExp]> = [
    ['truncated trailer', hello.subarray(0, hello.length - 3), /unexpected end of file/],
    ['header only', hello.subarray(0, 5), /unexpected end of file/],
    ['second member cut', Buffer.concat([hello, world.subarray(0, 4)]), /unexpected end of file/],
    ['wrong CRC', badCrc, /incorrect data check/],
    ['wrong length', badLength, /incorrect data check/],
    ['not deflate', badMethod, /compression method|header check/],
  ];
  for (const [name, data, message] of cases) {
    const out = await gunzip(data);
    assert.ok(out instanceof Error, name);
    assert.match(out.message, message, name);
  }
});

test('gunzip: a slow reader holds the inflating back (backpressure), and destroying mid-stream frees it', async () => {
  const plain = Buffer.from('x'.repeat(16 << 20));
  const g = new Gunzip();
  g.write(zlib.gzipSync(plain));
  g.end();
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(g.readableLength <= 2 << 20, `buffered ${g.readableLength}`);
  let got = 0;
  await pipeline(g, new Writable({ write: (c: Buffer, _e, cb) => ((got += c.length), cb()) }));
  assert.equal(got, plain.length);

  const h = new Gunzip();
  h.write(zlib.gzipSync(plain));
  await new Promise((r) => setTimeout(r, 20));
  h.destroy();
  await new Promise((r) => setTimeout(r, 50)); // the running call completes on a closed handle without harm
});
