/**
 * `docker stats`: the resource usage of running containers in Docker's JSON
 * shape, read from their cgroup v1 files (cpu, cpuacct, memory, pids,
 * blkio), /proc/stat (the whole machine's CPU time) and the network devices
 * of their namespace (/proc/<pid>/net/dev).
 *
 * CPU percentages compare two samples: precpu_stats is the earlier one. A
 * background sampler reads the CPU counters of every running container
 * about once a second (four small files each), so a one-off request
 * (`docker stats --no-stream`) is answered at once against a sample taken
 * a moment ago, where Docker waits for two collection cycles.
 */
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ContainerRecord } from '../../core/containers/types.js';
import type { Logger } from '../../util/log.js';
import { ZERO_TIME, rfc3339Nano } from '../../util/time.js';
import { containerCgroupDirs } from './cgroups.js';
import { pidBelongsTo } from './container-service.js';

export interface CpuUsage {
  total_usage: number;
  percpu_usage?: number[];
  usage_in_kernelmode: number;
  usage_in_usermode: number;
}

export interface CpuStats {
  cpu_usage: CpuUsage;
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

export interface BlkioStats {
  io_service_bytes_recursive: BlkioEntry[] | null;
  io_serviced_recursive: BlkioEntry[] | null;
  io_queue_recursive: BlkioEntry[] | null;
  io_service_time_recursive: BlkioEntry[] | null;
  io_wait_time_recursive: BlkioEntry[] | null;
  io_merged_recursive: BlkioEntry[] | null;
  io_time_recursive: BlkioEntry[] | null;
  sectors_recursive: BlkioEntry[] | null;
}

export interface MemoryStats {
  usage?: number;
  max_usage?: number;
  stats?: Record<string, number>;
  failcnt?: number;
  limit?: number;
}

export interface NetworkStats {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

/** One answer of GET /containers/{id}/stats (Docker's StatsJSON, its field order). */
export interface StatsFrame {
  read: string;
  preread: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: BlkioStats;
  num_procs: number;
  storage_stats: Record<string, never>;
  cpu_stats: CpuStats;
  precpu_stats: CpuStats;
  memory_stats: MemoryStats;
  name: string;
  id: string;
  networks?: Record<string, NetworkStats>;
}

export interface StatsContainers {
  resolve(input: string): ContainerRecord;
  tryResolve(input: string): ContainerRecord | undefined;
  all(): ContainerRecord[];
}

interface CpuSample {
  /** performance.now() of the read. */
  at: number;
  read: string;
  cpu: CpuStats;
}

interface Tracked {
  pid: number;
  dirs: Map<string, string>;
  /** The last two samples, oldest first. */
  samples: CpuSample[];
}

const SAMPLE_INTERVAL_MS = 1000;
/** precpu should be at least this old, or the CPU delta is mostly rounding (/proc/stat counts 10 ms ticks). */
const MIN_WINDOW_MS = 500;
/** A container younger than the sampler gets a short window of its own. */
const PRIMING_WINDOW_MS = 250;
/** USER_HZ: the unit of /proc/stat and cpuacct.stat. */
const NANOS_PER_TICK = 1e9 / 100;

/** The fields of cgroup v1 memory.stat Docker reports (all of them on v1). */
const MEMORY_STAT_KEYS = [
  'cache', 'rss', 'rss_huge', 'mapped_file', 'dirty', 'writeback', 'pgpgin', 'pgpgout', 'pgfault', 'pgmajfault',
  'inactive_anon', 'active_anon', 'inactive_file', 'active_file', 'unevictable', 'hierarchical_memory_limit',
  'hierarchical_memsw_limit', 'total_cache', 'total_rss', 'total_rss_huge', 'total_mapped_file', 'total_dirty',
  'total_writeback', 'total_pgpgin', 'total_pgpgout', 'total_pgfault', 'total_pgmajfault', 'total_inactive_anon',
  'total_active_anon', 'total_inactive_file', 'total_active_file', 'total_unevictable',
].sort();

/** runc's order: the first group whose first file has entries is the one reported. */
const BLKIO_GROUPS: [keyof BlkioStats, string][][] = [
  [['io_service_bytes_recursive', 'blkio.bfq.io_service_bytes_recursive'], ['io_serviced_recursive', 'blkio.bfq.io_serviced_recursive']],
  [
    ['io_service_bytes_recursive', 'blkio.io_service_bytes_recursive'], ['io_serviced_recursive', 'blkio.io_serviced_recursive'],
    ['io_queue_recursive', 'blkio.io_queued_recursive'], ['io_service_time_recursive', 'blkio.io_service_time_recursive'],
    ['io_wait_time_recursive', 'blkio.io_wait_time_recursive'], ['io_merged_recursive', 'blkio.io_merged_recursive'],
    ['io_time_recursive', 'blkio.time_recursive'], ['sectors_recursive', 'blkio.sectors_recursive'],
  ],
  [['io_service_bytes_recursive', 'blkio.throttle.io_service_bytes_recursive'], ['io_serviced_recursive', 'blkio.throttle.io_serviced_recursive']],
  [['io_service_bytes_recursive', 'blkio.throttle.io_service_bytes'], ['io_serviced_recursive', 'blkio.throttle.io_serviced']],
];

async function readText(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  return fsp.readFile(file, 'utf8').catch(() => undefined);
}

async function readNumber(file: string | undefined): Promise<number | undefined> {
  const text = await readText(file);
  if (text === undefined) return undefined;
  const n = Number(text.trim());
  return Number.isFinite(n) ? n : undefined;
}

/** "key value" lines. */
function keyValues(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) out.set(k, Number(v));
  }
  return out;
}

function within(dir: string | undefined, file: string): string | undefined {
  return dir ? path.join(dir, file) : undefined;
}

/** The machine's CPU time (ns, all CPUs) and the number of CPUs, from /proc/stat, as Docker computes them. */
async function readSystemCpu(): Promise<{ usage: number; cpus: number }> {
  const text = (await readText('/proc/stat')) ?? '';
  let usage = 0;
  let cpus = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('cpu ')) {
      const ticks = line.split(/\s+/).slice(1, 8).reduce((n, v) => n + (Number(v) || 0), 0);
      usage = ticks * NANOS_PER_TICK;
    } else if (/^cpu\d/.test(line)) {
      cpus++;
    }
  }
  return { usage, cpus: cpus || os.cpus().length };
}

async function readCpu(dirs: Map<string, string>, system: { usage: number; cpus: number }): Promise<CpuStats> {
  const acct = dirs.get('cpuacct');
  const [total, percpu, modes, throttling] = await Promise.all([
    readNumber(within(acct, 'cpuacct.usage')),
    readText(within(acct, 'cpuacct.usage_percpu')),
    readText(within(acct, 'cpuacct.stat')).then(keyValues),
    readText(within(dirs.get('cpu'), 'cpu.stat')).then(keyValues),
  ]);
  const perCpu = (percpu ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  return {
    cpu_usage: {
      total_usage: total ?? 0,
      ...(perCpu.length ? { percpu_usage: perCpu } : {}),
      usage_in_kernelmode: (modes.get('system') ?? 0) * NANOS_PER_TICK,
      usage_in_usermode: (modes.get('user') ?? 0) * NANOS_PER_TICK,
    },
    system_cpu_usage: system.usage,
    online_cpus: system.cpus,
    throttling_data: {
      periods: throttling.get('nr_periods') ?? 0,
      throttled_periods: throttling.get('nr_throttled') ?? 0,
      throttled_time: throttling.get('throttled_time') ?? 0,
    },
  };
}

async function readMemory(dir: string | undefined): Promise<MemoryStats> {
  if (!dir) return {};
  const [usage, maxUsage, failcnt, limit, statText] = await Promise.all([
    readNumber(within(dir, 'memory.usage_in_bytes')),
    readNumber(within(dir, 'memory.max_usage_in_bytes')),
    readNumber(within(dir, 'memory.failcnt')),
    readNumber(within(dir, 'memory.limit_in_bytes')),
    readText(within(dir, 'memory.stat')),
  ]);
  const raw = keyValues(statText);
  const stats: Record<string, number> = {};
  for (const k of MEMORY_STAT_KEYS) stats[k] = raw.get(k) ?? 0;
  // no limit of its own: the machine's memory, as Docker reports it
  const machine = os.totalmem();
  const out: MemoryStats = {};
  if (usage) out.usage = usage;
  if (maxUsage) out.max_usage = maxUsage;
  out.stats = stats;
  if (failcnt) out.failcnt = failcnt;
  out.limit = limit === undefined || limit > machine ? machine : limit;
  return out;
}

async function readPids(dir: string | undefined): Promise<{ current?: number; limit?: number }> {
  const [current, max] = await Promise.all([readNumber(within(dir, 'pids.current')), readText(within(dir, 'pids.max'))]);
  const out: { current?: number; limit?: number } = {};
  if (current) out.current = current;
  const limit = Number(max?.trim());
  if (Number.isInteger(limit) && limit > 0) out.limit = limit;
  return out;
}

function parseBlkio(text: string | undefined): BlkioEntry[] | null {
  const out: BlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    const dev = /^(\d+):(\d+)$/.exec(f[0] ?? '');
    if (!dev) continue; // "Total N"
    if (f.length === 3) out.push({ major: Number(dev[1]), minor: Number(dev[2]), op: f[1], value: Number(f[2]) || 0 });
    else if (f.length === 2) out.push({ major: Number(dev[1]), minor: Number(dev[2]), op: '', value: Number(f[1]) || 0 });
  }
  return out.length ? out : null;
}

function emptyBlkio(): BlkioStats {
  return {
    io_service_bytes_recursive: null,
    io_serviced_recursive: null,
    io_queue_recursive: null,
    io_service_time_recursive: null,
    io_wait_time_recursive: null,
    io_merged_recursive: null,
    io_time_recursive: null,
    sectors_recursive: null,
  };
}

async function readBlkio(dir: string | undefined): Promise<BlkioStats> {
  const out = emptyBlkio();
  if (!dir) return out;
  for (const group of BLKIO_GROUPS) {
    const first = parseBlkio(await readText(path.join(dir, group[0][1])));
    if (!first) continue;
    out[group[0][0]] = first;
    for (const [key, file] of group.slice(1)) out[key] = parseBlkio(await readText(path.join(dir, file)));
    break;
  }
  return out;
}

/** The container's network devices (loopback aside), from its namespace's /proc/net/dev. */
async function readNetworks(pid: number, containerId: string): Promise<Record<string, NetworkStats> | undefined> {
  if (!pidBelongsTo(pid, containerId)) return undefined;
  const text = await readText(`/proc/${pid}/net/dev`);
  const out: Record<string, NetworkStats> = {};
  for (const line of (text ?? '').split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (name === 'lo') continue;
    const v = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    out[name] = {
      rx_bytes: v[0] || 0, rx_packets: v[1] || 0, rx_errors: v[2] || 0, rx_dropped: v[3] || 0,
      tx_bytes: v[8] || 0, tx_packets: v[9] || 0, tx_errors: v[10] || 0, tx_dropped: v[11] || 0,
    };
  }
  return Object.keys(out).length ? out : undefined;
}

function emptyCpu(): CpuStats {
  return { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };
}

/** What Docker answers for a container that is not running: its name and ID, everything else zero. */
export function emptyFrame(c: ContainerRecord): StatsFrame {
  return {
    read: ZERO_TIME,
    preread: ZERO_TIME,
    pids_stats: {},
    blkio_stats: emptyBlkio(),
    num_procs: 0,
    storage_stats: {},
    cpu_stats: emptyCpu(),
    precpu_stats: emptyCpu(),
    memory_stats: {},
    name: `/${c.name}`,
    id: c.id,
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export class ContainerStats {
  private readonly tracked = new Map<string, Tracked>();
  private timer: NodeJS.Timeout | undefined;
  private sampling = false;

  constructor(
    private readonly containers: StatsContainers,
    private readonly log: Logger,
  ) {}

  /** Starts the background sampler (cheap when nothing runs: one pass over the records a second). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sampleAll(), SAMPLE_INTERVAL_MS);
    this.timer.unref();
    void this.sampleAll();
  }

  shutdown(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.tracked.clear();
  }

  private async sampleAll(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const running = this.containers.all().filter((c) => c.state.Running);
      const ids = new Set(running.map((c) => c.id));
      for (const id of this.tracked.keys()) if (!ids.has(id)) this.tracked.delete(id);
      if (running.length === 0) return;
      const system = await readSystemCpu();
      await Promise.all(running.map((c) => this.sample(c, system)));
    } catch (err) {
      this.log.warn('stats sampling failed', { error: err as Error });
    } finally {
      this.sampling = false;
    }
  }

  private async sample(c: ContainerRecord, system: { usage: number; cpus: number }): Promise<CpuSample | undefined> {
    const t = await this.track(c);
    if (!t) return undefined;
    const s: CpuSample = { at: performance.now(), read: rfc3339Nano(), cpu: await readCpu(t.dirs, system) };
    t.samples.push(s);
    if (t.samples.length > 2) t.samples.shift();
    return s;
  }

  /** The container's cgroup directories, looked up once per init process. */
  private async track(c: ContainerRecord): Promise<Tracked | undefined> {
    const pid = c.state.Pid;
    const known = this.tracked.get(c.id);
    if (known && known.pid === pid) return known;
    const dirs = await containerCgroupDirs(pid, c.id);
    if (dirs.size === 0) return undefined;
    const t: Tracked = { pid, dirs, samples: [] };
    this.tracked.set(c.id, t);
    return t;
  }

  /** A previous CPU sample for precpu_stats: one old enough to give a meaningful delta. */
  private async previous(c: ContainerRecord, signal: AbortSignal): Promise<CpuSample | undefined> {
    const t = await this.track(c);
    if (!t) return undefined;
    const now = performance.now();
    const old = [...t.samples].reverse().find((s) => now - s.at >= MIN_WINDOW_MS);
    if (old) return old;
    // started a moment ago: sample now and answer a little later
    const first = t.samples[0] ?? (await this.sample(c, await readSystemCpu()));
    const wait = PRIMING_WINDOW_MS - (performance.now() - (first?.at ?? now));
    if (wait > 0) await sleep(wait, signal);
    return first;
  }

  /** Everything about a running container now; precpu from `pre`. */
  private async snapshot(c: ContainerRecord, pre: CpuSample | undefined): Promise<StatsFrame> {
    const t = await this.track(c);
    const dirs = t?.dirs ?? new Map<string, string>();
    const [system, pids, blkio, memory] = await Promise.all([
      readSystemCpu(),
      readPids(dirs.get('pids')),
      readBlkio(dirs.get('blkio')),
      readMemory(dirs.get('memory')),
    ]);
    const cpu = await readCpu(dirs, system);
    const networks = c.hostConfig.NetworkMode === 'host' ? undefined : await readNetworks(c.state.Pid, c.id);
    const frame: StatsFrame = {
      read: rfc3339Nano(),
      preread: pre?.read ?? ZERO_TIME,
      pids_stats: pids,
      blkio_stats: blkio,
      num_procs: 0,
      storage_stats: {},
      cpu_stats: cpu,
      precpu_stats: pre?.cpu ?? emptyCpu(),
      memory_stats: memory,
      name: `/${c.name}`,
      id: c.id,
    };
    if (networks) frame.networks = networks;
    return frame;
  }

  /**
   * GET /containers/{id}/stats: one frame (stream=false), or a frame a
   * second until the client goes or the container stops. one-shot skips
   * the wait for a previous sample when there is none.
   */
  async stats(input: string, options: { stream: boolean; oneShot: boolean }, emit: (f: StatsFrame) => Promise<void> | void, signal: AbortSignal): Promise<void> {
    const c = this.containers.resolve(input);
    if (!c.state.Running) {
      await emit(emptyFrame(c));
      return;
    }
    let pre: CpuSample | undefined = options.oneShot ? (await this.track(c))?.samples.at(-1) : await this.previous(c, signal);
    for (;;) {
      if (signal.aborted) return;
      const frame = await this.snapshot(c, pre);
      await emit(frame);
      if (!options.stream) return;
      pre = { at: performance.now(), read: frame.read, cpu: frame.cpu_stats };
      await sleep(SAMPLE_INTERVAL_MS, signal);
      const cur = this.containers.tryResolve(c.id);
      if (!cur || !cur.state.Running || cur.state.Pid !== c.state.Pid) return;
    }
  }
}
