import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { Gunzip } from '../../src/engine/archive/gunzip.js';

/**
 * Inflates data fed in chunks of `chunk` bytes (or cut at the offsets in `cuts`), each
 * written only once the one before was taken, so that every chunk is a call of its own
 * (queued writes would be merged by _writev); the error if it fails.
 */
async function gunzip(data: Buffer, chunk = 64 << 10, cuts?: number[]): Promise<Buffer | Error> {
  const bounds = [0, ...(cuts ?? Array.from({ length: Math.ceil(data.length / chunk) - 1 }, (_, i) => (i + 1) * chunk)), data.length];
  const parts = bounds.slice(1).map((end, i) => data.subarray(bounds[i], end));
  const g = new Gunzip();
  const out: Buffer[] = [];
  const collected = (async () => {
    for await (const piece of g) out.push(Buffer.from(piece as Buffer));
  })();
  try {
    for (const part of parts) await new Promise<void>((resolve, reject) => g.write(part, (err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve, reject) => g.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await collected;
    return Buffer.concat(out);
  } catch (err) {
    g.destroy();
    await collected.catch(() => {});
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
    const data = chunk === 1 ? packed.subarray(0, 20_000) : packed;
    const out = await gunzip(data, chunk);
    if (chunk === 1) {
      assert.ok(out instanceof Error, 'a prefix is a truncated stream');
      continue;
    }
    assert.ok(Buffer.isBuffer(out));
    assert.ok(out.equals(plain), `chunk ${chunk}`);
  }
});

test('gunzip: concatenated members are one stream; zero padding after the last is ignored, other bytes are not (as zlib)', async () => {
  assert.equal(String(await gunzip(Buffer.concat([hello, world]), 3)), 'hello world');
  assert.equal(String(await gunzip(Buffer.concat([hello, world]), 1)), 'hello world');
  assert.equal(String(await gunzip(Buffer.concat([hello, Buffer.alloc(512)]))), 'hello ');
  const garbage = await gunzip(Buffer.concat([hello, Buffer.from('xyz')]));
  assert.ok(garbage instanceof Error && /incorrect header check/.test(garbage.message));
  // a second member whose first byte is damaged is an error, not an early end
  const damaged = Buffer.concat([hello, world]);
  damaged[hello.length] = 0x1e;
  assert.ok((await gunzip(damaged)) instanceof Error);
});

test('gunzip: a header with every optional field (extra, name, comment, header CRC) cut anywhere', async () => {
  const body = zlib.deflateRawSync('abc');
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(zlib.crc32('abc'), 0);
  trailer.writeUInt32LE(3, 4);
  const fixed = Buffer.from([0x1f, 0x8b, 8, 0x04 | 0x08 | 0x10 | 0x02, 0, 0, 0, 0, 0, 3]);
  const fields = Buffer.concat([Buffer.from([4, 0]), Buffer.from('XYZW'), Buffer.from('name\0'), Buffer.from('comment\0')]);
  const head = Buffer.concat([fixed, fields]);
  const hcrc = Buffer.alloc(2);
  hcrc.writeUInt16LE(zlib.crc32(head) & 0xffff, 0);
  const member = Buffer.concat([head, hcrc, body, trailer]);
  assert.equal(String(zlib.gunzipSync(member)), 'abc', 'zlib reads it');
  for (let cut = 1; cut < head.length + 2; cut++) assert.equal(String(await gunzip(member, 0, [cut])), 'abc', `cut at ${cut}`);
  assert.equal(String(await gunzip(member, 1)), 'abc', 'one byte per call');
  const badHcrc = Buffer.from(member);
  badHcrc[head.length] ^= 1;
  assert.match(String((await gunzip(badHcrc)) as Error), /header crc mismatch/);
  const reserved = Buffer.from(hello);
  reserved[3] |= 0xe0;
  assert.match(String((await gunzip(reserved)) as Error), /unknown header flags set/);
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
