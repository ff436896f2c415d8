/**
 * `docker exec C true`, median of N runs, through the same docker CLI
 * against berthd and against Docker (Debian docker.io, overlay2) side by
 * side, plus `berth exec`, one run of each in turn. Target (issue 3): berthd
 * <= 0.5x Docker.
 *
 *   node dist/bench/exec-latency.js [runs=20]
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { TestDaemon, BERTH, busyboxRootfsTar } from '../test/helpers/daemon.js';
import { startDockerd } from '../test/registry/helpers/dockerd.js';
import { fmt, stats, table, timeCommand } from './util.js';

const runs = Number(process.argv[2] ?? 20);

/**
 * Medians of n runs of each path, taken in turns (one of each per round) so
 * that a load change on this shared machine weighs on every path alike.
 */
async function interleaved(n: number, paths: (() => Promise<number>)[]): Promise<{ median: number; p90: number }[]> {
  for (let i = 0; i < 3; i++) for (const fn of paths) await fn(); // warm up
  const samples: number[][] = paths.map(() => []);
  for (let i = 0; i < n; i++) for (const [k, fn] of paths.entries()) samples[k].push(await fn());
  return samples.map((s) => stats(s));
}

async function main(): Promise<void> {
  const d = await TestDaemon.start({ args: ['--log-level', 'warn'] });
  const docker = await startDockerd({ storageDriver: 'overlay2' });
  try {
    const tarFile = path.join(docker.dir, 'busybox.tar');
    await fsp.writeFile(tarFile, await busyboxRootfsTar());
    const imported = docker.docker(['import', '-c', 'CMD ["sh"]', tarFile, 'busybox:latest']);
    if (imported.status !== 0) throw new Error(`docker import on dockerd: ${imported.stderr}`);
    const dockerEnv = { ...process.env, ...docker.env };
    // docker run on a daemon without a bridge: --network none on both sides
    const ref = docker.docker(['run', '-d', '--network', 'none', 'busybox', 'sleep', '1000']);
    if (ref.status !== 0) throw new Error(`docker run on dockerd: ${ref.stderr}`);
    const ours = await d.docker(['run', '-d', '--network', 'none', 'busybox', 'sleep', '1000']);
    if (ours.code !== 0) throw new Error(`docker run on berthd: ${ours.stderr}`);
    const refId = ref.stdout.trim();
    const ourId = ours.stdout.trim();

    const env = d.env();
    const rows = [['path', 'median', 'p90', 'x Docker']];
    const [dockerExec, berthdExec, berthExec] = await interleaved(runs, [
      () => timeCommand('docker', ['exec', refId, 'true'], dockerEnv),
      () => timeCommand('docker', ['exec', ourId, 'true'], env),
      () => timeCommand(BERTH, ['exec', ourId, 'true'], env),
    ]);
    rows.push(['docker CLI -> dockerd (reference)', fmt(dockerExec.median), fmt(dockerExec.p90), '1.00']);
    rows.push(['docker CLI -> berthd', fmt(berthdExec.median), fmt(berthdExec.p90), (berthdExec.median / dockerExec.median).toFixed(2)]);
    rows.push(['berth -> berthd', fmt(berthExec.median), fmt(berthExec.p90), (berthExec.median / dockerExec.median).toFixed(2)]);
    console.log(`exec C true, ${runs} runs each, taken in turns (after 3 warm-up rounds)\n`);
    console.log(table(rows));
    const ratio = berthdExec.median / dockerExec.median;
    console.log(`\ntarget berthd <= 0.5x Docker: ${ratio <= 0.5 ? 'met' : 'MISSED'} (${ratio.toFixed(2)}x)`);
    docker.docker(['rm', '-f', refId], { allowFail: true });
  } finally {
    await docker.stop();
    await d.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
