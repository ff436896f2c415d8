/** Checks on a test daemon's data root after failed operations: nothing half-written stays. */
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { TestDaemon } from './daemon.js';
import { sha256 } from './oci.js';

/** No ingest files, no layer drafts, no layer that no image needs, no temporary load directories. */
export async function assertNoLeftovers(d: TestDaemon): Promise<void> {
  const root = d.dataRoot;
  assert.deepEqual(await fsp.readdir(path.join(root, 'content/ingest')), [], 'ingest/ is empty');
  const drafts = (await fsp.readdir(path.join(root, 'snapshots/drafts'))).filter((n) => !n.startsWith('rm-'));
  assert.deepEqual(drafts, [], 'no layer drafts');
  assert.deepEqual(await fsp.readdir(path.join(root, 'tmp')).catch(() => []), [], 'no temporary load directories');
  const images = await d.client.json<{ Id: string }[]>('GET', '/images/json', { query: { all: true } });
  const keepLayers = new Set<string>();
  for (const img of images) {
    const ins = await d.client.json<{ RootFS: { Layers: string[] } }>('GET', `/images/${img.Id}/json`);
    let chain = '';
    for (const diff of ins.RootFS.Layers) {
      chain = chain ? sha256(`${chain} ${diff}`) : diff;
      keepLayers.add(chain.slice(7));
    }
  }
  const layers = await fsp.readdir(path.join(root, 'snapshots/layers'));
  assert.deepEqual(layers.filter((l) => !keepLayers.has(l)), [], 'no layer without an image');
}
