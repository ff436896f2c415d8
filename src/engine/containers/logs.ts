/**
 * Container logs. conmon writes them in k8s-file form, one record a line:
 *   2024-01-02T03:04:05.123456789+00:00 stdout F text
 * ("P" marks a partial line, continued by the next record). conmon replaces
 * ctr.log with an empty file when it reaches max-size; berthd keeps a hard
 * link (ctr.log.cur) to the current file, so the replaced one survives and
 * is rotated to ctr.log.1, .2, ... up to max-file. Logs stay bounded even
 * while berthd is down (conmon's own cut), and rotated while it is up.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../../core/errdefs/index.js';

export const LOG_FILE = 'ctr.log';
const CURRENT_LINK = 'ctr.log.cur';

export interface LogEntry {
  stream: 1 | 2;
  /** RFC 3339 with nanoseconds, UTC ("...Z"). */
  time: string;
  timeMs: number;
  data: Buffer;
}

export interface LogQuery {
  stdout: boolean;
  stderr: boolean;
  /** Epoch ms; entries before are skipped. */
  since?: number;
  /** Epoch ms; entries after are skipped (and follow stops there). */
  until?: number;
  /** Last N entries only; -1 for all. */
  tail: number;
  follow: boolean;
}

/** Parses one k8s-file record (without its newline). Bytes are kept as they are. */
export function parseLogLine(line: Buffer): LogEntry | undefined {
  const s1 = line.indexOf(0x20);
  if (s1 < 0) return undefined;
  const s2 = line.indexOf(0x20, s1 + 1);
  if (s2 < 0) return undefined;
  const s3 = line.indexOf(0x20, s2 + 1);
  const ts = line.subarray(0, s1).toString('latin1');
  const streamName = line.subarray(s1 + 1, s2).toString('latin1');
  const tag = (s3 < 0 ? line.subarray(s2 + 1) : line.subarray(s2 + 1, s3)).toString('latin1');
  const content = s3 < 0 ? Buffer.alloc(0) : line.subarray(s3 + 1);
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return undefined;
  const timeMs = Date.parse(`${m[1]}${m[2] ? '.' + m[2].slice(0, 3) : ''}${m[3]}`);
  if (Number.isNaN(timeMs)) return undefined;
  const nanos = (m[2] ?? '').padEnd(9, '0').slice(0, 9);
  const utc = new Date(timeMs).toISOString().slice(0, 19);
  const frac = nanos.replace(/0+$/, '');
  return {
    stream: streamName === 'stderr' ? 2 : 1,
    time: `${utc}${frac ? '.' + frac : ''}Z`,
    timeMs,
    data: tag === 'P' ? Buffer.from(content) : Buffer.concat([content, NEWLINE]),
  };
}

const NEWLINE = Buffer.from('\n');

/** Splits buffered bytes into complete lines; returns the unfinished rest. */
function splitLines(data: Buffer, onLine: (line: Buffer) => void): Buffer {
  let start = 0;
  for (;;) {
    const nl = data.indexOf(0x0a, start);
    if (nl < 0) break;
    onLine(data.subarray(start, nl));
    start = nl + 1;
  }
  return data.subarray(start);
}

function wanted(e: LogEntry, q: LogQuery): boolean {
  if (e.stream === 1 && !q.stdout) return false;
  if (e.stream === 2 && !q.stderr) return false;
  if (q.since !== undefined && e.timeMs < q.since) return false;
  if (q.until !== undefined && e.timeMs > q.until) return false;
  return true;
}

async function inode(p: string): Promise<number | undefined> {
  try {
    return (await fsp.stat(p)).ino;
  } catch {
    return undefined;
  }
}

/** Log files of a container, oldest first. */
export async function logFiles(dir: string, maxFiles: number): Promise<string[]> {
  const files: string[] = [];
  for (let i = Math.max(maxFiles, 1) + 1; i >= 1; i--) {
    const p = path.join(dir, `${LOG_FILE}.${i}`);
    if (await inode(p)) files.push(p);
  }
  const cur = await inode(path.join(dir, CURRENT_LINK));
  const live = await inode(path.join(dir, LOG_FILE));
  if (cur !== undefined && cur !== live) files.push(path.join(dir, CURRENT_LINK));
  if (live !== undefined) files.push(path.join(dir, LOG_FILE));
  return files;
}

/**
 * Keeps the file conmon just replaced: if ctr.log is a new inode, the old
 * one (still linked as ctr.log.cur) becomes ctr.log.1 and older ones shift.
 * Synchronous: stats and renames of directory entries, cheaper than their
 * round trips through the thread pool at each start. The file that drops out
 * is renamed aside and deleted on the pool: freeing a max-size file's blocks
 * takes 25-120 ms on ext4 (512 MB), not for the event loop to wait.
 */
export function rotateLogs(dir: string, maxFiles: number): void {
  const live = path.join(dir, LOG_FILE);
  const cur = path.join(dir, CURRENT_LINK);
  const liveIno = inodeSync(live);
  if (liveIno === undefined) return;
  const curIno = inodeSync(cur);
  if (curIno === liveIno) return;
  const discard = (file: string): void => {
    const doomed = path.join(dir, `${DISCARDED_PREFIX}${crypto.randomBytes(4).toString('hex')}`);
    try {
      fs.renameSync(file, doomed);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    void fsp.rm(doomed, { force: true }).catch(() => {});
  };
  if (curIno !== undefined) {
    if (maxFiles <= 1) {
      discard(cur);
    } else {
      discard(path.join(dir, `${LOG_FILE}.${maxFiles - 1}`));
      for (let i = maxFiles - 2; i >= 1; i--) {
        try {
          fs.renameSync(path.join(dir, `${LOG_FILE}.${i}`), path.join(dir, `${LOG_FILE}.${i + 1}`));
        } catch {
          // fewer files so far
        }
      }
      fs.renameSync(cur, path.join(dir, `${LOG_FILE}.1`));
    }
  }
  try {
    fs.linkSync(live, cur);
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST' && errnoCode(err) !== 'ENOENT') throw err;
  }
}

/**
 * Log files on their way out (see rotateLogs). The `.tmp-` prefix is the
 * store's mark for leftovers: a crash's is deleted when the records load
 * (removeTempFiles), with no extra pass of its own.
 */
const DISCARDED_PREFIX = `.tmp-${LOG_FILE}.discarded-`;

function inodeSync(p: string): number | undefined {
  return fs.statSync(p, { throwIfNoEntry: false })?.ino;
}

/** Where a read of ctr.log stopped: its inode and the bytes of complete records read. */
export interface LogPosition {
  ino: number;
  offset: number;
}

/**
 * What readLogs hands to followLogs: where the read of ctr.log stopped and
 * that file, still open. A container that exits and is removed meanwhile
 * takes its directory with it; the open file still has every record.
 */
export interface LogHandover {
  at?: LogPosition;
  handle?: fsp.FileHandle;
}

async function readFileEntries(
  file: string,
  q: LogQuery,
  out: LogEntry[],
  ring: number,
  keep?: (handle: fsp.FileHandle) => void,
): Promise<LogPosition | undefined> {
  let rest: Buffer = Buffer.alloc(0);
  let read = 0;
  const onLine = (line: Buffer): void => {
    const e = parseLogLine(line);
    if (!e || !wanted(e, q)) return;
    out.push(e);
    if (ring > 0 && out.length > ring * 2 + 64) out.splice(0, out.length - ring);
  };
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    return undefined;
  }
  let kept = false;
  try {
    const { ino, size } = await fh.stat();
    if (q.tail !== 0) {
      for await (const chunk of fh.createReadStream({ highWaterMark: 1 << 16, autoClose: false, start: 0 })) {
        read += (chunk as Buffer).length;
        rest = Buffer.from(splitLines(rest.length ? Buffer.concat([rest, chunk as Buffer]) : (chunk as Buffer), onLine));
      }
    } else {
      read = size; // tail 0: only what comes next
    }
    if (keep) {
      keep(fh);
      kept = true;
    }
    return { ino, offset: read - rest.length };
  } finally {
    if (!kept) await fh.close();
  }
}

/**
 * Entries already written, oldest first, honouring tail/since/until. With
 * `position`, also says where the read of ctr.log stopped, for followLogs to
 * go on from there (output written in between is neither lost nor repeated).
 */
export async function readLogs(dir: string, maxFiles: number, q: LogQuery, position?: LogHandover): Promise<LogEntry[]> {
  const entries: LogEntry[] = [];
  const live = path.join(dir, LOG_FILE);
  const keepLive = position ? (h: fsp.FileHandle) => (position.handle = h) : undefined;
  if (q.tail === 0) {
    if (position) position.at = await readFileEntries(live, q, entries, 0, keepLive);
    return entries;
  }
  for (const f of await logFiles(dir, maxFiles)) {
    const at = await readFileEntries(f, q, entries, q.tail, f === live ? keepLive : undefined);
    if (position && f === live) position.at = at;
  }
  return q.tail > 0 && entries.length > q.tail ? entries.slice(entries.length - q.tail) : entries;
}

/**
 * Follows ctr.log from its current end, or from `from` (where readLogs
 * stopped, in the file it read, which followLogs then owns; from the start
 * if ctr.log was replaced since or did not exist):
 * calls emit for each new entry until the signal aborts or isDone() says the
 * container stopped and all output was read. Survives rotation (reopens when
 * the inode changes).
 */
export async function followLogs(
  dir: string,
  q: LogQuery,
  emit: (e: LogEntry) => Promise<void> | void,
  isDone: () => boolean,
  signal: AbortSignal,
  from?: LogHandover,
): Promise<void> {
  const file = path.join(dir, LOG_FILE);
  let fh: fsp.FileHandle | undefined;
  let ino: number | undefined;
  let offset = 0;
  let rest: Buffer = Buffer.alloc(0);
  const open = async (fromEnd: boolean): Promise<void> => {
    try {
      fh = await fsp.open(file, 'r');
      const st = await fh.stat();
      ino = st.ino;
      offset = fromEnd ? st.size : 0;
      rest = Buffer.alloc(0);
    } catch {
      fh = undefined;
    }
  };
  if (from?.handle && from.at) {
    fh = from.handle;
    ino = from.at.ino;
    offset = from.at.offset;
  } else {
    await from?.handle?.close();
    await open(from === undefined);
    if (from !== undefined && from.at !== undefined && ino === from.at.ino) offset = from.at.offset;
  }
  const buf = Buffer.alloc(1 << 16);
  let wake: (() => void) | undefined;
  let watcher: fs.FSWatcher | undefined;
  try {
    watcher = fs.watch(dir, () => wake?.());
    watcher.on('error', () => {});
  } catch {
    watcher = undefined;
  }
  const onAbort = (): void => wake?.();
  signal.addEventListener('abort', onAbort);
  try {
    for (;;) {
      if (signal.aborted) return;
      // asked before reading: output written just before the exit is read on this pass, not lost
      const doneBefore = isDone();
      let progressed = false;
      if (fh) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        if (bytesRead > 0) {
          progressed = true;
          offset += bytesRead;
          const lines: Buffer[] = [];
          const data = Buffer.concat([rest, buf.subarray(0, bytesRead)]);
          rest = Buffer.from(splitLines(data, (l) => lines.push(Buffer.from(l))));
          for (const line of lines) {
            const e = parseLogLine(line);
            if (!e) continue;
            if (q.until !== undefined && e.timeMs > q.until) return;
            if (wanted(e, q)) await emit(e);
          }
        }
      }
      if (progressed) continue;
      // at the end of this file: has conmon replaced it?
      const nowIno = await inode(file);
      if (nowIno !== undefined && nowIno !== ino) {
        await fh?.close();
        await open(false);
        continue;
      }
      if (doneBefore) return;
      if (isDone()) continue; // it stopped since: one more read
      if (q.until !== undefined && Date.now() > q.until) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 250);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    watcher?.close();
    await fh?.close();
  }
}
