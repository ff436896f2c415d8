/** The runc command line, per daemon root (`runc --root <execRoot>/runc`). */
import { runHelper } from './helper.js';

export interface RuncState {
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  bundle: string;
}

export class RuncError extends Error {}

/** runc prints errors as JSON log lines with --log-format json; keep the message. */
export function runcMessage(stderr: string): string {
  const messages: string[] = [];
  for (const line of stderr.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    try {
      const obj = JSON.parse(t) as { msg?: string; level?: string };
      if (obj.msg && (obj.level === 'error' || obj.level === 'fatal')) messages.push(obj.msg);
    } catch {
      const m = /msg="((?:[^"\\]|\\.)*)"/.exec(t);
      messages.push(m ? m[1].replace(/\\"/g, '"') : t);
    }
  }
  return messages.join('; ') || stderr.trim();
}

export class Runc {
  constructor(
    readonly binary: string,
    readonly root: string,
  ) {}

  /** Global arguments every invocation (and conmon's) passes before the command. */
  globalArgs(): string[] {
    return ['--root', this.root, '--log-format', 'json'];
  }

  private async exec(args: string[]): Promise<string> {
    const r = await runHelper(this.binary, [...this.globalArgs(), ...args]);
    if (r.code !== 0) throw new RuncError(runcMessage(r.stderr || r.stdout) || `runc ${args[0]} failed (exit ${r.code})`);
    return r.stdout;
  }

  start(id: string): Promise<string> {
    return this.exec(['start', id]);
  }

  kill(id: string, signal: string | number, all = false): Promise<string> {
    return this.exec(['kill', ...(all ? ['--all'] : []), id, String(signal)]);
  }

  async delete(id: string, force = false): Promise<void> {
    try {
      await this.exec(['delete', ...(force ? ['--force'] : []), id]);
    } catch (err) {
      if (err instanceof RuncError && /does not exist|not exist/.test(err.message)) return;
      throw err;
    }
  }

  /** New resource limits for a running container (LinuxResources JSON on stdin). */
  async update(id: string, resources: object): Promise<void> {
    const r = await runHelper(this.binary, [...this.globalArgs(), 'update', '--resources', '-', id], { input: JSON.stringify(resources) });
    if (r.code !== 0) throw new RuncError(runcMessage(r.stderr || r.stdout) || `runc update failed (exit ${r.code})`);
  }

  /** Host pids of every process in the container's cgroup. */
  async ps(id: string): Promise<number[]> {
    return (JSON.parse((await this.exec(['ps', '--format', 'json', id])) || '[]') as number[] | null) ?? [];
  }

  pause(id: string): Promise<string> {
    return this.exec(['pause', id]);
  }

  resume(id: string): Promise<string> {
    return this.exec(['resume', id]);
  }

  async state(id: string): Promise<RuncState | undefined> {
    try {
      return JSON.parse(await this.exec(['state', id])) as RuncState;
    } catch (err) {
      if (err instanceof RuncError && /does not exist|not exist/.test(err.message)) return undefined;
      throw err;
    }
  }

  async list(): Promise<RuncState[]> {
    const out = await this.exec(['list', '--format', 'json']);
    return (JSON.parse(out || '[]') as RuncState[] | null) ?? [];
  }
}
