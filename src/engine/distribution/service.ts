/**
 * DistributionService: what the Engine API asks of registries — pull,
 * push and login — over one registry configuration. Owns the Puller (and
 * its shared layer downloads) and the Pusher.
 */
import type { ContentStore } from '../../core/content/store.js';
import type { Snapshotter } from '../../core/snapshots/snapshotter.js';
import { type Reference, familiarString } from '../../core/images/reference.js';
import type { Platform } from '../../core/images/types.js';
import { unauthorized } from '../../core/errdefs/index.js';
import type { EventBus } from '../../core/events/bus.js';
import type { ImageService } from '../images/image-service.js';
import type { Logger } from '../../util/log.js';
import { type AuthConfig, redacted, registryErrorText } from './auth.js';
import { RegistryClient } from './registry-client.js';
import { type RegistryConfig, RegistryHosts } from './registry-hosts.js';
import { type ProgressSink } from './progress.js';
import { type PullResult, Puller } from './pull.js';
import { type PushedTag, Pusher } from './push.js';

export class DistributionService {
  readonly hosts: RegistryHosts;
  private readonly puller: Puller;
  private readonly pusher: Pusher;

  constructor(
    content: ContentStore,
    snapshots: Snapshotter,
    private readonly images: ImageService,
    private readonly events: EventBus,
    config: RegistryConfig,
    private readonly log: Logger,
  ) {
    this.hosts = new RegistryHosts(config);
    this.puller = new Puller(content, snapshots, images, this.hosts, log.child({ op: 'pull' }));
    this.pusher = new Pusher(content, images, this.hosts, log.child({ op: 'push' }));
  }

  /**
   * The reference of POST /images/create?fromImage=&tag=: the tag may be a
   * digest (the docker CLI sends `name` + `sha256:...` that way).
   */
  async pull(ref: Reference, o: { platform?: Platform; auth?: AuthConfig; progress: ProgressSink; signal?: AbortSignal }): Promise<PullResult> {
    this.log.info('pulling', { ref: familiarString(ref), auth: redacted(o.auth) });
    const result = await this.puller.pull({ ref, platform: o.platform, auth: o.auth, progress: o.progress, signal: o.signal });
    this.events.publish('image', 'pull', result.id, { name: familiarString(ref) });
    const shown = familiarString(ref);
    o.progress({ status: result.upToDate ? `Status: Image is up to date for ${shown}` : `Status: Downloaded newer image for ${shown}` });
    return result;
  }

  async push(ref: Reference, o: { auth?: AuthConfig; progress: ProgressSink; signal?: AbortSignal }): Promise<PushedTag[]> {
    this.log.info('pushing', { ref: familiarString(ref), auth: redacted(o.auth) });
    const pushed = await this.pusher.push({ ref, auth: o.auth, progress: o.progress, signal: o.signal });
    for (const p of pushed) {
      const id = this.images.store.tagTarget(`${ref.domain}/${ref.path}:${p.tag}`);
      if (id) this.events.publish('image', 'push', id, { name: familiarString({ ...ref, tag: p.tag }) });
    }
    return pushed;
  }

  /** POST /auth: checks credentials against the registry's /v2/ (Basic, or a token from its realm). */
  async login(auth: AuthConfig): Promise<{ Status: string; IdentityToken: string }> {
    const host = registryHostOf(auth.serveraddress);
    const client = new RegistryClient(this.hosts.endpoint(host), auth);
    const res = await client.send({ method: 'GET', url: '/v2/', scopes: [] });
    if (res.statusCode === 200) {
      res.resume();
      this.log.info('login succeeded', { registry: host, auth: redacted(auth) });
      return { Status: 'Login Succeeded', IdentityToken: '' };
    }
    const text = await registryErrorText(res);
    this.log.info('login failed', { registry: host, auth: redacted(auth), status: res.statusCode });
    throw unauthorized(`login attempt to ${host}/v2/ failed with status: ${res.statusCode} ${res.statusMessage ?? ''}${text ? `: ${text}` : ''}`.trim());
  }
}

/** "https://index.docker.io/v1/", "localhost:5000", "http://127.0.0.1:5000/" -> the registry host. */
export function registryHostOf(serverAddress: string | undefined): string {
  let s = (serverAddress ?? '').trim();
  if (!s) return 'registry-1.docker.io';
  s = s.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (s === 'index.docker.io' || s === 'docker.io' || s === 'registry-1.docker.io') return 'registry-1.docker.io';
  return s;
}
