/**
 * Starting containers under conmon, one monitor per container. conmon runs
 * `runc create`, holds the container's stdio, writes its log (k8s-file
 * format), serves an attach socket (SOCK_SEQPACKET, via the native addon)
 * and records the exit code in <exitDir>/<id> when the container ends. It
 * outlives berthd, so containers keep running across daemon restarts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { promisify } from 'node:util';
import { errorMessage, internal, invalidArgument } from '../../core/errdefs/index.js';
import { closeFds, devNull, native, type SeqpacketHandle } from './native.js';
import { Runc, runcMessage } from './runc.js';

export interface ConmonOptions {
  id: string;
  name: string;
  bundle: string;
  logPath: string;
  /** conmon replaces the log file past this size; 0 means unbounded. */
  logSizeMax: number;
  terminal: boolean;
  /** Keep a stdin pipe (OpenStdin). */
  stdin: boolean;
  /** Close stdin when the first attached client detaches (StdinOnce). */
  stdinOnce: boolean;
}

export interface CreatedContainer {
  pid: number;
  conmonPid: number;
}

export class CreateError extends Error {}

/** A conmon waiting to create a container (ConmonRuntime.prepareCreate). */
export interface PendingCreate {
  /** Lets conmon run `runc create`; resolves once the container exists. */
  go(): Promise<CreatedContainer>;
  /** Kills the waiting conmon; nothing once go() was called. */
  abort(): void;
}

export interface ExecOptions {
  containerId: string;
  execId: string;
  /** The session's directory: process.json, attach socket, ctl fifo. */
  dir: string;
  terminal: boolean;
  stdin: boolean;
  attach: boolean;
}

/** Reads conmon's JSON messages ({"data": N, "message": "..."}) off a pipe, one per line. */
function messages(stream: NodeJS.ReadableStream, onMessage: (m: { data?: number; message?: string }) => void, onEnd: () => void): void {
  let buf = '';
  stream.on('data', (b: Buffer) => {
    buf += b.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        onMessage(JSON.parse(line) as { data?: number; message?: string });
      } catch {
        // not a message of conmon's
      }
    }
  });
  stream.on('end', onEnd);
  stream.on('error', onEnd);
}

/**
 * One exec session under conmon: `ready` resolves when the attach socket
 * exists (attached sessions), `pid` when the process runs, `exit` with its
 * exit code (128+signal when killed).
 */
export class ExecProcess {
  readonly ready: Promise<void>;
  readonly pid: Promise<number>;
  readonly exit: Promise<number>;
  private readonly startPipe: NodeJS.WritableStream & { destroy(): void };
  private stderr = '';

  constructor(child: ChildProcess, attach: boolean) {
    const sync = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
    this.startPipe = child.stdio[4] as NodeJS.WritableStream & { destroy(): void };
    const attachPipe = (child.stdio as unknown as (NodeJS.ReadableStream & { destroy(): void } | null)[])[5] ?? null;
    child.stderr?.on('data', (b: Buffer) => (this.stderr += b.toString()));
    let resolvePid!: (pid: number) => void;
    let rejectPid!: (err: Error) => void;
    let resolveExit!: (code: number) => void;
    let rejectExit!: (err: Error) => void;
    this.pid = new Promise((res, rej) => ((resolvePid = res), (rejectPid = rej)));
    this.exit = new Promise((res, rej) => ((resolveExit = res), (rejectExit = rej)));
    this.pid.catch(() => {});
    this.exit.catch(() => {});
    let gotPid = false;
    messages(
      sync,
      (m) => {
        const value = m.data ?? -1;
        if (!gotPid) {
          gotPid = true;
          if (value > 0) resolvePid(value);
          else {
            const err = new CreateError(runcMessage(m.message ?? '') || 'exec failed');
            rejectPid(err);
            rejectExit(err);
          }
          return;
        }
        resolveExit(value);
        sync.destroy();
      },
      () => {
        const err = new CreateError(this.stderr.trim() || 'conmon ended the exec session without a status');
        if (!gotPid) rejectPid(err);
        rejectExit(err);
      },
    );
    if (attach && attachPipe) {
      this.ready = new Promise((res, rej) => {
        let done = false;
        messages(
          attachPipe,
          () => {
            if (done) return;
            done = true;
            res();
            attachPipe.destroy();
          },
          () => {
            if (!done) rej(new CreateError(this.stderr.trim() || 'conmon did not set up the exec attach socket'));
          },
        );
      });
    } else {
      attachPipe?.destroy();
      this.ready = Promise.resolve();
    }
    this.ready.catch(() => {});
    child.on('error', (err) => {
      rejectPid(err);
      rejectExit(err);
    });
    child.unref();
    // conmon waits for a first byte before forking (its daemon leaves our cgroups later:
    // ConmonRuntime.leaveOwnCgroups); if it is gone already (EPIPE), the sync pipe's end reports it
    this.startPipe.on('error', () => {});
    this.startPipe.write('0');
    if (!attach) this.startPipe.destroy();
  }

  /** Attached sessions: lets the process start once the caller is connected. */
  release(): void {
    this.startPipe.write('0');
    this.startPipe.destroy();
  }
}

/** The pid in a pid file conmon's parent wrote before it exited; 0 if there is none. */
function readPidFile(file: string): number {
  try {
    return parseInt(fs.readFileSync(file, 'utf8'), 10) || 0;
  } catch {
    return 0; // absent only if conmon failed early
  }
}

/** A pid that exists and is not a zombie. */
function initAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export class ConmonRuntime {
  readonly runc: Runc;
  private ownCgroups: { hierarchy: string; path: string }[] | undefined;

  constructor(
    readonly conmonBinary: string,
    runcBinary: string,
    readonly execRoot: string,
  ) {
    this.runc = new Runc(runcBinary, path.join(execRoot, 'runc'));
  }

  get exitDir(): string {
    return path.join(this.execRoot, 'exits');
  }

  /** Short directory for attach socket symlinks (sun_path holds 108 bytes). */
  get socketDir(): string {
    return path.join(this.execRoot, 's');
  }

  async init(): Promise<void> {
    for (const d of [this.exitDir, this.socketDir, this.runc.root]) await fsp.mkdir(d, { recursive: true, mode: 0o700 });
    if (path.join(this.socketDir, 'x'.repeat(32), 'attach').length >= 108) {
      throw invalidArgument(`exec root ${this.execRoot} is too long for attach sockets; use a shorter --exec-root`);
    }
  }

  attachSocketPath(bundle: string): string {
    return path.join(bundle, 'attach');
  }

  ctlPath(bundle: string): string {
    return path.join(bundle, 'ctl');
  }

  exitFile(id: string): string {
    return path.join(this.exitDir, id);
  }

  /**
   * conmon -> runc create, in two steps. This spawns conmon, which waits on
   * its start pipe: its exec and library loading (~3 ms) overlap the
   * caller's preparation of the bundle. go() lets it fork and run `runc
   * create` and resolves once the container's init process exists (it has
   * not exec'd the user command yet: `start` does that); abort() kills it
   * if go() has not been called.
   * posix_spawn (native) rather than child_process: libuv forks the daemon
   * and waits for the exec, ~3 ms of the main thread per container.
   */
  prepareCreate(o: ConmonOptions): PendingCreate {
    const args = [
      'conmon',
      '--api-version', '1',
      '-c', o.id,
      '-u', o.id.slice(0, 32),
      '-n', o.name,
      '-r', this.runtimeExecutable(),
      '-b', o.bundle,
      '-p', path.join(o.bundle, 'pidfile'),
      '-P', path.join(o.bundle, 'conmon.pid'),
      '--persist-dir', o.bundle,
      '--exit-dir', this.exitDir,
      '--socket-dir-path', this.socketDir,
      // --log-driver none: conmon's own "none" driver keeps no log (attach still works)
      '-l', o.logPath ? `k8s-file:${o.logPath}` : 'none',
      '--log-level', 'error',
      // log durability across power loss is not worth an fsync on every exit
      '--no-sync-log',
      ...this.runc.globalArgs().flatMap((a) => ['--runtime-arg', a]),
    ];
    if (o.logSizeMax > 0 && o.logPath) args.push('--log-size-max', String(o.logSizeMax));
    if (o.terminal) args.push('-t');
    if (o.stdin) args.push('-i');
    if (o.stdin && !o.stdinOnce) args.push('--leave-stdin-open');
    const env = [`PATH=${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`, 'TZ=UTC', '_OCI_SYNCPIPE=3', '_OCI_STARTPIPE=4'];

    const addon = native();
    const pipes: [number, number][] = []; // [read, write]: sync, start, stderr
    let pid: number;
    try {
      for (let i = 0; i < 3; i++) pipes.push(addon.pipe());
      const [[, syncW], [startR], [, errW]] = pipes;
      pid = addon.spawn(this.conmonBinary, args, [devNull(), devNull(), errW, syncW, startR], () => {}, env);
    } catch (err) {
      closeFds(pipes.flat());
      const failed = Promise.reject(internal(`cannot run conmon: ${errorMessage(err)}`, err instanceof Error ? err : undefined));
      failed.catch(() => {});
      return { go: () => failed, abort: () => {} };
    }
    const [[syncR, syncW], [startR, startWrite], [errR, errW]] = pipes;
    closeFds([syncW, startR, errW]); // conmon has its copies
    let startW = startWrite;

    const sync = new net.Socket({ fd: syncR, readable: true, writable: false });
    const stderrStream = new net.Socket({ fd: errR, readable: true, writable: false });
    let stderr = '';
    let buffered = '';
    let settled = false;
    let letGo = false;
    let resolveCreated!: (value: CreatedContainer) => void;
    let rejectCreated!: (err: Error) => void;
    const created = new Promise<CreatedContainer>((res, rej) => ((resolveCreated = res), (rejectCreated = rej)));
    created.catch(() => {});
    const closeStartPipe = (): void => {
      if (startW < 0) return;
      fs.closeSync(startW);
      startW = -1;
    };
    const finish = (err: Error | null, value?: CreatedContainer): void => {
      if (settled) return;
      settled = true;
      sync.destroy();
      stderrStream.destroy();
      closeStartPipe();
      if (err) rejectCreated(err);
      else resolveCreated(value!);
    };
    stderrStream.on('data', (b: Buffer) => (stderr += b.toString()));
    stderrStream.on('error', () => {});
    sync.on('error', () => {});
    sync.on('data', (b: Buffer) => {
      buffered += b.toString();
      const nl = buffered.indexOf('\n');
      if (nl === -1) return;
      let msg: { data?: number; pid?: number; message?: string };
      try {
        msg = JSON.parse(buffered.slice(0, nl)) as typeof msg;
      } catch {
        finish(internal(`conmon sent an unreadable message: ${buffered.slice(0, nl)}`));
        return;
      }
      const containerPid = msg.data ?? msg.pid ?? -1;
      if (containerPid <= 0) {
        finish(new CreateError(runcMessage(msg.message ?? '') || 'runc create failed'));
        return;
      }
      const conmonPid = readPidFile(path.join(o.bundle, 'conmon.pid'));
      if (conmonPid > 0) void this.leaveOwnCgroups(conmonPid);
      finish(null, { pid: containerPid, conmonPid });
    });
    sync.on('end', () => {
      if (!settled) {
        // conmon exited without reporting: its stderr (or syslog) has the reason
        setTimeout(() => finish(new CreateError(stderr.trim() || 'conmon exited before the container was created')), 10);
      }
    });
    return {
      // conmon waits on the start pipe (meant for moving it to another cgroup before it
      // forks); we let it go once the bundle is ready and move its daemon afterwards
      // (see leaveOwnCgroups)
      go: () => {
        letGo = true;
        if (!settled && startW >= 0) {
          try {
            fs.writeSync(startW, '0');
          } catch {
            // conmon is gone already (EPIPE): the sync pipe's end reports it, with its stderr
          }
          closeStartPipe();
        }
        return created;
      },
      abort: () => {
        if (settled || letGo) return;
        // killed before it read the start byte: had it read an end of file instead, it would go on
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
        finish(new CreateError('container start abandoned'));
      },
    };
  }

  private sealedRunc: { fd: number; dev: number; ino: number; size: number; mtimeMs: number } | undefined;

  /**
   * The runc that conmon runs: a sealed in-memory copy of it. runc protects
   * the host binary from its containers (CVE-2019-5736) by copying itself
   * into a sealed memfd at every `runc init` and executing that copy; when it
   * already runs from one, it skips both (~2 ms and 8.7 MB of copying per
   * container). The copy is made again when the file changes (an upgrade);
   * the file itself is used when no copy can be made. The path lives as long
   * as berthd does, which is all it must: conmon runs runc only to create.
   */
  runtimeExecutable(): string {
    try {
      const st = fs.statSync(this.runc.binary);
      const cur = this.sealedRunc;
      if (!cur || cur.dev !== st.dev || cur.ino !== st.ino || cur.size !== st.size || cur.mtimeMs !== st.mtimeMs) {
        const fd = native().sealedCopy(this.runc.binary);
        // a conmon spawned a moment ago may not have executed the old copy yet
        if (cur) setTimeout(() => fs.close(cur.fd, () => {}), 60_000).unref();
        this.sealedRunc = { fd, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
      }
      return `/proc/${process.pid}/fd/${this.sealedRunc!.fd}`;
    } catch {
      return this.runc.binary;
    }
  }

  /**
   * conmon must not share berthd's cgroups: whoever stops berthd by killing
   * its cgroup would stop every container's monitor with it. Moving a process
   * between cgroup v1 hierarchies waits for an RCU grace period (4-20 ms
   * here), so it happens after the container exists, off the start's path:
   * conmon's daemon, not the process we spawned (which exits after forking),
   * goes to the root cgroups. Until then its short-lived children (runc create)
   * are where it is; the container's own processes are in the container's
   * cgroups either way.
   */
  async leaveOwnCgroups(pid: number): Promise<void> {
    if (this.ownCgroups === undefined) {
      this.ownCgroups = [];
      try {
        for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
          const [, controllers, cgPath] = line.split(':');
          if (!controllers || !cgPath || cgPath === '/') continue;
          const hierarchy = controllers.replace(/^name=/, '');
          const mount = path.join('/sys/fs/cgroup', hierarchy);
          if (fs.existsSync(path.join(mount, 'cgroup.procs'))) this.ownCgroups.push({ hierarchy, path: mount });
        }
      } catch {
        // no cgroup information: nothing to leave
      }
    }
    // one hierarchy after the other: each write holds a thread-pool thread for
    // the grace period, and the start still in flight needs the pool (the exec
    // fifo, the record's write)
    for (const cg of this.ownCgroups) {
      await fsp.writeFile(path.join(cg.path, 'cgroup.procs'), String(pid)).catch(() => {
        // best effort: a hierarchy we may not write to, or conmon already gone
      });
    }
  }

  /**
   * Lets a created container exec its command. This is what `runc start`
   * does: runc's init process waits to write one byte into
   * <runc root>/<id>/exec.fifo; reading it releases the exec. Doing it here
   * saves a runc process (~8 ms) on every start; when the fifo is not where
   * runc 1.x keeps it, `runc start` does the job.
   */
  async start(id: string, initPid: number): Promise<void> {
    const fifo = path.join(this.runc.root, id, 'exec.fifo');
    if (!fs.existsSync(fifo)) {
      await this.runc.start(id);
      return;
    }
    let dead = false;
    // If init dies before opening its end, our blocking open would wait for
    // ever: a watchdog notices and releases it by opening the write side.
    const watchdog = setInterval(() => {
      if (initAlive(initPid)) return;
      dead = true;
      clearInterval(watchdog);
      fsp
        .open(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)
        .then((fh) => fh.close())
        .catch(() => {});
    }, 100);
    // init writes a byte once we open our end, then execs (its end closes):
    // read to the end, so that the process runs the user's command when we return
    let received = 0;
    try {
      const fd = await promisify(fs.open)(fifo, fs.constants.O_RDONLY);
      try {
        const buf = Buffer.alloc(64);
        for (let n; (n = await readInto(fd, buf)) > 0; ) received += n;
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      clearInterval(watchdog);
    }
    if (received === 0) {
      throw new CreateError(dead ? 'container process is already dead' : 'cannot start an already running container');
    }
    // runc's own sign of a started container (a directory entry: removed synchronously)
    fs.rmSync(fifo, { force: true });
  }

  /**
   * Runs a process in a running container (`runc exec` under conmon). With
   * attach, conmon sets up the session's attach socket and waits: the caller
   * connects, then calls release() so the process starts with its output
   * already being read.
   */
  exec(o: ExecOptions): ExecProcess {
    const args = [
      '--api-version', '1',
      '-c', o.containerId,
      '-u', o.execId.slice(0, 32),
      '-n', o.execId.slice(0, 12),
      '-r', this.runc.binary,
      '-b', o.dir,
      '-p', path.join(o.dir, 'pidfile'),
      '-P', path.join(o.dir, 'conmon.pid'),
      '--socket-dir-path', this.socketDir,
      '-l', 'none',
      '--log-level', 'error',
      '--exec',
      '--exec-process-spec', path.join(o.dir, 'process.json'),
      ...this.runc.globalArgs().flatMap((a) => ['--runtime-arg', a]),
    ];
    if (o.attach) args.push('--exec-attach');
    if (o.terminal) args.push('-t');
    if (o.stdin) args.push('-i');
    const child = spawn(this.conmonBinary, args, {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4', ...(o.attach ? { _OCI_ATTACHPIPE: '5' } : {}) },
      detached: true,
    });
    const session = new ExecProcess(child, o.attach);
    session.pid.then(
      () => {
        const conmonPid = readPidFile(path.join(o.dir, 'conmon.pid'));
        if (conmonPid > 0) void this.leaveOwnCgroups(conmonPid);
      },
      () => {},
    );
    return session;
  }

  attach(bundle: string): AttachConnection {
    return new AttachConnection(this.attachSocketPath(bundle));
  }

  /** Resizes the container's terminal through conmon's control fifo. */
  async resize(bundle: string, height: number, width: number): Promise<void> {
    const fh = await fsp.open(this.ctlPath(bundle), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    try {
      await fh.write(`1 ${height} ${width}\n`);
    } finally {
      await fh.close();
    }
  }

  /** The exit code conmon recorded, if the container has ended (a few bytes: read synchronously). */
  readExit(id: string): number | undefined {
    try {
      const text = fs.readFileSync(this.exitFile(id), 'utf8');
      const code = parseInt(text.trim(), 10);
      return Number.isNaN(code) ? undefined : code;
    } catch {
      return undefined;
    }
  }

  clearExit(id: string): void {
    fs.rmSync(this.exitFile(id), { force: true });
  }
}

const CONMON_STDERR = 3;

function readInto(fd: number, buf: Buffer): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n))));
}

/**
 * A connection to conmon's attach socket. Packets from conmon carry the
 * pipe number in their first byte (conmon's stdpipe_t: 2 stdout, 3 stderr);
 * what we send is the container's stdin.
 */
export class AttachConnection extends EventEmitter {
  private handle: SeqpacketHandle | undefined;
  private ended = false;

  constructor(socketPath: string) {
    super();
    this.handle = native().seqpacketConnect(socketPath, (type, data) => {
      if (type >= 0) {
        // conmon numbers its pipes STDIN 1, STDOUT 2, STDERR 3; we speak Docker's 1 and 2
        const stream = type === CONMON_STDERR ? 2 : 1;
        if (data && data.length) this.emit('data', stream, data);
        return;
      }
      this.finish();
    });
  }

  write(data: Buffer): void {
    if (this.handle && !this.ended) native().seqpacketWrite(this.handle, data);
  }

  /** End of stdin for this client. */
  endInput(): void {
    if (this.handle && !this.ended) native().seqpacketShutdown(this.handle);
  }

  close(): void {
    this.finish();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.handle) native().seqpacketClose(this.handle);
    this.handle = undefined;
    this.emit('end');
  }
}
