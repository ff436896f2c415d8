/**
 * The network part of a container start, and published-port throughput.
 *
 * 1. `run --rm busybox true` on the default bridge vs `--network none`,
 *    median of N each (interleaved): the difference is what networking adds
 *    to a start. Target (issue 6): <= 30 ms extra.
 * 2. Throughput of a 256 MB HTTP download from a container: host ->
 *    published port on 127.0.0.1 (DNAT, no proxy process) vs host ->
 *    container IP directly.
 *
 *   node dist/bench/network.js [runs=20]
 */
import http from 'node:http';
import { TestDaemon } from '../test/helpers/daemon.js';
import { fmt, stats, table, timeCommand } from './util.js';

const runs = Number(process.argv[2] ?? 20);
const SIZE_MB = 256;

function download(url: string): Promise<{ bytes: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let bytes = 0;
    http
      .get(url, (res) => {
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ bytes, ms: performance.now() - t0 }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function main(): Promise<void> {
  const d = await TestDaemon.start({ args: ['--log-level', 'warn'] });
  try {
    const env = d.env();
    const bridge: number[] = [];
    const none: number[] = [];
    for (let i = 0; i < 3; i++) {
      await timeCommand('docker', ['run', '--rm', 'busybox', 'true'], env);
      await timeCommand('docker', ['run', '--rm', '--network', 'none', 'busybox', 'true'], env);
    }
    for (let i = 0; i < runs; i++) {
      bridge.push(await timeCommand('docker', ['run', '--rm', 'busybox', 'true'], env));
      none.push(await timeCommand('docker', ['run', '--rm', '--network', 'none', 'busybox', 'true'], env));
    }
    const b = stats(bridge);
    const n = stats(none);
    console.log(`run --rm busybox true, ${runs} runs each, interleaved\n`);
    console.log(
      table([
        ['network', 'median', 'p90'],
        ['default bridge', fmt(b.median), fmt(b.p90)],
        ['--network none', fmt(n.median), fmt(n.p90)],
        ['extra for the bridge', fmt(b.median - n.median), `target <= 30 ms: ${b.median - n.median <= 30 ? 'met' : 'MISSED'}`],
      ]),
    );

    const r = await d.docker([
      'run', '-d', '-p', '127.0.0.1::8080', 'busybox', 'sh', '-c',
      `dd if=/dev/zero of=/tmp/blob bs=1M count=${SIZE_MB} 2>/dev/null; httpd -f -p 8080 -h /tmp`,
    ]);
    const id = r.stdout.trim();
    const port = (await d.docker(['port', id, '8080'])).stdout.trim().split(':').pop();
    const ip = (await d.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', id])).stdout.trim();
    for (let i = 0; i < 50; i++) {
      try {
        await download(`http://${ip}:8080/`);
        break;
      } catch {
        await new Promise((res) => setTimeout(res, 200));
      }
    }
    const via = async (url: string): Promise<number> => {
      const samples: number[] = [];
      for (let i = 0; i < 3; i++) {
        const { bytes, ms } = await download(url);
        if (bytes !== SIZE_MB * 1024 * 1024) throw new Error(`short download from ${url}: ${bytes}`);
        samples.push(bytes / 1e6 / (ms / 1000));
      }
      return stats(samples).median;
    };
    const direct = await via(`http://${ip}:8080/blob`);
    const published = await via(`http://127.0.0.1:${port}/blob`);
    console.log(`\n${SIZE_MB} MB HTTP download from busybox httpd, median of 3\n`);
    console.log(
      table([
        ['path', 'throughput', 'ratio'],
        ['host -> container IP', `${direct.toFixed(0)} MB/s`, '1.00'],
        ['host -> 127.0.0.1 published port', `${published.toFixed(0)} MB/s`, (published / direct).toFixed(2)],
      ]),
    );
    await d.docker(['rm', '-f', id]);
  } finally {
    await d.cleanup();
  }
}

await main();
