/**
 * A synchronous, push-based tar reader: feed it bytes as they arrive, it
 * calls back with each entry's header, its data slices and its end. No
 * buffering of file contents, no promises per entry — it runs in the unpack
 * worker, where every call that follows it is a plain system call.
 *
 * Formats: ustar, GNU (long names 'L'/'K', base-256 numbers) and PAX
 * (per-entry 'x' and global 'g' records: path, linkpath, size, uid, gid,
 * mtime, SCHILY.xattr.* kept as raw bytes so binary xattrs survive).
 */

export type TarEntryType = 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo' | 'other';

export interface TarHeader {
  name: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch (fractional with PAX). */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** SCHILY.xattr.<name> records. */
  xattrs: Map<string, Buffer>;
}

export interface TarSink {
  entry(header: TarHeader): void;
  data(bytes: Buffer): void;
  entryEnd(): void;
}

export class TarFormatError extends Error {}

const BLOCK = 512;

type State = 'header' | 'data' | 'meta' | 'padding' | 'eof';

export class TarReader {
  private state: State = 'header';
  private pending: Buffer | null = null;
  private remaining = 0;
  private padding = 0;
  private metaType = '';
  private metaChunks: Buffer[] = [];
  private paxNext: Map<string, Buffer> | null = null;
  private paxGlobal = new Map<string, Buffer>();
  private longName: string | null = null;
  private longLink: string | null = null;
  private sawHeader = false;

  constructor(private readonly sink: TarSink) {}

  /** True once the end-of-archive marker was read. */
  get ended(): boolean {
    return this.state === 'eof';
  }

  write(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let off = 0;
    while (off < buf.length) {
      switch (this.state) {
        case 'eof':
          return; // trailing bytes after the end marker are ignored, as tar does
        case 'header': {
          if (buf.length - off < BLOCK) {
            this.pending = Buffer.from(buf.subarray(off));
            return;
          }
          this.header(buf.subarray(off, off + BLOCK));
          off += BLOCK;
          break;
        }
        case 'data': {
          const n = Math.min(this.remaining, buf.length - off);
          if (n > 0) this.sink.data(buf.subarray(off, off + n));
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.sink.entryEnd();
            this.state = this.padding ? 'padding' : 'header';
          }
          break;
        }
        case 'meta': {
          const n = Math.min(this.remaining, buf.length - off);
          this.metaChunks.push(Buffer.from(buf.subarray(off, off + n)));
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.meta(Buffer.concat(this.metaChunks));
            this.metaChunks = [];
            this.state = this.padding ? 'padding' : 'header';
          }
          break;
        }
        case 'padding': {
          const n = Math.min(this.padding, buf.length - off);
          off += n;
          this.padding -= n;
          if (this.padding === 0) this.state = 'header';
          break;
        }
      }
    }
  }

  /** Checks the archive did not stop in the middle of an entry. */
  end(): void {
    if (!this.sawHeader) throw new TarFormatError('the archive is empty');
    if (this.state === 'eof') return;
    if (this.state !== 'header' || this.pending) throw new TarFormatError('Unexpected end of data');
  }

  private header(block: Buffer): void {
    if (isZero(block)) {
      this.sawHeader = true;
      this.state = 'eof';
      return;
    }
    if (!checksumOk(block)) throw new TarFormatError('Invalid tar header: checksum mismatch (not a tar archive?)');
    this.sawHeader = true;
    const typeflag = block[156] === 0 ? '0' : String.fromCharCode(block[156]);
    const size = readNumber(block, 124, 12);
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > 16 << 20) throw new TarFormatError('Invalid tar header: metadata record too large');
      this.metaType = typeflag;
      this.remaining = size;
      if (size === 0) this.meta(Buffer.alloc(0));
      this.state = size === 0 ? 'header' : 'meta';
      return;
    }
    const magic = block.toString('latin1', 257, 263);
    const ustar = magic === 'ustar\u0000';
    let name = cString(block, 0, 100);
    if (ustar) {
      const prefix = cString(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const pax = this.paxNext;
    this.paxNext = null;
    const get = (key: string): string | undefined => {
      const v = pax?.get(key) ?? this.paxGlobal.get(key);
      return v === undefined ? undefined : v.toString('utf8');
    };
    if (this.longName !== null) name = this.longName;
    let linkname = this.longLink ?? cString(block, 157, 100);
    this.longName = null;
    this.longLink = null;
    const paxPath = get('path');
    if (paxPath !== undefined) name = paxPath;
    const paxLink = get('linkpath');
    if (paxLink !== undefined) linkname = paxLink;
    const paxSize = get('size');
    const realSize = paxSize !== undefined ? Number(paxSize) : size;
    if (!Number.isSafeInteger(realSize) || realSize < 0) throw new TarFormatError('Invalid tar header: bad size');
    const num = (key: string, fallback: number): number => {
      const v = get(key);
      if (v === undefined) return fallback;
      const n = Number(v);
      return Number.isFinite(n) ? n : fallback;
    };
    const xattrs = new Map<string, Buffer>();
    for (const source of [this.paxGlobal, pax ?? new Map<string, Buffer>()]) {
      for (const [k, v] of source) if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), v);
    }
    const header: TarHeader = {
      name,
      type: entryType(typeflag, name),
      mode: readNumber(block, 100, 8),
      uid: num('uid', readNumber(block, 108, 8)),
      gid: num('gid', readNumber(block, 116, 8)),
      size: realSize,
      mtime: num('mtime', readNumber(block, 136, 12)),
      linkname,
      devmajor: readNumber(block, 329, 8),
      devminor: readNumber(block, 337, 8),
      xattrs,
    };
    // Links, devices and directories carry no data whatever their size field says.
    const hasData = header.type === 'file' || header.type === 'other';
    const dataSize = hasData ? realSize : 0;
    this.padding = (BLOCK - (dataSize % BLOCK)) % BLOCK;
    this.sink.entry(header);
    if (dataSize === 0) {
      this.sink.entryEnd();
      this.state = 'header';
    } else {
      this.remaining = dataSize;
      this.state = 'data';
    }
  }

  private meta(body: Buffer): void {
    switch (this.metaType) {
      case 'L':
        this.longName = cString(body, 0, body.length);
        break;
      case 'K':
        this.longLink = cString(body, 0, body.length);
        break;
      case 'x':
        this.paxNext = parsePax(body);
        break;
      case 'g':
        for (const [k, v] of parsePax(body)) this.paxGlobal.set(k, v);
        break;
    }
  }
}

function entryType(flag: string, name: string): TarEntryType {
  switch (flag) {
    case '0':
    case '7':
      return name.endsWith('/') ? 'directory' : 'file';
    case '1':
      return 'link';
    case '2':
      return 'symlink';
    case '3':
      return 'character-device';
    case '4':
      return 'block-device';
    case '5':
      return 'directory';
    case '6':
      return 'fifo';
    default:
      return 'other';
  }
}

/** PAX records: "<len> <key>=<value>\n", values as raw bytes. */
function parsePax(body: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < body.length) {
    const space = body.indexOf(0x20, off);
    if (space < 0) break;
    const len = parseInt(body.toString('latin1', off, space), 10);
    if (!(len > 0) || off + len > body.length) throw new TarFormatError('Invalid tar header: bad PAX record');
    const record = body.subarray(space + 1, off + len - 1); // without the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq > 0) out.set(record.toString('utf8', 0, eq), Buffer.from(record.subarray(eq + 1)));
    off += len;
  }
  return out;
}

function cString(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  const stop = end < 0 || end > off + len ? off + len : end;
  return buf.toString('utf8', off, stop);
}

function readNumber(buf: Buffer, off: number, len: number): number {
  if (buf[off] & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as a marker
    let n = buf[off] & 0x7f;
    for (let i = 1; i < len; i++) n = n * 256 + buf[off + i];
    return n;
  }
  const text = buf.toString('latin1', off, off + len).replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError('Invalid tar header: bad number');
  return parseInt(text, 8);
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

function checksumOk(block: Buffer): boolean {
  const stored = block.toString('latin1', 148, 156).replace(/\0.*$/s, '').trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  const want = parseInt(stored, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}
