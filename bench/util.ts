/** Shared helpers for benchmarks: timing, statistics, memory of processes. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';

export async function timeCommand(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`))));
  });
  return performance.now() - t0;
}

export function stats(samples: number[]): { median: number; p90: number; min: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { median: at(0.5), p90: at(0.9), min: s[0], mean: s.reduce((a, b) => a + b, 0) / s.length };
}

export function fmt(ms: number): string {
  return `${ms.toFixed(1)} ms`;
}

/** Resident and proportional set size of a process, in MB (PSS shares common pages fairly). */
export function memoryOf(pid: number): { rssMB: number; pssMB: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  let pss = rss;
  try {
    pss = Number(/^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? rss);
  } catch {
    // no smaps_rollup: fall back to RSS
  }
  return { rssMB: rss / 1024, pssMB: pss / 1024 };
}

export function table(rows: string[][]): string {
  const widths = rows[0].map((_c, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] + 2)).join('')).join('\n');
}
