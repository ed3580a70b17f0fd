/**
 * mpdp — the developer tool of the Mini Program Development Platform: sign in with a personal
 * access token, upload packages, preview them on a phone, submit them for review and follow
 * their release pipeline. Every command takes --json and exits with a documented code (CI).
 */
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';
import QRCode from 'qrcode';
import { Exit, UsageError, commonOptions, parse, required } from './args.js';
import { ApiClient, ApiError, NetworkError, newIdempotencyKey, type Me, type MiniProgram, type PreviewLink, type RetryNotice, type Version, type VersionDetail } from './client.js';
import { configPath, normaliseServer, resolveCredentials, writeConfig } from './config.js';
import { ExitCode, NotSignedIn, errorCodeOf, exitCodeOf, exitCodesHelp } from './exit-codes.js';
import { missingJsapiLines } from './jsapi-errors.js';
import { loadPackage } from './pack.js';
import { ProgressBar } from './progress.js';
import { formatEntry, goodEndings, summaryLines, watchVersion } from './watch.js';

export { formatEntry, terminalStatuses } from './watch.js';

const semver = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
const enc = encodeURIComponent;

/**
 * Where a command writes. Human mode: results on stdout, notes on stderr. `--json`: one JSON
 * document on stdout at the end and nothing else there; the human lines go to stderr, so a CI
 * log still tells the story.
 */
class Output {
  constructor(readonly json: boolean) {}
  /** A line of the result (stdout; stderr under --json). */
  say(s = '') {
    (this.json ? process.stderr : process.stdout).write(`${s}\n`);
  }
  /** A note, progress or warning (stderr always). */
  note(s = '') {
    process.stderr.write(`${s}\n`);
  }
  /** The command's JSON document (only under --json). */
  result(doc: unknown) {
    if (this.json) process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  }
}

const connection = `Connection (every command):
  --server <url>     the mpdp server; else MPDP_SERVER, else the saved config
  --token <pat>      a personal access token; else MPDP_TOKEN, else the saved config
  --json             print one JSON document on stdout (errors too: {"error": {...}})
  -h, --help         show this help
`;

const globalHelp = `mpdp — developer tool of the Mini Program Development Platform

Usage: mpdp <command> [options]

Commands:
  login     check a personal access token and save it with the server address
  whoami    show who the token belongs to and their workspaces
  list      list the mini programs of a workspace
  upload    upload a package (a directory or a .zip) as a new version
  preview   print a preview QR code and link for a version, to open on a phone
  submit    submit an uploaded version for review (--hotfix to take over a rollout)
  status    show a version's pipeline; --watch follows it until it ends

Create a personal access token in the console (avatar menu → Access tokens), then
  mpdp login --server https://mpdp.example.com       (asks for the token)
The saved config is $MPDP_CONFIG, else ~/.config/mpdp/config.json (mode 0600).
MPDP_SERVER and MPDP_TOKEN override it; --server and --token override both.
MPDP_WORKSPACE and MPDP_MINI_PROGRAM stand in for --workspace and --mini-program.

Every command takes --json: one JSON document on stdout, nothing else there.

${exitCodesHelp}
Run "mpdp <command> --help" for the options of a command.
`;

interface Command {
  help: string;
  run(argv: string[], output: Output): Promise<number | void>;
}

const commands = new Map<string, Command>();

/** Tells about each retry on stderr, so a slow CI step says why it is slow. */
const retryNotice = (output: Output): RetryNotice => ({ attempt, attempts, delayMs, error }) =>
  output.note(`${error.message}; trying again in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt} of ${attempts})`);

/** An API client from the flags, environment and saved config, or an error saying how to sign in. */
function connect(values: { server?: string; token?: string }, output: Output): ApiClient {
  const { server, token } = resolveCredentials(values);
  if (!server || !token) throw new NotSignedIn();
  return new ApiClient({ server, token }, undefined, retryNotice(output));
}

type Target = { workspace: string; 'mini-program': string };
const miniProgramPath = (o: Target) => `/workspaces/${enc(o.workspace)}/mini-programs/${enc(o['mini-program'])}`;

/** --workspace / --mini-program, else MPDP_WORKSPACE / MPDP_MINI_PROGRAM. */
function withTargetDefaults<V extends { workspace?: string; 'mini-program'?: string }>(values: V): V {
  return { ...values, workspace: values.workspace || process.env.MPDP_WORKSPACE, 'mini-program': values['mini-program'] || process.env.MPDP_MINI_PROGRAM };
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

const size = (bytes: number) => (bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1e3))} kB`);

/**
 * Follows a version until its pipeline ends, printing as it goes; returns the last detail and
 * the exit code (0 released, 5 any other end). Ctrl-C stops following; the pipeline goes on.
 */
async function follow(client: ApiClient, t: Target & { versionId: string }, output: Output): Promise<{ detail: VersionDetail; code: number }> {
  const stop = () => {
    output.note('\nStopped following; the pipeline carries on without you (see "mpdp status").');
    process.exit(130);
  };
  process.once('SIGINT', stop);
  try {
    const detail = await watchVersion(client, { workspace: t.workspace, miniProgram: t['mini-program'], versionId: t.versionId }, (line) => output.say(line));
    const status = detail.pipeline!.status;
    return { detail, code: goodEndings.includes(status) ? ExitCode.ok : ExitCode.pipelineFailed };
  } finally {
    process.off('SIGINT', stop);
  }
}

/** `--version-id ver_…`, or `--version 1.2.0` looked up among the mini program's versions. */
async function versionIdOf(client: ApiClient, o: Target, values: { 'version-id'?: string; version?: string }, command: string): Promise<string> {
  if (values['version-id'] && values.version) throw new UsageError('give --version-id or --version, not both', command);
  if (values['version-id']) return values['version-id'];
  if (!values.version) throw new UsageError('missing --version-id <id> (or --version <semver>)', command);
  const detail = await client.get<{ versions: Version[] }>(miniProgramPath(o));
  const found = detail.versions.find((v) => v.version === values.version);
  if (!found) throw new ApiError(404, 'not_found', `Version ${values.version} not found in mini program ${o['mini-program']}`);
  return found.id;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Asks on the terminal without echoing what is typed. */
async function askHidden(prompt: string): Promise<string> {
  let muted = false;
  const echo = new Writable({
    write(chunk, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output: echo, terminal: true });
  const answer = rl.question(prompt);
  muted = true;
  try {
    return (await answer).trim();
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

commands.set('login', {
  help: `Usage: mpdp login --server <url> [--token <pat>]

Checks a personal access token against the server (GET /api/v1/me) and saves both to
$MPDP_CONFIG, else ~/.config/mpdp/config.json, readable by you only (0600).

The token comes from --token, else MPDP_TOKEN, else stdin: piped in
(echo "$PAT" | mpdp login --server …), or typed at a prompt that does not echo it.
"--token -" reads stdin too. Stdin and the prompt keep it out of your shell history.
Create tokens in the console: avatar menu → Access tokens.

${connection}`,
  async run(argv, output) {
    const { values } = parse('login', argv, commonOptions, this.help);
    const { server } = required('login', { server: values.server || process.env.MPDP_SERVER || resolveCredentials({}).server }, 'server');
    let token = values.token || process.env.MPDP_TOKEN || '-';
    if (token === '-') {
      if (process.stdin.isTTY && !output.json) token = await askHidden(`Personal access token for ${normaliseServer(server)}: `);
      else token = (await readStdin()).trim();
      if (!token) throw new UsageError('no token given: pass --token, set MPDP_TOKEN, or pipe it on stdin', 'login');
    }
    const creds = { server: normaliseServer(server), token };
    const me = await new ApiClient(creds, undefined, retryNotice(output)).get<Me>('/me');
    writeConfig(creds);
    output.say(`Signed in to ${creds.server} as ${me.user.name} <${me.user.email}>`);
    output.note(`Saved to ${configPath()}`);
    if (process.env.MPDP_TOKEN && process.env.MPDP_TOKEN !== token) output.note('Note: MPDP_TOKEN is set and takes precedence over the saved token.');
    output.result({ server: creds.server, configPath: configPath(), user: me.user, workspaces: me.workspaces });
  },
});

commands.set('whoami', {
  help: `Usage: mpdp whoami

Shows the user the token belongs to, the server, and their workspaces with their role.

${connection}`,
  async run(argv, output) {
    const { values } = parse('whoami', argv, commonOptions, this.help);
    const client = connect(values, output);
    const me = await client.get<Me>('/me');
    output.result({ server: client.creds.server, user: me.user, workspaces: me.workspaces });
    output.say(`${me.user.name} <${me.user.email}>${me.user.isOperator ? ' (operator)' : ''}`);
    output.say(`Server: ${client.creds.server}`);
    if (!me.workspaces.length) {
      output.say('No workspaces.');
      return;
    }
    output.say('Workspaces:');
    for (const line of table([['ID', 'NAME', 'TYPE', 'ROLE'], ...me.workspaces.map((w) => [w.id, w.name, w.type, w.role])])) output.say(`  ${line}`);
  },
});

commands.set('list', {
  help: `Usage: mpdp list --workspace <id> [--q <text>]
       mpdp list --authorized

Lists the mini programs of a workspace, newest first; or, with --authorized, the mini programs
other workspaces authorized you to work on (as a member of a developer workspace), with the
merchant workspace to pass as --workspace and the granted scope.

Options:
  --workspace <id>   the workspace (see "mpdp whoami"); else MPDP_WORKSPACE
  --q <text>         only those whose name or description contains <text>
  --authorized       mini programs you may act on through developer authorizations

${connection}`,
  async run(argv, output) {
    const { values } = parse('list', argv, { ...commonOptions, workspace: { type: 'string' }, q: { type: 'string' }, authorized: { type: 'boolean' } }, this.help);
    if (values.authorized) {
      const client = connect(values, output);
      type Granted = { miniProgram: { id: string; name: string; status: string }; merchantWorkspace: { id: string; name: string }; scope: string[] };
      const { items }: { items: Granted[] } = await client.get('/me/authorized-mini-programs');
      output.result({ items });
      if (!items.length) {
        output.note('No workspace has authorized you on any mini program.');
        return;
      }
      for (const line of table([['ID', 'NAME', 'STATUS', 'WORKSPACE', 'MERCHANT', 'SCOPE'], ...items.map((g) => [g.miniProgram.id, g.miniProgram.name, g.miniProgram.status, g.merchantWorkspace.id, g.merchantWorkspace.name, g.scope.join(',')])])) output.say(line);
      return;
    }
    const { workspace } = required('list', withTargetDefaults(values), 'workspace');
    const client = connect(values, output);
    const items: MiniProgram[] = [];
    let cursor: string | null = null;
    do {
      const query = new URLSearchParams({ limit: '100', ...(values.q ? { q: values.q } : {}), ...(cursor ? { cursor } : {}) });
      const page: { items: MiniProgram[]; nextCursor: string | null } = await client.get(`/workspaces/${enc(workspace)}/mini-programs?${query}`);
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    output.result({ items });
    if (!items.length) {
      output.note(values.q ? `No mini programs match "${values.q}".` : 'No mini programs yet.');
      return;
    }
    for (const line of table([['ID', 'NAME', 'STATUS', 'LIVE', 'VERSIONS'], ...items.map((m) => [m.id, m.name, m.status, m.liveVersion ?? '-', String(m.versionCount)])])) output.say(line);
  },
});

const watchFlag = `  --watch               follow the pipeline until it ends: exit 0 when released, 5 when it
                        ends rejected, invalid, halted, aborted, withdrawn or superseded
                        (--wait is the same)`;

commands.set('upload', {
  help: `Usage: mpdp upload <dir-or-zip> --workspace <id> --mini-program <id> --version <semver>
                   [--notes <text>] [--submit [--hotfix] [--watch]] [--idempotency-key <key>]

Uploads a package as a new version and prints its id and sha256 checksum. A directory is
zipped in memory (its app.json at the root; node_modules, .git and other dotfiles are left
out), the same tree always giving the same bytes. Progress goes to stderr: a bar on a
terminal, a line per quarter elsewhere.

A dropped connection, a timeout or a 5xx is retried with backoff (5 tries in all). Every try
carries the same Idempotency-Key, and the server derives the version from it, so a retry
never makes a second version. Pass your own key (e.g. the CI job id) to make re-running the
whole command safe too.

Options:
  --workspace <id>         the workspace; else MPDP_WORKSPACE
  --mini-program <id>      the mini program (see "mpdp list"); else MPDP_MINI_PROGRAM
  --version <semver>       the version, e.g. 1.2.0 (must match a version the package declares)
  --notes <text>           release notes
  --idempotency-key <key>  the key to send (default: a random one per run)
  --timeout <seconds>      give up a try after this long without progress (default 120)
  --submit                 submit it for review, then print its status and what it waits for
  --hotfix                 with --submit: a hotfix, which may take over a rollout in progress
${watchFlag}

${connection}`,
  async run(argv, output) {
    const { values: raw, positionals } = parse('upload', argv, {
      ...commonOptions, workspace: { type: 'string' }, 'mini-program': { type: 'string' }, version: { type: 'string' },
      notes: { type: 'string' }, submit: { type: 'boolean' }, hotfix: { type: 'boolean' }, watch: { type: 'boolean' }, wait: { type: 'boolean' },
      'idempotency-key': { type: 'string' }, timeout: { type: 'string' },
    }, this.help, true);
    const values = withTargetDefaults(raw);
    if (!positionals.length) throw new UsageError('missing the package: a directory or a .zip file', 'upload');
    if (positionals.length > 1) throw new UsageError(`one package at a time (got ${positionals.join(', ')})`, 'upload');
    const o = required('upload', values, 'workspace', 'mini-program', 'version');
    if (!semver.test(o.version)) throw new UsageError(`--version ${JSON.stringify(o.version)} is not a semantic version such as 1.2.0`, 'upload');
    const watch = values.watch || values.wait;
    if (watch && !values.submit) throw new UsageError('--watch follows the review pipeline, so it needs --submit', 'upload');
    if (values.hotfix && !values.submit) throw new UsageError('--hotfix marks a submission, so it needs --submit', 'upload');
    const timeoutS = values.timeout === undefined ? 120 : Number(values.timeout);
    if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError(`--timeout ${JSON.stringify(values.timeout)} is not a number of seconds`, 'upload');
    const key = values['idempotency-key'] || newIdempotencyKey();
    if (key.length > 200) throw new UsageError('--idempotency-key is at most 200 characters', 'upload');
    const client = connect(values, output);

    const pkg = loadPackage(positionals[0]!);
    const sha256 = createHash('sha256').update(pkg.bytes).digest('hex');
    if (pkg.fileCount !== null) output.note(`Packed ${pkg.fileCount} files from ${positionals[0]} (${size(pkg.bytes.length)} zipped)`);
    let bar: ProgressBar | undefined;
    let attempts = 0;
    let version: Version;
    try {
      version = await client.upload<Version>(`${miniProgramPath(o)}/versions`, [
        { name: 'version', value: o.version },
        { name: 'notes', value: values.notes ?? '' },
        { name: 'package', filename: 'package.zip', contentType: 'application/zip', data: pkg.bytes },
      ], {
        idempotencyKey: key,
        timeoutMs: timeoutS * 1000,
        onProgress: (sent, total, attempt) => {
          if (attempt !== attempts) {
            // A new try: end the old bar's line and start over.
            bar?.done();
            bar = new ProgressBar(total, process.stderr, attempt > 1 ? `Uploading (try ${attempt})` : 'Uploading');
            attempts = attempt;
          }
          bar!.update(sent);
        },
      });
    } finally {
      bar?.done();
    }
    // The server hashes what it stored: a mismatch means the bytes changed on the way.
    if (version.packageSha256 && version.packageSha256 !== sha256) {
      throw new NetworkError(`the server stored a package with sha256 ${version.packageSha256}, but ${sha256} was sent; upload again`, 'checksum');
    }
    output.say(`Uploaded ${version.version} as ${version.id} (${version.pageCount} pages, ${size(version.packageSize)})`);
    output.say(`sha256 ${sha256}`);
    const doc = { version, sha256, bytes: pkg.bytes.length, fileCount: pkg.fileCount, attempts, idempotencyKey: key, submission: null as VersionDetail | null };
    if (!values.submit) {
      output.result(doc);
      return;
    }
    const target = { workspace: o.workspace, 'mini-program': o['mini-program'], versionId: version.id };
    doc.submission = await submit(client, target, !!values.hotfix, `${key}:submit`);
    let code: number = ExitCode.ok;
    if (watch) ({ detail: doc.submission, code } = await follow(client, target, output));
    else printBrief(doc.submission, output);
    output.result(doc);
    return code;
  },
});

function submit(client: ApiClient, t: Target & { versionId: string }, hotfix: boolean, key: string) {
  return client.post<VersionDetail>(`${miniProgramPath(t)}/versions/${enc(t.versionId)}/submit`, hotfix ? { hotfix: true } : undefined, key);
}

function printBrief(d: VersionDetail, output: Output) {
  if (d.pipeline) for (const line of summaryLines(d.pipeline)) output.say(line);
  else output.say(`Status: ${d.version.status}`);
}

const versionOptions = {
  ...commonOptions, workspace: { type: 'string' }, 'mini-program': { type: 'string' }, 'version-id': { type: 'string' }, version: { type: 'string' },
} as const;
const versionFlags = `  --workspace <id>      the workspace; else MPDP_WORKSPACE
  --mini-program <id>   the mini program; else MPDP_MINI_PROGRAM
  --version-id <id>     the version's id (ver_…, printed by "mpdp upload")
  --version <semver>    or the version's number, e.g. 1.2.0`;

commands.set('preview', {
  help: `Usage: mpdp preview --workspace <id> --mini-program <id> (--version-id <id> | --version <semver>)

Issues a signed preview link for a version and prints it with its QR code, to scan with the
super app on a phone. The link works for members of the workspace and its testers, until it
expires (PREVIEW_TTL_MS on the server, 15 minutes by default).

Options:
${versionFlags}

${connection}`,
  async run(argv, output) {
    const { values } = parse('preview', argv, versionOptions, this.help);
    const o = required('preview', withTargetDefaults(values), 'workspace', 'mini-program');
    const client = connect(values, output);
    const versionId = await versionIdOf(client, o, values, 'preview');
    const link = await client.post<PreviewLink>(`${miniProgramPath(o)}/versions/${enc(versionId)}/preview`);
    const absolute = (p: string) => new URL(p, client.creds.server + '/').toString();
    output.result({ versionId, url: link.url, expiresAt: link.expiresAt, qrPng: absolute(link.qrPng), qrSvg: absolute(link.qrSvg) });
    if (!output.json) process.stdout.write(await QRCode.toString(link.url, { type: 'terminal', small: true }));
    output.say(`Preview link: ${link.url}`);
    output.say(`Expires: ${new Date(link.expiresAt).toLocaleString()} (scan with the super app, signed in as a member or tester)`);
  },
});

commands.set('submit', {
  help: `Usage: mpdp submit --workspace <id> --mini-program <id> (--version-id <id> | --version <semver>)
                   [--hotfix] [--watch]

Submits an uploaded version for review (this starts its release pipeline) and prints its
status and what it waits for. A version already submitted exits 4.

Options:
${versionFlags}
  --hotfix              a hotfix: it may take over from a rollout in progress (the older
                        rollout is cancelled and recorded as superseded)
${watchFlag}

${connection}`,
  async run(argv, output) {
    const { values } = parse('submit', argv, { ...versionOptions, hotfix: { type: 'boolean' }, watch: { type: 'boolean' }, wait: { type: 'boolean' } }, this.help);
    const o = required('submit', withTargetDefaults(values), 'workspace', 'mini-program');
    const client = connect(values, output);
    const target = { ...o, versionId: await versionIdOf(client, o, values, 'submit') };
    let detail = await submit(client, target, !!values.hotfix, newIdempotencyKey());
    let code: number = ExitCode.ok;
    if (values.watch || values.wait) ({ detail, code } = await follow(client, target, output));
    else printBrief(detail, output);
    output.result(detail);
    return code;
  },
});

commands.set('status', {
  help: `Usage: mpdp status --workspace <id> --mini-program <id> (--version-id <id> | --version <semver>)
                   [--watch]

Shows a version's status, what its pipeline waits for (and on whom), its rollout stage and
share of users, and its timeline.

Options:
${versionFlags}
${watchFlag}

${connection}`,
  async run(argv, output) {
    const { values } = parse('status', argv, { ...versionOptions, watch: { type: 'boolean' }, wait: { type: 'boolean' } }, this.help);
    const o = required('status', withTargetDefaults(values), 'workspace', 'mini-program');
    const client = connect(values, output);
    const target = { ...o, versionId: await versionIdOf(client, o, values, 'status') };
    if (values.watch || values.wait) {
      const { detail, code } = await follow(client, target, output);
      output.result(detail);
      return code;
    }
    const d = await client.get<VersionDetail>(`${miniProgramPath(o)}/versions/${enc(target.versionId)}`);
    output.result(d);
    output.say(`Version ${d.version.version} (${d.version.id}): ${d.version.status}`);
    if (!d.pipeline) {
      output.say('Not submitted yet ("mpdp submit" starts the review).');
      return;
    }
    for (const line of summaryLines(d.pipeline)) output.say(line);
    output.say('Timeline:');
    for (const e of d.pipeline.timeline) output.say(`  ${formatEntry(e, d.pipeline.names)}`);
  },
});

function printError(e: unknown, output: Output, command: string) {
  if (e instanceof UsageError && !commands.has(command)) {
    output.note(`mpdp: ${e.message}`);
  } else if (e instanceof UsageError) {
    output.note(`mpdp ${command}: ${e.message}`);
    output.note(`Run "mpdp ${command} --help" for usage.`);
  } else if (e instanceof ApiError && e.code === 'jsapi_not_granted' && Array.isArray(e.details.missing)) {
    output.note(`error: the package uses ${e.details.missing.length} JSAPI(s) this mini program may not call (${e.code}):`);
    for (const line of missingJsapiLines(e.details.missing)) output.note(line);
  } else if (e instanceof ApiError) {
    output.note(`error: ${e.message} (${e.code})`);
    for (const [k, v] of Object.entries(e.details)) {
      const text = typeof v === 'string' ? v : JSON.stringify(v);
      output.note(`  ${k}: ${text.length > 300 ? `${text.slice(0, 300)}…` : text}`);
    }
    if (e.status === 401) output.note('Check the token (it may be revoked or expired), or sign in again with "mpdp login".');
    if (e.requestId && e.status >= 500) output.note(`  request id: ${e.requestId}`);
  } else {
    output.note(`error: ${e instanceof Error ? e.message : String(e)}`);
  }
  const code = exitCodeOf(e);
  output.result({
    error: {
      code: errorCodeOf(e), message: e instanceof Error ? e.message : String(e), exitCode: code,
      ...(e instanceof ApiError ? { status: e.status, details: e.details, requestId: e.requestId ?? null } : {}),
    },
  });
  return code;
}

/** Runs the CLI on `argv` (without node and the script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    const topic = name === 'help' && rest[0] ? commands.get(rest[0]) : undefined;
    (name ? process.stdout : process.stderr).write(topic?.help ?? globalHelp);
    return name ? ExitCode.ok : ExitCode.usage;
  }
  const output = new Output(rest.includes('--json'));
  const command = commands.get(name);
  if (!command) return printError(new UsageError(`unknown command "${name}"; run "mpdp --help" for the list`), output, name);
  try {
    return (await command.run(rest, output)) ?? ExitCode.ok;
  } catch (e) {
    if (e instanceof Exit) return e.code;
    return printError(e, output, name);
  }
}
