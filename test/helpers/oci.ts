/**
 * Test images built by hand and uploaded straight to a registry with the
 * OCI Distribution API (no daemon in between), for shapes a daemon would
 * not push: other architectures, zstd and uncompressed layers, indexes,
 * unsupported media types. Also a TCP proxy in front of a registry that can
 * cut a blob download once (to exercise Range resume) or throttle it (to
 * interrupt a pull at a known point).
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';

export function sha256(data: Buffer | string): string {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

export async function uploadBlob(base: string, repo: string, data: Buffer, headers: Record<string, string> = {}): Promise<{ digest: string; size: number }> {
  const digest = sha256(data);
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  if (start.status !== 202) throw new Error(`upload start: ${start.status} ${await start.text()}`);
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', body: data, headers: { ...headers, 'Content-Type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`upload put: ${put.status} ${await put.text()}`);
  return { digest, size: data.length };
}

export async function putManifest(base: string, repo: string, reference: string, body: unknown, mediaType: string, headers: Record<string, string> = {}): Promise<{ digest: string; size: number }> {
  const bytes = Buffer.from(JSON.stringify(body));
  const res = await fetch(`${base}/v2/${repo}/manifests/${reference}`, { method: 'PUT', body: bytes, headers: { ...headers, 'Content-Type': mediaType } });
  if (res.status !== 201) throw new Error(`manifest put: ${res.status} ${await res.text()}`);
  return { digest: sha256(bytes), size: bytes.length };
}

export type LayerCompression = 'gzip' | 'zstd' | 'none';

export function compress(tar: Buffer, how: LayerCompression): Buffer {
  if (how === 'none') return tar;
  return execFileSync(how === 'gzip' ? 'gzip' : 'zstd', ['-c', '-q'], { input: tar, maxBuffer: 1 << 30 });
}

/** Uploads a one-layer image; returns its manifest descriptor. */
export async function uploadImage(
  base: string,
  repo: string,
  o: { layerTar: Buffer; compression: LayerCompression; architecture: string; tag?: string; cmd?: string[]; layerMediaType?: string; configMediaType?: string },
): Promise<{ digest: string; size: number; configDigest: string; layerDigest: string }> {
  const blob = compress(o.layerTar, o.compression);
  const layer = await uploadBlob(base, repo, blob);
  const config = Buffer.from(
    JSON.stringify({
      architecture: o.architecture,
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      config: { Cmd: o.cmd ?? ['sh'], Env: ['PATH=/bin:/usr/bin'] },
      rootfs: { type: 'layers', diff_ids: [sha256(o.layerTar)] },
      history: [{ created: '2024-01-01T00:00:00Z', created_by: 'berth test' }],
    }),
  );
  const cfg = await uploadBlob(base, repo, config);
  const layerMediaType =
    o.layerMediaType ??
    { gzip: 'application/vnd.oci.image.layer.v1.tar+gzip', zstd: 'application/vnd.oci.image.layer.v1.tar+zstd', none: 'application/vnd.oci.image.layer.v1.tar' }[o.compression];
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: o.configMediaType ?? 'application/vnd.oci.image.config.v1+json', digest: cfg.digest, size: cfg.size },
    layers: [{ mediaType: layerMediaType, digest: layer.digest, size: layer.size }],
  };
  const m = await putManifest(base, repo, o.tag ?? sha256(Buffer.from(JSON.stringify(manifest))), manifest, manifest.mediaType);
  return { ...m, configDigest: cfg.digest, layerDigest: layer.digest };
}

/** A TCP proxy to a registry: can cut the first blob download after some bytes, or throttle blob bytes. */
export class RegistryProxy {
  blobRequests = 0;
  rangeRequests = 0;
  bytesServed = 0;
  private cut = false;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly host: string,
  ) {}

  static async start(target: string, o: { cutFirstBlobAfter?: number; blobBytesPerSecond?: number } = {}): Promise<RegistryProxy> {
    const [thost, tport] = target.split(':');
    let proxy!: RegistryProxy;
    const server = net.createServer((client) => {
      const upstream = net.connect(Number(tport), thost);
      proxy.sockets.add(client);
      proxy.sockets.add(upstream);
      let blobResponse = false;
      let cutThis = false;
      let served = 0;
      client.on('data', (chunk) => {
        const text = chunk.toString('latin1');
        if (/^GET \S+\/blobs\/sha256:/m.test(text)) {
          proxy.blobRequests++;
          blobResponse = true;
          served = 0;
          const ranged = /^range:/im.test(text);
          if (ranged) proxy.rangeRequests++;
          cutThis = o.cutFirstBlobAfter !== undefined && !ranged && !proxy.cut;
        } else if (/^[A-Z]+ /.test(text)) {
          blobResponse = false;
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => {
        if (!blobResponse) return void client.write(chunk);
        served += chunk.length;
        proxy.bytesServed += chunk.length;
        if (cutThis && served > o.cutFirstBlobAfter!) {
          proxy.cut = true;
          client.destroy();
          upstream.destroy();
          return;
        }
        if (o.blobBytesPerSecond) {
          upstream.pause();
          setTimeout(() => {
            if (!client.destroyed) client.write(chunk);
            upstream.resume();
          }, (chunk.length / o.blobBytesPerSecond) * 1000);
        } else client.write(chunk);
      });
      const close = (): void => {
        client.destroy();
        upstream.destroy();
        proxy.sockets.delete(client);
        proxy.sockets.delete(upstream);
      };
      client.on('error', close);
      upstream.on('error', close);
      client.on('close', close);
      upstream.on('close', close);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new RegistryProxy(server, `127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    return proxy;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
