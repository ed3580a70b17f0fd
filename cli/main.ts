/**
 * mpdp — the developer tool of the Mini Program Development Platform: sign in with a personal
 * access token, upload packages, submit them for review and follow their release pipeline.
 */
import { Exit, UsageError, commonOptions, parse, required } from './args.js';
import { ApiClient, ApiError, type Me, type MiniProgram, type TimelineEntry, type Version, type VersionDetail } from './client.js';
import { configPath, normaliseServer, resolveCredentials, writeConfig } from './config.js';
import { loadPackage } from './pack.js';
import { ProgressBar } from './progress.js';

/** Pipeline states after which nothing more happens. */
export const terminalStatuses: readonly string[] = ['released', 'rejected', 'withdrawn', 'invalid'];
const semver = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
const pollMs = 1000;

const out = (s = '') => process.stdout.write(`${s}\n`);
const err = (s = '') => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const enc = encodeURIComponent;

const connection = `Connection (every command):
  --server <url>     the mpdp server; else MPDP_SERVER, else the saved config
  --token <pat>      a personal access token; else MPDP_TOKEN, else the saved config
  -h, --help         show this help
`;

const globalHelp = `mpdp — developer tool of the Mini Program Development Platform

Usage: mpdp <command> [options]

Commands:
  login     check a personal access token and save it with the server address
  whoami    show who the token belongs to and their workspaces
  list      list the mini programs of a workspace
  upload    upload a package (a directory or a .zip) as a new version
  submit    submit an uploaded version for review
  status    show a version's pipeline: status, what it waits for, timeline

The saved config is $MPDP_CONFIG, else ~/.config/mpdp/config.json (mode 0600).
MPDP_SERVER and MPDP_TOKEN override it; --server and --token override both.
Create a token in the console or with POST /api/v1/me/tokens.

Run "mpdp <command> --help" for the options of a command.
`;

interface Command {
  help: string;
  run(argv: string[]): Promise<number | void>;
}

const commands = new Map<string, Command>();

/** An API client from the flags, environment and saved config, or an error saying how to sign in. */
function connect(values: { server?: string; token?: string }): ApiClient {
  const { server, token } = resolveCredentials(values);
  if (!server || !token) {
    throw new Error(`not signed in: run "mpdp login --server <url> --token <pat>", or set MPDP_SERVER and MPDP_TOKEN`);
  }
  return new ApiClient({ server, token });
}

const miniProgramPath = (o: { workspace: string; 'mini-program': string }) => `/workspaces/${enc(o.workspace)}/mini-programs/${enc(o['mini-program'])}`;

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

function localTime(iso: string): string {
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** `2025-03-01 14:02:11  in_review   validated`, with who did it and their comment. */
export function formatEntry(e: TimelineEntry): string {
  return `${localTime(e.at)}  ${e.status.padEnd(10)}  ${e.action}${e.actorName ? ` by ${e.actorName}` : ''}${e.comment ? `: "${e.comment}"` : ''}`;
}

const size = (bytes: number) => (bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1e3))} kB`);

/**
 * Prints the pipeline's timeline as it grows (polling every second) until it reaches a terminal
 * status: exit code 0 for released, 1 for rejected, withdrawn or invalid. Ctrl-C stops following
 * (exit 130); the pipeline itself goes on.
 */
async function follow(client: ApiClient, versionPath: string): Promise<number> {
  const stop = () => {
    err('\nStopped following; the pipeline carries on without you (see "mpdp status").');
    process.exit(130);
  };
  process.once('SIGINT', stop);
  try {
    let shown = 0;
    let waiting = '';
    let failures = 0;
    let announced = false;
    for (;;) {
      let detail: VersionDetail | undefined;
      try {
        detail = await client.get<VersionDetail>(versionPath);
        failures = 0;
      } catch (e) {
        // Ride out a server restart or a network blip; give up on a real answer or a long outage.
        if ((e instanceof ApiError && e.status < 500) || ++failures > 5) throw e;
      }
      const p = detail?.pipeline;
      if (detail && !p && !announced) {
        err(`${detail.version.version} is not submitted yet; waiting for a submission…`);
        announced = true;
      }
      if (p) {
        for (const e of p.timeline.slice(shown)) out(formatEntry(e));
        shown = p.timeline.length;
        if (p.waitingFor !== waiting) out(`  → ${(waiting = p.waitingFor)}`);
        if (terminalStatuses.includes(p.status)) return p.status === 'released' ? 0 : 1;
      }
      await sleep(pollMs);
    }
  } finally {
    process.off('SIGINT', stop);
  }
}

commands.set('login', {
  help: `Usage: mpdp login --server <url> --token <pat>

Checks the token against the server (GET /api/v1/me) and saves both to
$MPDP_CONFIG, else ~/.config/mpdp/config.json, readable by you only.
"--token -" reads the token from stdin, which keeps it out of your shell history.
MPDP_SERVER / MPDP_TOKEN are used when a flag is left out.

${connection}`,
  async run(argv) {
    const { values } = parse('login', argv, commonOptions, this.help);
    const given = required('login', { server: values.server || process.env.MPDP_SERVER, token: values.token || process.env.MPDP_TOKEN }, 'server', 'token');
    const token = given.token === '-' ? (await readStdin()).trim() : given.token;
    if (!token) throw new UsageError('no token on stdin', 'login');
    const creds = { server: normaliseServer(given.server), token };
    const me = await new ApiClient(creds).get<Me>('/me');
    writeConfig(creds);
    out(`Signed in to ${creds.server} as ${me.user.name} <${me.user.email}>`);
    err(`Saved to ${configPath()}`);
    if (process.env.MPDP_TOKEN && process.env.MPDP_TOKEN !== token) err('Note: MPDP_TOKEN is set and takes precedence over the saved token.');
  },
});

commands.set('whoami', {
  help: `Usage: mpdp whoami

Shows the user the token belongs to, the server, and their workspaces with their role.

${connection}`,
  async run(argv) {
    const { values } = parse('whoami', argv, commonOptions, this.help);
    const client = connect(values);
    const me = await client.get<Me>('/me');
    out(`${me.user.name} <${me.user.email}>${me.user.isOperator ? ' (operator)' : ''}`);
    out(`Server: ${client.creds.server}`);
    if (!me.workspaces.length) {
      out('No workspaces.');
      return;
    }
    out('Workspaces:');
    for (const line of table([['ID', 'NAME', 'TYPE', 'ROLE'], ...me.workspaces.map((w) => [w.id, w.name, w.type, w.role])])) out(`  ${line}`);
  },
});

commands.set('list', {
  help: `Usage: mpdp list --workspace <id> [--q <text>]

Lists the mini programs of a workspace, newest first.

Options:
  --workspace <id>   the workspace (see "mpdp whoami")
  --q <text>         only those whose name or description contains <text>

${connection}`,
  async run(argv) {
    const { values } = parse('list', argv, { ...commonOptions, workspace: { type: 'string' }, q: { type: 'string' } }, this.help);
    const { workspace } = required('list', values, 'workspace');
    const client = connect(values);
    const items: MiniProgram[] = [];
    let cursor: string | null = null;
    do {
      const query = new URLSearchParams({ limit: '100', ...(values.q ? { q: values.q } : {}), ...(cursor ? { cursor } : {}) });
      const page: { items: MiniProgram[]; nextCursor: string | null } = await client.get(`/workspaces/${enc(workspace)}/mini-programs?${query}`);
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    if (!items.length) {
      err(values.q ? `No mini programs match "${values.q}".` : 'No mini programs yet.');
      return;
    }
    for (const line of table([['ID', 'NAME', 'STATUS', 'LIVE', 'VERSIONS'], ...items.map((m) => [m.id, m.name, m.status, m.liveVersion ?? '-', String(m.versionCount)])])) out(line);
  },
});

commands.set('upload', {
  help: `Usage: mpdp upload <dir-or-zip> --workspace <id> --mini-program <id> --version <semver>
                   [--notes <text>] [--submit [--wait]]

Uploads a package as a new version and prints its id. A directory is zipped in memory
(its app.json at the root; node_modules, .git and other dotfiles are left out).
Progress goes to stderr.

Options:
  --workspace <id>      the workspace
  --mini-program <id>   the mini program (see "mpdp list")
  --version <semver>    the version, e.g. 1.2.0 (must match a version the package declares)
  --notes <text>        release notes
  --submit              submit it for review, then print its status and what it waits for
  --wait                with --submit: print the pipeline's timeline as it happens until the
                        version is released (exit 0) or rejected, withdrawn or invalid (exit 1)

${connection}`,
  async run(argv) {
    const { values, positionals } = parse('upload', argv, {
      ...commonOptions, workspace: { type: 'string' }, 'mini-program': { type: 'string' }, version: { type: 'string' },
      notes: { type: 'string' }, submit: { type: 'boolean' }, wait: { type: 'boolean' },
    }, this.help, true);
    if (!positionals.length) throw new UsageError('missing the package: a directory or a .zip file', 'upload');
    if (positionals.length > 1) throw new UsageError(`one package at a time (got ${positionals.join(', ')})`, 'upload');
    const o = required('upload', values, 'workspace', 'mini-program', 'version');
    if (!semver.test(o.version)) throw new UsageError(`--version ${JSON.stringify(o.version)} is not a semantic version such as 1.2.0`, 'upload');
    if (values.wait && !values.submit) throw new UsageError('--wait follows the review pipeline, so it needs --submit', 'upload');
    const client = connect(values);

    const pkg = loadPackage(positionals[0]!);
    if (pkg.fileCount !== null) err(`Packed ${pkg.fileCount} files from ${positionals[0]} (${size(pkg.bytes.length)} zipped)`);
    let bar: ProgressBar | undefined;
    let version: Version;
    try {
      version = await client.upload<Version>(`${miniProgramPath(o)}/versions`, [
        { name: 'version', value: o.version },
        { name: 'notes', value: values.notes ?? '' },
        { name: 'package', filename: 'package.zip', contentType: 'application/zip', data: pkg.bytes },
      ], (sent, total) => (bar ??= new ProgressBar(total)).update(sent));
    } finally {
      bar?.done();
    }
    out(`Uploaded ${version.version} as ${version.id} (${version.pageCount} pages, ${size(version.packageSize)})`);
    if (!values.submit) return;

    const versionPath = `${miniProgramPath(o)}/versions/${enc(version.id)}`;
    const submitted = await client.post<VersionDetail>(`${versionPath}/submit`);
    if (values.wait) return follow(client, versionPath);
    printBrief(submitted);
  },
});

function printBrief(d: VersionDetail) {
  out(`Status: ${d.pipeline?.status ?? d.version.status}`);
  if (d.pipeline) out(`Waiting for: ${d.pipeline.waitingFor}`);
}

const versionOptions = { ...commonOptions, workspace: { type: 'string' }, 'mini-program': { type: 'string' }, 'version-id': { type: 'string' }, wait: { type: 'boolean' } } as const;
const versionFlags = `  --workspace <id>      the workspace
  --mini-program <id>   the mini program
  --version-id <id>     the version's id (ver_…, printed by "mpdp upload")
  --wait                print the timeline as it happens until the version is released (exit 0)
                        or rejected, withdrawn or invalid (exit 1)`;

commands.set('submit', {
  help: `Usage: mpdp submit --workspace <id> --mini-program <id> --version-id <id> [--wait]

Submits an uploaded version for review (this starts its release pipeline) and prints its
status and what it waits for.

Options:
${versionFlags}

${connection}`,
  async run(argv) {
    const { values } = parse('submit', argv, versionOptions, this.help);
    const o = required('submit', values, 'workspace', 'mini-program', 'version-id');
    const client = connect(values);
    const versionPath = `${miniProgramPath(o)}/versions/${enc(o['version-id'])}`;
    const submitted = await client.post<VersionDetail>(`${versionPath}/submit`);
    if (values.wait) return follow(client, versionPath);
    printBrief(submitted);
  },
});

commands.set('status', {
  help: `Usage: mpdp status --workspace <id> --mini-program <id> --version-id <id> [--wait]

Shows a version's status, what its pipeline waits for, and its timeline.

Options:
${versionFlags}

${connection}`,
  async run(argv) {
    const { values } = parse('status', argv, versionOptions, this.help);
    const o = required('status', values, 'workspace', 'mini-program', 'version-id');
    const client = connect(values);
    const versionPath = `${miniProgramPath(o)}/versions/${enc(o['version-id'])}`;
    if (values.wait) return follow(client, versionPath);
    const d = await client.get<VersionDetail>(versionPath);
    out(`Version ${d.version.version} (${d.version.id}): ${d.version.status}`);
    if (!d.pipeline) {
      out('Not submitted yet ("mpdp submit" starts the review).');
      return;
    }
    out(`Waiting for: ${d.pipeline.waitingFor}`);
    out('Timeline:');
    for (const e of d.pipeline.timeline) out(`  ${formatEntry(e)}`);
  },
});

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function printApiError(e: ApiError) {
  err(`error: ${e.message} (${e.code})`);
  for (const [k, v] of Object.entries(e.details)) {
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    err(`  ${k}: ${text.length > 300 ? `${text.slice(0, 300)}…` : text}`);
  }
  if (e.status === 401) err('Check the token, or sign in again with "mpdp login".');
}

/** Runs the CLI on `argv` (without node and the script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    const topic = name === 'help' && rest[0] ? commands.get(rest[0]) : undefined;
    (name ? process.stdout : process.stderr).write(topic?.help ?? globalHelp);
    return name ? 0 : 2;
  }
  const command = commands.get(name);
  if (!command) {
    err(`mpdp: unknown command "${name}"; run "mpdp --help" for the list.`);
    return 2;
  }
  try {
    return (await command.run(rest)) ?? 0;
  } catch (e) {
    if (e instanceof Exit) return e.code;
    if (e instanceof UsageError) {
      err(`mpdp ${name}: ${e.message}`);
      err(`Run "mpdp ${name} --help" for usage.`);
      return 2;
    }
    if (e instanceof ApiError) {
      printApiError(e);
      return 1;
    }
    err(`error: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
