/**
 * docker commit: a container's writable layer and config become a new image
 * on top of the container's image. The container is paused meanwhile unless
 * asked not to, so the layer is a consistent snapshot.
 */
import type { Readable } from 'node:stream';
import type { ContainerConfig } from '../../api/types.js';
import type { EventBus } from '../../core/events/bus.js';
import { applyChanges } from '../../core/images/changes.js';
import type { ImageRunConfig } from '../../core/images/types.js';
import { familiarString, parseReference, withDefaultTag, type Reference } from '../../core/images/reference.js';
import { conflict, invalidArgument, notFound } from '../../core/errdefs/index.js';
import { packLayer } from '../archive/pack-layer.js';
import type { ImageCommitter } from '../images/commit.js';
import type { ImageService } from '../images/image-service.js';
import type { ContainerService } from './container-service.js';

export interface CommitOptions {
  repo?: string;
  tag?: string;
  comment?: string;
  author?: string;
  /** Default true, as in Docker. */
  pause?: boolean;
  changes?: string[];
  /** A config to start from instead of the container's (the API body). */
  config?: Partial<ContainerConfig>;
}

/**
 * Files the daemon mounts into every container: their mount points end up in
 * the upper dir but are not the container's changes (Docker keeps them in a
 * separate init layer that commit leaves out).
 */
const MOUNTPOINT_FILES = new Set(['etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'sbin/docker-init', '.dockerenv']);
const MOUNTPOINT_DIRS = new Set(['dev', 'proc', 'sys']);
/** Directories copied up only to hold those mount points. */
const MOUNTPOINT_PARENTS = new Set(['etc', 'sbin']);

/** A container's writable layer as a layer tar, without the daemon's mount points. */
export function packContainerLayer(upperDir: string): Readable {
  return packLayer(upperDir, {
    exclude: (rel, st) => MOUNTPOINT_DIRS.has(rel) || (MOUNTPOINT_FILES.has(rel) && st.isFile() && st.size === 0),
    omitIfEmpty: (rel) => MOUNTPOINT_PARENTS.has(rel),
  });
}

export class ContainerCommitter {
  constructor(
    private readonly containers: ContainerService,
    private readonly images: ImageService,
    private readonly committer: ImageCommitter,
    private readonly events: EventBus,
  ) {}

  async commit(input: string, options: CommitOptions): Promise<{ Id: string }> {
    const c = this.containers.resolve(input);
    const ref = this.reference(options);
    if (!this.images.store.get(c.image)) {
      throw notFound(`the image of container ${c.name} (${c.image}) was removed; cannot commit it`);
    }
    if (c.state.Dead) throw conflict(`You cannot commit container ${c.id} which is Dead`);

    const base = runConfigOf({ ...c.config, ...(options.config ?? {}) } as ContainerConfig);
    const config = fillFrom(applyChanges(base, options.changes ?? []), runConfigOf(c.config));

    const pause = (options.pause ?? true) && c.state.Running && !c.state.Paused;
    if (pause) await this.containers.pause(c.id);
    let image;
    try {
      const layer = packContainerLayer(await this.containers.upperDir(c.id));
      image = await this.committer.commit({
        parent: c.image,
        layer,
        config,
        author: options.author,
        comment: options.comment,
        createdBy: (c.config.Cmd ?? []).join(' '),
        container: { id: c.id, config: runConfigOf(c.config) },
      });
    } finally {
      if (pause) await this.containers.unpause(c.id).catch(() => {});
    }
    if (ref) await this.images.tagReference(image.id, ref);
    this.events.publish('container', 'commit', c.id, {
      ...this.containers.eventAttributes(c),
      comment: options.comment ?? '',
      imageID: image.id,
      imageRef: ref ? familiarString(ref) : '',
    });
    return { Id: image.id };
  }

  private reference(options: CommitOptions): Reference | undefined {
    if (!options.repo) {
      if (options.tag) throw invalidArgument('a tag needs a repository name');
      return undefined;
    }
    let ref = parseReference(options.repo);
    if (ref.digest) throw invalidArgument('refusing to create a tag with a digest reference');
    if (options.tag) {
      if (ref.tag) throw invalidArgument('cannot give a tag both in the repository name and as tag');
      ref = { ...ref, tag: options.tag };
    }
    return withDefaultTag(ref);
  }
}

/** A container config as stored in an image config (nulls left out). */
export function runConfigOf(c: ContainerConfig): ImageRunConfig {
  const out: ImageRunConfig = {
    Hostname: c.Hostname,
    Domainname: c.Domainname,
    User: c.User,
    AttachStdin: c.AttachStdin,
    AttachStdout: c.AttachStdout,
    AttachStderr: c.AttachStderr,
    Tty: c.Tty,
    OpenStdin: c.OpenStdin,
    StdinOnce: c.StdinOnce,
    Cmd: c.Cmd,
    Image: c.Image,
    WorkingDir: c.WorkingDir,
    Entrypoint: c.Entrypoint,
    OnBuild: c.OnBuild,
  };
  if (c.Env) out.Env = [...c.Env];
  if (c.ExposedPorts) out.ExposedPorts = { ...c.ExposedPorts };
  if (c.Volumes) out.Volumes = { ...c.Volumes };
  if (c.Labels) out.Labels = { ...c.Labels };
  if (c.StopSignal) out.StopSignal = c.StopSignal;
  if (c.Healthcheck) out.Healthcheck = c.Healthcheck;
  if (c.Shell) out.Shell = c.Shell;
  if (c.ArgsEscaped !== undefined) out.ArgsEscaped = c.ArgsEscaped;
  return out;
}

/** Docker's commit merge: what the new config leaves empty comes from the container's. */
export function fillFrom(user: ImageRunConfig, container: ImageRunConfig): ImageRunConfig {
  const out = { ...user };
  if (!out.User) out.User = container.User;
  out.ExposedPorts = { ...(container.ExposedPorts ?? {}), ...(out.ExposedPorts ?? {}) };
  if (!Object.keys(out.ExposedPorts).length) delete out.ExposedPorts;
  const keys = new Set((out.Env ?? []).map((e) => e.split('=')[0]));
  out.Env = [...(out.Env ?? []), ...(container.Env ?? []).filter((e) => !keys.has(e.split('=')[0]))];
  out.Labels = { ...(container.Labels ?? {}), ...(out.Labels ?? {}) };
  if (!out.Entrypoint?.length) {
    if (!out.Cmd?.length) out.Cmd = container.Cmd;
    if (out.Entrypoint === undefined || out.Entrypoint === null) out.Entrypoint = container.Entrypoint;
  }
  if (!out.WorkingDir) out.WorkingDir = container.WorkingDir;
  out.Volumes = { ...(container.Volumes ?? {}), ...(out.Volumes ?? {}) };
  if (!Object.keys(out.Volumes).length) delete out.Volumes;
  if (!out.StopSignal && container.StopSignal) out.StopSignal = container.StopSignal;
  if (!out.Healthcheck && container.Healthcheck) out.Healthcheck = container.Healthcheck;
  return out;
}
