/**
 * Renders a JSON-lines progress stream (pull, push, load) the way the docker
 * CLI does: on a terminal one line per id, redrawn in place with its bar;
 * elsewhere one line per status change (bars skipped). Errors in the stream
 * become a thrown ApiError, as the CLI's "Error response from daemon" path.
 */
import type { EngineClient } from '../client/client.js';
import type { Readable } from 'node:stream';

export interface ProgressLine {
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  stream?: string;
  aux?: Record<string, unknown>;
}

export async function renderProgress(
  client: EngineClient,
  res: Readable,
  out: NodeJS.WriteStream,
  options: { quiet?: boolean; onAux?: (aux: Record<string, unknown>) => void } = {},
): Promise<void> {
  const tty = !!out.isTTY && !options.quiet;
  const order: string[] = [];
  const lines = new Map<string, string>();
  const lastStatus = new Map<string, string>();
  const draw = (id: string, text: string): void => {
    if (!tty) return;
    const index = order.indexOf(id);
    if (index < 0) {
      order.push(id);
      out.write(`${text}\n`);
      lines.set(id, text);
      return;
    }
    const up = order.length - index;
    out.write(`\x1b[${up}A\r\x1b[2K${text}\x1b[${up}B\r`);
    lines.set(id, text);
  };
  /** A line without an id still moves the cursor: keep a placeholder so redraws land right. */
  const plain = (text: string): void => {
    out.write(text);
    if (tty) for (let i = 0; i < (text.match(/\n/g) ?? []).length; i++) order.push(`\0${order.length}`);
  };
  await client.progress(res, (raw) => {
    const m = raw as ProgressLine;
    if (m.aux) {
      options.onAux?.(m.aux);
      return;
    }
    if (options.quiet) return;
    if (m.stream) {
      plain(m.stream);
      return;
    }
    if (!m.status) return;
    if (!m.id) {
      plain(`${m.status}\n`);
      return;
    }
    const text = `${m.id}: ${m.status}${m.progress ? ` ${m.progress}` : ''}`;
    if (tty) draw(m.id, text);
    else if (lastStatus.get(m.id) !== m.status) {
      lastStatus.set(m.id, m.status);
      out.write(`${m.id}: ${m.status}\n`);
    }
  });
}
