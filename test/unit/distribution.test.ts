/**
 * Pure parts of distribution: X-Registry-Auth decoding, WWW-Authenticate
 * parsing, manifest validation and platform selection, the pull reference
 * of /images/create, registry hosts (insecure, mirrors), the streaming tar
 * reader's formats (PAX, GNU long names, base-256) and parallel gzip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { decodeRegistryAuth, parseChallenges } from '../../src/engine/distribution/auth.js';
import { parseManifest, parsePlatform, selectPlatform } from '../../src/engine/distribution/manifests.js';
import { pullReference } from '../../src/engine/distribution/manifests.js';
import { RegistryHosts, DEFAULT_REGISTRY_CONFIG } from '../../src/engine/distribution/registry-hosts.js';
import { progressBar } from '../../src/engine/distribution/progress.js';
import { TarReader, type TarHeader } from '../../src/engine/archive/tar-reader.js';
import { ParallelGzip } from '../../src/engine/archive/parallel-gzip.js';

const digest = (s: string): string => `sha256:${crypto.createHash('sha256').update(s).digest('hex')}`;

test('X-Registry-Auth: base64url and standard base64, padded or not; empty means anonymous', () => {
  const json = JSON.stringify({ username: 'u', password: 'p+/?', serveraddress: 'r:5000' });
  for (const header of [Buffer.from(json).toString('base64url'), Buffer.from(json).toString('base64'), Buffer.from(json).toString('base64').replace(/=+$/, '')]) {
    assert.deepEqual(decodeRegistryAuth(header), { username: 'u', password: 'p+/?', serveraddress: 'r:5000', identitytoken: undefined, registrytoken: undefined });
  }
  assert.equal(decodeRegistryAuth(Buffer.from('{}').toString('base64')), undefined);
  assert.equal(decodeRegistryAuth(''), undefined);
  assert.equal(decodeRegistryAuth(Buffer.from(JSON.stringify({ auth: Buffer.from('a:b:c').toString('base64') })).toString('base64'))?.password, 'b:c');
  assert.throws(() => decodeRegistryAuth('%%%'), /X-Registry-Auth/);
});

test('WWW-Authenticate: Bearer with quoted params, Basic, several challenges', () => {
  const [bearer] = parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"');
  assert.deepEqual(bearer, { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } });
  const two = parseChallenges(['Basic realm="x"', 'Bearer realm="y"']);
  assert.deepEqual(two.map((c) => c.scheme), ['basic', 'bearer']);
  assert.deepEqual(parseChallenges(undefined), []);
});

test('manifests: validated, media types checked, schema 1 refused', () => {
  const good = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digest('c'), size: 1 }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: digest('l'), size: 2 }] };
  assert.equal(parseManifest(Buffer.from(JSON.stringify(good)), undefined).kind, 'manifest');
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ ...good, layers: [{ ...good.layers[0], mediaType: 'text/plain' }] })), undefined), /unsupported media type text\/plain/);
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ ...good, config: { ...good.config, digest: 'md5:x' } })), undefined), /bad config descriptor/);
  assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":1}'), 'application/vnd.docker.distribution.manifest.v1+prettyjws'), /schema 1/);
  assert.throws(() => parseManifest(Buffer.from('nope'), undefined), /not JSON/);
});

test('platforms: parsing, index selection, arm64 variant v8 equivalence, attestations skipped', () => {
  assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('arm64'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.throws(() => parsePlatform('linux//x'), /invalid platform/);
  const m = (arch: string, variant?: string, attestation = false) => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: digest(arch + (variant ?? '') + attestation) as `sha256:${string}`,
    size: 1,
    platform: { os: attestation ? 'unknown' : 'linux', architecture: attestation ? 'unknown' : arch, ...(variant ? { variant } : {}) },
    ...(attestation ? { annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } } : {}),
  });
  const index = { schemaVersion: 2 as const, manifests: [m('x', undefined, true), m('arm', 'v6'), m('arm', 'v7'), m('arm64', 'v8'), m('amd64')] };
  assert.equal(selectPlatform(index, parsePlatform('linux/amd64'), 'x').platform?.architecture, 'amd64');
  assert.equal(selectPlatform(index, parsePlatform('linux/arm64'), 'x').platform?.variant, 'v8');
  assert.equal(selectPlatform(index, parsePlatform('linux/arm/v7'), 'x').platform?.variant, 'v7');
  assert.throws(() => selectPlatform(index, parsePlatform('linux/s390x'), 'img'), /no matching manifest for linux\/s390x in the manifest list entries of img/);
});

test('pull references: Docker normalisation; a digest in the tag parameter', () => {
  assert.deepEqual(pullReference('busybox', undefined), { domain: 'docker.io', path: 'library/busybox', tag: 'latest', digest: undefined });
  assert.equal(pullReference('localhost:5000/a/b', '1.2').tag, '1.2');
  const d = digest('m');
  assert.equal(pullReference('busybox', d).digest, d);
  assert.throws(() => pullReference('busybox:1', '2'), /both/);
  assert.throws(() => pullReference('BusyBox', undefined), /invalid reference format/);
});

test('registry hosts: loopback and --insecure-registry (host or CIDR) may use HTTP; mirrors first for docker.io only', () => {
  const hosts = new RegistryHosts({ ...DEFAULT_REGISTRY_CONFIG, mirrors: ['http://127.0.0.1:5001', 'mirror.example'], insecure: ['10.1.0.0/16', 'reg.internal:5000'], certsDir: '/nonexistent' });
  assert.ok(hosts.isInsecure('127.0.0.1:5000'));
  assert.ok(hosts.isInsecure('[::1]:5000'));
  assert.ok(hosts.isInsecure('10.1.2.3:443'));
  assert.ok(hosts.isInsecure('reg.internal:5000'));
  assert.ok(!hosts.isInsecure('localhost:5000'));
  assert.ok(!hosts.isInsecure('registry.example'));
  const hub = hosts.endpoints('docker.io');
  assert.deepEqual(hub.map((e) => [e.host, e.schemes.join('+'), e.mirror]), [
    ['127.0.0.1:5001', 'http', true],
    ['mirror.example', 'https', true],
    ['registry-1.docker.io', 'https', false],
  ]);
  assert.deepEqual(hosts.endpoints('127.0.0.1:5000').map((e) => e.schemes.join('+')), ['https+http']);
});

test('progress bars as dockerd renders them', () => {
  assert.equal(progressBar(0, 0), '');
  assert.equal(progressBar(500_000, 1_000_000), `[${'='.repeat(25)}>${' '.repeat(25)}]    500kB/1MB`);
});

async function makeTar(entries: { name: string; body?: string; pax?: Record<string, string>; type?: 'file' | 'symlink'; linkname?: string; uid?: number }[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    pack.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname, pax: e.pax, uid: e.uid ?? 0, mode: 0o644, mtime: new Date(1_700_000_000_000) }, e.body ?? '');
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

function readAll(data: Buffer, chunkSize: number): { header: TarHeader; body: string }[] {
  const out: { header: TarHeader; body: string }[] = [];
  let cur: { header: TarHeader; parts: Buffer[] } | undefined;
  const reader = new TarReader({
    entry: (header) => (cur = { header, parts: [] }),
    data: (b) => cur!.parts.push(Buffer.from(b)),
    entryEnd: () => out.push({ header: cur!.header, body: Buffer.concat(cur!.parts).toString() }),
  });
  for (let i = 0; i < data.length; i += chunkSize) reader.write(data.subarray(i, i + chunkSize));
  reader.end();
  return out;
}

test('tar reader: long names (PAX and GNU), PAX xattrs as bytes, big uids, any chunking', async () => {
  const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
  const data = await makeTar([
    { name: long, body: 'long' },
    { name: 'x', body: 'xattr', pax: { 'SCHILY.xattr.user.k': 'v' } },
    { name: 'link', type: 'symlink', linkname: `${'t'.repeat(150)}` },
    { name: 'big-uid', body: 'u' },
  ]);
  // GNU base-256 uid (tar-stream writes octal only): patch the last header and its checksum
  const h = data.length - 1024 - 512 - 512;
  assert.equal(data.toString('latin1', h, h + 7), 'big-uid');
  data.fill(0, h + 108, h + 116);
  data[h + 108] = 0x80;
  data.writeUInt32BE(3_000_000, h + 112);
  data.fill(0x20, h + 148, h + 156);
  let sum = 0;
  for (let i = h; i < h + 512; i++) sum += data[i];
  data.write(sum.toString(8).padStart(6, '0') + '\0 ', h + 148, 'latin1');
  for (const size of [1, 7, 512, 513, 100_000]) {
    const entries = readAll(data, size);
    assert.deepEqual(entries.map((e) => e.header.name), [long, 'x', 'link', 'big-uid']);
    assert.equal(entries[0].body, 'long');
    assert.equal(entries[1].header.xattrs.get('user.k')?.toString(), 'v');
    assert.equal(entries[2].header.linkname, 't'.repeat(150));
    assert.equal(entries[3].header.uid, 3_000_000);
    assert.equal(entries[0].header.mtime, 1_700_000_000);
  }
  // a GNU tar with a long name ('L' records)
  const { execFileSync } = await import('node:child_process');
  const fs = await import('node:fs');
  const dir = fs.mkdtempSync('/tmp/tarr-');
  fs.mkdirSync(`${dir}/${'g'.repeat(110)}`);
  fs.writeFileSync(`${dir}/${'g'.repeat(110)}/file`, 'gnu');
  const gnu = execFileSync('tar', ['--format=gnu', '-C', dir, '-cf', '-', '.']);
  fs.rmSync(dir, { recursive: true });
  const names = readAll(gnu, 4096).map((e) => e.header.name);
  assert.ok(names.includes(`./${'g'.repeat(110)}/file`), names.join(','));
});

test('parallel gzip: a valid, deterministic gzip of the input, any size', async () => {
  for (const size of [0, 1000, (1 << 20) + 17, 3 << 20]) {
    const input = Buffer.concat([crypto.randomBytes(size / 2), Buffer.alloc(size - Math.floor(size / 2), 'a')]);
    const run = async (): Promise<Buffer> => {
      const chunks: Buffer[] = [];
      await pipeline(Readable.from([input]), new ParallelGzip(), async function* (src) {
        for await (const c of src) chunks.push(c as Buffer);
      });
      return Buffer.concat(chunks);
    };
    const a = await run();
    const b = await run();
    assert.ok(a.equals(b), 'deterministic');
    assert.ok(zlib.gunzipSync(a).equals(input), `round trip of ${size} bytes`);
  }
});
