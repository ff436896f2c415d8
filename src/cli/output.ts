/**
 * Output the way Docker's CLI prints it: aligned tables (tabwriter with
 * three spaces of padding), `--format` with "table ...", "json" or a raw
 * template, and the per-row contexts of ps and images.
 */
import { Template } from './template.js';
import { humanDuration, humanSize } from '../util/units.js';

/** Aligns tab-separated cells into columns, as Go's tabwriter(minwidth 10? no: padding 3). */
export function tabulate(lines: string[]): string {
  const rows = lines.map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((cell, i) => {
      if (i < r.length - 1) widths[i] = Math.max(widths[i] ?? 0, [...cell].length);
    });
  }
  return rows.map((r) => r.map((cell, i) => (i < r.length - 1 ? cell + ' '.repeat(widths[i] - [...cell].length + 3) : cell)).join('')).join('\n');
}

export interface FormatSpec<Row> {
  /** Default table template, e.g. "table {{.ID}}\t{{.Image}}". */
  defaultTable: string;
  /** Header text per field name used in templates. */
  headers: Record<string, string>;
  rows: Row[];
}

/** Renders rows with a --format value (or the default table). */
export function renderRows<Row extends object>(format: string | undefined, spec: FormatSpec<Row>, quiet?: (r: Row) => string): string {
  if (quiet) return spec.rows.map(quiet).join('\n');
  let f = format ?? '';
  if (f === '' || f === 'table') f = spec.defaultTable;
  if (f === 'json') f = '{{json .}}';
  const isTable = f.startsWith('table');
  const body = isTable ? f.slice('table'.length).replace(/^\s/, '') : f;
  const tpl = new Template(unescapeFormat(body));
  const lines: string[] = [];
  if (isTable) lines.push(tpl.execute(headerContext(spec.headers)));
  for (const r of spec.rows) lines.push(tpl.execute(r));
  return isTable ? tabulate(lines) : lines.join('\n');
}

/** "\t" and "\n" typed literally on a shell line mean tab and newline, as in Docker. */
export function unescapeFormat(f: string): string {
  return f.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
}

function headerContext(headers: Record<string, string>): Record<string, unknown> {
  const ctx: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(headers)) ctx[k] = v;
  ctx.Label = (name: string) => `LABEL ${name}`.toUpperCase();
  return ctx;
}

export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  return chars.slice(0, max - 1).join('') + '…';
}

export function shortImageId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

export function timeAgo(epochSeconds: number): string {
  return `${humanDuration(Date.now() - epochSeconds * 1000)} ago`;
}

/** Go's time.Time String(): "2024-01-02 03:04:05 +0000 UTC". */
export function goTime(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000).toISOString();
  return `${d.slice(0, 10)} ${d.slice(11, 19)} +0000 UTC`;
}

// ---- containers ------------------------------------------------------------

export interface ContainerSummaryView {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string;
  Created: number;
  Ports: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[];
  SizeRw?: number;
  SizeRootFs?: number;
  Labels: Record<string, string> | null;
  State: string;
  Status: string;
  NetworkSettings?: { Networks?: Record<string, unknown> };
  Mounts?: { Name?: string; Source?: string }[];
}

export const PS_TABLE = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';
export const PS_HEADERS: Record<string, string> = {
  ID: 'CONTAINER ID',
  Image: 'IMAGE',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Ports: 'PORTS',
  Status: 'STATUS',
  Size: 'SIZE',
  Names: 'NAMES',
  Labels: 'LABELS',
  Mounts: 'MOUNTS',
  Networks: 'NETWORKS',
  State: 'STATE',
  LocalVolumes: 'LOCAL VOLUMES',
};

export function formatPorts(ports: ContainerSummaryView['Ports']): string {
  const out: string[] = [];
  for (const p of [...ports].sort((a, b) => a.PrivatePort - b.PrivatePort)) {
    if (p.PublicPort) {
      const ip = p.IP && p.IP.includes(':') ? `[${p.IP}]` : (p.IP ?? '0.0.0.0');
      out.push(`${ip}:${p.PublicPort}->${p.PrivatePort}/${p.Type}`);
    } else out.push(`${p.PrivatePort}/${p.Type}`);
  }
  return [...new Set(out)].join(', ');
}

export function containerRow(c: ContainerSummaryView, noTrunc: boolean): Record<string, unknown> {
  const command = c.Command.replace(/\n/g, ' ');
  const labels = c.Labels ?? {};
  const image = c.Image.startsWith('sha256:') && !noTrunc ? shortImageId(c.Image) : c.Image;
  return {
    ID: noTrunc ? c.Id : c.Id.slice(0, 12),
    Image: image,
    Command: JSON.stringify(noTrunc ? command : ellipsis(command, 20)),
    CreatedAt: goTime(c.Created),
    RunningFor: timeAgo(c.Created),
    Ports: formatPorts(c.Ports),
    Status: c.Status,
    State: c.State,
    Size:
      c.SizeRw !== undefined
        ? `${humanSize(c.SizeRw)} (virtual ${humanSize(c.SizeRootFs ?? 0)})`
        : '0B',
    Names: c.Names.map((n) => n.replace(/^\//, '')).filter((n) => !n.includes('/')).join(','),
    Labels: Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    Label: (name: string) => labels[name] ?? '',
    Mounts: (c.Mounts ?? []).map((m) => m.Name ?? m.Source ?? '').join(','),
    Networks: Object.keys(c.NetworkSettings?.Networks ?? {}).join(','),
    LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Name).length),
  };
}

// ---- images ----------------------------------------------------------------

export interface ImageSummaryView {
  Id: string;
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
  Created: number;
  Size: number;
  Containers: number;
  Labels: Record<string, string> | null;
}

export const IMAGES_TABLE = 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
export const IMAGES_TABLE_DIGESTS = 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
export const IMAGES_HEADERS: Record<string, string> = {
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  ID: 'IMAGE ID',
  Digest: 'DIGEST',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
  Containers: 'CONTAINERS',
  SharedSize: 'SHARED SIZE',
  UniqueSize: 'UNIQUE SIZE',
  VirtualSize: 'VIRTUAL SIZE',
};

export function imageRows(images: ImageSummaryView[], noTrunc: boolean): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const img of images) {
    const id = noTrunc ? img.Id : shortImageId(img.Id);
    const base = {
      ID: id,
      CreatedSince: timeAgo(img.Created),
      CreatedAt: goTime(img.Created),
      Size: humanSize(img.Size),
      VirtualSize: humanSize(img.Size),
      SharedSize: 'N/A',
      UniqueSize: 'N/A',
      Containers: img.Containers < 0 ? 'N/A' : String(img.Containers),
    };
    const digests = img.RepoDigests ?? [];
    const tags = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
    if (tags.length === 0) {
      const digest = digests[0]?.split('@')[1] ?? '<none>';
      rows.push({ ...base, Repository: digests[0]?.split('@')[0] ?? '<none>', Tag: '<none>', Digest: digest });
      continue;
    }
    for (const t of tags) {
      const i = t.lastIndexOf(':');
      const repo = t.slice(0, i);
      const digest = digests.find((d) => d.startsWith(`${repo}@`))?.split('@')[1] ?? '<none>';
      rows.push({ ...base, Repository: repo, Tag: t.slice(i + 1), Digest: digest });
    }
  }
  return rows;
}
