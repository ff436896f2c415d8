/**
 * Garbage collection on a serving registry: what goes (unreferenced blobs,
 * untagged manifests), what stays (children of a tagged index, referrers of
 * tagged images, uploads in flight, recent content), the `gc` command both
 * delegated to the serving process and run offline, and collection running
 * in a loop while clients push and pull, with no failed request.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RegistryClient } from './helpers/client.js';
import { resolveLocation, withQuery } from './helpers/http.js';
import { type Image, OCI_INDEX, OCI_MANIFEST, makeImage, makeIndex, makeReferrer, sha256 } from './helpers/images.js';
import { BERTH_BIN, type ServerProcess, removeDir, run, startBerth } from './helpers/procs.js';

function blobFile(root: string, digest: string): string {
  return path.join(root, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7));
}

function gcCommand(root: string, extra: string[] = []): { report: { dryRun: boolean; manifestsDeleted: { digest: string }[]; blobsDeleted: string[]; uploadsPurged: number }; stderr: string } {
  const out = run(process.execPath, [BERTH_BIN, 'registry', 'gc', '--root', root, '--json', ...extra]);
  return { report: JSON.parse(out.stdout) as never, stderr: out.stderr };
}

describe('garbage collection', () => {
  let server: ServerProcess;
  let client: RegistryClient;
  let kept: Image;
  let untagged: Image;
  let children: Image[];
  let index: { bytes: Buffer; digest: string };
  let referrer: { bytes: Buffer; digest: string };
  let stray: Buffer;
  let uploadLocation: string;
  const inFlight = crypto.randomBytes(5000);

  before(async () => {
    server = await startBerth({ args: ['--gc-grace', '0s'] });
    client = new RegistryClient(server.url);
    kept = await makeImage({ layers: 2 });
    await client.pushImage('gc/app', 'v1', kept);
    // An image whose only tag is deleted: its manifest and unique blobs are garbage.
    untagged = await makeImage({ layers: 2 });
    await client.pushImage('gc/app', 'old', untagged);
    assert.equal((await client.req('DELETE', '/v2/gc/app/manifests/old')).status, 202);
    // A tagged index whose children are untagged (distribution#3178).
    children = [await makeImage({ layers: 1 }), await makeImage({ layers: 1, arch: 'arm64' })];
    for (const c of children) {
      for (const b of [c.config, ...c.layers]) assert.equal((await client.pushBlob('gc/multi', b.data)).status, 201);
      assert.equal((await client.putManifest('gc/multi', c.manifestDigest, c.manifest, c.mediaType)).status, 201);
    }
    index = makeIndex(children);
    assert.equal((await client.putManifest('gc/multi', 'latest', index.bytes, OCI_INDEX)).status, 201);
    // A signature of the tagged image (untagged itself).
    const sig = { data: Buffer.from(`sig-${crypto.randomBytes(4).toString('hex')}`), mediaType: 'application/octet-stream' } as const;
    const sigBlob = { ...sig, digest: sha256(sig.data) };
    assert.equal((await client.pushBlob('gc/app', sigBlob.data)).status, 201);
    assert.equal((await client.pushBlob('gc/app', Buffer.from('{}'))).status, 201);
    referrer = makeReferrer({ mediaType: OCI_MANIFEST, digest: kept.manifestDigest, size: kept.manifest.length }, 'application/vnd.example.sig', sigBlob);
    assert.equal((await client.putManifest('gc/app', referrer.digest, referrer.bytes, OCI_MANIFEST)).status, 201);
    // A blob no manifest names.
    stray = crypto.randomBytes(3000);
    assert.equal((await client.pushBlob('gc/app', stray)).status, 201);
    // An upload in flight: half its bytes sent.
    uploadLocation = await client.startUpload('gc/app');
    const patch = await client.req('PATCH', uploadLocation, { headers: { 'Content-Type': 'application/octet-stream' }, body: inFlight.subarray(0, 2500) });
    assert.equal(patch.status, 202);
    uploadLocation = resolveLocation(server.url, patch.headers.location);
  });

  after(async () => {
    await server.stop();
    await removeDir(server.root);
  });

  it('a dry run through the serving process reports garbage and deletes nothing', () => {
    const { report } = gcCommand(server.root, ['--dry-run']);
    assert.equal(report.dryRun, true);
    assert.deepEqual(report.manifestsDeleted.map((m) => m.digest), [untagged.manifestDigest]);
    assert.ok(report.blobsDeleted.includes(sha256(stray)));
    assert.ok(fs.existsSync(blobFile(server.root, sha256(stray))));
    assert.ok(fs.existsSync(blobFile(server.root, untagged.layers[0]!.digest)));
  });

  it('gc beside a serving registry collects online and keeps everything reachable', async () => {
    const { report } = gcCommand(server.root);
    assert.equal(report.dryRun, false);
    // The command blocked this process; let the server's log lines arrive.
    for (let i = 0; i < 50 && !server.logs.some((l) => l.includes('garbage collection done')); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(server.logs.some((l) => l.includes('garbage collection done')), 'the serving process ran it');
    assert.deepEqual(report.manifestsDeleted.map((m) => m.digest), [untagged.manifestDigest]);
    // Garbage is gone from disk and from the API.
    for (const d of [sha256(stray), untagged.manifestDigest, untagged.config.digest, ...untagged.layers.map((l) => l.digest)]) {
      assert.equal(fs.existsSync(blobFile(server.root, d)), false, `${d} should be deleted`);
    }
    assert.equal((await client.req('GET', `/v2/gc/app/manifests/${untagged.manifestDigest}`)).status, 404);
    assert.equal(await client.blobStatus('gc/app', sha256(stray)), 404);
    // Tagged image, its referrer, the tagged index and its untagged children all stay, with their blobs.
    for (const [repo, img] of [['gc/app', kept], ['gc/multi', children[0]!], ['gc/multi', children[1]!]] as const) {
      assert.equal((await client.req('GET', `/v2/${repo}/manifests/${img.manifestDigest}`)).status, 200);
      for (const b of [img.config, ...img.layers]) {
        const res = await client.req('GET', `/v2/${repo}/blobs/${b.digest}`);
        assert.equal(res.status, 200);
        assert.equal(sha256(res.body), b.digest);
      }
    }
    assert.equal((await client.req('GET', '/v2/gc/multi/manifests/latest')).status, 200);
    assert.equal((await client.req('GET', `/v2/gc/app/manifests/${referrer.digest}`)).status, 200);
    const refs = (await client.req('GET', `/v2/gc/app/referrers/${kept.manifestDigest}`)).json<{ manifests: { digest: string }[] }>();
    assert.deepEqual(refs.manifests.map((m) => m.digest), [referrer.digest]);
  });

  it('an upload in flight survives collection and completes', async () => {
    const patch = await client.req('PATCH', uploadLocation, { headers: { 'Content-Type': 'application/octet-stream' }, body: inFlight.subarray(2500) });
    assert.equal(patch.status, 202);
    const put = await client.req('PUT', withQuery(resolveLocation(server.url, patch.headers.location), { digest: sha256(inFlight) }), { headers: { 'Content-Length': 0 } });
    assert.equal(put.status, 201, put.text());
  });

  it('gc on a root no process serves runs directly; the registry restarts on the result', async () => {
    await server.stop();
    // What a crash in the middle of an atomic tag write leaves behind, an hour ago.
    const leftover = path.join(server.root, 'repositories', 'gc', 'app', '_tags', '.tmp-v1-deadbeef');
    await fsp.writeFile(leftover, 'partial');
    const hourAgo = new Date(Date.now() - 2 * 3600_000);
    await fsp.utimes(leftover, hourAgo, hourAgo);
    const { report } = gcCommand(server.root, ['--grace', '0s']);
    assert.ok(report.blobsDeleted.includes(sha256(inFlight)), 'the completed but unreferenced upload is now garbage');
    assert.equal(fs.existsSync(leftover), false, 'stale temporary files are removed');
    server = await startBerth({ root: server.root, args: ['--gc-grace', '0s'] });
    client = new RegistryClient(server.url);
    assert.equal((await client.req('GET', '/v2/gc/app/manifests/v1')).status, 200);
    assert.equal((await client.req('GET', '/v2/gc/multi/manifests/latest')).status, 200);
  });

  it('a second server on the same root is refused', async () => {
    const second = startBerth({ root: server.root });
    await assert.rejects(second, /in use by another berth registry process/);
    // Had it started, it must not outlive the test.
    await second.then((s) => s.stop()).catch(() => undefined);
  });
});

describe('garbage collection options', () => {
  it('--keep-untagged keeps untagged manifests; the grace period keeps young garbage', async () => {
    const server = await startBerth();
    const client = new RegistryClient(server.url);
    const image = await makeImage({ layers: 1 });
    await client.pushImage('opts/app', 'tmp', image);
    assert.equal((await client.req('DELETE', '/v2/opts/app/manifests/tmp')).status, 202);
    await server.stop();
    try {
      const young = gcCommand(server.root, ['--dry-run']).report;
      assert.deepEqual(young.manifestsDeleted, [], 'the default grace period (1h) protects fresh content');
      const kept = gcCommand(server.root, ['--dry-run', '--grace', '0s', '--keep-untagged']).report;
      assert.deepEqual(kept.manifestsDeleted, []);
      const collected = gcCommand(server.root, ['--grace', '0s']).report;
      assert.deepEqual(collected.manifestsDeleted.map((m) => m.digest), [image.manifestDigest]);
      assert.equal(fs.existsSync(blobFile(server.root, image.layers[0]!.digest)), false);
    } finally {
      await removeDir(server.root);
    }
  });
});

describe('garbage collection under load', () => {
  it('periodic collection while clients push and pull: no request fails, garbage goes', async () => {
    const server = await startBerth({ args: ['--gc-interval', '150ms', '--gc-grace', '3s'] });
    try {
      const client = new RegistryClient(server.url);
      const base = await makeImage({ layers: 2, layerBytes: 50_000 });
      await client.pushImage('load/base', 'v1', base);
      // Garbage: an image pushed then untagged, and a stray blob; both aged past the grace period.
      const garbage = await makeImage({ layers: 1 });
      await client.pushImage('load/junk', 'tmp', garbage);
      assert.equal((await client.req('DELETE', '/v2/load/junk/manifests/tmp')).status, 202);
      const stray = crypto.randomBytes(1000);
      assert.equal((await client.pushBlob('load/junk', stray)).status, 201);

      const deadline = Date.now() + 5000;
      const pushed: { repo: string; image: Image }[] = [];
      let pulls = 0;
      const pusher = async (n: number): Promise<void> => {
        for (let i = 0; Date.now() < deadline; i++) {
          const image = await makeImage({ layers: 2, layerBytes: 20_000 });
          const repo = `load/p${n}`;
          // Reuse the base layers too, so collection sees shared blobs being re-referenced.
          await client.pushImage(repo, `t${i}`, image, (['patch-whole', 'put-body', 'chunked'] as const)[i % 3]);
          pushed.push({ repo, image });
        }
      };
      const puller = async (): Promise<void> => {
        while (Date.now() < deadline) {
          const m = await client.req('GET', '/v2/load/base/manifests/v1');
          assert.equal(m.status, 200);
          for (const l of base.layers) {
            const res = await client.req('GET', `/v2/load/base/blobs/${l.digest}`);
            assert.equal(res.status, 200);
            assert.equal(sha256(res.body), l.digest);
          }
          pulls++;
        }
      };
      await Promise.all([pusher(1), pusher(2), puller()]);
      assert.ok(pushed.length > 5 && pulls > 5, `pushed ${pushed.length}, pulled ${pulls}`);
      const runs = server.logs.filter((l) => l.includes('garbage collection done')).length;
      assert.ok(runs >= 5, `only ${runs} collections ran`);
      // Everything pushed during collection is intact.
      for (const { repo, image } of pushed) {
        const m = await client.req('GET', `/v2/${repo}/manifests/${image.manifestDigest}`);
        assert.equal(m.status, 200);
        for (const b of [image.config, ...image.layers]) assert.equal(await client.blobStatus(repo, b.digest), 200);
      }
      // Garbage older than the grace period is gone.
      const gone = async (): Promise<boolean> =>
        !fs.existsSync(blobFile(server.root, sha256(stray))) && !fs.existsSync(blobFile(server.root, garbage.manifestDigest));
      const until = Date.now() + 3000;
      while (!(await gone()) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      assert.ok(await gone(), 'garbage past the grace period was collected');
    } finally {
      await server.stop();
      await removeDir(server.root);
    }
  });

  it('abandoned uploads are purged, fresh ones are not', async () => {
    const server = await startBerth({ args: ['--gc-grace', '0s', '--upload-purge-after', '1s'] });
    try {
      const client = new RegistryClient(server.url);
      const old = await client.startUpload('purge/app');
      await new Promise((r) => setTimeout(r, 1200));
      const fresh = await client.startUpload('purge/app');
      const { report } = gcCommand(server.root);
      assert.equal(report.uploadsPurged, 1);
      assert.equal((await client.req('GET', old)).status, 404);
      assert.equal((await client.req('GET', fresh)).status, 204);
      await fsp.access(server.root);
    } finally {
      await server.stop();
      await removeDir(server.root);
    }
  });
});
