/**
 * Builds the OCI runtime spec (config.json) runc runs: Docker's defaults
 * (capabilities, mounts, masked and read-only paths, device rules, seccomp)
 * plus what the container asked for.
 */
import fs from 'node:fs';
import { invalidArgument } from '../../core/errdefs/index.js';
import { defaultSeccomp, type OciSeccomp } from './seccomp.js';
import type { ResolvedUser } from './user.js';

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

export const ALL_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

const MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface Resources {
  memory?: number;
  memorySwap?: number;
  memoryReservation?: number;
  memorySwappiness?: number | null;
  oomKillDisable?: boolean | null;
  nanoCpus?: number;
  cpuShares?: number;
  cpuQuota?: number;
  cpuPeriod?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: number | null;
  blkioWeight?: number;
}

export interface SpecOptions {
  rootfs: string;
  readonlyRootfs: boolean;
  terminal: boolean;
  consoleSize?: [number, number];
  args: string[];
  env: string[];
  cwd: string;
  user: ResolvedUser;
  hostname: string;
  domainname?: string;
  cgroupsPath: string;
  /** 'host', a netns path to join, or 'new' for a fresh namespace with only loopback. */
  network: 'host' | 'new' | { path: string };
  pidMode?: string;
  ipcMode?: string;
  utsMode?: string;
  privileged: boolean;
  capAdd?: string[] | null;
  capDrop?: string[] | null;
  resources: Resources;
  mounts: OciMount[];
  shmSize: number;
  maskedPaths?: string[] | null;
  readonlyPaths?: string[] | null;
  sysctls?: Record<string, string>;
  oomScoreAdj?: number;
  securityOpt?: string[] | null;
  ulimits?: { Name: string; Soft: number; Hard: number }[] | null;
  /** Host path of the init binary (tini-static) when Init is on. */
  init?: string;
}

export interface OciSpec {
  ociVersion: string;
  process: Record<string, unknown> & { args: string[]; env: string[] };
  root: { path: string; readonly: boolean };
  hostname: string;
  domainname?: string;
  mounts: OciMount[];
  linux: Record<string, unknown>;
}

let available: string[] | undefined;

/**
 * The capabilities this daemon holds itself (its bounding set): "all" for a
 * privileged container or exec cannot mean more (this host's root has no
 * CAP_SYS_RESOURCE, for one).
 */
export function availableCapabilities(): string[] {
  if (!available) {
    available = [...ALL_CAPABILITIES];
    try {
      const m = /^CapBnd:\s+([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
      if (m) {
        const bits = BigInt(`0x${m[1]}`);
        available = ALL_CAPABILITIES.filter((_c, i) => (bits >> BigInt(i)) & 1n);
      }
    } catch {
      // no /proc: assume everything
    }
  }
  return available;
}

export function normalizeCapability(cap: string): string {
  const up = cap.toUpperCase();
  if (up === 'ALL') return 'ALL';
  const full = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!ALL_CAPABILITIES.includes(full)) throw invalidArgument(`invalid capability: ${cap}`);
  return full;
}

export function capabilitySet(privileged: boolean, add: readonly string[] = [], drop: readonly string[] = []): string[] {
  if (privileged) return availableCapabilities();
  const adds = add.map(normalizeCapability);
  const drops = drop.map(normalizeCapability);
  let caps = adds.includes('ALL') ? availableCapabilities() : [...DEFAULT_CAPABILITIES];
  if (drops.includes('ALL')) caps = [];
  const have = availableCapabilities();
  for (const c of adds) {
    if (c === 'ALL' || caps.includes(c)) continue;
    if (!have.includes(c)) throw invalidArgument(`capability ${c} is not available to this daemon, so it cannot be given to a container`);
    caps.push(c);
  }
  for (const c of drops) if (c !== 'ALL') caps = caps.filter((x) => x !== c);
  return caps;
}

let memswSupported: boolean | undefined;
function swapAccounting(): boolean {
  if (memswSupported === undefined) {
    memswSupported =
      fs.existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes') || fs.existsSync('/sys/fs/cgroup/unified/memory.swap.max');
  }
  return memswSupported;
}

function ociResources(r: Resources): Record<string, unknown> {
  const out: Record<string, unknown> = {
    devices: [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', access: 'm' },
      { allow: true, type: 'b', access: 'm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
      { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
      { allow: true, type: 'c', major: 136, access: 'rwm' },
      { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
      { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
    ],
  };
  const memory: Record<string, unknown> = {};
  if (r.memory && r.memory > 0) memory.limit = r.memory;
  if (r.memoryReservation && r.memoryReservation > 0) memory.reservation = r.memoryReservation;
  if (r.memorySwap !== undefined && r.memorySwap !== 0 && swapAccounting()) memory.swap = r.memorySwap;
  if (r.memorySwappiness !== undefined && r.memorySwappiness !== null && r.memorySwappiness >= 0) memory.swappiness = r.memorySwappiness;
  if (r.oomKillDisable) memory.disableOOMKiller = true;
  if (Object.keys(memory).length) out.memory = memory;

  const cpu: Record<string, unknown> = {};
  if (r.cpuShares && r.cpuShares > 0) cpu.shares = r.cpuShares;
  if (r.nanoCpus && r.nanoCpus > 0) {
    cpu.period = 100000;
    cpu.quota = Math.floor((r.nanoCpus * 100000) / 1e9);
  } else {
    if (r.cpuPeriod && r.cpuPeriod > 0) cpu.period = r.cpuPeriod;
    if (r.cpuQuota && r.cpuQuota > 0) cpu.quota = r.cpuQuota;
  }
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems) cpu.mems = r.cpusetMems;
  if (Object.keys(cpu).length) out.cpu = cpu;

  if (r.pidsLimit !== undefined && r.pidsLimit !== null && r.pidsLimit > 0) out.pids = { limit: r.pidsLimit };
  if (r.blkioWeight && r.blkioWeight > 0) out.blockIO = { weight: r.blkioWeight };
  return out;
}

function defaultMounts(privileged: boolean, shmSize: number): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', privileged ? 'rw' : 'ro'] },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', privileged ? 'rw' : 'ro'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shmSize > 0 ? shmSize : 67108864}`],
    },
  ];
}

const RLIMITS = new Set([
  'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack', 'as',
]);

/** --ulimit as OCI process rlimits. */
export function ociRlimits(ulimits: readonly { Name: string; Soft: number; Hard: number }[]): { type: string; soft: number; hard: number }[] {
  return ulimits.map((u) => {
    if (!RLIMITS.has(u.Name)) throw invalidArgument(`invalid ulimit type: ${u.Name}`);
    return { type: `RLIMIT_${u.Name.toUpperCase()}`, soft: u.Soft, hard: u.Hard };
  });
}

export function buildSpec(o: SpecOptions): OciSpec {
  const caps = capabilitySet(o.privileged, o.capAdd ?? [], o.capDrop ?? []);
  const securityOpt = o.securityOpt ?? [];
  const seccompOpt = securityOpt.find((s) => s.startsWith('seccomp=') || s.startsWith('seccomp:'));
  const unconfined = o.privileged || seccompOpt?.slice(8) === 'unconfined';
  if (seccompOpt && !unconfined) throw invalidArgument(`unsupported seccomp option: ${seccompOpt} (only "unconfined" is supported)`);
  const noNewPrivileges = securityOpt.some((s) => /^no-new-privileges(?:[:=]true)?$/.test(s));

  const args = o.init ? ['/sbin/docker-init', '--', ...o.args] : o.args;
  const process: OciSpec['process'] = {
    terminal: o.terminal,
    user: { uid: o.user.uid, gid: o.user.gid, ...(o.user.additionalGids.length ? { additionalGids: o.user.additionalGids } : {}) },
    args,
    env: o.env,
    cwd: o.cwd || '/',
    capabilities: { bounding: caps, effective: caps, permitted: caps },
    noNewPrivileges,
  };
  if (o.terminal && o.consoleSize && o.consoleSize[0] > 0) {
    process.consoleSize = { height: o.consoleSize[0], width: o.consoleSize[1] };
  }
  if (o.oomScoreAdj) process.oomScoreAdj = o.oomScoreAdj;
  if (o.ulimits?.length) process.rlimits = ociRlimits(o.ulimits);

  const mounts = defaultMounts(o.privileged, o.shmSize);
  if (o.init) mounts.push({ destination: '/sbin/docker-init', type: 'bind', source: o.init, options: ['rbind', 'ro', 'rprivate'] });
  // user mounts replace defaults at the same destination
  for (const m of o.mounts) {
    const i = mounts.findIndex((d) => d.destination === m.destination);
    if (i >= 0) mounts.splice(i, 1);
    mounts.push(m);
  }

  const namespaces: { type: string; path?: string }[] = [{ type: 'mount' }];
  if (o.pidMode !== 'host') namespaces.push({ type: 'pid' });
  if (o.ipcMode !== 'host') namespaces.push({ type: 'ipc' });
  if (o.utsMode !== 'host') namespaces.push({ type: 'uts' });
  if (o.network === 'new') namespaces.push({ type: 'network' });
  else if (typeof o.network === 'object') namespaces.push({ type: 'network', path: o.network.path });

  const sysctl: Record<string, string> = {};
  if (o.network !== 'host') {
    // As Docker 20.10+: unprivileged ports and ping inside the container's own netns.
    sysctl['net.ipv4.ip_unprivileged_port_start'] = '0';
    sysctl['net.ipv4.ping_group_range'] = '0 2147483647';
  }
  Object.assign(sysctl, o.sysctls ?? {});

  const linux: Record<string, unknown> = {
    namespaces,
    cgroupsPath: o.cgroupsPath,
    resources: ociResources(o.resources),
    sysctl,
  };
  if (!o.privileged) {
    linux.maskedPaths = o.maskedPaths ?? MASKED_PATHS;
    linux.readonlyPaths = o.readonlyPaths ?? READONLY_PATHS;
  }
  if (!unconfined) linux.seccomp = defaultSeccomp(caps) satisfies OciSeccomp;

  const spec: OciSpec = {
    ociVersion: '1.0.2',
    process,
    root: { path: o.rootfs, readonly: o.readonlyRootfs },
    hostname: o.utsMode === 'host' ? '' : o.hostname,
    mounts,
    linux,
  };
  if (o.domainname) spec.domainname = o.domainname;
  return spec;
}
