import { parseArgs } from 'node:util';

/** A command line the CLI cannot run: the message is printed with a pointer to --help, exit code 1. */
export class UsageError extends Error {
  constructor(message: string, readonly command?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Stops a command with an exit code once its output is written (--help, a pipeline that ended badly). */
export class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
    this.name = 'Exit';
  }
}

type OptionSpec = { type: 'string' | 'boolean'; short?: string };

/** Options every command takes: --help, --json and the connection overrides. */
export const commonOptions = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  server: { type: 'string' },
  token: { type: 'string' },
} as const;

/**
 * `parseArgs` in strict mode for one command: prints `help` and stops on --help, and turns unknown
 * options or missing values into a {@link UsageError}.
 */
export function parse<O extends Record<string, OptionSpec>>(command: string, argv: string[], options: O, help: string, allowPositionals = false) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    if (argv.includes('--help') || argv.includes('-h')) parsed = null;
    else throw new UsageError((err as Error).message, command);
  }
  if (!parsed || (parsed.values as { help?: boolean }).help) {
    process.stdout.write(help);
    throw new Exit(0);
  }
  return parsed;
}

/** The named string options, or a {@link UsageError} listing every one that is missing. */
export function required<K extends string>(command: string, values: Partial<Record<K, string | boolean | undefined>>, ...names: K[]): Record<K, string> {
  const missing = names.filter((n) => typeof values[n] !== 'string' || values[n] === '');
  if (missing.length) throw new UsageError(`missing ${missing.map((n) => `--${n} <${placeholder(n)}>`).join(', ')}`, command);
  return Object.fromEntries(names.map((n) => [n, values[n]])) as Record<K, string>;
}

const placeholder = (name: string) => (name === 'version' ? 'semver' : name === 'server' ? 'url' : name === 'token' ? 'pat' : 'id');
