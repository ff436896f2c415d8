export async function runCli(argv: string[]): Promise<number> {
  process.stderr.write(`berth: CLI not built yet (${argv.join(' ')})\n`);
  return 1;
}
