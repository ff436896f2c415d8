/**
 * Where everything lives under the registry root. Only this module builds
 * paths; callers pass names and digests that were already validated.
 *
 *   blobs/sha256/<2 hex>/<64 hex>             verified content, shared by all repositories
 *   repositories/<name>/_blobs/<hex>          the repository may serve this blob (empty file)
 *   repositories/<name>/_manifests/<hex>      a manifest revision; content is its Content-Type
 *   repositories/<name>/_tags/<tag>           a tag; content is the manifest digest
 *   repositories/<name>/_referrers/<subject hex>/<hex>   descriptor JSON of a referrer
 *   uploads/<uuid>/{data,info.json}           uploads in flight
 *   tmp/                                      temporary files, removed at start
 */
import path from 'node:path';
import type { Digest } from '../../core/images/digest.js';

export class Layout {
  readonly root: string;
  readonly blobsDir: string;
  readonly reposDir: string;
  readonly uploadsDir: string;
  readonly tmpDir: string;
  readonly authDir: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.blobsDir = path.join(this.root, 'blobs', 'sha256');
    this.reposDir = path.join(this.root, 'repositories');
    this.uploadsDir = path.join(this.root, 'uploads');
    this.tmpDir = path.join(this.root, 'tmp');
    this.authDir = path.join(this.root, 'auth');
  }

  blobPath(digest: Digest): string {
    const hex = digest.slice(7);
    return path.join(this.blobsDir, hex.slice(0, 2), hex);
  }

  repoDir(name: string): string {
    return path.join(this.reposDir, ...name.split('/'));
  }

  blobLinkDir(name: string): string {
    return path.join(this.repoDir(name), '_blobs');
  }

  blobLink(name: string, digest: Digest): string {
    return path.join(this.blobLinkDir(name), digest.slice(7));
  }

  manifestsDir(name: string): string {
    return path.join(this.repoDir(name), '_manifests');
  }

  manifestRevision(name: string, digest: Digest): string {
    return path.join(this.manifestsDir(name), digest.slice(7));
  }

  tagsDir(name: string): string {
    return path.join(this.repoDir(name), '_tags');
  }

  tag(name: string, tag: string): string {
    return path.join(this.tagsDir(name), tag);
  }

  referrersRoot(name: string): string {
    return path.join(this.repoDir(name), '_referrers');
  }

  referrersDir(name: string, subject: Digest): string {
    return path.join(this.referrersRoot(name), subject.slice(7));
  }

  referrer(name: string, subject: Digest, digest: Digest): string {
    return path.join(this.referrersDir(name, subject), digest.slice(7));
  }

  uploadDir(uuid: string): string {
    return path.join(this.uploadsDir, uuid);
  }
}
