/**
 * The daemon's streaming answers (progress, build output, events, stats)
 * are JSON values one per line. Calls onValue with each, in order; blank
 * lines are skipped and a last line without its newline still counts. A
 * multi-byte character split between chunks is decoded whole.
 */
import { StringDecoder } from 'node:string_decoder';

export async function forEachJsonLine<T>(stream: AsyncIterable<Buffer | string>, onValue: (value: T) => void): Promise<void> {
  const decoder = new StringDecoder('utf8');
  let buf = '';
  const take = (line: string): void => {
    if (line.trim()) onValue(JSON.parse(line) as T);
  };
  for await (const chunk of stream) {
    buf += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      take(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  }
  take(buf + decoder.end());
}
