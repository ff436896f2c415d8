/**
 * Detects how a layer or import stream is compressed from its first bytes
 * and returns a stream of the plain tar.
 */
import { PassThrough, type Readable } from 'node:stream';
import { spawn } from 'node:child_process';
import { errnoCode, invalidArgument } from '../../core/errdefs/index.js';
import { Gunzip } from './gunzip.js';

export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/**
 * Reads the first bytes of a stream without losing them: resolves with the
 * head and a stream that replays it followed by the rest. That stream is a
 * buffering copy stage (1 MiB) unless `inPlace`: then it is the source itself,
 * paused, with the head put back, for a reader that consumes chunks as they
 * come and would only pay for the extra stage.
 */
export function peek(source: Readable, bytes = 8, inPlace = false): Promise<{ head: Buffer; stream: Readable }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const done = (): void => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.pause();
      const head = Buffer.concat(chunks);
      if (inPlace && !source.readableEnded) {
        if (head.length) source.unshift(head);
        resolve({ head, stream: source });
        return;
      }
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      out.write(head);
      source.pipe(out);
      source.on('error', (err) => out.destroy(err));
      resolve({ head, stream: out });
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      have += chunk.length;
      if (have >= bytes) done();
    };
    const onEnd = (): void => done();
    const onError = (err: Error): void => reject(err);
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onError);
  });
}

/** A decompressing stream for the given compression (identity for none). */
export function decompressor(kind: Compression): { input: NodeJS.WritableStream & Readable; output: Readable } | null {
  switch (kind) {
    case 'none':
      return null;
    case 'gzip': {
      const gunzip = new Gunzip();
      return { input: gunzip as unknown as NodeJS.WritableStream & Readable, output: gunzip };
    }
    case 'bzip2':
    case 'xz':
    case 'zstd': {
      // The system's own decompressors (Debian xz-utils, bzip2, zstd) do the
      // work in their own process: streaming, off our event loop, and for zstd
      // the reference implementation (Node 20 has no zstd; see docs/architecture.md).
      const child = spawn(kind, ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'] });
      const out = child.stdout;
      child.on('error', (err) =>
        out.destroy(errnoCode(err) === 'ENOENT' ? invalidArgument(`${kind}-compressed data needs the ${kind} program, which is not installed`) : err),
      );
      child.stdin.on('error', () => {}); // the exit status reports the failure
      out.on('close', () => {
        if (child.exitCode === null) child.kill('SIGKILL'); // the reader gave up: do not leave it waiting on stdin
      });
      child.on('close', (code) => {
        if (code !== 0) out.destroy(invalidArgument(`${kind} decompression failed (exit ${code})`));
      });
      return { input: child.stdin as unknown as NodeJS.WritableStream & Readable, output: out };
    }
  }
}

/**
 * Returns the plain tar stream for a possibly compressed source; `inPlace`
 * as for peek() (uncompressed input then comes back as the source itself).
 */
export async function decompressed(source: Readable, inPlace = false): Promise<{ stream: Readable; compression: Compression }> {
  const { head, stream } = await peek(source, 8, inPlace);
  const compression = detectCompression(head);
  const d = decompressor(compression);
  if (!d) return { stream, compression };
  stream.on('error', (err) => d.output.destroy(err));
  stream.pipe(d.input as unknown as NodeJS.WritableStream);
  return { stream: d.output, compression };
}
