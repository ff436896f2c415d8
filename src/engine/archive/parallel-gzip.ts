/**
 * gzip on every core, as pigz does: the input is cut into 1 MiB blocks,
 * each block is deflated on libuv's thread pool with the previous block's
 * last 32 KiB as its dictionary (so the ratio stays that of one stream) and
 * ends with a sync flush; the blocks are written in order, followed by an
 * empty final block and the gzip trailer (CRC-32 and size of the input).
 * The output is one ordinary gzip member, and it is deterministic: the same
 * tar gives the same bytes, hence the same digest, on every push.
 */
import os from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';

const BLOCK = 1 << 20;
const DICTIONARY = 32 << 10;
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);
/** An empty fixed-Huffman block with BFINAL set: ends the deflate stream after a sync flush. */
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

function deflateBlock(block: Buffer, dictionary: Buffer | undefined, level: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    zlib.deflateRaw(block, { level, finishFlush: zlib.constants.Z_SYNC_FLUSH, ...(dictionary ? { dictionary } : {}) }, (err, out) =>
      err ? reject(err) : resolve(out),
    ),
  );
}

export class ParallelGzip extends Transform {
  private parts: Buffer[] = [];
  private partsLength = 0;
  private previousTail: Buffer | undefined;
  private readonly queue: Promise<Buffer>[] = [];
  private crc = 0;
  private size = 0;
  private readonly maxInFlight: number;

  constructor(private readonly level = 6) {
    super({ highWaterMark: BLOCK });
    this.maxInFlight = Math.max(2, os.availableParallelism() * 2);
    this.push(GZIP_HEADER);
  }

  private submit(block: Buffer): void {
    const dictionary = this.previousTail;
    this.previousTail = block.length >= DICTIONARY ? block.subarray(block.length - DICTIONARY) : Buffer.concat([dictionary ?? Buffer.alloc(0), block]).subarray(-DICTIONARY);
    const p = deflateBlock(block, dictionary, this.level);
    p.catch(() => {}); // awaited in order below
    this.queue.push(p);
  }

  private async drain(keep: number): Promise<void> {
    while (this.queue.length > keep) this.push(await this.queue.shift()!);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.crc = zlib.crc32(chunk, this.crc);
    this.size += chunk.length;
    this.parts.push(chunk);
    this.partsLength += chunk.length;
    while (this.partsLength >= BLOCK) {
      const all = Buffer.concat(this.parts, this.partsLength);
      this.submit(all.subarray(0, BLOCK));
      const rest = all.subarray(BLOCK);
      this.parts = rest.length ? [rest] : [];
      this.partsLength = rest.length;
    }
    this.drain(this.maxInFlight).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    if (this.partsLength) this.submit(Buffer.concat(this.parts, this.partsLength));
    this.parts = [];
    this.drain(0).then(() => {
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.size % 2 ** 32, 4);
      this.push(FINAL_BLOCK);
      this.push(trailer);
      cb();
    }, cb);
  }
}
