/**
 * Docker's stream multiplexing for attach, exec and logs without a tty:
 * each frame is [stream, 0, 0, 0, length (uint32 BE)] followed by the bytes.
 * Stream 1 is stdout, 2 stderr.
 */
export function frame(stream: 0 | 1 | 2 | 3, data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}

/** Incremental demultiplexer (used by the CLI and tests). */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (stream: number, data: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + len) break;
      this.onFrame(this.buf[0], this.buf.subarray(8, 8 + len));
      this.buf = this.buf.subarray(8 + len);
    }
  }
}
