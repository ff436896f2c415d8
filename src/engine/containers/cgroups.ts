/**
 * Where a container's cgroups are on the host: the cgroup v1 controllers
 * (each mounted alone, as on this host, or co-mounted like "cpu,cpuacct")
 * and the v2 unified hierarchy, found from /proc/<pid>/cgroup of the
 * container's init and the daemon's mount table. Used by top (the pids in
 * the container) and stats (the counters).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

/** The v2 hierarchy's key in the maps below. */
export const UNIFIED = 'unified';

interface Hierarchy {
  mountpoint: string;
  /** The cgroup path mounted there (usually "/"). */
  root: string;
}

let hierarchies: Map<string, Hierarchy> | undefined;

/** Controller name (or UNIFIED) -> where its hierarchy is mounted, from /proc/self/mountinfo (read once). */
export function cgroupHierarchies(): Map<string, Hierarchy> {
  if (hierarchies) return hierarchies;
  const out = new Map<string, Hierarchy>();
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    // no procfs: no cgroups
  }
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(' ');
    const [fstype, , superOptions = ''] = line.slice(sep + 3).split(' ');
    const h = { root: unescapeMountPath(fields[3]), mountpoint: unescapeMountPath(fields[4]) };
    if (fstype === 'cgroup2') {
      if (!out.has(UNIFIED)) out.set(UNIFIED, h);
    } else if (fstype === 'cgroup') {
      for (const opt of superOptions.split(',')) {
        if (opt === 'rw' || opt === 'ro' || (opt.includes('=') && !opt.startsWith('name='))) continue;
        if (!out.has(opt)) out.set(opt, h);
      }
    }
  }
  hierarchies = out;
  return out;
}

function unescapeMountPath(p: string | undefined): string {
  return (p ?? '').replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Controller -> host directory of the process's cgroup. Only cgroups whose
 * path ends in the container's ID count: a recycled pid yields nothing.
 */
export async function containerCgroupDirs(pid: number, containerId: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let text: string;
  try {
    text = await fsp.readFile(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return out;
  }
  const mounts = cgroupHierarchies();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const cgroupPath = m[2];
    if (!cgroupPath.endsWith(`/${containerId}`)) continue;
    const controllers = m[1] === '' ? [UNIFIED] : m[1].split(',');
    for (const controller of controllers) {
      const h = mounts.get(controller);
      if (!h) continue;
      const rel = path.posix.relative(h.root, cgroupPath);
      if (rel.startsWith('..')) continue;
      out.set(controller, path.join(h.mountpoint, rel));
    }
  }
  return out;
}

/** Every process in a cgroup directory and the cgroups below it. */
export async function cgroupProcesses(dir: string): Promise<number[]> {
  const pids = new Set<number>();
  const walk = async (d: string): Promise<void> => {
    const text = await fsp.readFile(path.join(d, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (line) pids.add(Number(line));
    const entries = await fsp.readdir(d, { withFileTypes: true }).catch(() => [] as fs.Dirent[]);
    for (const e of entries) if (e.isDirectory()) await walk(path.join(d, e.name));
  };
  await walk(dir);
  return [...pids].filter((p) => Number.isInteger(p) && p > 0).sort((a, b) => a - b);
}
