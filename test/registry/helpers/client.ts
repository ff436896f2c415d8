/** Registry operations for tests, in the exact request shapes real clients use. */
import assert from 'node:assert/strict';
import { type Image, type Digest, sha256 } from './images.js';
import { type Response, request, resolveLocation, withQuery } from './http.js';

export type UploadShape = 'patch-whole' | 'put-body' | 'chunked' | 'single-post';

export class RegistryClient {
  constructor(
    readonly base: string,
    readonly headers: Record<string, string> = {},
  ) {}

  req(method: string, path: string, options: { headers?: Record<string, string | number>; body?: Buffer | string } = {}): Promise<Response> {
    const url = path.startsWith('http') ? path : `${this.base}${path}`;
    return request(method, url, { headers: { ...this.headers, ...options.headers }, ...(options.body === undefined ? {} : { body: options.body }) });
  }

  async startUpload(repo: string): Promise<string> {
    const res = await this.req('POST', `/v2/${repo}/blobs/uploads/`, { headers: { 'Content-Length': 0 } });
    assert.equal(res.status, 202, `POST uploads: ${res.status} ${res.text()}`);
    return resolveLocation(this.base, res.headers.location);
  }

  /** Pushes a blob in one of the three upload shapes (or the single POST); returns the final response. */
  async pushBlob(repo: string, data: Buffer, shape: UploadShape = 'patch-whole', chunk = 1000): Promise<Response> {
    const digest = sha256(data);
    if (shape === 'single-post') {
      const res = await this.req('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length },
        body: data,
      });
      if (res.status !== 202) return res;
      // A registry without single-POST support answers 202: finish with PUT, as the spec says.
      return this.req('PUT', withQuery(resolveLocation(this.base, res.headers.location), { digest }), {
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length },
        body: data,
      });
    }
    let location = await this.startUpload(repo);
    if (shape === 'put-body') {
      return this.req('PUT', withQuery(location, { digest }), { headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length }, body: data });
    }
    if (shape === 'patch-whole') {
      const res = await this.req('PATCH', location, { headers: { 'Content-Type': 'application/octet-stream' }, body: data });
      assert.equal(res.status, 202, `PATCH: ${res.status} ${res.text()}`);
      location = resolveLocation(this.base, res.headers.location);
    } else {
      for (let off = 0; off < data.length; off += chunk) {
        const part = data.subarray(off, Math.min(off + chunk, data.length));
        const res = await this.req('PATCH', location, {
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${off}-${off + part.length - 1}`, 'Content-Length': part.length },
          body: part,
        });
        assert.equal(res.status, 202, `PATCH chunk at ${off}: ${res.status} ${res.text()}`);
        assert.equal(res.headers.range, `0-${off + part.length - 1}`);
        location = resolveLocation(this.base, res.headers.location);
      }
    }
    return this.req('PUT', withQuery(location, { digest }), { headers: { 'Content-Length': 0 } });
  }

  async putManifest(repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<Response> {
    return this.req('PUT', `/v2/${repo}/manifests/${ref}`, { headers: { 'Content-Type': mediaType }, body: bytes });
  }

  async pushImage(repo: string, tag: string, image: Image, shape: UploadShape = 'patch-whole'): Promise<void> {
    for (const blob of [image.config, ...image.layers]) {
      const res = await this.pushBlob(repo, blob.data, shape);
      assert.equal(res.status, 201, `blob push: ${res.status} ${res.text()}`);
    }
    const res = await this.putManifest(repo, tag, image.manifest, image.mediaType);
    assert.equal(res.status, 201, `manifest push: ${res.status} ${res.text()}`);
    assert.equal(res.headers['docker-content-digest'], image.manifestDigest);
  }

  async blobStatus(repo: string, digest: Digest): Promise<number> {
    return (await this.req('HEAD', `/v2/${repo}/blobs/${digest}`)).status;
  }
}

export function errorCodes(res: Response): string[] {
  try {
    return res.json<{ errors: { code: string }[] }>().errors.map((e) => e.code);
  } catch {
    return [];
  }
}
