/** berthd's command line. Flags follow dockerd's names where they exist. */
import path from 'node:path';
import { Logger, type LogLevel } from '../util/log.js';
import { DEFAULT_REGISTRY_CONFIG, type RegistryConfig } from '../engine/distribution/registry-hosts.js';

export interface DaemonConfig {
  dataRoot: string;
  execRoot: string;
  /** unix:///path or a plain path. */
  hosts: string[];
  logLevel: LogLevel;
  cgroupParent: string;
  initPath: string;
  runtimePath: string;
  conmonPath: string;
  /**
   * berth-nsexec, the helper that runs attached non-tty exec sessions without
   * runc; '' for the one built in native/, 'none' to run every exec through runc.
   */
  execHelper: string;
  /** Socket file mode (0660) and owning group, if any. */
  group?: string;
  /** Bridge interface of the default network. */
  bridge: string;
  /** Default bridge address and prefix, e.g. 172.30.0.1/16 (automatic when unset). */
  bip?: string;
  /** Subnets for user-defined networks: base CIDR and the size of each. */
  addressPool: { base: string; size: number };
  /** Mirrors, insecure registries, CA files, download/upload concurrency. */
  registry: RegistryConfig;
}

export const DEFAULTS: DaemonConfig = {
  dataRoot: '/var/lib/berth',
  execRoot: '/run/berth',
  hosts: ['unix:///run/berth/berth.sock'],
  logLevel: 'info',
  cgroupParent: '/berth',
  initPath: '/usr/bin/tini-static',
  runtimePath: 'runc',
  conmonPath: 'conmon',
  execHelper: '',
  bridge: 'berth0',
  addressPool: { base: '10.211.0.0/16', size: 24 },
  registry: DEFAULT_REGISTRY_CONFIG,
};

export const USAGE = `Usage: berthd [OPTIONS]

A container engine that speaks the Docker Engine API.

Options:
      --data-root string       Root directory of persistent state (default "/var/lib/berth")
      --exec-root string       Root directory for runtime state (default "/run/berth")
  -H, --host string            Daemon socket to listen on (default "unix:///run/berth/berth.sock")
  -l, --log-level string       Log level: debug, info, warn, error (default "info")
      --cgroup-parent string   Parent cgroup for containers (default "/berth")
      --init-path string       Init binary for --init containers (default "/usr/bin/tini-static")
      --runtime string         runc binary (default "runc")
      --conmon string          conmon binary (default "conmon")
      --exec-helper string     Exec helper for attached non-tty exec sessions, or "none" to use runc exec
                               for all (default: native/build/Release/berth-nsexec)
  -G, --group string           Group for the API socket
  -b, --bridge string          Bridge interface of the default network (default "berth0")
      --bip string             Default bridge address and prefix, e.g. 172.30.0.1/16
      --default-address-pool   Pool for user-defined networks: base=CIDR,size=N (default base=10.211.0.0/16,size=24)
      --registry-mirror url    Registry to try first for docker.io images (repeatable)
      --insecure-registry host Registry (host[:port] or CIDR) allowed over HTTP or unverified TLS (repeatable)
      --registry-certs-dir dir CA files per registry: <dir>/<host[:port]>/*.crt (default "/etc/berth/certs.d")
      --max-concurrent-downloads int  Layer downloads at once per pull (default 3)
      --max-concurrent-uploads int    Layer uploads at once per push (default 5)
  -h, --help                   Print usage
  -v, --version                Print version
`;

export class UsageError extends Error {}

export function parseDaemonArgs(argv: readonly string[]): DaemonConfig | 'help' | 'version' {
  const cfg: DaemonConfig = { ...DEFAULTS, hosts: [], registry: { ...DEFAULTS.registry, mirrors: [], insecure: [] } };
  const positive = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`invalid value for ${name}: ${v} (a positive integer)`);
    return n;
  };
  const take = (i: number, name: string): string => {
    const v = argv[i + 1];
    if (v === undefined) throw new UsageError(`flag needs an argument: ${name}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let inline: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = take(i, arg);
      i++;
      return v;
    };
    switch (arg) {
      case '--data-root':
      case '-g':
        cfg.dataRoot = path.resolve(value());
        break;
      case '--exec-root':
        cfg.execRoot = path.resolve(value());
        break;
      case '-H':
      case '--host':
        cfg.hosts.push(value());
        break;
      case '-l':
      case '--log-level':
        cfg.logLevel = Logger.parseLevel(value());
        break;
      case '-D':
      case '--debug':
        cfg.logLevel = 'debug';
        break;
      case '--cgroup-parent':
        cfg.cgroupParent = value();
        break;
      case '--init-path':
        cfg.initPath = value();
        break;
      case '--runtime':
        cfg.runtimePath = value();
        break;
      case '--conmon':
        cfg.conmonPath = value();
        break;
      case '--exec-helper':
        cfg.execHelper = value();
        break;
      case '-G':
      case '--group':
        cfg.group = value();
        break;
      case '-b':
      case '--bridge': {
        const v = value();
        if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(v)) throw new UsageError(`invalid bridge name: ${v}`);
        cfg.bridge = v;
        break;
      }
      case '--bip':
        cfg.bip = value();
        if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(cfg.bip)) throw new UsageError(`invalid --bip ${cfg.bip}: use address/prefix`);
        break;
      case '--default-address-pool': {
        const v = value();
        const m = /^base=([\d.]+\/\d+),size=(\d+)$/.exec(v);
        if (!m) throw new UsageError(`invalid --default-address-pool ${v}: use base=CIDR,size=N`);
        cfg.addressPool = { base: m[1], size: Number(m[2]) };
        break;
      }
      case '--registry-mirror':
        cfg.registry.mirrors.push(value());
        break;
      case '--insecure-registry':
        cfg.registry.insecure.push(value());
        break;
      case '--registry-certs-dir':
        cfg.registry.certsDir = path.resolve(value());
        break;
      case '--max-concurrent-downloads':
        cfg.registry.maxConcurrentDownloads = positive(arg, value());
        break;
      case '--max-concurrent-uploads':
        cfg.registry.maxConcurrentUploads = positive(arg, value());
        break;
      case '-h':
      case '--help':
        return 'help';
      case '-v':
      case '--version':
        return 'version';
      default:
        throw new UsageError(`unknown flag: ${arg}`);
    }
  }
  if (cfg.hosts.length === 0) cfg.hosts = [...DEFAULTS.hosts];
  if (!cfg.cgroupParent.startsWith('/')) cfg.cgroupParent = `/${cfg.cgroupParent}`;
  return cfg;
}

/** The socket path of a host address (only UNIX sockets are served here). */
export function socketPath(host: string): string {
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  if (host.startsWith('/')) return host;
  throw new UsageError(`unsupported host ${host}: berthd serves the API on UNIX sockets (unix:///path)`);
}
