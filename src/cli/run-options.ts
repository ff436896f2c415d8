/**
 * `run` and `create` flags (Docker's names) and their translation into the
 * POST /containers/create body.
 */
import fs from 'node:fs';
import type { CreateContainerBody, HostConfig, MountSpec, PortBinding } from '../api/types.js';
import type { FlagSpec, Flags } from './flags.js';
import { parseRamBytes } from '../util/units.js';
import { parseGoDuration } from '../util/units.js';

export class UsageError extends Error {}

export const CREATE_FLAGS: FlagSpec[] = [
  { name: 'name', type: 'string', description: 'Assign a name to the container' },
  { name: 'env', short: 'e', type: 'strings', description: 'Set environment variables' },
  { name: 'env-file', type: 'strings', description: 'Read in a file of environment variables' },
  { name: 'workdir', short: 'w', type: 'string', description: 'Working directory inside the container' },
  { name: 'user', short: 'u', type: 'string', description: 'Username or UID (format: <name|uid>[:<group|gid>])' },
  { name: 'group-add', type: 'strings', description: 'Add additional groups to join' },
  { name: 'entrypoint', type: 'string', description: 'Overwrite the default ENTRYPOINT of the image' },
  { name: 'label', short: 'l', type: 'strings', description: 'Set meta data on a container' },
  { name: 'label-file', type: 'strings', description: 'Read in a line delimited file of labels' },
  { name: 'hostname', short: 'h', type: 'string', description: 'Container host name' },
  { name: 'domainname', type: 'string', description: 'Container NIS domain name' },
  { name: 'interactive', short: 'i', type: 'bool', description: 'Keep STDIN open even if not attached' },
  { name: 'tty', short: 't', type: 'bool', description: 'Allocate a pseudo-TTY' },
  { name: 'memory', short: 'm', type: 'string', description: 'Memory limit' },
  { name: 'memory-swap', type: 'string', description: "Swap limit equal to memory plus swap: '-1' to enable unlimited swap" },
  { name: 'memory-reservation', type: 'string', description: 'Memory soft limit' },
  { name: 'memory-swappiness', type: 'int', default: -1, description: 'Tune container memory swappiness (0 to 100)' },
  { name: 'oom-kill-disable', type: 'bool', description: 'Disable OOM Killer' },
  { name: 'oom-score-adj', type: 'int', description: "Tune host's OOM preferences (-1000 to 1000)" },
  { name: 'cpus', type: 'string', description: 'Number of CPUs' },
  { name: 'cpu-shares', short: 'c', type: 'int', description: 'CPU shares (relative weight)' },
  { name: 'cpu-period', type: 'int', description: 'Limit CPU CFS (Completely Fair Scheduler) period' },
  { name: 'cpu-quota', type: 'int', description: 'Limit CPU CFS (Completely Fair Scheduler) quota' },
  { name: 'cpuset-cpus', type: 'string', description: 'CPUs in which to allow execution (0-3, 0,1)' },
  { name: 'cpuset-mems', type: 'string', description: 'MEMs in which to allow execution (0-3, 0,1)' },
  { name: 'pids-limit', type: 'int', description: 'Tune container pids limit (set -1 for unlimited)' },
  { name: 'blkio-weight', type: 'int', description: 'Block IO (relative weight), between 10 and 1000, or 0 to disable' },
  { name: 'shm-size', type: 'string', description: 'Size of /dev/shm' },
  { name: 'ulimit', type: 'strings', description: 'Ulimit options' },
  { name: 'init', type: 'bool', description: 'Run an init inside the container that forwards signals and reaps processes' },
  { name: 'network', type: 'string', description: 'Connect a container to a network' },
  { name: 'net', type: 'string', description: 'Connect a container to a network', hidden: true },
  { name: 'network-alias', type: 'strings', description: 'Add network-scoped alias for the container' },
  { name: 'ip', type: 'string', description: 'IPv4 address (e.g., 172.30.100.104)' },
  { name: 'publish', short: 'p', type: 'strings', description: "Publish a container's port(s) to the host" },
  { name: 'publish-all', short: 'P', type: 'bool', description: 'Publish all exposed ports to random ports' },
  { name: 'expose', type: 'strings', description: 'Expose a port or a range of ports' },
  { name: 'dns', type: 'strings', description: 'Set custom DNS servers' },
  { name: 'dns-search', type: 'strings', description: 'Set custom DNS search domains' },
  { name: 'dns-option', type: 'strings', description: 'Set DNS options' },
  { name: 'add-host', type: 'strings', description: 'Add a custom host-to-IP mapping (host:ip)' },
  { name: 'link', type: 'strings', description: 'Add link to another container' },
  { name: 'volume', short: 'v', type: 'strings', description: 'Bind mount a volume' },
  { name: 'mount', type: 'strings', description: 'Attach a filesystem mount to the container' },
  { name: 'tmpfs', type: 'strings', description: 'Mount a tmpfs directory' },
  { name: 'volumes-from', type: 'strings', description: 'Mount volumes from the specified container(s)' },
  { name: 'read-only', type: 'bool', description: "Mount the container's root filesystem as read only" },
  { name: 'restart', type: 'string', default: 'no', description: 'Restart policy to apply when a container exits' },
  { name: 'rm', type: 'bool', description: 'Automatically remove the container when it exits' },
  { name: 'stop-signal', type: 'string', description: 'Signal to stop the container' },
  { name: 'stop-timeout', type: 'int', description: 'Timeout (in seconds) to stop a container' },
  { name: 'privileged', type: 'bool', description: 'Give extended privileges to this container' },
  { name: 'cap-add', type: 'strings', description: 'Add Linux capabilities' },
  { name: 'cap-drop', type: 'strings', description: 'Drop Linux capabilities' },
  { name: 'security-opt', type: 'strings', description: 'Security Options' },
  { name: 'sysctl', type: 'strings', description: 'Sysctl options' },
  { name: 'log-driver', type: 'string', description: 'Logging driver for the container' },
  { name: 'log-opt', type: 'strings', description: 'Log driver options' },
  { name: 'pid', type: 'string', description: 'PID namespace to use' },
  { name: 'ipc', type: 'string', description: 'IPC mode to use' },
  { name: 'uts', type: 'string', description: 'UTS namespace to use' },
  { name: 'cgroup-parent', type: 'string', description: 'Optional parent cgroup for the container' },
  { name: 'health-cmd', type: 'string', description: 'Command to run to check health' },
  { name: 'health-interval', type: 'string', description: 'Time between running the check (ms|s|m|h)' },
  { name: 'health-timeout', type: 'string', description: 'Maximum time to allow one check to run (ms|s|m|h)' },
  { name: 'health-retries', type: 'int', description: 'Consecutive failures needed to report unhealthy' },
  { name: 'health-start-period', type: 'string', description: 'Start period for the container to initialize before starting health-retries countdown' },
  { name: 'no-healthcheck', type: 'bool', description: 'Disable any container-specified HEALTHCHECK' },
  { name: 'platform', type: 'string', description: 'Set platform if server is multi-platform capable' },
  { name: 'pull', type: 'string', default: 'missing', description: 'Pull image before running ("always", "missing", "never")' },
  { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress the pull output' },
  { name: 'help', type: 'bool', description: 'Print usage' },
];

export const RUN_ONLY_FLAGS: FlagSpec[] = [
  { name: 'detach', short: 'd', type: 'bool', description: 'Run container in background and print container ID' },
  { name: 'attach', short: 'a', type: 'strings', description: 'Attach to STDIN, STDOUT or STDERR' },
  { name: 'sig-proxy', type: 'bool', default: true, description: 'Proxy received signals to the process' },
  { name: 'detach-keys', type: 'string', description: 'Override the key sequence for detaching a container' },
];

function readLinesFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`open ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
  }
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
}

/** -e FOO means "take FOO from my environment"; unset variables are dropped. */
function expandEnv(entries: string[]): string[] {
  const out: string[] = [];
  for (const e of entries) {
    if (e.includes('=')) out.push(e);
    else if (process.env[e] !== undefined) out.push(`${e}=${process.env[e]}`);
  }
  return out;
}

export function parseSize(v: string, what: string): number {
  try {
    return parseRamBytes(v);
  } catch {
    throw new UsageError(`invalid argument "${v}" for "--${what}" flag: invalid size: '${v}'`);
  }
}

function parseDurationNs(v: string, what: string): number {
  try {
    return Math.round(parseGoDuration(v) * 1e6);
  } catch {
    throw new UsageError(`invalid argument "${v}" for "--${what}" flag: time: invalid duration "${v}"`);
  }
}

/** -p [ip:][hostPort:]containerPort[/proto], with ranges. */
export function parsePublish(specs: string[]): { exposed: Record<string, object>; bindings: Record<string, PortBinding[]> } {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, PortBinding[]> = {};
  for (const raw of specs) {
    let spec = raw;
    let proto = 'tcp';
    const slash = spec.lastIndexOf('/');
    if (slash >= 0) {
      proto = spec.slice(slash + 1).toLowerCase();
      spec = spec.slice(0, slash);
    }
    if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new UsageError(`invalid proto: ${proto}`);
    let ip = '';
    let hostPart = '';
    let containerPart: string;
    const v6 = /^\[([^\]]+)\]:(.*)$/.exec(spec);
    if (v6) {
      ip = v6[1];
      spec = v6[2];
    }
    const parts = spec.split(':');
    if (parts.length === 1) containerPart = parts[0];
    else if (parts.length === 2) [hostPart, containerPart] = parts;
    else if (parts.length === 3 && !v6) [ip, hostPart, containerPart] = parts;
    else throw new UsageError(`invalid port format for --publish: ${raw}`);
    const range = (s: string): [number, number] => {
      const m = /^(\d+)(?:-(\d+))?$/.exec(s);
      if (!m) throw new UsageError(`invalid containerPort: ${s}`);
      const a = Number(m[1]);
      const b = m[2] ? Number(m[2]) : a;
      if (a < 1 || b > 65535 || b < a) throw new UsageError(`invalid port range: ${s}`);
      return [a, b];
    };
    const [c1, c2] = range(containerPart);
    let hostRange: [number, number] | undefined;
    if (hostPart) hostRange = range(hostPart);
    if (hostRange && c2 > c1 && hostRange[1] - hostRange[0] !== c2 - c1) {
      throw new UsageError(`invalid ranges specified for container and host Ports: ${containerPart} and ${hostPart}`);
    }
    for (let p = c1; p <= c2; p++) {
      const key = `${p}/${proto}`;
      exposed[key] = {};
      let hostPort = '';
      if (hostRange) {
        // one container port and a host range: the daemon picks a free port in it
        hostPort = c1 === c2 ? hostPart : String(hostRange[0] + (p - c1));
      }
      (bindings[key] ??= []).push({ HostIp: ip, HostPort: hostPort });
    }
  }
  return { exposed, bindings };
}

/** --mount type=bind,source=/a,target=/b,readonly ... */
export function parseMount(spec: string): MountSpec {
  const m: MountSpec = { Type: 'volume', Target: '' };
  for (const field of spec.split(',')) {
    const eq = field.indexOf('=');
    const key = (eq === -1 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq === -1 ? undefined : field.slice(eq + 1);
    switch (key) {
      case 'type':
        if (!['bind', 'volume', 'tmpfs'].includes(value ?? '')) throw new UsageError(`invalid value for type: ${value}`);
        m.Type = value as MountSpec['Type'];
        break;
      case 'source':
      case 'src':
        m.Source = value;
        break;
      case 'target':
      case 'destination':
      case 'dst':
        m.Target = value ?? '';
        break;
      case 'readonly':
      case 'ro':
        m.ReadOnly = value === undefined || ['1', 'true'].includes(value);
        break;
      case 'bind-propagation':
        m.BindOptions = { ...(m.BindOptions ?? {}), Propagation: value };
        break;
      case 'volume-nocopy':
        m.VolumeOptions = { ...(m.VolumeOptions ?? {}), NoCopy: value === undefined || ['1', 'true'].includes(value) };
        break;
      case 'volume-driver':
        m.VolumeOptions = { ...(m.VolumeOptions ?? {}), DriverConfig: { ...(m.VolumeOptions?.DriverConfig ?? {}), Name: value } };
        break;
      case 'volume-opt': {
        const i = (value ?? '').indexOf('=');
        if (i <= 0) throw new UsageError(`invalid volume-opt: ${value}`);
        const dc = m.VolumeOptions?.DriverConfig ?? {};
        m.VolumeOptions = { ...(m.VolumeOptions ?? {}), DriverConfig: { ...dc, Options: { ...(dc.Options ?? {}), [value!.slice(0, i)]: value!.slice(i + 1) } } };
        break;
      }
      case 'volume-label': {
        const i = (value ?? '').indexOf('=');
        m.VolumeOptions = { ...(m.VolumeOptions ?? {}), Labels: { ...(m.VolumeOptions?.Labels ?? {}), [i < 0 ? value! : value!.slice(0, i)]: i < 0 ? '' : value!.slice(i + 1) } };
        break;
      }
      case 'tmpfs-size':
        m.TmpfsOptions = { ...(m.TmpfsOptions ?? {}), SizeBytes: parseSize(value ?? '', 'mount') };
        break;
      case 'tmpfs-mode':
        m.TmpfsOptions = { ...(m.TmpfsOptions ?? {}), Mode: parseInt(value ?? '', 8) };
        break;
      default:
        throw new UsageError(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (!m.Target) throw new UsageError('target is required');
  return m;
}

function parseUlimit(v: string): { Name: string; Soft: number; Hard: number } {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(v);
  if (!m) throw new UsageError(`invalid ulimit argument: ${v}`);
  return { Name: m[1], Soft: Number(m[2]), Hard: Number(m[3] ?? m[2]) };
}

export function parseRestart(v: string): HostConfig['RestartPolicy'] {
  const [name, count] = v.split(':');
  if (!['no', 'always', 'on-failure', 'unless-stopped', ''].includes(name)) throw new UsageError(`invalid restart policy ${name}`);
  if (count !== undefined && name !== 'on-failure') throw new UsageError(`maximum retry count cannot be used with restart policy '${name}'`);
  const n = count === undefined ? 0 : Number(count);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`maximum retry count must be a positive integer`);
  return { Name: name as HostConfig['RestartPolicy']['Name'], MaximumRetryCount: n };
}

export function createBody(f: Flags, image: string, cmd: string[]): { body: CreateContainerBody; name?: string } {
  const env = expandEnv([...f.strings('env-file').flatMap(readLinesFile), ...f.strings('env')]);
  const labels: Record<string, string> = {};
  for (const l of [...f.strings('label-file').flatMap(readLinesFile), ...f.strings('label')]) {
    const i = l.indexOf('=');
    labels[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  const publish = parsePublish(f.strings('publish'));
  for (const e of f.strings('expose')) {
    const [p, proto = 'tcp'] = e.split('/');
    const m = /^(\d+)(?:-(\d+))?$/.exec(p);
    if (!m) throw new UsageError(`invalid range format for --expose: ${e}`);
    for (let x = Number(m[1]); x <= Number(m[2] ?? m[1]); x++) publish.exposed[`${x}/${proto}`] = {};
  }
  const hc: Partial<HostConfig> = {
    AutoRemove: f.bool('rm'),
    Init: f.changed('init') ? f.bool('init') : null,
    RestartPolicy: parseRestart(f.string('restart')),
    Privileged: f.bool('privileged'),
    ReadonlyRootfs: f.bool('read-only'),
    CapAdd: f.strings('cap-add'),
    CapDrop: f.strings('cap-drop'),
    SecurityOpt: f.strings('security-opt'),
    GroupAdd: f.strings('group-add'),
    Dns: f.strings('dns'),
    DnsSearch: f.strings('dns-search'),
    DnsOptions: f.strings('dns-option'),
    ExtraHosts: f.strings('add-host'),
    Links: f.strings('link'),
    Binds: f.strings('volume'),
    VolumesFrom: f.strings('volumes-from'),
    PortBindings: publish.bindings,
    PublishAllPorts: f.bool('publish-all'),
    NetworkMode: f.string('network') || f.string('net') || 'default',
    PidMode: f.string('pid'),
    IpcMode: f.string('ipc'),
    UTSMode: f.string('uts'),
    CgroupParent: f.string('cgroup-parent'),
    OomScoreAdj: f.int('oom-score-adj'),
    OomKillDisable: f.bool('oom-kill-disable'),
    CpuShares: f.int('cpu-shares'),
    CpuPeriod: f.int('cpu-period'),
    CpuQuota: f.int('cpu-quota'),
    CpusetCpus: f.string('cpuset-cpus'),
    CpusetMems: f.string('cpuset-mems'),
    BlkioWeight: f.int('blkio-weight'),
    Ulimits: f.strings('ulimit').map(parseUlimit),
    LogConfig: {
      Type: f.string('log-driver'),
      Config: Object.fromEntries(
        f.strings('log-opt').map((o) => {
          const i = o.indexOf('=');
          if (i <= 0) throw new UsageError(`invalid key/value pair format in logging opts: ${o}`);
          return [o.slice(0, i), o.slice(i + 1)];
        }),
      ),
    },
  };
  if (f.changed('memory')) hc.Memory = parseSize(f.string('memory'), 'memory');
  if (f.changed('memory-swap')) hc.MemorySwap = f.string('memory-swap') === '-1' ? -1 : parseSize(f.string('memory-swap'), 'memory-swap');
  if (f.changed('memory-reservation')) hc.MemoryReservation = parseSize(f.string('memory-reservation'), 'memory-reservation');
  if (f.changed('memory-swappiness')) hc.MemorySwappiness = f.int('memory-swappiness');
  if (f.changed('shm-size')) hc.ShmSize = parseSize(f.string('shm-size'), 'shm-size');
  if (f.changed('pids-limit')) hc.PidsLimit = f.int('pids-limit');
  if (f.changed('cpus')) {
    const n = Number(f.string('cpus'));
    if (Number.isNaN(n)) throw new UsageError(`invalid argument "${f.string('cpus')}" for "--cpus" flag: failed to parse ${f.string('cpus')} as a rational number`);
    hc.NanoCpus = Math.round(n * 1e9);
  }
  if (f.strings('mount').length) hc.Mounts = f.strings('mount').map(parseMount);
  if (f.strings('tmpfs').length) {
    hc.Tmpfs = Object.fromEntries(
      f.strings('tmpfs').map((t) => {
        const i = t.indexOf(':');
        return i < 0 ? [t, ''] : [t.slice(0, i), t.slice(i + 1)];
      }),
    );
  }
  if (f.strings('sysctl').length) {
    hc.Sysctls = Object.fromEntries(f.strings('sysctl').map((s) => [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)]));
  }
  const tty = f.bool('tty');
  const interactive = f.bool('interactive');
  const detach = f.bool('detach');
  const body: CreateContainerBody = {
    Image: image,
    Cmd: cmd.length ? cmd : undefined,
    Env: env,
    Labels: labels,
    Tty: tty,
    OpenStdin: interactive,
    StdinOnce: interactive && !detach,
    AttachStdin: interactive && !detach,
    AttachStdout: !detach,
    AttachStderr: !detach,
    User: f.string('user'),
    WorkingDir: f.string('workdir'),
    Hostname: f.string('hostname'),
    Domainname: f.string('domainname'),
    ExposedPorts: publish.exposed,
    HostConfig: hc,
  };
  if (process.stdout.isTTY && tty) hc.ConsoleSize = [process.stdout.rows ?? 0, process.stdout.columns ?? 0];
  if (f.changed('entrypoint')) body.Entrypoint = f.string('entrypoint') === '' ? [''] : [f.string('entrypoint')];
  if (f.changed('stop-signal')) body.StopSignal = f.string('stop-signal');
  if (f.changed('stop-timeout')) body.StopTimeout = f.int('stop-timeout');
  if (f.bool('no-healthcheck')) body.Healthcheck = { Test: ['NONE'] };
  else if (f.changed('health-cmd') || f.changed('health-interval') || f.changed('health-retries')) {
    body.Healthcheck = {
      ...(f.changed('health-cmd') ? { Test: ['CMD-SHELL', f.string('health-cmd')] } : {}),
      ...(f.changed('health-interval') ? { Interval: parseDurationNs(f.string('health-interval'), 'health-interval') } : {}),
      ...(f.changed('health-timeout') ? { Timeout: parseDurationNs(f.string('health-timeout'), 'health-timeout') } : {}),
      ...(f.changed('health-start-period') ? { StartPeriod: parseDurationNs(f.string('health-start-period'), 'health-start-period') } : {}),
      ...(f.changed('health-retries') ? { Retries: f.int('health-retries') } : {}),
    };
  }
  const aliases = f.strings('network-alias');
  const ip = f.string('ip');
  const net = hc.NetworkMode!;
  if ((aliases.length || ip) && net !== 'default') {
    body.NetworkingConfig = {
      EndpointsConfig: { [net]: { Aliases: aliases, ...(ip ? { IPAMConfig: { IPv4Address: ip } } : {}) } },
    };
  }
  return { body, name: f.string('name') || undefined };
}
