/**
 * 20 x `run -d busybox sleep 1000` in sequence: total time, and the memory
 * of berthd (idle, and with 20 running) and of each container's monitor
 * (conmon). Targets (issue 2): berthd idle <= 60 MB; <= 3 MB per running
 * container (containerd's shim takes about 13 MB each).
 *
 *   node dist/bench/many-containers.js [count=20]
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { TestDaemon } from '../test/helpers/daemon.js';
import { fmt, memoryOf, table, timeCommand } from './util.js';

const count = Number(process.argv[2] ?? 20);

/** RSS once the process is idle: V8's memory reducer returns memory about 10 s after the last work. */
async function settled(pid: number): Promise<{ rssMB: number; pssMB: number }> {
  await new Promise((r) => setTimeout(r, 12_000));
  let last = memoryOf(pid);
  for (let i = 0; i < 15; i++) {
    await new Promise((r) => setTimeout(r, 2000));
    const now = memoryOf(pid);
    if (Math.abs(now.rssMB - last.rssMB) < 0.2) return now;
    last = now;
  }
  return last;
}

async function main(): Promise<void> {
  const d = await TestDaemon.start({ args: ['--log-level', 'warn'] });
  try {
    const idle = await settled(d.pid!);
    const env = d.env();
    const t0 = performance.now();
    for (let i = 0; i < count; i++) await timeCommand('docker', ['run', '-d', 'busybox', 'sleep', '1000'], env);
    const total = performance.now() - t0;
    const loaded = await settled(d.pid!);
    const conmons: { rssMB: number; pssMB: number }[] = [];
    const bundles = path.join(d.execRoot, 'containers');
    for (const id of await fsp.readdir(bundles)) {
      const pid = parseInt(await fsp.readFile(path.join(bundles, id, 'conmon.pid'), 'utf8'), 10);
      conmons.push(memoryOf(pid));
    }
    const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(`${count} x docker run -d busybox sleep 1000, in sequence\n`);
    console.log(
      table([
        ['measure', 'value', 'target'],
        ['total time', fmt(total), ''],
        ['per container', fmt(total / count), ''],
        ['berthd RSS idle', `${idle.rssMB.toFixed(1)} MB`, '<= 60 MB'],
        [`berthd RSS with ${count} running`, `${loaded.rssMB.toFixed(1)} MB`, ''],
        ['conmon RSS (mean)', `${avg(conmons.map((c) => c.rssMB)).toFixed(2)} MB`, ''],
        ['conmon PSS (mean)', `${avg(conmons.map((c) => c.pssMB)).toFixed(2)} MB`, '<= 3 MB per container'],
        ['berthd growth per container', `${((loaded.rssMB - idle.rssMB) / count).toFixed(2)} MB`, ''],
      ]),
    );
    console.log(`\nconmons measured: ${conmons.length}; PSS counts shared library pages once across all monitors, RSS counts them in each.`);
  } finally {
    await d.cleanup();
  }
}

await main();
