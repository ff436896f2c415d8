/**
 * `docker top`: the host's `ps` with the caller's arguments (default -ef),
 * keeping the rows of the container's processes only: those in its cgroup
 * (exec sessions included). PIDs are host PIDs, as in Docker.
 */
import { execFile } from 'node:child_process';
import type { ContainerRecord } from '../../core/containers/types.js';
import { conflict, internal, invalidArgument } from '../../core/errdefs/index.js';
import { UNIFIED, cgroupProcesses, containerCgroupDirs } from './cgroups.js';

export interface TopResult {
  Titles: string[];
  Processes: string[][];
}

export interface TopContainers {
  resolve(input: string): ContainerRecord;
}

/** Controllers whose cgroup lists the container's processes, in order of preference. */
const PROCESS_CONTROLLERS = ['pids', 'memory', 'cpu', 'cpuacct', 'freezer', 'devices', UNIFIED];
const MAX_PS_OUTPUT = 16 << 20;

/** Docker refuses ps_args that rename the PID column (it could not find the rows then). */
export function validatePsArgs(psArgs: string): void {
  for (const m of psArgs.matchAll(/\s+([^\s]*)=\s*(PID[^\s]*)/g)) {
    if (m[1] !== 'pid') throw invalidArgument(`specifying "${m[1]}=${m[2]}" is not allowed`);
  }
}

/** Splits on ASCII whitespace only, as Docker's fieldsASCII does. */
function fieldsAscii(line: string): string[] {
  return line.split(/[ \t\n\v\f\r]+/).filter(Boolean);
}

/** Keeps the rows whose PID is one of pids (and thread rows, "-", that follow them). */
export function parsePsOutput(output: string, pids: Set<number>): TopResult {
  const lines = output.split('\n');
  const titles = fieldsAscii(lines[0] ?? '');
  const pidIndex = titles.indexOf('PID');
  if (pidIndex < 0) throw invalidArgument(`Couldn't find PID field in ps output`);
  const processes: string[][] = [];
  let previousKept = false;
  for (const line of lines.slice(1)) {
    if (!line) continue;
    const fields = fieldsAscii(line);
    const append = (): void => {
      // the last column (the command) may contain spaces
      const row = fields.slice(0, titles.length - 1);
      row.push(fields.slice(titles.length - 1).join(' '));
      processes.push(row);
    };
    if (fields[pidIndex] === '-') {
      if (previousKept) append();
      continue;
    }
    const pid = Number(fields[pidIndex]);
    if (!Number.isInteger(pid)) throw internal(`Unexpected pid '${fields[pidIndex]}'`);
    previousKept = pids.has(pid);
    if (previousKept) append();
  }
  return { Titles: titles, Processes: processes };
}

function ps(args: string[]): Promise<{ ok: true; stdout: string } | { ok: false; stderr: string }> {
  return new Promise((resolve) => {
    execFile('ps', args, { maxBuffer: MAX_PS_OUTPUT, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      resolve(err ? { ok: false, stderr: String(stderr) || err.message } : { ok: true, stdout: String(stdout) });
    });
  });
}

export class ContainerTop {
  constructor(private readonly containers: TopContainers) {}

  async top(input: string, psArgs = ''): Promise<TopResult> {
    const args = psArgs.trim() || '-ef';
    validatePsArgs(` ${args}`);
    const c = this.containers.resolve(input);
    if (!c.state.Running) throw conflict(`Container ${c.id} is not running`);
    if (c.state.Restarting) throw conflict(`Container ${c.id} is restarting, wait until the container is running`);
    const pids = await this.processes(c);
    const argv = fieldsAscii(args);
    // -q: only the container's pids (quick); some options (f) refuse it, so then all of them
    let r = pids.length ? await ps([...argv, `-q${pids.join(',')}`]) : await ps(argv);
    if (!r.ok) r = await ps(argv);
    if (!r.ok) throw invalidArgument(`ps: ${r.stderr.split('\n')[0]}`);
    return parsePsOutput(r.stdout, new Set(pids));
  }

  /** Host pids of the container's processes, from its cgroup. */
  private async processes(c: ContainerRecord): Promise<number[]> {
    const dirs = await containerCgroupDirs(c.state.Pid, c.id);
    for (const controller of PROCESS_CONTROLLERS) {
      const dir = dirs.get(controller);
      if (dir) return cgroupProcesses(dir);
    }
    throw conflict(`Container ${c.id} is not running`);
  }
}
