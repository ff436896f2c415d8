/**
 * ExecService: `docker exec` sessions. A session is created (POST
 * /containers/{id}/exec), then started once, attached or detached. Sessions
 * live in memory, as in Docker, and go with their container.
 *
 * Two paths run them. Attached sessions without a tty (docker exec C cmd,
 * exec -i, healthchecks) go through berth-nsexec (runtime/nsexec.ts), which
 * enters the container as `runc exec` does at a fraction of its cost. Tty
 * and detached sessions go through conmon + `runc exec`: conmon holds the
 * terminal, and a detached process keeps its monitor across daemon restarts.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { ContainerRecord } from '../../core/containers/types.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from '../../core/containers/detach-keys.js';
import { conflict, errorMessage, invalidArgument, notFound } from '../../core/errdefs/index.js';
import type { EventBus } from '../../core/events/bus.js';
import type { Logger } from '../../util/log.js';
import { shortId } from '../../util/ids.js';
import { AttachHub, type AttachClient } from './attach.js';
import { CreateError, type ConmonRuntime } from '../runtime/conmon.js';
import { NsexecStartError, NsexecUnsupported, type NsexecProcessSpec, type NsexecRuntime } from '../runtime/nsexec.js';
import { DEFAULT_PATH, availableCapabilities, capabilitySet, ociRlimits } from '../runtime/spec.js';
import { resolveUserSync } from '../runtime/user.js';
import { pidBelongsTo } from './container-service.js';

export interface ExecConfig {
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  DetachKeys?: string;
  Tty?: boolean;
  ConsoleSize?: [number, number] | null;
  Env?: string[] | null;
  Cmd?: string[];
  Privileged?: boolean;
  User?: string;
  WorkingDir?: string;
}

interface ExecSession {
  id: string;
  containerId: string;
  config: ExecConfig;
  started: boolean;
  running: boolean;
  exitCode: number | null;
  pid: number;
  dir: string;
}

/** What exec needs to know about containers. */
export interface ExecContainers {
  resolve(input: string): ContainerRecord;
  get(id: string): ContainerRecord | undefined;
  rootfsPath(id: string): string;
  /** The OCI bundle runc runs the container from (config.json). */
  bundle(id: string): string;
  eventAttributes(c: ContainerRecord, extra?: Record<string, string>): Record<string, string>;
}

export interface CapturedRun {
  exitCode: number;
  output: string;
  timedOut: boolean;
}

const MAX_SESSIONS_PER_CONTAINER = 256;

/** The exec session's OCI process (process.json for runc exec). */
interface ExecProcessSpec extends NsexecProcessSpec {
  terminal: boolean;
  consoleSize?: { height: number; width: number };
  /**
   * The container's, as Docker's exec spec copies them: runc 1.1 exec loses
   * the container's own NOFILE limit otherwise (its Go runtime restores the
   * limit it started with). The helper applies the container's directly.
   */
  rlimits?: { type: string; soft: number; hard: number }[];
}

/** A started process, whichever path runs it. */
interface StartedExec {
  pid: Promise<number>;
  exit: Promise<number>;
  /** Resolves when all output reached the client. */
  outputDone: Promise<void>;
  /** Gives up on output still pending (a background process holds the pipes). */
  closeStreams(): void;
}

/**
 * After the exit, how long output may still arrive: Docker waits 2 s for the
 * streams of an exec (a background process may hold them), then closes them.
 */
const STREAM_GRACE_MS = 2000;

/** Docker's text for an exec that could not start (clients match it). */
function startFailure(err: unknown): Error {
  if (err instanceof CreateError || err instanceof NsexecStartError) return new Error(`OCI runtime exec failed: ${err.message}: unknown`);
  return err instanceof Error ? err : new Error(String(err));
}

export class ExecService {
  private readonly sessions = new Map<string, ExecSession>();

  constructor(
    private readonly containers: ExecContainers,
    private readonly runtime: ConmonRuntime,
    /** The exec helper; undefined runs every session through runc exec. */
    private readonly nsexec: NsexecRuntime | undefined,
    private readonly execRoot: string,
    private readonly events: EventBus,
    private readonly log: Logger,
  ) {}

  async init(): Promise<void> {
    // sessions do not survive the daemon: their directories are leftovers
    await fsp.rm(path.join(this.execRoot, 'exec'), { recursive: true, force: true });
    await fsp.mkdir(path.join(this.execRoot, 'exec'), { recursive: true, mode: 0o700 });
    const why = this.nsexec?.unavailable();
    if (why) this.log.warn('exec helper unavailable: exec sessions run through runc exec', { error: why });
  }

  private runningContainer(input: string): ContainerRecord {
    const c = this.containers.resolve(input);
    if (c.state.Paused) throw conflict(`Container ${c.id} is paused, unpause the container before exec`);
    if (!c.state.Running || c.state.Restarting) throw conflict(`Container ${c.id} is not running`);
    return c;
  }

  create(containerInput: string, config: ExecConfig): { Id: string } {
    const c = this.runningContainer(containerInput);
    if (!config.Cmd || config.Cmd.length === 0) throw invalidArgument('No exec command specified');
    if (config.DetachKeys) parseDetachKeys(config.DetachKeys);
    const mine = [...this.sessions.values()].filter((s) => s.containerId === c.id);
    if (mine.length >= MAX_SESSIONS_PER_CONTAINER) {
      // finished sessions make room, oldest first
      for (const s of mine.filter((x) => !x.running && x.started).slice(0, mine.length - MAX_SESSIONS_PER_CONTAINER + 1)) this.sessions.delete(s.id);
    }
    const id = crypto.randomBytes(32).toString('hex');
    this.sessions.set(id, {
      id,
      containerId: c.id,
      config,
      started: false,
      running: false,
      exitCode: null,
      pid: 0,
      dir: path.join(this.execRoot, 'exec', id),
    });
    this.events.publish('container', `exec_create: ${config.Cmd.join(' ')}`, c.id, this.containers.eventAttributes(c, { execID: id }));
    return { Id: id };
  }

  private session(id: string): ExecSession {
    const s = this.sessions.get(id);
    if (!s) throw notFound(`No such exec instance: ${id}`);
    return s;
  }

  /** IDs of a container's sessions, for inspect's ExecIDs. */
  idsFor(containerId: string): string[] {
    return [...this.sessions.values()].filter((s) => s.containerId === containerId).map((s) => s.id);
  }

  forgetContainer(containerId: string): void {
    for (const s of this.sessions.values()) if (s.containerId === containerId) this.sessions.delete(s.id);
    this.nsexec?.forget(containerId);
  }

  inspect(id: string): Record<string, unknown> {
    const s = this.session(id);
    return {
      ID: s.id,
      Running: s.running,
      ExitCode: s.exitCode,
      ProcessConfig: {
        tty: s.config.Tty ?? false,
        entrypoint: s.config.Cmd?.[0] ?? '',
        arguments: s.config.Cmd?.slice(1) ?? [],
        privileged: s.config.Privileged ?? false,
        user: s.config.User ?? '',
      },
      OpenStdin: s.config.AttachStdin ?? false,
      OpenStderr: s.config.AttachStderr ?? false,
      OpenStdout: s.config.AttachStdout ?? false,
      CanRemove: false,
      ContainerID: s.containerId,
      DetachKeys: s.config.DetachKeys ?? '',
      Pid: s.pid,
    };
  }

  async resize(id: string, height: number, width: number): Promise<void> {
    const s = this.session(id);
    if (!s.running) throw conflict(`Exec ${id} is not running`);
    if (!s.config.Tty) return;
    await this.runtime.resize(s.dir, height, width);
  }

  /** The OCI process for the session: the container's environment and user, adjusted. */
  private processSpec(c: ContainerRecord, config: ExecConfig): ExecProcessSpec {
    const rootfs = this.containers.rootfsPath(c.id);
    const user = resolveUserSync(rootfs, config.User ?? c.config.User, c.hostConfig.GroupAdd ?? []);
    const env = [...(c.config.Env ?? [])];
    for (const e of config.Env ?? []) {
      const k = e.split('=')[0];
      const i = env.findIndex((x) => x.split('=')[0] === k);
      if (i >= 0) env[i] = e;
      else env.push(e);
    }
    const has = (k: string): boolean => env.some((e) => e.startsWith(`${k}=`));
    if (!has('PATH')) env.unshift(`PATH=${DEFAULT_PATH}`);
    if (!has('HOSTNAME')) env.push(`HOSTNAME=${c.config.Hostname}`);
    if (config.Tty && !has('TERM')) env.push('TERM=xterm');
    if (!has('HOME')) env.push(`HOME=${user.home || '/'}`);
    const caps = config.Privileged ? availableCapabilities() : capabilitySet(c.hostConfig.Privileged, c.hostConfig.CapAdd ?? [], c.hostConfig.CapDrop ?? []);
    const spec: ExecProcessSpec = {
      terminal: config.Tty ?? false,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: user.additionalGids } : {}) },
      args: config.Cmd ?? [],
      env,
      cwd: config.WorkingDir || c.config.WorkingDir || '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      // the container's own setting, read as the container's spec reads it
      noNewPrivileges: (c.hostConfig.SecurityOpt ?? []).some((o) => /^no-new-privileges(?:[:=]true)?$/.test(o)),
    };
    const size = config.ConsoleSize;
    if (config.Tty && size && size[0] > 0) spec.consoleSize = { height: size[0], width: size[1] };
    if (c.hostConfig.Ulimits?.length) spec.rlimits = ociRlimits(c.hostConfig.Ulimits);
    return spec;
  }

  /** Whether an attached session takes the helper path (no tty, helper usable). */
  private fastPath(config: ExecConfig): boolean {
    return !config.Tty && this.nsexec !== undefined && this.nsexec.unavailable() === null;
  }

  /**
   * The helper path: berth-nsexec enters the container runc made. Throws
   * NsexecUnsupported (before starting anything) when the container needs
   * what only runc does; the caller then takes the conmon path.
   */
  private async startFast(c: ContainerRecord, s: ExecSession, client: AttachClient, spec: ExecProcessSpec): Promise<StartedExec> {
    const nsexec = this.nsexec!;
    // The init must still be the container's; the helper checks again with a pidfd.
    if (!pidBelongsTo(c.state.Pid, c.id)) throw conflict(`Container ${c.id} is not running`);
    const context = await nsexec.context(c.id, c.state.Pid, this.containers.bundle(c.id));
    // a stdin pipe only when the client can feed it and end it
    const stdin = (s.config.AttachStdin ?? false) && client.stdin && client.input !== undefined;
    const proc = nsexec.run({ containerId: c.id, context, process: spec, stdin });
    const outputDone = new Promise<void>((resolve) => AttachHub.connect(client, proc, resolve));
    return { pid: proc.pid, exit: proc.exit, outputDone, closeStreams: () => proc.closeStreams() };
  }

  /** The conmon path: conmon runs `runc exec` with the session's process.json. */
  private async startConmon(c: ContainerRecord, s: ExecSession, client: AttachClient | undefined, spec: ExecProcessSpec): Promise<StartedExec> {
    await fsp.mkdir(s.dir, { recursive: true, mode: 0o700 });
    await fsp.writeFile(path.join(s.dir, 'process.json'), JSON.stringify(spec));
    const attach = client !== undefined;
    const proc = this.runtime.exec({
      containerId: c.id,
      execId: s.id,
      dir: s.dir,
      terminal: s.config.Tty ?? false,
      stdin: (s.config.AttachStdin ?? false) && attach,
      attach,
    });
    let outputDone: Promise<void> = Promise.resolve();
    if (client) {
      await proc.ready;
      const conn = this.runtime.attach(s.dir);
      outputDone = new Promise((resolve) => AttachHub.connect(client, conn, resolve));
      proc.release();
    }
    // conmon closes the session's streams itself when the process ends
    return { pid: proc.pid, exit: proc.exit, outputDone, closeStreams: () => {} };
  }

  /**
   * Starts a session. Without a client it runs detached; with one, output
   * streams to it and the stream closes once the exit code is recorded
   * (clients read ExitCode right after the stream ends).
   */
  async start(id: string, client?: AttachClient, consoleSize?: [number, number]): Promise<void> {
    const s = this.session(id);
    if (s.started) throw conflict(`Exec command ${id} is already running`);
    const c = this.runningContainer(s.containerId);
    s.started = true;
    if (consoleSize) s.config.ConsoleSize = consoleSize;
    const t0 = performance.now();
    const marks: Record<string, number> = {};
    const mark = (name: string): void => {
      marks[name] = Math.round((performance.now() - t0) * 10) / 10;
    };
    let route: 'nsexec' | 'conmon' = 'conmon';
    try {
      const spec = this.processSpec(c, s.config);
      mark('spec');
      let started: StartedExec | undefined;
      if (client && this.fastPath(s.config)) {
        try {
          started = await this.startFast(c, s, client, spec);
          route = 'nsexec';
        } catch (err) {
          if (!(err instanceof NsexecUnsupported)) throw err;
          this.log.info('exec helper cannot enter this container; using runc exec', { id: shortId(c.id), reason: err.message });
        }
      }
      started ??= await this.startConmon(c, s, client, spec);
      mark('spawned');
      s.pid = await started.pid;
      mark('pid');
      s.running = true;
      this.events.publish('container', `exec_start: ${s.config.Cmd!.join(' ')}`, c.id, this.containers.eventAttributes(c, { execID: s.id }));
      const finished = started.exit.then(
        (code) => code,
        (err) => {
          this.log.warn('exec session ended without a status', { exec: shortId(s.id), error: errorMessage(err) });
          return 126;
        },
      );
      const done = started;
      void finished.then(async (code) => {
        mark('exit');
        s.exitCode = code;
        s.running = false;
        this.events.publish('container', 'exec_die', c.id, this.containers.eventAttributes(c, { execID: s.id, exitCode: String(code) }));
        let grace: NodeJS.Timeout | undefined;
        await Promise.race([done.outputDone, new Promise<void>((resolve) => (grace = setTimeout(resolve, STREAM_GRACE_MS)))]);
        clearTimeout(grace);
        done.closeStreams();
        mark('output-done');
        this.log.debug('exec session ended', { exec: shortId(s.id), path: route, ms: marks });
        client?.close();
        if (route === 'conmon') await fsp.rm(s.dir, { recursive: true, force: true }).catch(() => {});
      });
    } catch (err) {
      // the caller reports the error (into the stream, when it is attached) and closes it
      s.running = false;
      s.exitCode = /not found|no such file/i.test(errorMessage(err)) ? 127 : 126;
      if (route === 'conmon') await fsp.rm(s.dir, { recursive: true, force: true }).catch(() => {});
      throw startFailure(err);
    }
  }

  /** The default detach keys for an exec stream, or the session's own. */
  detachKeys(id: string, override?: string): number[] {
    const s = this.session(id);
    return parseDetachKeys(override || s.config.DetachKeys || DEFAULT_DETACH_KEYS);
  }

  /**
   * Runs a command to completion and returns its exit code and output
   * (healthchecks). Output is capped; a timeout kills the process.
   */
  async runCaptured(containerId: string, cmd: string[], timeoutMs: number, maxOutput = 4096): Promise<CapturedRun> {
    const { Id } = this.create(containerId, { Cmd: cmd, AttachStdout: true, AttachStderr: true });
    const chunks: Buffer[] = [];
    let size = 0;
    let closed!: () => void;
    const done = new Promise<void>((resolve) => (closed = resolve));
    const client: AttachClient = {
      stdin: false,
      stdout: true,
      stderr: true,
      output: (_stream, data) => {
        if (size < maxOutput) chunks.push(data.subarray(0, maxOutput - size));
        size += data.length;
      },
      close: () => closed(),
      onGone: () => {},
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      const s = this.sessions.get(Id);
      const c = this.containers.get(containerId);
      // the session's process, if it is still one of this container's
      if (s && s.pid > 0 && c && fs.existsSync(`/proc/${s.pid}/cgroup`) && fs.readFileSync(`/proc/${s.pid}/cgroup`, 'utf8').includes(c.id)) {
        try {
          process.kill(s.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      closed();
    }, timeoutMs);
    try {
      await this.start(Id, client);
      await done;
    } finally {
      clearTimeout(timer);
    }
    const s = this.sessions.get(Id);
    this.sessions.delete(Id);
    return { exitCode: timedOut ? -1 : (s?.exitCode ?? -1), output: Buffer.concat(chunks).toString('utf8'), timedOut };
  }
}
