/**
 * A container's mounts as requested: `-v` (Binds), `--mount` (Mounts),
 * `--tmpfs`, the image's VOLUME entries, `--volumes-from`. Parsing and
 * validation only, with Docker's messages; the engine resolves and mounts.
 */
import path from 'node:path';
import { invalidArgument } from '../errdefs/index.js';
import type { MountSpec } from '../../api/types.js';

export type Propagation = 'rprivate' | 'private' | 'rshared' | 'shared' | 'rslave' | 'slave';
const PROPAGATIONS = new Set(['rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave']);

export interface MountRequest {
  type: 'bind' | 'volume' | 'tmpfs';
  /** Host path (bind), volume name ('' for anonymous), or '' (tmpfs). */
  source: string;
  target: string;
  readOnly: boolean;
  /** Bind propagation. */
  propagation?: Propagation;
  /** Skip copying the image's content into a new volume. */
  noCopy?: boolean;
  /** `-v /host:/ctr` creates a missing host directory; `--mount` refuses instead. */
  createHostPath?: boolean;
  /** Options for a volume created by this mount (--mount volume-opt=, volume-label=). */
  volumeDriverOpts?: Record<string, string>;
  volumeLabels?: Record<string, string>;
  /** tmpfs: mount data (size=, mode=) and flags. */
  tmpfsOptions?: string[];
  /** The mode string as the user gave it, for inspect (`ro,z`). */
  mode: string;
}

const RESERVED = ['/proc', '/sys', '/dev/pts'];
const VALID_MODES = new Set(['ro', 'rw', 'z', 'Z', 'nocopy', 'consistent', 'cached', 'delegated', ...PROPAGATIONS]);

export function validateTarget(target: string, kind: string): string {
  if (!target) throw invalidArgument(`invalid mount config for type "${kind}": field Target must not be empty`);
  if (!target.startsWith('/')) {
    throw invalidArgument(`invalid mount config for type "${kind}": invalid mount path: '${target}' mount path must be absolute`);
  }
  const clean = path.posix.normalize(target).replace(/\/+$/, '') || '/';
  if (clean === '/') throw invalidArgument(`invalid mount config for type "${kind}": destination can't be '/'`);
  if (RESERVED.some((r) => clean === r || clean.startsWith(`${r}/`))) {
    throw invalidArgument(`invalid mount config for type "${kind}": cannot mount over ${clean}: it is reserved for the container's own filesystem`);
  }
  return clean;
}

export const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function validateVolumeName(name: string): void {
  if (!VOLUME_NAME_RE.test(name)) {
    throw invalidArgument(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
  }
}

/** `-v SRC:DST[:MODE]`, `-v DST` (anonymous). */
export function parseBind(spec: string): MountRequest {
  const parts = spec.split(':');
  if (parts.length > 3 || parts.some((p, i) => p === '' && i < parts.length)) {
    throw invalidArgument(`invalid volume specification: '${spec}'`);
  }
  let source = '';
  let target: string;
  let mode = '';
  if (parts.length === 1) target = parts[0];
  else if (parts.length === 2) {
    // "/ctr:ro" is an anonymous volume with a mode; "src:/ctr" a source and target
    if (parts[1].split(',').every((m) => VALID_MODES.has(m))) [target, mode] = parts;
    else [source, target] = parts;
  } else [source, target, mode] = parts;

  const req: MountRequest = { type: 'volume', source, target: '', readOnly: false, mode };
  if (source.startsWith('/')) {
    req.type = 'bind';
    req.source = path.posix.normalize(source);
    req.createHostPath = true;
  } else if (source) {
    validateVolumeName(source);
  }
  req.target = validateTarget(target, req.type);
  for (const opt of mode ? mode.split(',') : []) {
    switch (opt) {
      case 'ro':
        req.readOnly = true;
        break;
      case 'rw':
        req.readOnly = false;
        break;
      case 'z':
      case 'Z':
        // SELinux relabelling: this host has no SELinux, so there is nothing to relabel
        break;
      case 'nocopy':
        if (req.type !== 'volume') throw invalidArgument(`invalid mode: ${opt} (only for volumes)`);
        req.noCopy = true;
        break;
      case 'consistent':
      case 'cached':
      case 'delegated':
        break;
      default:
        if (PROPAGATIONS.has(opt)) {
          if (req.type !== 'bind') throw invalidArgument(`invalid mode: ${opt} (propagation is for bind mounts)`);
          req.propagation = opt as Propagation;
        } else throw invalidArgument(`invalid mode: ${opt}`);
    }
  }
  return req;
}

/** The long form (--mount type=...,source=,target=,...), already decoded into Docker's shape. */
export function fromMountSpec(m: MountSpec): MountRequest {
  const kind = m.Type;
  if (kind !== 'bind' && kind !== 'volume' && kind !== 'tmpfs') throw invalidArgument(`mount type "${kind}" is not supported`);
  const target = validateTarget(m.Target, kind);
  const req: MountRequest = { type: kind, source: m.Source ?? '', target, readOnly: m.ReadOnly ?? false, mode: '' };
  if (kind === 'bind') {
    if (!req.source) throw invalidArgument('invalid mount config for type "bind": field Source must not be empty');
    if (!req.source.startsWith('/')) throw invalidArgument(`invalid mount config for type "bind": invalid mount path: '${req.source}' mount path must be absolute`);
    if (m.VolumeOptions) throw invalidArgument('invalid mount config for type "bind": VolumeOptions must not be specified');
    const p = m.BindOptions?.Propagation;
    if (p) {
      if (!PROPAGATIONS.has(p)) throw invalidArgument(`invalid propagation mode: ${p}`);
      req.propagation = p as Propagation;
    }
    req.source = path.posix.normalize(req.source);
    req.createHostPath = m.BindOptions?.CreateMountpoint ?? false;
  } else if (kind === 'volume') {
    if (req.source) validateVolumeName(req.source);
    if (m.BindOptions) throw invalidArgument('invalid mount config for type "volume": BindOptions must not be specified');
    req.noCopy = m.VolumeOptions?.NoCopy ?? false;
    const driver = m.VolumeOptions?.DriverConfig?.Name;
    if (driver && driver !== 'local') throw invalidArgument(`volume driver "${driver}" is not available: only "local"`);
    req.volumeDriverOpts = m.VolumeOptions?.DriverConfig?.Options;
    req.volumeLabels = m.VolumeOptions?.Labels;
  } else {
    if (req.source) throw invalidArgument('invalid mount config for type "tmpfs": Source must not be specified');
    const opts: string[] = [];
    if (m.TmpfsOptions?.SizeBytes) {
      if (m.TmpfsOptions.SizeBytes < 0) throw invalidArgument('invalid tmpfs size');
      opts.push(`size=${m.TmpfsOptions.SizeBytes}`);
    }
    if (m.TmpfsOptions?.Mode) opts.push(`mode=${m.TmpfsOptions.Mode.toString(8)}`);
    req.tmpfsOptions = opts;
  }
  return req;
}

/** `--tmpfs /run:size=64m,noexec` */
export function fromTmpfs(target: string, options: string): MountRequest {
  const clean = validateTarget(target, 'tmpfs');
  const opts = options ? options.split(',').filter(Boolean) : [];
  for (const o of opts) {
    const [k, v] = o.split('=');
    if (k === 'size' && !/^\d+[kmgKMG%]?$/.test(v ?? '')) throw invalidArgument(`invalid tmpfs option: ${o}`);
    if (k === 'mode' && !/^[0-7]{3,4}$/.test(v ?? '')) throw invalidArgument(`invalid tmpfs option: ${o}`);
  }
  return { type: 'tmpfs', source: '', target: clean, readOnly: opts.includes('ro'), tmpfsOptions: opts.filter((o) => o !== 'ro' && o !== 'rw'), mode: options };
}

/** Mount options for tmpfs: Docker's defaults (nosuid, nodev, noexec unless exec) plus the user's. */
export function tmpfsMountOptions(req: MountRequest): string[] {
  const user = req.tmpfsOptions ?? [];
  const out = ['nosuid', 'nodev'];
  if (!user.includes('exec')) out.push('noexec');
  for (const o of user) if (o !== 'exec' && !out.includes(o)) out.push(o);
  if (req.readOnly) out.push('ro');
  return out;
}
