import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where the CLI talks to and as whom. */
export interface Credentials {
  /** Base URL of the mpdp server, without a trailing slash (the API lives under `/api/v1`). */
  server: string;
  /** A personal access token (`mpdp_pat_…`). */
  token: string;
}

/** `$MPDP_CONFIG`, else `$XDG_CONFIG_HOME/mpdp/config.json`, else `~/.config/mpdp/config.json`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MPDP_CONFIG) return env.MPDP_CONFIG;
  return path.join(env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'mpdp', 'config.json');
}

/** The saved config, or `{}` when there is none yet. */
export function readConfig(file = configPath()): Partial<Credentials> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  try {
    const v = JSON.parse(text) as Partial<Credentials>;
    return { server: typeof v.server === 'string' ? v.server : undefined, token: typeof v.token === 'string' ? v.token : undefined };
  } catch {
    throw new Error(`${file} is not valid JSON; fix it or run "mpdp login" again`);
  }
}

/** Saves the credentials readable by the owner only (the token is a password). */
export function writeConfig(creds: Credentials, file = configPath()): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify({ server: creds.server, token: creds.token }, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600); // the mode above only applies to a new file
}

/** `http://host:3000/` and `http://host:3000/api/v1` both become `http://host:3000`. */
export function normaliseServer(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`server address ${JSON.stringify(url)} is not a URL (e.g. https://mpdp.example.com)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`server address must be an http(s) URL, not ${u.protocol}`);
  return `${u.origin}${u.pathname.replace(/\/+$/, '').replace(/\/api\/v1$/, '')}`;
}

/**
 * Credentials in order of precedence: command-line flags, then `MPDP_SERVER` / `MPDP_TOKEN`, then
 * the saved config. Fields nobody supplied stay undefined.
 */
export function resolveCredentials(flags: { server?: string; token?: string }, env: NodeJS.ProcessEnv = process.env): Partial<Credentials> {
  const saved = flags.server && flags.token ? {} : readConfig(configPath(env));
  const server = flags.server || env.MPDP_SERVER || saved.server;
  return { server: server ? normaliseServer(server) : undefined, token: flags.token || env.MPDP_TOKEN || saved.token };
}
