/**
 * tar-stream, loaded on first use: with the stream library under it, it
 * costs berthd several MB of resident memory, and an idle daemon has no tar
 * to read or write (issue 2's idle target).
 */
import { createRequire } from 'node:module';
import type TarStream from 'tar-stream';

const require = createRequire(import.meta.url);
let lib: typeof TarStream | undefined;

export function tarStream(): typeof TarStream {
  lib ??= require('tar-stream') as typeof TarStream;
  return lib;
}
