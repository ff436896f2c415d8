/**
 * Registry benchmark: push and pull throughput for 1 MB and 100 MB blobs with
 * 1 and 16 concurrent clients, manifest GETs per second, and RSS while
 * serving 16 concurrent 100 MB pulls, for the Berth registry and for CNCF
 * distribution 2.8 (Debian docker-registry) started side by side in the same
 * run. Prints each figure with the Berth / distribution ratio. Not a test: it
 * asserts nothing; it measures.
 *
 *   node dist/bench/registry/throughput.js [--quick] [--only=1|100]
 *
 * Each scenario runs 3 rounds (1 with --quick) alternating which server goes
 * first, with `sync` before every run; the table shows the median round.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { Readable } from 'node:stream';
import { type ServerProcess, removeDir, startBerth, startDistribution } from '../../test/registry/helpers/procs.js';

const MB = 1 << 20;
const quick = process.argv.includes('--quick');

interface BlobSpec {
  digest: string;
  size: number;
  prefix: Buffer;
}

/** Distinct blobs without holding them: a unique 64-byte prefix, then a shared random 1 MB block repeated. */
const BLOCK = crypto.randomBytes(MB);

function makeBlobSpec(size: number): BlobSpec {
  const prefix = crypto.randomBytes(64);
  const hash = crypto.createHash('sha256').update(prefix);
  let left = size - prefix.length;
  while (left > 0) {
    const n = Math.min(left, BLOCK.length);
    hash.update(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n));
    left -= n;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size, prefix };
}

function blobStream(spec: BlobSpec): Readable {
  let left = spec.size - spec.prefix.length;
  let first = true;
  return new Readable({
    read() {
      if (first) {
        first = false;
        this.push(spec.prefix);
        return;
      }
      if (left <= 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, BLOCK.length);
      left -= n;
      this.push(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n));
    },
  });
}

interface Result {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes: number;
}

function call(agent: http.Agent, url: string, method: string, headers: Record<string, string | number>, body?: Readable): Promise<Result> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body === undefined) req.end();
    else body.pipe(req);
  });
}

/** The docker push shape: POST, one PATCH with the whole body, PUT ?digest=. */
async function pushBlob(agent: http.Agent, base: string, repo: string, spec: BlobSpec): Promise<void> {
  const post = await call(agent, `${base}/v2/${repo}/blobs/uploads/`, 'POST', { 'Content-Length': 0 });
  if (post.status !== 202) throw new Error(`POST ${post.status}`);
  const patchUrl = new URL(String(post.headers.location), base).toString();
  const patch = await call(agent, patchUrl, 'PATCH', { 'Content-Type': 'application/octet-stream', 'Content-Length': spec.size }, blobStream(spec));
  if (patch.status !== 202) throw new Error(`PATCH ${patch.status}`);
  const put = new URL(String(patch.headers.location), base);
  put.searchParams.set('digest', spec.digest);
  const done = await call(agent, put.toString(), 'PUT', { 'Content-Length': 0 });
  if (done.status !== 201) throw new Error(`PUT ${done.status}`);
}

async function pullBlob(agent: http.Agent, base: string, repo: string, spec: BlobSpec): Promise<void> {
  const res = await call(agent, `${base}/v2/${repo}/blobs/${spec.digest}`, 'GET', {});
  if (res.status !== 200 || res.bytes !== spec.size) throw new Error(`GET blob ${res.status} ${res.bytes}`);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Measurement {
  value: number;
  p50: number;
  p99: number;
  unit: string;
}

/** Runs `perClient` operations on each of `clients` workers; throughput over wall time, latency per operation. */
async function runLoad(clients: number, perClient: number, op: (client: number, i: number) => Promise<number>, unit: 'MB/s' | 'req/s'): Promise<Measurement> {
  const latencies: number[] = [];
  let amount = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; i < perClient; i++) {
        const t0 = process.hrtime.bigint();
        const done = await op(c, i); // not `amount += await ...`: that reads `amount` before the await
        amount += done;
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  return { value: amount / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), unit };
}

/** The median of each figure over rounds (throughput and latencies taken separately). */
function median(ms: Measurement[]): Measurement {
  const mid = (xs: number[]): number => {
    const sorted = [...xs].sort((a, b) => a - b);
    const n = sorted.length;
    return n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  };
  return { value: mid(ms.map((m) => m.value)), p50: mid(ms.map((m) => m.p50)), p99: mid(ms.map((m) => m.p99)), unit: ms[0]!.unit };
}

function rssOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** Samples a process's RSS every 20 ms while `work` runs; returns the peak. */
async function peakRss<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = rssOf(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssOf(pid));
    } catch {
      // exited
    }
  }, 20);
  try {
    return { result: await work(), peak };
  } finally {
    clearInterval(timer);
  }
}

interface Row {
  name: string;
  berth: Measurement;
  distribution: Measurement;
  /** Higher is better for throughput; the ratio is Berth / distribution. */
}

async function main(): Promise<void> {
  const scale = quick ? 0.25 : 1;
  const rounds = quick ? 1 : 3;
  const servers: Record<'berth' | 'distribution', ServerProcess> = {
    berth: await startBerth(),
    distribution: await startDistribution(),
  };
  const rows: Row[] = [];
  const rss: Record<string, number> = {};
  const idleRss: Record<string, number> = { berth: rssOf(servers.berth.pid), distribution: rssOf(servers.distribution.pid) };
  try {
    const scenarios: { size: number; clients: number; perClient: number }[] = [
      { size: MB, clients: 1, perClient: Math.max(10, Math.round(100 * scale)) },
      { size: MB, clients: 16, perClient: Math.max(2, Math.round(16 * scale)) },
      { size: 100 * MB, clients: 1, perClient: quick ? 1 : 3 },
      { size: 100 * MB, clients: 16, perClient: 1 },
    ];
    // --only=<MB> runs just the scenarios of one blob size (for iterating on one figure).
    const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
    for (const sc of scenarios.filter((x) => only === undefined || String(x.size / MB) === only)) {
      const label = `${sc.size / MB} MB x ${sc.clients} client${sc.clients > 1 ? 's' : ''}`;
      const runs: Record<'berth' | 'distribution', { push: Measurement[]; pull: Measurement[] }> = {
        berth: { push: [], pull: [] },
        distribution: { push: [], pull: [] },
      };
      for (let round = 0; round < rounds; round++) {
        // Fresh blobs each round (a re-push would only hit deduplication); both servers get the same ones.
        const specs = Array.from({ length: sc.clients }, () => Array.from({ length: sc.perClient }, () => makeBlobSpec(sc.size)));
        // Alternate who goes first, and flush dirty pages before each run, so one server's
        // writeback never lands on the other's measurement.
        const order = round % 2 === 0 ? (['distribution', 'berth'] as const) : (['berth', 'distribution'] as const);
        for (const which of order) {
          const base = servers[which].url;
          const agent = new http.Agent({ keepAlive: true, maxSockets: sc.clients * 2 });
          const repo = `bench/${sc.size}-${sc.clients}-${round}`;
          spawnSync('sync');
          runs[which].push.push(
            await runLoad(sc.clients, sc.perClient, async (c, i) => {
              await pushBlob(agent, base, repo, specs[c]![i]!);
              return sc.size / MB;
            }, 'MB/s'),
          );
          spawnSync('sync');
          const pullWork = (): Promise<Measurement> =>
            runLoad(sc.clients, sc.perClient, async (c, i) => {
              await pullBlob(agent, base, repo, specs[c]![i]!);
              return sc.size / MB;
            }, 'MB/s');
          if (sc.size === 100 * MB && sc.clients === 16) {
            const measured = await peakRss(servers[which].pid, pullWork);
            runs[which].pull.push(measured.result);
            rss[which] = Math.max(rss[which] ?? 0, measured.peak);
          } else runs[which].pull.push(await pullWork());
          agent.destroy();
        }
      }
      rows.push({ name: `push ${label}`, berth: median(runs.berth.push), distribution: median(runs.distribution.push) });
      rows.push({ name: `pull ${label}`, berth: median(runs.berth.pull), distribution: median(runs.distribution.pull) });
    }

    // Manifest GETs: 16 keep-alive clients for a fixed time.
    const manifestResults: Partial<Record<'berth' | 'distribution', Measurement>> = {};
    for (const which of only === undefined ? (['distribution', 'berth'] as const) : []) {
      const base = servers[which].url;
      const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
      const configSpec: BlobSpec = { digest: `sha256:${crypto.createHash('sha256').update(config).digest('hex')}`, size: config.length, prefix: config };
      const post = await call(agent, `${base}/v2/bench/manifest/blobs/uploads/`, 'POST', { 'Content-Length': 0 });
      const put = new URL(String(post.headers.location), base);
      put.searchParams.set('digest', configSpec.digest);
      const stored = await call(agent, put.toString(), 'PUT', { 'Content-Length': config.length }, Readable.from([config]));
      if (stored.status !== 201) throw new Error(`config PUT ${stored.status} on ${which}`);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configSpec.digest, size: config.length },
          layers: [],
        }),
      );
      const mres = await call(agent, `${base}/v2/bench/manifest/manifests/latest`, 'PUT', { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': manifest.length }, Readable.from([manifest]));
      if (mres.status !== 201) throw new Error(`manifest PUT ${mres.status} on ${which}`);
      const duration = quick ? 2000 : 5000;
      const deadline = Date.now() + duration;
      const latencies: number[] = [];
      let count = 0;
      const started = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (Date.now() < deadline) {
            const t0 = process.hrtime.bigint();
            const r = await call(agent, `${base}/v2/bench/manifest/manifests/latest`, 'GET', { Accept: 'application/vnd.oci.image.manifest.v1+json' });
            if (r.status !== 200) throw new Error(`manifest GET ${r.status}`);
            latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
            count++;
          }
        }),
      );
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      latencies.sort((a, b) => a - b);
      manifestResults[which] = { value: count / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), unit: 'req/s' };
      agent.destroy();
    }
    if (manifestResults.berth !== undefined) rows.push({ name: 'manifest GET x 16 clients', berth: manifestResults.berth, distribution: manifestResults.distribution! });
  } finally {
    for (const s of Object.values(servers)) {
      await s.stop();
      await removeDir(s.root);
    }
  }

  const fmt = (n: number, digits = 1): string => n.toFixed(digits);
  const lines: string[] = [];
  lines.push('| scenario | Berth | distribution 2.8 | ratio | p99 Berth (ms) | p99 distribution (ms) |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    lines.push(
      `| ${r.name} | ${fmt(r.berth.value)} ${r.berth.unit} | ${fmt(r.distribution.value)} ${r.distribution.unit} | ${fmt(r.berth.value / r.distribution.value, 2)}x | ${fmt(r.berth.p99)} | ${fmt(r.distribution.p99)} |`,
    );
  }
  lines.push('');
  lines.push(`RSS idle: Berth ${fmt(idleRss.berth! / MB)} MB, distribution ${fmt(idleRss.distribution! / MB)} MB`);
  if (rss.berth !== undefined) lines.push(`RSS peak during 16 concurrent 100 MB pulls: Berth ${fmt(rss.berth / MB)} MB, distribution ${fmt(rss.distribution! / MB)} MB`);
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
