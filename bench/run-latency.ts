/**
 * `run --rm busybox true`, median of N runs: through the real docker CLI
 * against berthd, through `berth`, and the floor: bare `runc run` of a
 * prepared bundle (runc's default spec, and Berth's own spec with Docker's
 * seccomp profile). Prints figures and ratios. Targets (issue 2):
 * docker CLI -> berthd <= 100 ms and <= 3x the floor; berth <= 150 ms.
 *
 *   node dist/bench/run-latency.js [runs=20]
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { TestDaemon, BERTH, busyboxRootfsTar } from '../test/helpers/daemon.js';
import { fmt, stats, table, timeCommand } from './util.js';

const runs = Number(process.argv[2] ?? 20);

interface Path {
  label: string;
  run: (i: number) => Promise<number>;
}

/**
 * Runs the paths round-robin (one sample of each per round), so that the
 * machine's slow and fast moments fall on all of them alike: the ratios are
 * what this bench is about, and this VM's speed drifts by tens of percent
 * within minutes. Each sample starts after a pause, so that what berthd
 * does in the background after a run (network teardown, runc delete) does
 * not land on the next sample, the floor's included.
 */
async function measureInterleaved(paths: Path[], n: number): Promise<{ label: string; median: number; p90: number }[]> {
  for (let i = 0; i < 3; i++) for (const p of paths) await p.run(-1 - i); // warm up
  const samples = paths.map(() => [] as number[]);
  for (let i = 0; i < n; i++) {
    for (const [k, p] of paths.entries()) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      samples[k].push(await p.run(i));
    }
  }
  return paths.map((p, k) => {
    const s = stats(samples[k]);
    return { label: p.label, median: s.median, p90: s.p90 };
  });
}

async function main(): Promise<void> {
  const d = await TestDaemon.start({ args: ['--log-level', 'warn'] });
  const bundleDir = await fsp.mkdtemp('/tmp/bench-bundle-');
  try {
    // the floor: a prepared bundle with the same busybox rootfs
    const rootfs = path.join(bundleDir, 'rootfs');
    await fsp.mkdir(rootfs);
    execFileSync('tar', ['-x', '-C', rootfs], { input: await busyboxRootfsTar() });
    execFileSync('runc', ['spec', '--bundle', bundleDir]);
    const spec = JSON.parse(await fsp.readFile(path.join(bundleDir, 'config.json'), 'utf8'));
    spec.process.terminal = false;
    spec.process.args = ['true'];
    await fsp.writeFile(path.join(bundleDir, 'config.json'), JSON.stringify(spec));
    const runcRoot = path.join(bundleDir, 'runc-root');

    // Berth's own spec, for reference: the same security settings as a berthd container
    const probe = (await d.docker(['run', '-d', 'busybox', 'sleep', '60'])).stdout.trim();
    const berthSpec = JSON.parse(await fsp.readFile(path.join(d.execRoot, 'containers', probe, 'config.json'), 'utf8'));
    await d.docker(['rm', '-f', probe]);
    berthSpec.root.path = rootfs;
    berthSpec.mounts = berthSpec.mounts.filter((m: { destination: string }) => !m.destination.startsWith('/etc/'));
    berthSpec.process.args = ['true'];
    // a network namespace of its own, not the probe's (gone with it)
    for (const ns of berthSpec.linux.namespaces as { type: string; path?: string }[]) delete ns.path;
    berthSpec.linux.cgroupsPath = `${d.cgroupParent}/bench-floor`;
    const bundle2 = path.join(bundleDir, 'berth-spec');
    await fsp.mkdir(bundle2);
    await fsp.symlink(rootfs, path.join(bundle2, 'rootfs'));
    await fsp.writeFile(path.join(bundle2, 'config.json'), JSON.stringify(berthSpec));

    const env = d.env();
    const results = await measureInterleaved(
      [
        { label: 'docker CLI -> berthd', run: () => timeCommand('docker', ['run', '--rm', 'busybox', 'true'], env) },
        { label: 'berth -> berthd', run: () => timeCommand(BERTH, ['run', '--rm', 'busybox', 'true'], env) },
        { label: 'runc run (runc spec: floor)', run: (i) => timeCommand('runc', ['--root', runcRoot, 'run', '--bundle', bundleDir, `floor${i + 10}`]) },
        { label: "runc run (Berth's spec)", run: (i) => timeCommand('runc', ['--root', runcRoot, 'run', '--bundle', bundle2, `floor2${i + 10}`]) },
      ],
      runs,
    );
    const floor = results[2].median;
    const rows = [['path', 'median', 'p90', 'x floor', 'target']];
    const targets: Record<string, string> = {
      'docker CLI -> berthd': '<= 100 ms, <= 3x floor',
      'berth -> berthd': '<= 150 ms',
    };
    for (const r of results) rows.push([r.label, fmt(r.median), fmt(r.p90), (r.median / floor).toFixed(2), targets[r.label] ?? '']);
    console.log(`run --rm busybox true, ${runs} runs each, interleaved (after 3 warm-up rounds)\n`);
    console.log(table(rows));
    const dockerOk = results[0].median <= 100 && results[0].median <= 3 * floor;
    const berthOk = results[1].median <= 150;
    console.log(`\ndocker CLI target ${dockerOk ? 'met' : 'MISSED'}; berth target ${berthOk ? 'met' : 'MISSED'}`);
  } finally {
    await d.cleanup();
    await fsp.rm(bundleDir, { recursive: true, force: true });
    for (const h of fs.readdirSync('/sys/fs/cgroup')) fs.rmSync(`/sys/fs/cgroup/${h}/${d.cgroupParent}`, { recursive: false, force: true });
  }
}

await main();
