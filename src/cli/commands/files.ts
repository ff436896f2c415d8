/** cp, top, diff and stats: looking into containers. */
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { ApiError, type EngineClient } from '../../client/client.js';
import { humanSize } from '../../util/units.js';
import type { Command } from '../cli.js';
import { CommandFailed } from '../cli.js';
import {
  type CopyInfo, CopyError, localDestinationInfo, localSourceInfo, packLocal, prepareCopy, rebaseNameFor, splitCopyArg,
  splitPathDirEntry, unpackLocal,
} from '../copy.js';
import { renderRows } from '../output.js';
import { forEachJsonLine } from '../../client/json-lines.js';

const enc = encodeURIComponent;
const STAT_HEADER = 'x-docker-container-path-stat';
const GO_MODE_DIR = 2 ** 31;
const GO_MODE_SYMLINK = 2 ** 27;
const GO_MODE_DEVICE = 2 ** 26;
const GO_MODE_IRREGULAR = 2 ** 19;

interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

function decodeStat(header: string | string[] | undefined): PathStat {
  if (typeof header !== 'string' || !header) throw new CommandFailed('the daemon sent no path stat header', 1);
  return JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as PathStat;
}

/** HEAD archive: the stat, or undefined when the path does not exist (a HEAD error has no body). */
async function statPath(client: EngineClient, container: string, p: string): Promise<PathStat | undefined> {
  const res = await client.raw('HEAD', `/containers/${enc(container)}/archive`, { query: { path: p } });
  res.resume();
  if (res.statusCode === 200) return decodeStat(res.headers[STAT_HEADER]);
  if (res.statusCode === 404) {
    // tell "no such container" from "no such path"
    await client.json('GET', `/containers/${enc(container)}/json`);
    return undefined;
  }
  throw new ApiError(res.statusCode ?? 500, `could not stat ${container}:${p} (status ${res.statusCode})`);
}

function isDirMode(mode: number): boolean {
  return Math.floor(mode / GO_MODE_DIR) % 2 === 1;
}

function isSymlinkMode(mode: number): boolean {
  return Math.floor(mode / GO_MODE_SYMLINK) % 2 === 1;
}

/** Docker refuses devices and irregular files as a destination. */
function isCopyableDestination(mode: number): boolean {
  return Math.floor(mode / GO_MODE_DEVICE) % 2 === 0 && Math.floor(mode / GO_MODE_IRREGULAR) % 2 === 0;
}

/** Local errors as Go prints them ("lstat /x: no such file or directory"). */
function copyFailed(err: unknown): never {
  if (err instanceof CopyError) throw new CommandFailed(err.message, 1);
  const e = err as NodeJS.ErrnoException;
  if (e.code && e.syscall) {
    const reason = /^[A-Z]+: ([^,]+)/.exec(e.message)?.[1] ?? e.message;
    throw new CommandFailed(`${e.syscall} ${e.path ?? ''}: ${reason}`, 1);
  }
  throw err;
}

async function copyFromContainer(client: EngineClient, container: string, srcPath: string, dstPath: string, followLink: boolean): Promise<number> {
  let from = srcPath;
  let rebaseName: string | undefined;
  if (followLink) {
    const st = await statPath(client, container, srcPath);
    if (st && isSymlinkMode(st.mode)) {
      const target = st.linkTarget.startsWith('/') ? st.linkTarget : path.posix.join(splitPathDirEntry(srcPath).dir, st.linkTarget);
      ({ resolved: from, rebaseName } = rebaseNameFor(srcPath, target));
    }
  }
  const res: IncomingMessage = await client.stream('GET', `/containers/${enc(container)}/archive`, { query: { path: from } });
  if (dstPath === '-') {
    for await (const chunk of res) process.stdout.write(chunk as Buffer);
    return 0;
  }
  const stat = decodeStat(res.headers[STAT_HEADER]);
  const src: CopyInfo = { path: from, exists: true, isDir: isDirMode(stat.mode), rebaseName };
  try {
    const dst = await localDestinationInfo(path.resolve(dstPath) + (dstPath.endsWith('/') ? '/' : ''));
    const { dstDir, rename } = prepareCopy(src, dst);
    // the archive's root is named after what was fetched; it takes the link's name, then the destination's
    const finalName = rename ? rename.to : rebaseName;
    await unpackLocal(res, dstDir, finalName !== undefined ? { from: splitPathDirEntry(from).base, to: finalName } : undefined);
  } catch (err) {
    res.destroy();
    copyFailed(err);
  }
  return 0;
}

async function copyToContainer(client: EngineClient, srcPath: string, container: string, dstPath: string, followLink: boolean, archive: boolean): Promise<number> {
  let dst: CopyInfo = { path: dstPath, exists: false, isDir: false };
  let st = await statPath(client, container, dstPath);
  if (st && isSymlinkMode(st.mode)) {
    const target = st.linkTarget.startsWith('/') ? st.linkTarget : path.posix.join(splitPathDirEntry(dstPath).dir, st.linkTarget);
    dst.path = target;
    st = await statPath(client, container, target);
  }
  if (st && !isCopyableDestination(st.mode)) throw new CommandFailed(`destination "${container}:${dstPath}" must be a directory or a regular file`, 1);
  if (st) dst = { ...dst, exists: true, isDir: isDirMode(st.mode) };

  let body: Readable;
  let target: string;
  if (srcPath === '-') {
    if (!dst.isDir) throw new CommandFailed(`destination "${container}:${dstPath}" must be a directory`, 1);
    body = process.stdin;
    target = dst.path;
  } else {
    let src: CopyInfo;
    let prepared: { dstDir: string; rename?: { from: string; to: string } };
    try {
      src = await localSourceInfo(srcPath, followLink);
      prepared = prepareCopy(src, dst);
    } catch (err) {
      copyFailed(err);
    }
    const pack = tar.pack();
    const packing = packLocal(src, pack, prepared.rename);
    packing.then(() => pack.finalize(), (err: Error) => pack.destroy(err));
    body = pack as unknown as Readable;
    target = prepared.dstDir;
  }
  await client.call('PUT', `/containers/${enc(container)}/archive`, {
    query: { path: target, noOverwriteDirNonDir: true, copyUIDGID: archive ? true : undefined },
    rawBody: body,
    headers: { 'Content-Type': 'application/x-tar' },
  });
  return 0;
}

const cp: Command = {
  name: 'cp',
  usage: 'cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH',
  description: `Copy files/folders between a container and the local filesystem

Use '-' as the source to read a tar archive from stdin
and extract it to a directory destination in a container.
Use '-' as the destination to stream a tar archive of a
container source to stdout.`,
  flags: [
    { name: 'archive', short: 'a', type: 'bool', description: 'Archive mode (copy all uid/gid information)' },
    { name: 'follow-link', short: 'L', type: 'bool', description: 'Always follow symbol link in SRC_PATH' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress progress output during copy' },
  ],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, f) {
    const [srcArg, dstArg] = f.args;
    if (!srcArg) throw new CommandFailed('source can not be empty', 1);
    if (!dstArg) throw new CommandFailed('destination can not be empty', 1);
    const src = splitCopyArg(srcArg);
    const dst = splitCopyArg(dstArg);
    if (src.container !== undefined && dst.container !== undefined) throw new CommandFailed('copying between containers is not supported', 1);
    if (src.container === undefined && dst.container === undefined) throw new CommandFailed('must specify at least one container source', 1);
    const client = ctx.client();
    if (src.container !== undefined) {
      if (!src.container) throw new CommandFailed('container name can not be empty', 1);
      return copyFromContainer(client, src.container, src.path, dst.path, f.bool('follow-link'));
    }
    if (!dst.container) throw new CommandFailed('container name can not be empty', 1);
    return copyToContainer(client, src.path, dst.container, dst.path, f.bool('follow-link'), f.bool('archive'));
  },
};

/** Go's tabwriter(minwidth 20, padding 3), as `docker top` prints. */
function topTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length + 3, 20)));
  return rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]) : c)).join('')).join('\n');
}

const top: Command = {
  name: 'top',
  usage: 'top CONTAINER [ps OPTIONS]',
  description: 'Display the running processes of a container',
  flags: [],
  interspersed: false,
  minArgs: 1,
  async run(ctx, f) {
    const [container, ...psArgs] = f.args;
    const r = await ctx.client().json<{ Titles: string[]; Processes: string[][] | null }>('GET', `/containers/${enc(container)}/top`, {
      query: { ps_args: psArgs.length ? psArgs.join(' ') : undefined },
    });
    ctx.out(topTable([r.Titles, ...(r.Processes ?? [])]));
    return 0;
  },
};

const diff: Command = {
  name: 'diff',
  usage: 'diff CONTAINER',
  description: "Inspect changes to files or directories on a container's filesystem",
  flags: [],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, f) {
    const changes = await ctx.client().json<{ Path: string; Kind: number }[] | null>('GET', `/containers/${enc(f.args[0])}/changes`);
    const lines = (changes ?? []).map((c) => `${'CAD'[c.Kind] ?? '?'} ${c.Path}`);
    if (lines.length) ctx.out(lines.join('\n'));
    return 0;
  },
};

// ---- stats ---------------------------------------------------------------

interface StatsFrame {
  name?: string;
  id?: string;
  read?: string;
  pids_stats?: { current?: number };
  blkio_stats?: { io_service_bytes_recursive?: { op: string; value: number }[] | null };
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes: number; tx_bytes: number }>;
}

interface StatsRow {
  Container: string;
  ID: string;
  Name: string;
  CPUPerc: string;
  MemUsage: string;
  MemPerc: string;
  NetIO: string;
  BlockIO: string;
  PIDs: string;
}

const STATS_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';
const STATS_HEADERS: Record<string, string> = {
  Container: 'CONTAINER', ID: 'CONTAINER ID', Name: 'NAME', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %',
  NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS',
};

/** go-units BytesSize: binary units, "%.4g". */
function bytesSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${Number(n.toPrecision(4))}${units[i]}`;
}

/** The CLI's arithmetic: CPU % over precpu, memory without the inactive file cache. */
export function statsRow(container: string, s: StatsFrame | undefined, noTrunc: boolean): StatsRow {
  const id = s?.id ?? container;
  const base = { Container: container, ID: noTrunc ? id : id.slice(0, 12), Name: (s?.name ?? '').replace(/^\//, '') || '--' };
  if (!s) return { ...base, CPUPerc: '--', MemUsage: '-- / --', MemPerc: '--', NetIO: '--', BlockIO: '--', PIDs: '--' };
  const cpuDelta = (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  const cpus = s.cpu_stats?.online_cpus || s.cpu_stats?.cpu_usage?.percpu_usage?.length || 0;
  const cpu = systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * cpus * 100 : 0;
  const m = s.memory_stats ?? {};
  const usage = m.usage ?? 0;
  const inactive = m.stats?.total_inactive_file ?? m.stats?.inactive_file ?? 0;
  const mem = inactive < usage ? usage - inactive : usage;
  const limit = m.limit ?? 0;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(s.networks ?? {})) {
    rx += n.rx_bytes;
    tx += n.tx_bytes;
  }
  let read = 0;
  let write = 0;
  for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    if (/^r/i.test(e.op)) read += e.value;
    else if (/^w/i.test(e.op)) write += e.value;
  }
  return {
    ...base,
    CPUPerc: `${cpu.toFixed(2)}%`,
    MemUsage: `${bytesSize(mem)} / ${bytesSize(limit)}`,
    MemPerc: `${(limit ? (mem / limit) * 100 : 0).toFixed(2)}%`,
    NetIO: `${humanSize(rx)} / ${humanSize(tx)}`,
    BlockIO: `${humanSize(read)} / ${humanSize(write)}`,
    PIDs: String(s.pids_stats?.current ?? 0),
  };
}

/** Reads a stats stream, calling onFrame per JSON object, until it ends. */
function readFrames(res: IncomingMessage, onFrame: (f: StatsFrame) => void): Promise<void> {
  return forEachJsonLine(res, onFrame);
}

const stats: Command = {
  name: 'stats',
  usage: 'stats [OPTIONS] [CONTAINER...]',
  description: 'Display a live stream of container(s) resource usage statistics',
  flags: [
    { name: 'all', short: 'a', type: 'bool', description: 'Show all containers (default shows just running)' },
    { name: 'no-stream', type: 'bool', description: 'Disable streaming stats and only pull the first result' },
    { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
    { name: 'format', type: 'string', description: 'Format output using a custom template' },
  ],
  async run(ctx, f) {
    const client = ctx.client();
    const explicit = f.args.length > 0;
    const noTrunc = f.bool('no-trunc');
    const format = f.optString('format');
    const list = async (): Promise<string[]> =>
      explicit ? f.args : (await client.json<{ Id: string }[]>('GET', '/containers/json', { query: { all: f.bool('all') } })).map((c) => c.Id);
    const render = (names: string[], frames: Map<string, StatsFrame | undefined>): string =>
      renderRows(format, { defaultTable: STATS_TABLE, headers: STATS_HEADERS, rows: names.map((n) => statsRow(n, frames.get(n), noTrunc)) });

    if (f.bool('no-stream')) {
      const names = await list();
      const frames = new Map<string, StatsFrame | undefined>();
      const errors: string[] = [];
      await Promise.all(
        names.map(async (n) => {
          try {
            frames.set(n, await client.json<StatsFrame>('GET', `/containers/${enc(n)}/stats`, { query: { stream: false } }));
          } catch (err) {
            if (!(err instanceof ApiError)) throw err;
            errors.push(`Error response from daemon: ${err.message}`);
          }
        }),
      );
      if (errors.length) throw new CommandFailed(errors.join('\n'), 1);
      ctx.out(render(names, frames));
      return 0;
    }

    // streaming: one request per container, redrawn twice a second
    const frames = new Map<string, StatsFrame | undefined>();
    const streams = new Map<string, AbortController>();
    const follow = (n: string): void => {
      const abort = new AbortController();
      streams.set(n, abort);
      frames.set(n, undefined);
      void client
        .stream('GET', `/containers/${enc(n)}/stats`, { query: { stream: true }, signal: abort.signal })
        .then((res) => readFrames(res, (fr) => frames.set(n, fr)))
        .catch(() => {})
        .finally(() => {
          if (!explicit) {
            streams.delete(n);
            frames.delete(n);
          }
        });
    };
    let names = await list();
    for (const n of names) follow(n);
    let tick = 0;
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      if (!explicit && ++tick % 4 === 0) {
        names = await list();
        for (const n of names) if (!streams.has(n)) follow(n);
      }
      const shown = explicit ? names : [...frames.keys()];
      ctx.out(`\x1b[2J\x1b[H${render(shown, frames)}`);
    }
  },
};

export const commands: Command[] = [cp, top, diff, stats];
