import { UsageError } from './args.js';
import { ApiError, NetworkError } from './client.js';

/** What the CLI's exit status means, for CI scripts. Documented in `mpdp --help`. */
export const ExitCode = {
  ok: 0,
  /** Bad flags or arguments, or input the server refused as invalid (400, 413, 415, 422). */
  usage: 1,
  /** No token, or a token that is unknown, revoked or expired (401), or a role that may not (403). */
  auth: 2,
  /** The workspace, mini program or version does not exist or is not yours to see (404). */
  notFound: 3,
  /** The thing is not in a state that allows this, or it already exists (409, 410). */
  conflict: 4,
  /** The pipeline being followed ended badly: rejected, invalid, halted, aborted, withdrawn or superseded. */
  pipelineFailed: 5,
  /** The server could not be reached, dropped the connection, timed out or failed (5xx, 429). */
  unavailable: 6,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const exitCodesHelp = `Exit codes (for CI):
  0  done
  1  usage error: bad flags or arguments, or input the server refused (e.g. a bad package)
  2  authentication: no token, or it is unknown, revoked or expired; or your role may not do this
  3  not found: no such workspace, mini program or version (or not yours to see)
  4  wrong state or conflict: e.g. the version is already submitted, or that version exists
  5  the followed pipeline ended rejected, invalid, halted, aborted, withdrawn or superseded
  6  network or server error: unreachable, dropped connection, timeout, 5xx (after retries)
`;

/** Signed in nowhere: no server or no token from flags, environment or the saved config. */
export class NotSignedIn extends Error {
  constructor() {
    super('not signed in: run "mpdp login --server <url>" (it asks for the token), or set MPDP_SERVER and MPDP_TOKEN');
    this.name = 'NotSignedIn';
  }
}

/** The exit code of an error a command threw. */
export function exitCodeOf(e: unknown): ExitCode {
  if (e instanceof UsageError) return ExitCode.usage;
  if (e instanceof NotSignedIn) return ExitCode.auth;
  if (e instanceof NetworkError) return ExitCode.unavailable;
  if (e instanceof ApiError) {
    if (e.status === 401 || e.status === 403) return ExitCode.auth;
    if (e.status === 404) return ExitCode.notFound;
    if (e.status === 409 || e.status === 410) return ExitCode.conflict;
    if (e.status >= 500 || e.status === 429 || e.status === 408) return ExitCode.unavailable;
    return ExitCode.usage;
  }
  // A local problem the user can fix (no such file, a package directory with nothing in it).
  return ExitCode.usage;
}

/** A machine-readable code for an error, for `--json` output. */
export function errorCodeOf(e: unknown): string {
  if (e instanceof ApiError) return e.code;
  if (e instanceof UsageError) return 'usage';
  if (e instanceof NotSignedIn) return 'not_signed_in';
  if (e instanceof NetworkError) return 'network';
  return 'error';
}
