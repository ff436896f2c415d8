/**
 * The berth CLI entry: global flags, then one command module, loaded on
 * demand so that `berth run` pays only for what it uses.
 */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'registry') {
    const { registryMain } = await import('../registry/cli.js');
    return registryMain(argv.slice(1));
  }
  const { runCli } = await import('./cli.js');
  return runCli(argv);
}
