/**
 * The classic builder: runs a Dockerfile's stages step by step. Every step
 * makes an image on top of the previous one (as Docker's classic builder
 * does), found again through the build cache when the same step runs on the
 * same parent. RUN runs in a real container (ContainerService); COPY, ADD
 * and WORKDIR write into an overlay of the image whose upper dir becomes
 * the step's layer; the other instructions only change the config.
 *
 * Only the stages the target needs are built.
 */
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { CreateContainerBody, HostConfig } from '../../api/types.js';
import { type Dockerfile, type Instruction, type Stage, nameValuePairs, parseDockerfile, parseInstruction } from '../../core/build/dockerfile.js';
import { type BuildEnv, envMap, processWord, processWords } from '../../core/build/shell-lex.js';
import { parseSignal } from '../../core/containers/signals.js';
import { type Digest, chainIDs } from '../../core/images/digest.js';
import { type Reference, familiarString } from '../../core/images/reference.js';
import { type HealthConfig, type ImageRunConfig, hostPlatform } from '../../core/images/types.js';
import { type Snapshotter, type OverlayMount } from '../../core/snapshots/snapshotter.js';
import { errorMessage, invalidArgument, notFound } from '../../core/errdefs/index.js';
import { shortId } from '../../util/ids.js';
import type { Logger } from '../../util/log.js';
import { parseGoDuration } from '../../util/units.js';
import { applyLayer } from '../archive/apply-layer.js';
import { decompressed, detectCompression } from '../archive/compression.js';
import { packLayer } from '../archive/pack-layer.js';
import type { AttachClient } from '../containers/attach.js';
import { packContainerLayer } from '../containers/commit.js';
import type { ContainerService } from '../containers/container-service.js';
import type { ImageCommitter } from '../images/commit.js';
import type { ImageService } from '../images/image-service.js';
import { MNT_DETACH, native } from '../runtime/native.js';
import { resolveUser } from '../runtime/user.js';
import { overlayOptions } from '../snapshots/overlay.js';
import type { BuildCache } from './cache.js';
import type { BuildContext } from './context.js';
import { type CopyPlanItem, RootfsWriter, planCopy } from './copy.js';
import { DirectoryTree, type SourceTree, treeChecksum } from './source-tree.js';

export interface BuildOptions {
  dockerfile: string;
  tags: Reference[];
  buildArgs: Record<string, string | null>;
  labels: Record<string, string>;
  noCache: boolean;
  pull: boolean;
  target?: string;
  quiet: boolean;
  /** Remove intermediate containers after a successful step (default true). */
  rm: boolean;
  /** Remove them even after a failed step. */
  forceRm: boolean;
  networkMode?: string;
  /** Resource limits for RUN containers. */
  resources: Partial<Pick<HostConfig, 'Memory' | 'MemorySwap' | 'CpuShares' | 'CpuPeriod' | 'CpuQuota' | 'CpusetCpus' | 'CpusetMems' | 'ShmSize'>>;
  extraHosts: string[];
  platform?: string;
}

/** Where the build's progress goes (the JSON stream's "stream" and "aux" messages). */
export interface BuildOutput {
  stream(text: string): void;
  aux(value: Record<string, unknown>): void;
}

/** A RUN step that exited non-zero: its code becomes the client's exit code. */
export class BuildStepError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

export interface BuilderDeps {
  images: ImageService;
  containers: ContainerService;
  committer: ImageCommitter;
  snapshots: Snapshotter;
  cache: BuildCache;
  /** Scratch space for mounts and unpacked ADD archives. */
  workDir: string;
  log: Logger;
  /** Pulls an image for FROM and COPY --from (absent: local images only). */
  pull?: (reference: string, output: BuildOutput, signal: AbortSignal) => Promise<void>;
}

/** Build args any step may use without an ARG line (and that stay out of the cache key). */
const PREDEFINED_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

const DEFAULT_SHELL = ['/bin/sh', '-c'];

interface StageState {
  stage: Stage;
  /** Current image; null before the first commit of a FROM scratch stage. */
  image: Digest | null;
  config: ImageRunConfig;
  /** ARGs declared in this stage, with their values (undefined: declared, no value). */
  args: Map<string, string | undefined>;
  shell: string[];
  cmdSet: boolean;
}

/** The Dockerfile's text from the context, parsed; errors name the file and line. */
export async function readDockerfile(context: BuildContext, name: string): Promise<Dockerfile> {
  const cleaned = path.posix.normalize(name || 'Dockerfile').replace(/^\.\//, '');
  if (cleaned.startsWith('../') || cleaned.startsWith('/')) throw invalidArgument(`the Dockerfile (${name}) must be within the build context`);
  let text = await context.readText(cleaned);
  // Docker also accepts a lower-case "dockerfile" when the default name is missing
  if (text === undefined && !name) text = await context.readText('dockerfile');
  if (text === undefined) throw notFound(`Cannot locate specified Dockerfile: ${name || 'Dockerfile'}`);
  await context.applyDockerignore(cleaned);
  return parseDockerfile(text);
}

export class Builder {
  private stepNumber = 0;
  private totalSteps = 0;
  private readonly stageImages = new Map<number, Digest | null>();
  private readonly usedArgs = new Set<string>();
  private readonly cleanups: (() => Promise<void>)[] = [];

  constructor(
    private readonly deps: BuilderDeps,
    private readonly dockerfile: Dockerfile,
    private readonly context: BuildContext,
    private readonly options: BuildOptions,
    private readonly out: BuildOutput,
    private readonly signal: AbortSignal,
  ) {}

  /** Runs the build; resolves with the final image ID (tags applied). */
  async run(): Promise<Digest> {
    const df = this.dockerfile;
    const globalArgs = this.globalArgs();
    const target = this.targetStage();
    if (Object.keys(this.options.labels).length) {
      const text = 'LABEL ' + Object.entries(this.options.labels).map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`).join(' ');
      target.instructions.push(parseInstruction(text, target.instructions.at(-1)?.line ?? target.from.line));
    }
    const needed = this.neededStages(target, globalArgs);
    this.totalSteps = needed.reduce((n, s) => n + 1 + s.instructions.length, 0);
    let final: Digest | null = null;
    try {
      for (const stage of needed) {
        final = await this.runStage(stage, globalArgs);
        this.stageImages.set(stage.index, final);
      }
    } finally {
      for (const cleanup of this.cleanups.reverse()) await cleanup().catch((err) => this.deps.log.warn('build cleanup failed', { error: errorMessage(err) }));
      await this.deps.cache.save().catch((err) => this.deps.log.warn('saving the build cache failed', { error: errorMessage(err) }));
    }
    if (!final) throw invalidArgument('No image was generated. Is your Dockerfile empty?');
    const unused = Object.keys(this.options.buildArgs).filter((k) => !this.usedArgs.has(k) && !PREDEFINED_ARGS.includes(k));
    if (unused.length) this.out.stream(`[Warning] One or more build-args [${unused.join(' ')}] were not consumed\n`);
    void df;
    return final;
  }

  // ---- stages ----------------------------------------------------------------

  private globalArgs(): Map<string, string | undefined> {
    const args = new Map<string, string | undefined>();
    for (const ins of this.dockerfile.globalArgs) {
      for (const [rawName, rawValue] of nameValuePairs(ins.args, 'ARG', this.dockerfile.escape)) {
        const name = rawName;
        const hasDefault = ins.args.includes('=');
        const provided = this.buildArg(name);
        const value = provided ?? (hasDefault ? processWord(rawValue, toEnv(args), this.dockerfile.escape) : undefined);
        args.set(name, value);
      }
    }
    return args;
  }

  private buildArg(name: string): string | undefined {
    const v = this.options.buildArgs[name];
    if (v === undefined || v === null) return undefined;
    this.usedArgs.add(name);
    return v;
  }

  private targetStage(): Stage {
    const stages = this.dockerfile.stages;
    if (!this.options.target) return stages[stages.length - 1];
    const t = this.options.target.toLowerCase();
    const found = stages.find((s) => s.name === t);
    if (!found) throw invalidArgument(`failed to reach build target ${this.options.target} in Dockerfile`);
    return found;
  }

  /** Stage a FROM or --from value names: by name, or by index for --from. */
  private stageRef(value: string, before: number, byIndex: boolean): Stage | undefined {
    const v = value.toLowerCase();
    const stages = this.dockerfile.stages.slice(0, before);
    const named = stages.find((s) => s.name === v);
    if (named) return named;
    if (byIndex && /^\d+$/.test(v)) {
      const i = Number(v);
      if (i >= before) throw invalidArgument(`invalid from flag value ${value}: refers to current or future build stage`);
      return stages[i];
    }
    return undefined;
  }

  private neededStages(target: Stage, globalArgs: Map<string, string | undefined>): Stage[] {
    const needed = new Set<number>();
    const visit = (stage: Stage): void => {
      if (needed.has(stage.index)) return;
      needed.add(stage.index);
      const base = stage.from.args.split(/\s+/)[0];
      const from = this.stageRef(processWord(base, toEnv(globalArgs), this.dockerfile.escape), stage.index, false);
      if (from) visit(from);
      for (const ins of stage.instructions) {
        const f = ins.flags.get('from');
        if ((ins.keyword === 'COPY' || ins.keyword === 'ADD') && f !== undefined) {
          const dep = this.stageRef(f, stage.index, true);
          if (dep) visit(dep);
        }
      }
    };
    visit(target);
    return this.dockerfile.stages.filter((s) => needed.has(s.index));
  }

  private async runStage(stage: Stage, globalArgs: Map<string, string | undefined>): Promise<Digest | null> {
    const state = await this.from(stage, globalArgs);
    for (const ins of stage.instructions) {
      this.checkAborted();
      this.step(ins.original);
      await this.dispatch(state, ins);
    }
    return state.image;
  }

  private step(text: string): void {
    this.stepNumber++;
    this.out.stream(`Step ${this.stepNumber}/${this.totalSteps} : ${text}\n`);
  }

  private checkAborted(): void {
    if (this.signal.aborted) throw new Error('the build was cancelled: the client went away');
  }

  private async from(stage: Stage, globalArgs: Map<string, string | undefined>): Promise<StageState> {
    this.step(stage.from.original);
    const platform = stage.from.flags.get('platform');
    if (platform !== undefined) {
      const p = processWord(platform, toEnv(globalArgs), this.dockerfile.escape);
      const host = hostPlatform();
      if (p && p !== `${host.os}/${host.architecture}` && p !== host.os) {
        throw invalidArgument(`FROM --platform=${p}: this daemon builds only for ${host.os}/${host.architecture}`);
      }
    }
    const name = processWord(stage.from.args.split(/\s+/)[0], toEnv(globalArgs), this.dockerfile.escape);
    if (!name) throw invalidArgument(`base name (${stage.from.args.split(/\s+/)[0]}) should not be blank`);
    const state: StageState = { stage, image: null, config: {}, args: new Map(), shell: DEFAULT_SHELL, cmdSet: false };
    // global args are visible to ARG lines without a value in the stage
    this.globalScope = globalArgs;
    const earlier = this.stageRef(name, stage.index, false);
    if (earlier) {
      state.image = this.stageImages.get(earlier.index) ?? null;
    } else if (name.toLowerCase() !== 'scratch') {
      state.image = await this.baseImage(name);
    }
    if (state.image) {
      state.config = structuredClone((await this.deps.images.config(state.image)).config ?? {});
      if (state.config.Shell?.length) state.shell = state.config.Shell;
    }
    this.out.stream(` ---> ${state.image ? shortId(state.image) : ''}\n`);
    const triggers = state.config.OnBuild ?? [];
    if (triggers.length) {
      this.out.stream(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? 's' : ''}\n`);
      state.config.OnBuild = null;
      for (const trigger of triggers) {
        const ins = parseInstruction(trigger, stage.from.line);
        await this.dispatch(state, ins);
      }
    }
    return state;
  }

  private globalScope = new Map<string, string | undefined>();

  /** A base image: local, or pulled when missing (or always with --pull). */
  private async baseImage(name: string): Promise<Digest> {
    const local = this.deps.images.tryResolve(name);
    if (local && !this.options.pull) return local.id;
    if (this.deps.pull) {
      try {
        await this.deps.pull(name, this.out, this.signal);
      } catch (err) {
        if (!local) throw err;
        this.out.stream(`pulling ${name} failed (${errorMessage(err)}); using the local image\n`);
      }
      const pulled = this.deps.images.tryResolve(name);
      if (pulled) return pulled.id;
    }
    if (local) return local.id;
    throw notFound(`pull access denied for ${name}, repository does not exist or may require 'docker login': no such image locally and no registry to pull it from`);
  }

  // ---- steps -----------------------------------------------------------------

  /** The variables instructions see: the stage's ARGs overridden by ENV. */
  private env(state: StageState): BuildEnv {
    const env = new Map<string, string>();
    for (const [k, v] of state.args) if (v !== undefined) env.set(k, v);
    for (const [k, v] of envMap(state.config.Env ?? [])) env.set(k, v);
    return env;
  }

  private word(state: StageState, text: string): string {
    return processWord(text, this.env(state), this.dockerfile.escape);
  }

  private words(state: StageState, text: string): string[] {
    return processWords(text, this.env(state), this.dockerfile.escape);
  }

  private async dispatch(state: StageState, ins: Instruction): Promise<void> {
    const c = state.config;
    switch (ins.keyword) {
      case 'ENV': {
        const pairs = nameValuePairs(ins.args, 'ENV', this.dockerfile.escape).map(([k, v]) => [this.word(state, k), this.word(state, v)] as const);
        let env = [...(c.Env ?? [])];
        for (const [k, v] of pairs) env = setEnv(env, k, v);
        c.Env = env;
        return this.commitConfig(state, `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
      }
      case 'LABEL': {
        const pairs = nameValuePairs(ins.args, 'LABEL', this.dockerfile.escape).map(([k, v]) => [this.word(state, k), this.word(state, v)] as const);
        c.Labels = { ...(c.Labels ?? {}) };
        for (const [k, v] of pairs) c.Labels[k] = v;
        return this.commitConfig(state, `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
      }
      case 'ARG': {
        const parts: string[] = [];
        for (const [name, raw] of nameValuePairs(ins.args, 'ARG', this.dockerfile.escape)) {
          const hasDefault = ins.args.includes(`${name}=`);
          const def = hasDefault ? this.word(state, raw) : this.globalScope.get(name);
          const value = this.buildArg(name) ?? def;
          state.args.set(name, value);
          parts.push(hasDefault ? `${name}=${def ?? ''}` : name);
        }
        return this.commitConfig(state, `ARG ${parts.join(' ')}`);
      }
      case 'EXPOSE': {
        const ports = this.words(state, ins.args).map(normalizePort);
        c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
        for (const p of ports) c.ExposedPorts[p] = {};
        return this.commitConfig(state, `EXPOSE ${ports.join(' ')}`);
      }
      case 'USER':
        c.User = this.word(state, ins.args);
        return this.commitConfig(state, `USER ${c.User}`);
      case 'STOPSIGNAL': {
        const sig = this.word(state, ins.args);
        parseSignal(sig);
        c.StopSignal = sig;
        return this.commitConfig(state, `STOPSIGNAL ${sig}`);
      }
      case 'MAINTAINER':
        this.author = this.word(state, ins.args);
        return this.commitConfig(state, `MAINTAINER ${this.author}`);
      case 'VOLUME': {
        const list = (ins.json ?? this.words(state, ins.args)).map((v) => (ins.json ? this.word(state, v) : v));
        if (list.length === 0 || list.some((v) => !v.trim())) throw invalidArgument('VOLUME specified can not be an empty string');
        c.Volumes = { ...(c.Volumes ?? {}) };
        for (const v of list) c.Volumes[v] = {};
        return this.commitConfig(state, `VOLUME [${list.join(' ')}]`);
      }
      case 'CMD':
      case 'ENTRYPOINT': {
        const list = ins.json ?? [...state.shell, ins.args];
        if (ins.keyword === 'CMD') {
          c.Cmd = list;
          state.cmdSet = true;
        } else {
          c.Entrypoint = list;
          if (!state.cmdSet) c.Cmd = null;
        }
        c.ArgsEscaped = ins.json ? undefined : true;
        if (c.ArgsEscaped === undefined) delete c.ArgsEscaped;
        return this.commitConfig(state, `${ins.keyword} ${goList(list)}`);
      }
      case 'SHELL':
        state.shell = ins.json!;
        c.Shell = ins.json!;
        return this.commitConfig(state, `SHELL ${goList(ins.json!)}`);
      case 'ONBUILD': {
        const trigger = ins.args.trim();
        const m = /^(\S+)([\s\S]*)$/.exec(trigger)!;
        const text = m[1].toUpperCase() + m[2];
        c.OnBuild = [...(c.OnBuild ?? []), text];
        return this.commitConfig(state, `ONBUILD ${text}`);
      }
      case 'HEALTHCHECK':
        c.Healthcheck = this.healthcheck(state, ins);
        return this.commitConfig(state, `HEALTHCHECK ${ins.args.split(/\s+/)[0].toUpperCase() === 'NONE' ? 'NONE' : `&{${goList(c.Healthcheck.Test ?? [])} }`}`);
      case 'WORKDIR':
        return this.workdir(state, ins);
      case 'RUN':
        return this.runStep(state, ins);
      case 'COPY':
      case 'ADD':
        return this.copyStep(state, ins);
      case 'FROM':
        throw invalidArgument('FROM is not allowed here');
    }
  }

  private author: string | undefined;

  private healthcheck(state: StageState, ins: Instruction): HealthConfig {
    const rest = ins.args.replace(/^\S+\s*/, '');
    if (ins.args.split(/\s+/)[0].toUpperCase() === 'NONE') return { Test: ['NONE'] };
    const cmd = parseInstruction(`CMD ${rest}`, ins.line);
    const test = cmd.json ? ['CMD', ...cmd.json] : ['CMD-SHELL', cmd.args];
    const h: HealthConfig = { Test: test };
    const duration = (flag: string, field: 'Interval' | 'Timeout' | 'StartPeriod' | 'StartInterval'): void => {
      const v = ins.flags.get(flag);
      if (v === undefined || v === '') return;
      let ms: number;
      try {
        ms = parseGoDuration(v);
      } catch {
        throw invalidArgument(`Dockerfile line ${ins.line}: invalid duration for --${flag}: ${v}`);
      }
      if (ms !== 0 && ms < 1) throw invalidArgument(`Interval "${flag}" cannot be less than 1ms`);
      h[field] = Math.round(ms * 1e6);
    };
    duration('interval', 'Interval');
    duration('timeout', 'Timeout');
    duration('start-period', 'StartPeriod');
    duration('start-interval', 'StartInterval');
    const retries = ins.flags.get('retries');
    if (retries !== undefined && retries !== '') {
      const n = Number(retries);
      if (!Number.isInteger(n) || n < 0) throw invalidArgument(`--retries must be a non-negative integer, not ${retries}`);
      h.Retries = n;
    }
    return h;
  }

  // ---- config-only steps ---------------------------------------------------------

  /** The parent a cache entry hangs off (scratch has no image). */
  private parentKey(state: StageState): string {
    return state.image ?? 'scratch';
  }

  /** Uses the cache for key, or makes the image with make() and records it. */
  private async cached(state: StageState, key: string, make: () => Promise<Digest>): Promise<void> {
    const parent = this.parentKey(state);
    if (!this.options.noCache) {
      const hit = this.deps.cache.lookup(parent, key);
      if (hit && this.deps.images.store.get(hit)) {
        this.out.stream(' ---> Using cache\n');
        await this.adopt(state, hit);
        return;
      }
    }
    const image = await make();
    this.deps.cache.record(parent, key, image);
    await this.adopt(state, image);
  }

  private async adopt(state: StageState, image: Digest): Promise<void> {
    state.image = image;
    state.config = structuredClone((await this.deps.images.config(image)).config ?? {});
    this.out.stream(` ---> ${shortId(image)}\n`);
  }

  private commitConfig(state: StageState, text: string): Promise<void> {
    const createdBy = `/bin/sh -c #(nop)  ${text}`;
    const config = structuredClone(state.config);
    return this.cached(state, `${createdBy}\n${JSON.stringify(config)}`, async () => {
      const img = await this.deps.committer.commit({
        parent: state.image,
        config,
        createdBy,
        author: this.author,
        container: { id: '', config: { ...config, Cmd: [...DEFAULT_SHELL, `#(nop) ${text}`] } },
      });
      return img.id;
    });
  }

  // ---- filesystem steps ----------------------------------------------------------

  /** Mounts an overlay of the image with a fresh upper dir for fn; returns fn's result and the upper dir's snapshot key. */
  private async withRootfs<T>(image: Digest | null, fn: (rootfs: string, mount: OverlayMount) => Promise<T>): Promise<{ result: T; key: string; mount: OverlayMount }> {
    const key = `build-${crypto.randomBytes(8).toString('hex')}`;
    const parent = image ? await this.deps.images.topChainID(image) : null;
    const mount = await this.deps.snapshots.prepare(key, parent);
    const target = path.join(this.deps.workDir, key);
    this.cleanups.push(async () => {
      try {
        native().umount2(target, MNT_DETACH);
      } catch {
        // not mounted any more
      }
      await fsp.rm(target, { recursive: true, force: true });
      await this.deps.snapshots.remove(key);
    });
    await fsp.mkdir(target, { recursive: true, mode: 0o700 });
    native().mount('overlay', target, 'overlay', 0, overlayOptions(mount));
    try {
      const result = await fn(target, mount);
      return { result, key, mount };
    } finally {
      native().umount2(target, MNT_DETACH);
    }
  }

  private async commitUpper(state: StageState, upperDir: string, createdBy: string): Promise<Digest> {
    const img = await this.deps.committer.commit({
      parent: state.image,
      layer: packLayer(upperDir),
      config: structuredClone(state.config),
      createdBy,
      author: this.author,
    });
    return img.id;
  }

  private async workdir(state: StageState, ins: Instruction): Promise<void> {
    const dir = path.posix.resolve(state.config.WorkingDir || '/', this.word(state, ins.args));
    state.config.WorkingDir = dir;
    const createdBy = `/bin/sh -c #(nop) WORKDIR ${dir}`;
    const config = structuredClone(state.config);
    await this.cached(state, `${createdBy}\n${JSON.stringify(config)}`, async () => {
      const { result: created, mount } = await this.withRootfs(state.image, async (rootfs) => {
        const writer = new RootfsWriter(rootfs);
        if (await writer.isDirectory(dir)) return false;
        await writer.mkdirAll(dir, { uid: 0, gid: 0 });
        return true;
      });
      if (!created) {
        const img = await this.deps.committer.commit({ parent: state.image, config, createdBy, author: this.author });
        return img.id;
      }
      return this.commitUpper(state, mount.upperDir, createdBy);
    });
  }

  private async copyStep(state: StageState, ins: Instruction): Promise<void> {
    const keyword = ins.keyword;
    const raw = ins.json ?? ins.args.split(/\s+/).filter(Boolean);
    const words = raw.map((w) => this.word(state, w));
    const destRaw = words[words.length - 1];
    const sources = words.slice(0, -1);
    const destIsDir = destRaw.endsWith('/') || destRaw === '.' || destRaw.endsWith('/.');
    const dest = path.posix.resolve(state.config.WorkingDir || '/', destRaw);
    const chownSpec = ins.flags.get('chown') !== undefined ? this.word(state, ins.flags.get('chown')!) : undefined;
    const chmodSpec = ins.flags.get('chmod');
    let mode: number | undefined;
    if (chmodSpec !== undefined) {
      if (!/^[0-7]{3,4}$/.test(chmodSpec)) throw invalidArgument(`invalid chmod parameter: ${chmodSpec}: only octal modes like 0755 are supported`);
      mode = parseInt(chmodSpec, 8);
    }
    const fromFlag = ins.flags.get('from');

    // where the sources come from
    let tree: SourceTree = this.context;
    let what = 'build context or excluded by .dockerignore';
    let fromLabel = '';
    let keepOwners = false;
    if (fromFlag !== undefined) {
      const from = this.word(state, fromFlag);
      const stage = this.stageRef(from, state.stage.index, true);
      const image = stage ? this.stageImages.get(stage.index) ?? null : await this.baseImage(from);
      tree = await this.imageTree(image);
      what = stage ? `stage ${from}` : `image ${from}`;
      fromLabel = `--from=${from} `;
      keepOwners = true;
    }

    const urls = keyword === 'ADD' ? sources.filter((s) => /^https?:\/\//.test(s)) : [];
    const local = sources.filter((s) => !urls.includes(s));
    const items = await planCopy(tree, local, keyword, what);
    if (items.length + urls.length > 1 && !destIsDir) {
      throw invalidArgument(`When using ${keyword} with more than one source file, the destination must be a directory and end with a /`);
    }
    const sums: string[] = [];
    for (const item of items) sums.push(`${item.node.type === 'directory' ? 'dir' : 'file'}:${await treeChecksum(tree, item.path)}`);
    for (const url of urls) sums.push(`url:${url}`);
    const summary = sums.length === 1 ? sums[0] : `multi:${crypto.createHash('sha256').update(sums.join('\n')).digest('hex')}`;
    const flagsText = `${chownSpec !== undefined ? `--chown=${chownSpec} ` : ''}${chmodSpec !== undefined ? `--chmod=${chmodSpec} ` : ''}`;
    const createdBy = `/bin/sh -c #(nop) ${keyword} ${fromLabel}${flagsText}${summary} in ${dest} `;
    const config = structuredClone(state.config);
    // URLs are fetched every time: their content is the key
    const urlData = new Map<string, { file: string; name: string; mtime: Date }>();
    for (const url of urls) urlData.set(url, await this.download(url));
    const urlKey = [...urlData.values()].map((u) => u.file).length ? await this.urlChecksum(urlData) : '';

    await this.cached(state, `${createdBy}${urlKey}\n${JSON.stringify(config)}`, async () => {
      const { mount } = await this.withRootfs(state.image, async (rootfs) => {
        const writer = new RootfsWriter(rootfs);
        const owner = chownSpec !== undefined ? await this.owner(rootfs, chownSpec) : undefined;
        for (const item of items) {
          if (keyword === 'ADD' && item.node.type === 'file' && (await this.extractArchive(tree, item, writer, dest, owner))) continue;
          await writer.copy(tree, item, { dest, destIsDir, owner, keepOwners, mode });
        }
        for (const [url, data] of urlData) {
          const tmpTree = new DirectoryTree(path.dirname(data.file));
          const node = (await tmpTree.lstat(path.basename(data.file)))!;
          await writer.copy(tmpTree, { source: url, name: data.name, path: path.basename(data.file), node: { ...node, mode: mode ?? 0o600, mtime: data.mtime } }, {
            dest,
            destIsDir,
            owner,
            keepOwners: false,
            mode: mode ?? 0o600,
          });
        }
      });
      return this.commitUpper(state, mount.upperDir, createdBy);
    });
  }

  /** The filesystem of an image (or an empty one for scratch), mounted for reading. */
  private async imageTree(image: Digest | null): Promise<SourceTree> {
    const key = `build-${crypto.randomBytes(8).toString('hex')}`;
    const parent = image ? await this.deps.images.topChainID(image) : null;
    const mount = await this.deps.snapshots.prepare(key, parent);
    const target = path.join(this.deps.workDir, key);
    await fsp.mkdir(target, { recursive: true, mode: 0o700 });
    native().mount('overlay', target, 'overlay', 0, overlayOptions(mount));
    this.cleanups.push(async () => {
      try {
        native().umount2(target, MNT_DETACH);
      } catch {
        // not mounted any more
      }
      await fsp.rm(target, { recursive: true, force: true });
      await this.deps.snapshots.remove(key);
    });
    return new DirectoryTree(target);
  }

  /** --chown=user[:group] resolved with the image's own passwd and group files. */
  private async owner(rootfs: string, spec: string): Promise<{ uid: number; gid: number }> {
    const [user, group] = spec.split(':');
    const u = await resolveUser(rootfs, group !== undefined ? `${user}:${group}` : user);
    // Docker: a user given alone makes the group the same ID, not the user's primary group
    const gid = group === undefined && /^\d+$/.test(user) ? u.uid : u.gid;
    return { uid: u.uid, gid };
  }

  /** ADD of a local tar (plain or compressed): unpacked at the destination. False when the file is not an archive. */
  private async extractArchive(tree: SourceTree, item: CopyPlanItem, writer: RootfsWriter, dest: string, owner?: { uid: number; gid: number }): Promise<boolean> {
    const head = await readHead(tree.open(item.path), 512);
    const compression = detectCompression(head);
    const plainTar = head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
    if (compression === 'none' && !plainTar) return false;
    const dir = path.join(this.deps.workDir, `add-${crypto.randomBytes(8).toString('hex')}`);
    await fsp.mkdir(dir, { mode: 0o700 });
    this.cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
    try {
      const { stream } = await decompressed(tree.open(item.path));
      await applyLayer(stream, dir);
    } catch {
      return false; // compressed but not a tar: copied as a file, as Docker does
    }
    const unpacked = new DirectoryTree(dir);
    const root = { source: item.source, name: '', path: '', node: { type: 'directory' as const, mode: 0o755, uid: 0, gid: 0, size: 0, mtime: new Date() } };
    await writer.copy(unpacked, root, { dest, destIsDir: true, owner, keepOwners: true });
    return true;
  }

  private async download(url: string): Promise<{ file: string; name: string; mtime: Date }> {
    this.out.stream(`Downloading ${url}\n`);
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.any([this.signal, AbortSignal.timeout(60_000)]) });
    } catch (err) {
      throw invalidArgument(`failed to GET ${url}: ${errorMessage(err)}`);
    }
    if (!res.ok || !res.body) throw invalidArgument(`failed to GET ${url} with status ${res.status} ${res.statusText}`);
    const dir = path.join(this.deps.workDir, `url-${crypto.randomBytes(8).toString('hex')}`);
    await fsp.mkdir(dir, { mode: 0o700 });
    this.cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
    const name = path.posix.basename(new URL(url).pathname) || 'download';
    const file = path.join(dir, 'data');
    await fsp.writeFile(file, Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>));
    const lastModified = res.headers.get('last-modified');
    return { file, name, mtime: lastModified ? new Date(lastModified) : new Date() };
  }

  private async urlChecksum(urls: Map<string, { file: string }>): Promise<string> {
    const hash = crypto.createHash('sha256');
    for (const [url, { file }] of urls) hash.update(`${url}\n`).update(await fsp.readFile(file));
    return `\n${hash.digest('hex')}`;
  }

  // ---- RUN -------------------------------------------------------------------------

  private async runStep(state: StageState, ins: Instruction): Promise<void> {
    if (!state.image) throw invalidArgument('RUN needs a base image with a shell: this stage is FROM scratch with nothing in it yet');
    const cmd = ins.json ?? [...state.shell, ins.args];
    // build args in effect reach the command's environment and the cache key
    const envNames = new Set(envMap(state.config.Env ?? []).keys());
    const argEnv: string[] = [];
    for (const [k, v] of state.args) if (v !== undefined && !envNames.has(k)) argEnv.push(`${k}=${v}`);
    const proxyEnv: string[] = [];
    for (const k of PREDEFINED_ARGS) {
      const v = this.options.buildArgs[k];
      if (typeof v === 'string' && !state.args.has(k) && !envNames.has(k)) {
        proxyEnv.push(`${k}=${v}`);
        this.usedArgs.add(k);
      }
    }
    const createdBy = argEnv.length ? `|${argEnv.length} ${argEnv.join(' ')} ${cmd.join(' ')}` : cmd.join(' ');
    const config = structuredClone(state.config);
    await this.cached(state, `RUN ${JSON.stringify(cmd)}\n${createdBy}\n${JSON.stringify(config)}`, async () => {
      const body: CreateContainerBody = {
        Image: state.image!,
        Cmd: cmd,
        Entrypoint: [''],
        Env: [...argEnv, ...proxyEnv],
        AttachStdout: true,
        AttachStderr: true,
        Healthcheck: { Test: ['NONE'] },
        HostConfig: {
          ...this.options.resources,
          NetworkMode: this.options.networkMode || 'default',
          ExtraHosts: this.options.extraHosts,
          LogConfig: { Type: 'none', Config: {} },
        },
      } as CreateContainerBody;
      const { Id } = await this.deps.containers.create(body);
      this.out.stream(` ---> Running in ${shortId(Id)}\n`);
      let ok = false;
      try {
        const code = await this.runContainer(Id);
        if (code !== 0) {
          throw new BuildStepError(`The command '${cmd.join(' ')}' returned a non-zero code: ${code}`, code);
        }
        const image = await this.deps.committer.commit({
          parent: state.image,
          layer: packContainerLayer(await this.deps.containers.upperDir(Id)),
          config,
          createdBy,
          author: this.author,
          container: { id: Id, config: { ...config, Cmd: createdBy.startsWith('|') ? ['|' + String(argEnv.length), ...argEnv, ...cmd] : cmd } },
        });
        ok = true;
        return image.id;
      } finally {
        if (this.options.forceRm || (ok && this.options.rm)) {
          this.out.stream(`Removing intermediate container ${shortId(Id)}\n`);
          await this.deps.containers.remove(Id, { force: true, volumes: true }).catch((err) => this.deps.log.warn('removing a build container failed', { id: shortId(Id), error: errorMessage(err) }));
        }
      }
    });
  }

  /** Starts the container with its output going to the build stream; resolves with the exit code. */
  private async runContainer(id: string): Promise<number> {
    let closed!: () => void;
    const outputDone = new Promise<void>((resolve) => (closed = resolve));
    const client: AttachClient = {
      stdin: false,
      stdout: true,
      stderr: true,
      output: (_stream, data) => {
        if (!this.options.quiet) this.out.stream(data.toString('utf8'));
      },
      close: () => closed(),
      onGone: () => {},
    };
    this.deps.containers.attach(id, client);
    const onAbort = (): void => {
      void this.deps.containers.kill(id, 'SIGKILL').catch(() => {});
    };
    this.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const exited = this.deps.containers.wait(id, 'next-exit');
      await this.deps.containers.start(id);
      const { StatusCode } = await exited;
      await Promise.race([outputDone, new Promise((r) => setTimeout(r, 2000))]);
      this.checkAborted();
      return StatusCode;
    } finally {
      this.signal.removeEventListener('abort', onAbort);
    }
  }
}

// ---- helpers ---------------------------------------------------------------------

function toEnv(args: Map<string, string | undefined>): BuildEnv {
  const env = new Map<string, string>();
  for (const [k, v] of args) if (v !== undefined) env.set(k, v);
  return env;
}

function setEnv(env: string[], key: string, value: string): string[] {
  const entry = `${key}=${value}`;
  const i = env.findIndex((e) => e.split('=')[0] === key);
  return i < 0 ? [...env, entry] : env.map((e, j) => (j === i ? entry : e));
}

/** EXPOSE 80, 80/udp, 8000-8010: as Docker stores them ("80/tcp"). */
function normalizePort(p: string): string {
  const m = /^(\d+(?:-\d+)?)(?:\/(tcp|udp|sctp))?$/i.exec(p);
  if (!m) throw invalidArgument(`Invalid containerPort: ${p}`);
  return `${m[1]}/${(m[2] ?? 'tcp').toLowerCase()}`;
}

/** A list printed the way Docker's history shows it: ["a" "b"]. */
function goList(list: string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(' ')}]`;
}

async function readHead(stream: Readable, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
    have += (chunk as Buffer).length;
    if (have >= bytes) break;
  }
  stream.destroy();
  return Buffer.concat(chunks).subarray(0, bytes);
}

export function familiarTags(tags: Reference[]): string[] {
  return tags.map((t) => familiarString(t));
}

export { chainIDs };
