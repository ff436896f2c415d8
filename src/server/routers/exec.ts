/** Exec routes: create, start (hijacked or plain), resize, inspect. */
import { decodeBody } from '../../api/decode.js';
import { errorMessage, invalidArgument } from '../../core/errdefs/index.js';
import type { Router } from '../router.js';
import { frame } from '../stdcopy.js';
import type { AttachClient } from '../../engine/containers/attach.js';

export interface ExecBackend {
  create(container: string, config: Record<string, unknown>): { Id: string };
  start(id: string, client?: AttachClient, consoleSize?: [number, number]): Promise<void>;
  inspect(id: string): Record<string, unknown>;
  resize(id: string, h: number, w: number): Promise<void>;
  detachKeys(id: string, override?: string): number[];
}

export function execRoutes(router: Router, b: ExecBackend): void {
  router.post('/containers/:id/exec', async (ctx) => {
    const config = decodeBody<Record<string, unknown>>(
      await ctx.body(),
      {
        AttachStdin: 'boolean',
        AttachStdout: 'boolean',
        AttachStderr: 'boolean',
        DetachKeys: 'string',
        Tty: 'boolean',
        ConsoleSize: { array: 'integer' },
        Env: 'strings',
        Cmd: 'strslice',
        Privileged: 'boolean',
        User: 'string',
        WorkingDir: 'string',
      },
      'ExecConfig',
    );
    ctx.json(201, b.create(ctx.params.id, config));
  });

  router.post('/exec/:id/start', async (ctx) => {
    const body = decodeBody<{ Detach?: boolean; Tty?: boolean; ConsoleSize?: number[] }>(
      await ctx.body(),
      { Detach: 'boolean', Tty: 'boolean', ConsoleSize: { array: 'integer' } },
      'ExecStartConfig',
    );
    const info = b.inspect(ctx.params.id);
    const consoleSize = body.ConsoleSize?.length === 2 ? (body.ConsoleSize as [number, number]) : undefined;
    if (body.Detach) {
      await b.start(ctx.params.id, undefined, consoleSize);
      ctx.empty(200);
      return;
    }
    const tty = Boolean((info.ProcessConfig as { tty: boolean }).tty);
    const multiplexed = !tty;
    const hijacked = ctx.hijack(multiplexed && ctx.apiVersion >= 1.42 ? 'application/vnd.docker.multiplexed-stream' : 'application/vnd.docker.raw-stream');
    const send = (s: 1 | 2, data: Buffer): void => hijacked.write(multiplexed ? frame(s, data) : data);
    try {
      await b.start(
        ctx.params.id,
        {
          detachKeys: b.detachKeys(ctx.params.id, ctx.str('detachKeys')),
          stdin: Boolean(info.OpenStdin),
          stdout: Boolean(info.OpenStdout),
          stderr: Boolean(info.OpenStderr),
          output: send,
          close: () => hijacked.end(),
          input: info.OpenStdin ? hijacked.input : undefined,
          onGone: (cb) => hijacked.onClose(cb),
        },
        consoleSize,
      );
    } catch (err) {
      // headers are out: the error goes into the stream, as Docker does
      send(1, Buffer.from(`${errorMessage(err)}\r\n`));
      hijacked.end();
    }
  });

  router.post('/exec/:id/resize', async (ctx) => {
    const h = ctx.int('h') ?? 0;
    const w = ctx.int('w') ?? 0;
    if (h < 0 || w < 0) throw invalidArgument('invalid terminal size');
    await b.resize(ctx.params.id, h, w);
    ctx.empty(200);
  });

  router.get('/exec/:id/json', async (ctx) => {
    ctx.json(200, b.inspect(ctx.params.id));
  });
}
