/**
 * The fast exec path: berth-nsexec (native/src/berth_nsexec.c) enters a
 * running container the way `runc exec` does, without runc's two Go process
 * start-ups (~36 ms here, more than the whole exec latency budget).
 *
 * This module owns: the helper's sealed in-memory copy, spawning it (posix_spawn
 * through the native addon: libuv's fork costs milliseconds in a large
 * daemon), its request encoding, its stdio pipes and its answer, and the
 * per-container context an exec needs (namespaces, cgroup directories,
 * seccomp BPF compiled once per profile, rlimits, oom_score_adj, AppArmor).
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../../core/errdefs/index.js';
import { ALL_CAPABILITIES } from './spec.js';
import { closeFds, devNull, native } from './native.js';
import type { OciSeccomp } from './seccomp.js';

/** The namespaces runc exec joins, in runc's order (configs.NamespaceTypes()). */
const NAMESPACE_ORDER: { oci: string; proc: string }[] = [
  { oci: 'ipc', proc: 'ipc' },
  { oci: 'uts', proc: 'uts' },
  { oci: 'network', proc: 'net' },
  { oci: 'pid', proc: 'pid' },
  { oci: 'mount', proc: 'mnt' },
  { oci: 'cgroup', proc: 'cgroup' },
];

/** Linux RLIMIT_* numbers (asm-generic). */
const RLIMIT_NUMBERS: Record<string, number> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5, RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10, RLIMIT_SIGPENDING: 11, RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};

const RLIM_INFINITY = 0xffffffffffffffffn;

/** Well below an AF_UNIX socket's send buffer, so a blocking write never blocks. */
const INLINE_REQUEST_MAX = 64 * 1024;

/** What an exec into one running container needs from its spec and its init. */
export interface ContainerExecContext {
  initPid: number;
  /** /proc/<pid>/ns names to join, in order. */
  namespaces: string[];
  /** Host directories of the init's cgroups: every v1 hierarchy, and the unified one. */
  cgroups: CgroupDirs;
  /** The compiled filter as hex (what the helper reads); undefined when unconfined. */
  seccompHex?: string;
  rlimits: { resource: number; soft: bigint; hard: bigint }[];
  oomScoreAdj?: number;
  apparmorProfile?: string;
}

/** The process to run, as the exec session's OCI process spec says. */
export interface NsexecProcessSpec {
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
  capabilities: { bounding: string[]; effective: string[]; permitted: string[]; inheritable?: string[]; ambient?: string[] };
  noNewPrivileges: boolean;
}

export interface NsexecOptions {
  containerId: string;
  context: ContainerExecContext;
  process: NsexecProcessSpec;
  /** A stdin pipe (exec -i); otherwise the process reads /dev/null. */
  stdin: boolean;
}

/** The exec could not start (runc's message, e.g. executable file not found). */
export class NsexecStartError extends Error {}

/** The container cannot take the fast path (user namespaces, notify seccomp, ...). */
export class NsexecUnsupported extends Error {}

function capabilityMask(caps: readonly string[] | undefined): string {
  let mask = 0n;
  for (const c of caps ?? []) {
    const bit = ALL_CAPABILITIES.indexOf(c);
    // runc ignores capabilities it does not know; so do we
    if (bit >= 0) mask |= 1n << BigInt(bit);
  }
  return mask.toString(16);
}

/**
 * runc's populateProcessEnvironment + os.Environ(): a later duplicate
 * replaces the value in the first one's place; malformed entries fail the exec.
 */
export function processEnvironment(env: readonly string[]): string[] {
  const out: string[] = [];
  const index = new Map<string, number>();
  for (const pair of env) {
    const eq = pair.indexOf('=');
    if (eq < 0) throw new NsexecStartError(`exec failed: unable to start container process: invalid environment variable: ${JSON.stringify(pair)}`);
    const name = pair.slice(0, eq);
    if (name === '') throw new NsexecStartError(`exec failed: unable to start container process: environment variable name can't be empty: ${JSON.stringify(pair)}`);
    if (pair.includes('\0')) throw new NsexecStartError(`exec failed: unable to start container process: environment variable can't contain null(\\x00): ${JSON.stringify(pair)}`);
    const i = index.get(name);
    if (i === undefined) {
      index.set(name, out.length);
      out.push(pair);
    } else out[i] = pair;
  }
  return out;
}

/** The helper's request: NUL-terminated key=value entries behind a u32 length. */
export function encodeRequest(o: NsexecOptions): Buffer {
  const ctx = o.context;
  const p = o.process;
  const entries: string[] = [`pid=${ctx.initPid}`, `id=${o.containerId}`];
  for (const ns of ctx.namespaces) entries.push(`ns=${ns}`);
  for (const dir of ctx.cgroups.v1) entries.push(`cgroup=${dir}`);
  if (ctx.cgroups.unified) entries.push(`cgroup2=${ctx.cgroups.unified}`);
  entries.push(`uid=${p.user.uid}`, `gid=${p.user.gid}`, `groups=${(p.user.additionalGids ?? []).join(',')}`);
  entries.push(
    `cap.bounding=${capabilityMask(p.capabilities.bounding)}`,
    `cap.effective=${capabilityMask(p.capabilities.effective)}`,
    `cap.permitted=${capabilityMask(p.capabilities.permitted)}`,
    `cap.inheritable=${capabilityMask(p.capabilities.inheritable)}`,
    `cap.ambient=${capabilityMask(p.capabilities.ambient)}`,
  );
  entries.push(`nnp=${p.noNewPrivileges ? 1 : 0}`);
  if (ctx.oomScoreAdj !== undefined) entries.push(`oom=${ctx.oomScoreAdj}`);
  for (const r of ctx.rlimits) entries.push(`rlimit=${r.resource}:${r.soft}:${r.hard}`);
  if (ctx.apparmorProfile) entries.push(`apparmor=${ctx.apparmorProfile}`);
  if (ctx.seccompHex) entries.push(`seccomp=${ctx.seccompHex}`);
  // runc exec joins the container's session keyring (unless NoNewKeyring)
  entries.push(`keyring=_ses.${o.containerId}`);
  entries.push(`cwd=${p.cwd}`);
  for (const a of p.args) entries.push(`arg=${a}`);
  for (const e of processEnvironment(p.env)) entries.push(`env=${e}`);
  for (const e of entries) if (e.includes('\0')) throw new NsexecStartError(`exec failed: unable to start container process: argument contains a NUL byte`);
  const body = Buffer.from(entries.join('\0') + '\0');
  const head = Buffer.alloc(4);
  head.writeUInt32LE(body.length);
  return Buffer.concat([head, body]);
}

interface CgroupMount {
  /** v1 superblock options (controllers among them); null for cgroup2. */
  options: Set<string> | null;
  root: string;
  mountpoint: string;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The cgroup mounts of the daemon's mount namespace (the host's). */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const pre = line.slice(0, dash).split(' ');
    const post = line.slice(dash + 3).split(' ');
    const fstype = post[0];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    out.push({
      options: fstype === 'cgroup' ? new Set((post[2] ?? '').split(',')) : null,
      root: unescapeMountinfo(pre[3] ?? '/'),
      mountpoint: unescapeMountinfo(pre[4] ?? ''),
    });
  }
  return out;
}

export interface CgroupDirs {
  v1: string[];
  unified?: string;
}

/**
 * The host directories of the cgroups in a /proc/<pid>/cgroup file: every v1
 * hierarchy (named ones such as name=systemd included) and, in hybrid mode,
 * the unified one, as runc's setnsProcess joins them.
 */
export function cgroupDirsFor(procCgroup: string, mounts: readonly CgroupMount[]): CgroupDirs {
  const dirs: CgroupDirs = { v1: [] };
  for (const line of procCgroup.split('\n')) {
    if (!line) continue;
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const cgPath = line.slice(second + 1);
    const wanted = controllers === '' ? [] : controllers.split(',');
    const mount = mounts.find((m) => (wanted.length === 0 ? m.options === null : m.options !== null && wanted.every((c) => m.options!.has(c))));
    if (!mount) throw new NsexecUnsupported(`no mount for cgroup hierarchy "${controllers}"`);
    let rel: string;
    if (mount.root === '/') rel = cgPath;
    else if (cgPath === mount.root || cgPath.startsWith(`${mount.root}/`)) rel = cgPath.slice(mount.root.length) || '/';
    else throw new NsexecUnsupported(`cgroup ${cgPath} is outside the mounted hierarchy "${controllers}"`);
    const dir = path.posix.join(mount.mountpoint, rel);
    if (mount.options === null) dirs.unified = dir;
    else dirs.v1.push(dir);
  }
  return dirs;
}

interface OciSpecForExec {
  process?: { rlimits?: { type: string; soft: number; hard: number }[]; oomScoreAdj?: number; apparmorProfile?: string };
  linux?: { namespaces?: { type: string; path?: string }[]; seccomp?: OciSeccomp & { flags?: string[]; listenerPath?: string } };
}

/**
 * One running exec: stdout/stderr arrive as 'data' (stream 1|2, Buffer),
 * then 'end'; `pid` resolves once the command was exec'd (rejects with
 * runc's message when it could not be), `exit` with its exit code
 * (128+signal when killed). The same surface as a conmon attach connection.
 */
export class NsexecProcess extends EventEmitter {
  readonly pid: Promise<number>;
  readonly exit: Promise<number>;
  private stdinSocket: net.Socket | undefined;
  private readonly outputSockets: net.Socket[] = [];
  private openStreams = 0;
  private forwarding = true;

  constructor(rt: NsexecRuntime, o: NsexecOptions, request: Buffer) {
    super();
    const addon = native();
    const fds: number[] = [];
    const [ctlOurs, ctlTheirs] = addon.socketpair();
    fds.push(ctlOurs, ctlTheirs);
    // The helper's first read must not wait for our event loop: a request that
    // fits the socket buffer is written now, before the helper exists.
    let unsent = request;
    if (request.length <= INLINE_REQUEST_MAX) {
      try {
        let off = 0;
        while (off < request.length) off += fs.writeSync(ctlOurs, request, off);
        unsent = Buffer.alloc(0);
      } catch (err) {
        closeFds(fds);
        throw err;
      }
    }
    let outR: number, outW: number, errR: number, errW: number, inR: number, inW = -1;
    try {
      [outR, outW] = addon.pipe();
      fds.push(outR, outW);
      [errR, errW] = addon.pipe();
      fds.push(errR, errW);
      if (o.stdin) {
        [inR, inW] = addon.pipe();
        fds.push(inR, inW);
      } else inR = devNull();
    } catch (err) {
      closeFds(fds);
      throw err;
    }
    let resolveExit!: (code: number) => void;
    this.exit = new Promise((res) => (resolveExit = res));
    let helperPid: number;
    try {
      helperPid = addon.spawn(rt.executable(), ['berth-nsexec'], [inR, outW, errW, ctlTheirs], (code, signal) => resolveExit(code >= 0 ? code : 128 + signal));
    } catch (err) {
      closeFds(fds);
      throw err;
    }
    // the helper has its copies now
    closeFds([outW, errW, ctlTheirs, ...(o.stdin ? [inR] : [])]);

    const reader = (fd: number, stream: 1 | 2): void => {
      const sock = new net.Socket({ fd, readable: true, writable: false });
      this.outputSockets.push(sock);
      this.openStreams++;
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        sock.destroy();
        if (--this.openStreams === 0) this.emit('end');
      };
      sock.on('data', (b: Buffer) => {
        if (this.forwarding) this.emit('data', stream, b);
      });
      sock.on('end', finish);
      sock.on('close', finish);
      sock.on('error', finish);
    };
    reader(outR, 1);
    reader(errR, 2);
    if (o.stdin) {
      const s = new net.Socket({ fd: inW, readable: false, writable: true });
      s.on('error', () => s.destroy()); // EPIPE: the process closed its stdin
      this.stdinSocket = s;
    }

    const ctl = new net.Socket({ fd: ctlOurs, readable: true, writable: true });
    let answer = '';
    let settled = false;
    let resolvePid!: (pid: number) => void;
    let rejectPid!: (err: Error) => void;
    this.pid = new Promise((res, rej) => ((resolvePid = res), (rejectPid = rej)));
    this.pid.catch(() => {});
    const settle = (line: string | undefined): void => {
      if (settled) return;
      settled = true;
      ctl.destroy();
      const m = line ? /^pid (\d+)$/.exec(line) : null;
      if (m) resolvePid(Number(m[1]));
      else if (line?.startsWith('error ')) rejectPid(new NsexecStartError(line.slice(6)));
      else {
        void this.exit.then((code) => rejectPid(new NsexecStartError(`exec failed: exec helper ${helperPid} ended (status ${code}) without an answer`)));
      }
    };
    ctl.on('data', (b: Buffer) => {
      answer += b.toString('utf8');
      const nl = answer.indexOf('\n');
      if (nl >= 0) settle(answer.slice(0, nl));
    });
    ctl.on('end', () => settle(undefined));
    ctl.on('error', () => settle(undefined));
    if (unsent.length) ctl.write(unsent);
  }

  /** Input for the process (exec -i). */
  write(data: Buffer): void {
    this.stdinSocket?.write(data);
  }

  /** End of input: the process reads EOF once what was written is read. */
  endInput(): void {
    const s = this.stdinSocket;
    if (!s) return;
    this.stdinSocket = undefined;
    s.end(() => s.destroy());
  }

  /**
   * Closes our ends of the process's pipes. For after the exit: a background
   * process that kept stdout open then sees EPIPE, as with Docker, and we do
   * not hold its pipes for as long as it lives.
   */
  closeStreams(): void {
    for (const s of this.outputSockets) s.destroy();
    if (this.stdinSocket) this.stdinSocket.destroy();
    this.stdinSocket = undefined;
  }

  /**
   * The client went away: stop forwarding. Output is still drained (as conmon
   * does), so the process never blocks on a full pipe or dies of SIGPIPE.
   */
  close(): void {
    this.forwarding = false;
    if (this.stdinSocket) this.endInput();
  }
}

export class NsexecRuntime {
  private sealedFd: number | undefined;
  private mounts: CgroupMount[] | undefined;
  private readonly contexts = new Map<string, ContainerExecContext>();
  /** Compiled filters by profile text: containers with the same capabilities share one. */
  private readonly filters = new Map<string, string>();
  private availability: string | null | undefined;

  constructor(readonly helperPath: string = defaultHelperPath()) {}

  /** null when the fast path can be used, otherwise why not. */
  unavailable(): string | null {
    if (this.availability === undefined) {
      try {
        fs.accessSync(this.helperPath, fs.constants.X_OK);
        const addon = native();
        if (typeof addon.spawn !== 'function' || typeof addon.seccompCompile !== 'function') throw new Error('the native addon predates the exec helper; rebuild it');
        if (!fs.existsSync('/proc/self/ns/pid')) throw new Error('no /proc/self/ns');
        // pidfd_open (5.3) pins the init and watches the helper
        const [major, minor] = os.release().split('.').map((n) => parseInt(n, 10));
        if (major < 5 || (major === 5 && minor < 3)) throw new Error(`kernel ${os.release()} has no pidfd_open (5.3)`);
        this.executable();
        this.availability = null;
      } catch (err) {
        this.availability = errorMessage(err);
      }
    }
    return this.availability;
  }

  /** /proc/self/fd/N of the sealed copy (made once). */
  executable(): string {
    if (this.sealedFd === undefined) this.sealedFd = native().sealedCopy(this.helperPath);
    return `/proc/self/fd/${this.sealedFd}`;
  }


  private cgroupMounts(): CgroupMount[] {
    if (!this.mounts) this.mounts = parseCgroupMounts(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
    return this.mounts;
  }

  /**
   * The context for execs into a container whose init is initPid, from the
   * bundle's config.json (the spec runc ran). Cached until the init changes.
   * The caller must have checked that initPid is the container's.
   */
  async context(containerId: string, initPid: number, bundle: string): Promise<ContainerExecContext> {
    const cached = this.contexts.get(containerId);
    if (cached && cached.initPid === initPid) return cached;
    const spec = JSON.parse(await fsp.readFile(path.join(bundle, 'config.json'), 'utf8')) as OciSpecForExec;
    const types = (spec.linux?.namespaces ?? []).map((n) => n.type);
    for (const t of types) {
      if (!NAMESPACE_ORDER.some((n) => n.oci === t)) throw new NsexecUnsupported(`${t} namespaces are not supported by the exec helper`);
    }
    const namespaces = NAMESPACE_ORDER.filter((n) => types.includes(n.oci)).map((n) => n.proc);
    const cgroups = cgroupDirsFor(await fsp.readFile(`/proc/${initPid}/cgroup`, 'utf8'), this.cgroupMounts());
    const rlimits = (spec.process?.rlimits ?? []).map((r) => {
      const resource = RLIMIT_NUMBERS[r.type];
      if (resource === undefined) throw new NsexecUnsupported(`unknown rlimit ${r.type}`);
      const limit = (v: number): bigint => (v < 0 ? RLIM_INFINITY : BigInt(v));
      return { resource, soft: limit(r.soft), hard: limit(r.hard) };
    });
    const ctx: ContainerExecContext = {
      initPid,
      namespaces,
      cgroups,
      rlimits,
      seccompHex: this.seccompHex(spec.linux?.seccomp),
      ...(spec.process?.oomScoreAdj !== undefined ? { oomScoreAdj: spec.process.oomScoreAdj } : {}),
      ...(spec.process?.apparmorProfile ? { apparmorProfile: spec.process.apparmorProfile } : {}),
    };
    this.contexts.set(containerId, ctx);
    return ctx;
  }

  forget(containerId: string): void {
    this.contexts.delete(containerId);
  }

  private seccompHex(profile: (OciSeccomp & { flags?: string[]; listenerPath?: string }) | undefined): string | undefined {
    // runc: no default action and no rules means no filter
    if (!profile || (!profile.defaultAction && (profile.syscalls?.length ?? 0) === 0)) return undefined;
    if (profile.flags?.length || profile.listenerPath) throw new NsexecUnsupported('seccomp flags and listeners are not supported by the exec helper');
    const key = JSON.stringify(profile);
    let hex = this.filters.get(key);
    if (hex === undefined) {
      try {
        hex = native().seccompCompile(profile).toString('hex');
      } catch (err) {
        throw new NsexecUnsupported(`seccomp profile: ${errorMessage(err)}`);
      }
      if (this.filters.size >= 64) this.filters.delete(this.filters.keys().next().value!);
      this.filters.set(key, hex);
    }
    return hex;
  }

  run(o: NsexecOptions): NsexecProcess {
    return new NsexecProcess(this, o, encodeRequest(o));
  }
}

function defaultHelperPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/src/engine/runtime -> repository root
  return path.join(path.resolve(here, '../../../..'), 'native/build/Release/berth-nsexec');
}
