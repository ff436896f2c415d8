/** images, import, tag, rmi, history, image prune. */
import fs from 'node:fs';
import { ApiError } from '../../client/client.js';
import { humanSize } from '../../util/units.js';
import type { Command } from '../cli.js';
import { CommandFailed } from '../cli.js';
import { IMAGES_HEADERS, IMAGES_TABLE, IMAGES_TABLE_DIGESTS, type ImageSummaryView, ellipsis, imageRows, renderRows, shortImageId, timeAgo } from '../output.js';
import { confirm, filtersQuery } from './lifecycle.js';

const enc = encodeURIComponent;

const images: Command = {
  name: 'images',
  usage: 'images [OPTIONS] [REPOSITORY[:TAG]]',
  description: 'List images',
  flags: [
    { name: 'all', short: 'a', type: 'bool', description: 'Show all images (default hides intermediate images)' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Only show image IDs' },
    { name: 'filter', short: 'f', type: 'strings', description: 'Filter output based on conditions provided' },
    { name: 'format', type: 'string', description: 'Format output using a custom template' },
    { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
    { name: 'digests', type: 'bool', description: 'Show digests' },
  ],
  maxArgs: 1,
  async run(ctx, f) {
    const filters = [...f.strings('filter')];
    if (f.args[0]) filters.push(`reference=${f.args[0]}`);
    const list = await ctx.client().json<ImageSummaryView[]>('GET', '/images/json', { query: { all: f.bool('all'), filters: filtersQuery(filters) } });
    const rows = imageRows(list, f.bool('no-trunc'));
    if (f.bool('quiet')) {
      ctx.out([...new Set(rows.map((r) => String(r.ID)))].join('\n'));
      return 0;
    }
    const out = renderRows(f.optString('format'), { defaultTable: f.bool('digests') ? IMAGES_TABLE_DIGESTS : IMAGES_TABLE, headers: IMAGES_HEADERS, rows });
    if (out) ctx.out(out);
    return 0;
  },
};

const importCmd: Command = {
  name: 'import',
  usage: 'import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]',
  description: 'Import the contents from a tarball to create a filesystem image',
  flags: [
    { name: 'change', short: 'c', type: 'strings', description: 'Apply Dockerfile instruction to the created image' },
    { name: 'message', short: 'm', type: 'string', description: 'Set commit message for imported image' },
    { name: 'platform', type: 'string', description: 'Set platform if server is multi-platform capable' },
  ],
  minArgs: 1,
  maxArgs: 2,
  async run(ctx, f) {
    const [source, target] = f.args;
    if (/^https?:\/\//.test(source)) throw new CommandFailed('berth: importing from a URL is not supported; download the archive and import the file', 1);
    let repo: string | undefined;
    let tag: string | undefined;
    if (target) {
      const colon = target.lastIndexOf(':');
      if (colon > target.lastIndexOf('/')) {
        repo = target.slice(0, colon);
        tag = target.slice(colon + 1);
      } else repo = target;
    }
    let body: NodeJS.ReadableStream;
    if (source === '-') body = process.stdin;
    else {
      if (!fs.existsSync(source)) throw new CommandFailed(`open ${source}: no such file or directory`, 1);
      body = fs.createReadStream(source);
    }
    const client = ctx.client();
    const res = await client.stream('POST', '/images/create', {
      query: { fromSrc: '-', repo, tag, message: f.string('message') || undefined, changes: f.strings('change'), platform: f.string('platform') || undefined },
      rawBody: body as never,
      headers: { 'Content-Type': 'application/x-tar' },
    });
    await client.progress(res, (m) => {
      if (typeof m.status === 'string' && m.status.startsWith('sha256:')) ctx.out(m.status);
    });
    return 0;
  },
};

const tag: Command = {
  name: 'tag',
  usage: 'tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]',
  description: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
  flags: [],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, f) {
    const [source, target] = f.args;
    let repo = target;
    let t: string | undefined;
    const colon = target.lastIndexOf(':');
    if (colon > target.lastIndexOf('/')) {
      repo = target.slice(0, colon);
      t = target.slice(colon + 1);
    }
    await ctx.client().call('POST', `/images/${enc(source)}/tag`, { query: { repo, tag: t } });
    return 0;
  },
};

const rmi: Command = {
  name: 'rmi',
  usage: 'rmi [OPTIONS] IMAGE [IMAGE...]',
  description: 'Remove one or more images',
  flags: [
    { name: 'force', short: 'f', type: 'bool', description: 'Force removal of the image' },
    { name: 'no-prune', type: 'bool', description: 'Do not delete untagged parents' },
  ],
  minArgs: 1,
  async run(ctx, f) {
    const errors: string[] = [];
    for (const name of f.args) {
      try {
        const records = await ctx.client().json<({ Untagged?: string; Deleted?: string })[]>('DELETE', `/images/${enc(name)}`, {
          query: { force: f.bool('force'), noprune: f.bool('no-prune') },
        });
        for (const r of records) ctx.out(r.Untagged ? `Untagged: ${r.Untagged}` : `Deleted: ${r.Deleted}`);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        errors.push(`Error response from daemon: ${err.message}`);
      }
    }
    if (errors.length) throw new CommandFailed(errors.join('\n'), 1);
    return 0;
  },
};

const history: Command = {
  name: 'history',
  usage: 'history [OPTIONS] IMAGE',
  description: 'Show the history of an image',
  flags: [
    { name: 'human', short: 'H', type: 'bool', default: true, description: 'Print sizes and dates in human readable format' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Only show image IDs' },
    { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
    { name: 'format', type: 'string', description: 'Format output using a custom template' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, f) {
    const rows = await ctx.client().json<{ Id: string; Created: number; CreatedBy: string; Size: number; Comment: string; Tags: string[] | null }[]>(
      'GET',
      `/images/${enc(f.args[0])}/history`,
    );
    const noTrunc = f.bool('no-trunc');
    const human = f.bool('human');
    const view = rows.map((r) => ({
      ID: r.Id === '<missing>' ? '<missing>' : noTrunc ? r.Id : shortImageId(r.Id),
      CreatedSince: human ? timeAgo(r.Created) : new Date(r.Created * 1000).toISOString(),
      CreatedAt: new Date(r.Created * 1000).toISOString(),
      CreatedBy: noTrunc ? r.CreatedBy : ellipsis(r.CreatedBy.replace(/\t/g, ' '), 45),
      Size: human ? humanSize(r.Size) : String(r.Size),
      Comment: r.Comment,
    }));
    if (f.bool('quiet')) {
      ctx.out(view.map((v) => v.ID).join('\n'));
      return 0;
    }
    ctx.out(
      renderRows(f.optString('format'), {
        defaultTable: 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}',
        headers: { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' },
        rows: view,
      }),
    );
    return 0;
  },
};

const imagePrune: Command = {
  name: 'image prune',
  usage: 'image prune [OPTIONS]',
  description: 'Remove unused images',
  flags: [
    { name: 'all', short: 'a', type: 'bool', description: 'Remove all unused images, not just dangling ones' },
    { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
    { name: 'filter', type: 'strings', description: 'Provide filter values (e.g. "until=<timestamp>")' },
  ],
  maxArgs: 0,
  async run(ctx, f) {
    const warning = f.bool('all')
      ? 'WARNING! This will remove all images without at least one container associated to them.'
      : 'WARNING! This will remove all dangling images.';
    if (!f.bool('force') && !(await confirm(ctx, `${warning}\nAre you sure you want to continue?`))) return 0;
    const filters = [...f.strings('filter')];
    if (f.bool('all')) filters.push('dangling=false');
    const r = await ctx.client().json<{ ImagesDeleted: { Untagged?: string; Deleted?: string }[] | null; SpaceReclaimed: number }>(
      'POST',
      '/images/prune',
      { query: { filters: filtersQuery(filters) } },
    );
    if (r.ImagesDeleted?.length) {
      ctx.out(`Deleted Images:\n${r.ImagesDeleted.map((d) => (d.Untagged ? `untagged: ${d.Untagged}` : `deleted: ${d.Deleted}`)).join('\n')}\n`);
    }
    ctx.out(`Total reclaimed space: ${humanSize(r.SpaceReclaimed)}`);
    return 0;
  },
};

export const commands: Command[] = [images, importCmd, tag, rmi, history, imagePrune];
