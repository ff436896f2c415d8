/**
 * Images without a registry, against a real berthd: save (Docker's layout
 * and the OCI layout in one tar, several images), load of both layouts
 * (also of a tar a real Docker 20.10 dockerd saved, and `docker load` by
 * that dockerd of a tar berthd saved), export of a container and import of
 * it back, system df; truncated, corrupt and hostile archives refused with
 * nothing left behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { TestDaemon, busyboxRootfsTar } from '../helpers/daemon.js';
import { TestDockerd } from '../helpers/dockerd.js';
import { sha256 } from '../helpers/oci.js';
import { assertNoLeftovers } from '../helpers/state.js';

interface Entry {
  name: string;
  data?: Buffer | string;
  type?: 'file' | 'symlink' | 'directory';
  linkname?: string;
}

async function packTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const e of entries) {
    const body = e.type && e.type !== 'file' ? undefined : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? '');
    await new Promise<void>((resolve, reject) =>
      body === undefined
        ? pack.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: 0o755 }, (err) => (err ? reject(err) : resolve()))
        : pack.entry({ name: e.name, type: 'file', mode: 0o644 }, body, (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function unpackTar(data: Buffer): Promise<Map<string, { data: Buffer; type: string; linkname?: string }>> {
  const out = new Map<string, { data: Buffer; type: string; linkname?: string }>();
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      out.set(entry.header.name, { data: Buffer.concat(chunks), type: entry.header.type ?? 'file', linkname: entry.header.linkname ?? undefined });
    }
  })();
  extract.end(data);
  await done;
  return out;
}

type Inspect = { Id: string; RepoTags: string[]; RootFS: { Layers: string[] } };

describe('save and load', () => {
  let d: TestDaemon;
  let busyboxId = '';
  let otherId = '';
  before(async () => {
    d = await TestDaemon.start();
    busyboxId = JSON.parse((await d.docker(['image', 'inspect', 'busybox'])).stdout)[0].Id;
    // a second image with two layers, busybox and one more, loaded from a hand-made archive in Docker's layout
    const base = await busyboxRootfsTar();
    const extra = await packTar([{ name: 'etc/', type: 'directory' }, { name: 'etc/motd', data: 'second layer\n' }]);
    const config = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['cat', '/etc/motd'] }, rootfs: { type: 'layers', diff_ids: [sha256(base), sha256(extra)] } }),
    );
    const archive = await packTar([
      { name: 'manifest.json', data: JSON.stringify([{ Config: 'config.json', RepoTags: ['extra:v1'], Layers: ['base/layer.tar', 'extra/layer.tar'] }]) },
      { name: 'config.json', data: config },
      { name: 'base/layer.tar', data: base },
      { name: 'extra/layer.tar', data: extra },
    ]);
    const r = await d.docker(['load'], { input: archive });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Loaded image: extra:v1/);
    otherId = sha256(config);
  });
  after(async () => {
    await d?.cleanup();
  });

  test('berth save writes both layouts for several images; berth load brings them back', async () => {
    const file = path.join(d.dir, 'two.tar');
    const s = await d.berth(['save', '-o', file, 'busybox', 'extra:v1']);
    assert.equal(s.code, 0, s.stderr);
    const entries = await unpackTar(await fsp.readFile(file));
    for (const name of ['manifest.json', 'repositories', 'index.json', 'oci-layout']) assert.ok(entries.has(name), `${name} in the archive`);
    const manifest = JSON.parse(entries.get('manifest.json')!.data.toString()) as { Config: string; RepoTags: string[]; Layers: string[] }[];
    assert.equal(manifest.length, 2);
    assert.deepEqual(manifest.map((m) => m.RepoTags), [['busybox:latest'], ['extra:v1']]);
    for (const m of manifest) {
      const config = entries.get(m.Config)!.data;
      assert.equal(sha256(config), `sha256:${m.Config.split('/').pop()}`);
      for (const l of m.Layers) assert.equal(sha256(entries.get(l)!.data), `sha256:${l.split('/').pop()}`, 'layers are plain tars named by diffID');
    }
    const index = JSON.parse(entries.get('index.json')!.data.toString()) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    assert.deepEqual(index.manifests.map((m) => m.annotations['io.containerd.image.name']).sort(), ['docker.io/library/busybox:latest', 'docker.io/library/extra:v1']);
    assert.deepEqual(JSON.parse(entries.get('repositories')!.data.toString()).busybox && 'ok', 'ok');

    assert.equal((await d.docker(['rmi', 'extra:v1'])).code, 0);
    const load = await d.berth(['load', '-i', file]);
    assert.equal(load.code, 0, load.stderr);
    assert.match(load.stdout, /Loaded image: busybox:latest/);
    assert.match(load.stdout, /Loaded image: extra:v1/);
    assert.equal((JSON.parse((await d.docker(['image', 'inspect', 'extra:v1'])).stdout)[0] as Inspect).Id, otherId);
    const run = await d.docker(['run', '--rm', 'extra:v1']);
    assert.equal(run.stdout, 'second layer\n');
  });

  test('docker save and docker load (file and stdin) through berthd', async () => {
    const file = path.join(d.dir, 'docker.tar');
    const s = await d.docker(['save', '-o', file, 'busybox']);
    assert.equal(s.code, 0, s.stderr);
    assert.equal((await d.docker(['rmi', 'busybox'])).code, 0);
    const l = await d.docker(['load', '-i', file]);
    assert.equal(l.code, 0, l.stderr);
    assert.match(l.stdout, /Loaded image: busybox:latest/);
    assert.equal((await d.docker(['rmi', 'busybox'])).code, 0);
    const stdin = await d.docker(['load'], { input: await fsp.readFile(file) });
    assert.equal(stdin.code, 0, stdin.stderr);
    assert.match(stdin.stdout, /Loaded image: busybox:latest/);
    assert.equal((JSON.parse((await d.docker(['image', 'inspect', 'busybox'])).stdout)[0] as Inspect).Id, busyboxId);
    // by ID: no names in the archive, loaded by ID
    const byId = await d.client.raw('GET', `/images/${busyboxId}/get`);
    const chunks: Buffer[] = [];
    for await (const c of byId) chunks.push(c as Buffer);
    const manifest = JSON.parse((await unpackTar(Buffer.concat(chunks))).get('manifest.json')!.data.toString());
    assert.equal(manifest[0].RepoTags, null);
  });

  test('an OCI layout alone (no manifest.json), with a gzip layer, keeps its manifest digest; save then decompresses', async () => {
    const layerTar = await packTar([{ name: 'hello.txt', data: 'from an OCI layout\n' }]);
    const gz = zlib.gzipSync(layerTar);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/true'] }, rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] } }));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(gz), size: gz.length }],
      }),
    );
    const index = {
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length, annotations: { 'io.containerd.image.name': 'docker.io/library/ocionly:1' } }],
    };
    const hex = (b: Buffer): string => sha256(b).slice(7);
    const archive = await packTar([
      { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
      { name: 'index.json', data: JSON.stringify(index) },
      { name: `blobs/sha256/${hex(config)}`, data: config },
      { name: `blobs/sha256/${hex(gz)}`, data: gz },
      { name: `blobs/sha256/${hex(manifest)}`, data: manifest },
    ]);
    const r = await d.berth(['load'], { input: archive });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Loaded image: ocionly:1/);
    const ins = JSON.parse((await d.docker(['image', 'inspect', 'ocionly:1'])).stdout)[0] as Inspect;
    assert.equal(ins.Id, sha256(config));
    const saved = await d.client.raw('GET', '/images/get', { query: { names: ['ocionly:1'] } });
    const chunks: Buffer[] = [];
    for await (const c of saved) chunks.push(c as Buffer);
    const entries = await unpackTar(Buffer.concat(chunks));
    assert.ok(entries.get(`blobs/sha256/${hex(layerTar)}`)?.data.equals(layerTar), 'the saved layer is the plain tar');
  });

  test('a tar written by a real Docker 20.10 loads into berthd, and docker load of a berth save works there', { skip: !TestDockerd.available() }, async () => {
    const dockerd = await TestDockerd.start();
    try {
      const ours = path.join(d.dir, 'for-docker.tar');
      assert.equal((await d.berth(['save', '-o', ours, 'busybox', 'extra:v1'])).code, 0);
      const loaded = await dockerd.docker(['load', '-i', ours]);
      assert.equal(loaded.code, 0, loaded.stderr);
      assert.match(loaded.stdout, /Loaded image: busybox:latest/);
      assert.match(loaded.stdout, /Loaded image: extra:v1/);
      const theirId = (JSON.parse((await dockerd.docker(['image', 'inspect', 'extra:v1'])).stdout)[0] as Inspect).Id;
      assert.equal(theirId, otherId, 'Docker computes the same image ID');
      const run = await dockerd.docker(['run', '--rm', '--network', 'none', 'extra:v1']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, 'second layer\n');

      // and back: Docker 20.10's own layout (<id>/layer.tar, <id>.json), loaded into berthd
      assert.equal((await dockerd.docker(['tag', 'extra:v1', 'fromdocker:1'])).code, 0);
      const theirs = path.join(d.dir, 'from-docker.tar');
      assert.equal((await dockerd.docker(['save', '-o', theirs, 'fromdocker:1'])).code, 0);
      const entries = await unpackTar(await fsp.readFile(theirs));
      assert.ok([...entries.keys()].some((n) => n.endsWith('/layer.tar')), 'the legacy layout');
      const back = await d.berth(['load', '-i', theirs]);
      assert.equal(back.code, 0, back.stderr);
      assert.match(back.stdout, /Loaded image: fromdocker:1/);
      assert.equal((await d.docker(['run', '--rm', 'fromdocker:1'])).stdout, 'second layer\n');
    } finally {
      await dockerd.stop();
    }
  });

  test('truncated, corrupt, hostile and inconsistent archives are refused and leave nothing', async () => {
    const good = await fsp.readFile(path.join(d.dir, 'two.tar'));
    const layerTar = await packTar([{ name: 'x', data: crypto.randomBytes(1000).toString('hex') }]);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256('something else')] } }));
    const cases: [string, Buffer, RegExp][] = [
      ['truncated', good.subarray(0, Math.floor(good.length / 2)), /truncated|invalid archive|Unexpected end/],
      ['not a tar', crypto.randomBytes(10_000), /invalid|tar/i],
      ['empty', Buffer.alloc(0), /empty|invalid/],
      ['no manifest', await packTar([{ name: 'hello', data: 'x' }]), /neither manifest.json/],
      ['escaping path', await packTar([{ name: '../../escape-load', data: 'x' }]), /escapes/],
      [
        'a layer that is not what the config says',
        await packTar([
          { name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', RepoTags: ['liar:1'], Layers: ['l/layer.tar'] }]) },
          { name: 'c.json', data: config },
          { name: 'l/layer.tar', data: layerTar },
        ]),
        /diffID/,
      ],
      [
        'a symlink pointing out of the archive',
        await packTar([
          { name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', RepoTags: ['liar:2'], Layers: ['l/layer.tar'] }]) },
          { name: 'c.json', data: config },
          { name: 'l/layer.tar', type: 'symlink', linkname: '../../../etc/passwd' },
        ]),
        /escapes/,
      ],
    ];
    const before = (await d.docker(['images', '-q'])).stdout;
    for (const [what, archive, message] of cases) {
      const r = await d.berth(['load'], { input: archive });
      assert.notEqual(r.code, 0, `${what}: refused`);
      assert.match(r.stderr, message, `${what}: ${r.stderr}`);
      const viaDocker = await d.docker(['load'], { input: archive });
      assert.notEqual(viaDocker.code, 0, `${what}: refused (docker CLI)`);
    }
    assert.equal((await d.docker(['images', '-q'])).stdout, before);
    await assertNoLeftovers(d);
    assert.ok(!(await fsp.stat('/escape-load').catch(() => undefined)));
  });
});

describe('export, import and system df', () => {
  let d: TestDaemon;
  before(async () => {
    d = await TestDaemon.start();
  });
  after(async () => {
    await d?.cleanup();
  });

  test('export has the container\'s changes (deletions too); importing it gives a working image', async () => {
    const c = await d.docker(['run', '--name', 'exp', 'busybox', 'sh', '-c', 'echo exported > /marker && rm /bin/ls']);
    assert.equal(c.code, 0, c.stderr);
    const file = path.join(d.dir, 'exp.tar');
    const e = await d.docker(['export', '-o', file, 'exp']);
    assert.equal(e.code, 0, e.stderr);
    const entries = await unpackTar(await fsp.readFile(file));
    assert.equal(entries.get('marker')?.data.toString(), 'exported\n');
    assert.ok(!entries.has('bin/ls'), 'deleted files are not exported');
    assert.ok(entries.has('bin/busybox'));
    assert.ok(![...entries.keys()].some((n) => n.includes('.wh.')), 'no whiteouts');
    const b = await d.berth(['export', 'exp'], {});
    assert.equal(b.code, 0, b.stderr);
    const imp = await d.docker(['import', '-', 'exported:1'], { input: await fsp.readFile(file) });
    assert.equal(imp.code, 0, imp.stderr);
    const run = await d.docker(['run', '--rm', 'exported:1', 'cat', '/marker']);
    assert.equal(run.stdout, 'exported\n');
    const missing = await d.docker(['export', 'nope']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /No such container: nope/);
    const mounts = (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(path.join(d.execRoot, 'export')));
    assert.deepEqual(mounts, [], 'export mounts are gone');
  });

  test('system df counts images, containers and their sizes', async () => {
    const r = await d.docker(['system', 'df', '--format', '{{.Type}} {{.TotalCount}} {{.Active}}']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Images 2 1/);
    assert.match(r.stdout, /Containers 1 0/);
    const busybox = await busyboxRootfsTar();
    const df = await d.client.json<{ LayersSize: number; Images: { Size: number }[] }>('GET', '/system/df');
    assert.ok(df.LayersSize >= busybox.length * 0.8, `LayersSize ${df.LayersSize}`);
  });
});
