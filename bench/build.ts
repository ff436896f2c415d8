/**
 * A 6-step Dockerfile (FROM busybox, COPY a 50 MB tree, RUN, ENV, WORKDIR,
 * CMD) built by the same docker CLI (classic builder) against berthd and
 * against Docker 20.10 (Debian docker.io, a dockerd of our own, overlay2),
 * side by side: a cold build (no cache for any step) and a fully cached
 * rebuild. Medians of N runs, the order alternating between runs.
 * Targets (issue 8): cold <= 1.0x Docker, cached rebuild <= 0.5x Docker.
 *
 *   node dist/bench/build.js [runs=5]
 */
import crypto from 'node:crypto';
import http from 'node:http';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { TestDaemon, busyboxRootfsTar, exec } from '../test/helpers/daemon.js';
import { TestDockerd } from '../test/helpers/dockerd.js';
import { fmt, stats, table } from './util.js';

const runs = Number(process.argv[2] ?? 5);
const FILES = 500;
const FILE_SIZE = 100 * 1024; // 500 x 100 KiB = 50 MB

async function makeContext(dir: string): Promise<void> {
  for (let i = 0; i < FILES; i++) {
    const sub = path.join(dir, 'tree', `d${i % 10}`, `e${i % 7}`);
    await fsp.mkdir(sub, { recursive: true });
    await fsp.writeFile(path.join(sub, `f${i}.bin`), crypto.randomBytes(FILE_SIZE));
  }
  await fsp.writeFile(
    path.join(dir, 'Dockerfile'),
    ['FROM busybox', 'COPY tree /tree', 'RUN du -s /tree > /tree-size', 'ENV TREE=/tree', 'WORKDIR /tree', 'CMD ["cat", "/tree-size"]', ''].join('\n'),
  );
}

/**
 * The floor for any daemon: the docker CLI packing and sending the context
 * to a server that only counts the bytes and answers with an image ID.
 */
async function uploadFloor(dir: string, runs: number): Promise<number> {
  const socket = path.join(dir, '..', `${path.basename(dir)}-sink.sock`);
  const server = http.createServer((req, res) => {
    if (req.url?.includes('/_ping')) {
      res.writeHead(200, { 'Api-Version': '1.41' });
      res.end('OK');
      return;
    }
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(`${JSON.stringify({ aux: { ID: `sha256:${'0'.repeat(64)}` } })}\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  try {
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const r = await exec('docker', ['build', '-q', dir], { env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_BUILDKIT: '0' } });
      if (r.code !== 0) throw new Error(`upload floor: ${r.stderr}`);
      samples.push(performance.now() - t0);
    }
    return stats(samples).median;
  } finally {
    server.close();
    await fsp.rm(socket, { force: true });
  }
}

async function main(): Promise<void> {
  process.env.DOCKER_BUILDKIT = '0';
  const dir = await fsp.mkdtemp('/tmp/bench-build-');
  const d = await TestDaemon.start({ args: ['--log-level', 'warn'] });
  const docker = await TestDockerd.start();
  try {
    await makeContext(dir);
    const tarFile = path.join(dir, '..', `${path.basename(dir)}-busybox.tar`);
    await fsp.writeFile(tarFile, await busyboxRootfsTar());
    const imported = await docker.docker(['import', '-c', 'CMD ["sh"]', tarFile, 'busybox:latest']);
    await fsp.rm(tarFile, { force: true });
    if (imported.code !== 0) throw new Error(`import on dockerd: ${imported.stderr}`);

    const env = { ...d.env(), DOCKER_BUILDKIT: '0' };
    const sides = {
      berthd: async (args: string[]) => {
        const t0 = performance.now();
        const r = await exec('docker', ['build', '--network', 'none', ...args, dir], { env });
        if (r.code !== 0) throw new Error(`build on berthd: ${r.stderr}`);
        return { ms: performance.now() - t0, out: r.stdout };
      },
      docker: async (args: string[]) => {
        const t0 = performance.now();
        const r = await docker.docker(['build', '--network', 'none', ...args, dir]);
        if (r.code !== 0) throw new Error(`build on dockerd: ${r.stderr}`);
        return { ms: performance.now() - t0, out: r.stdout };
      },
    };
    const samples: Record<string, number[]> = { 'berthd cold': [], 'docker cold': [], 'berthd cached': [], 'docker cached': [] };
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? (['berthd', 'docker'] as const) : (['docker', 'berthd'] as const);
      for (const side of order) {
        const cold = await sides[side](['--no-cache', '-t', 'bench:cold']);
        samples[`${side} cold`].push(cold.ms);
        const cached = await sides[side](['-t', 'bench:cold']);
        if (cached.out.split('\n').filter((l) => l.includes('Using cache')).length < 5) throw new Error(`${side}: the rebuild was not fully cached:\n${cached.out}`);
        samples[`${side} cached`].push(cached.ms);
      }
      console.log(`run ${i + 1}/${runs}: ${Object.entries(samples).map(([k, v]) => `${k} ${fmt(v[v.length - 1])}`).join(', ')}`);
    }
    const floor = await uploadFloor(dir, runs);
    const med = (k: string): number => stats(samples[k]).median;
    const rows = [
      ['build', 'berthd', 'Docker 20.10', 'ratio', 'target'],
      ['cold (--no-cache)', fmt(med('berthd cold')), fmt(med('docker cold')), (med('berthd cold') / med('docker cold')).toFixed(2), '<= 1.0'],
      ['cached rebuild', fmt(med('berthd cached')), fmt(med('docker cached')), (med('berthd cached') / med('docker cached')).toFixed(2), '<= 0.5'],
      ['floor: CLI packs and sends the context', fmt(floor), '', (floor / med('docker cached')).toFixed(2), ''],
    ];
    console.log(`\n6-step Dockerfile, COPY of ${FILES} files (${((FILES * FILE_SIZE) / 1e6).toFixed(0)} MB), docker CLI classic builder, medians of ${runs}\n`);
    console.log(table(rows));
  } finally {
    await docker.stop();
    await d.cleanup();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
