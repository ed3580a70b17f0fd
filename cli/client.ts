import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { ReleaseState } from '../workflows/contracts/release.js';
import type { Credentials } from './config.js';

const userAgent = 'mpdp-cli/0.2';

/** An error answer of the API: `{ error: { code, message, details, requestId } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly requestId?: string,
    /** Seconds the server asked us to wait (Retry-After on 429/503). */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** No answer at all: the server is unreachable, the connection dropped, or it went quiet too long. */
export class NetworkError extends Error {
  constructor(message: string, readonly reason: string) {
    super(message);
    this.name = 'NetworkError';
  }
}

/** Worth another try: no answer, or an answer that says "not now" (5xx, 429, 408). */
export const retryable = (e: unknown) => e instanceof NetworkError || (e instanceof ApiError && (e.status >= 500 || e.status === 429 || e.status === 408));

/** How often and how patiently a request is tried again. */
export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** Wait before the second try; doubles every try (with ±20% jitter), up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}
export const defaultRetry: RetryPolicy = { attempts: 5, baseDelayMs: 500, maxDelayMs: 8000 };

/** Told before each new try: which one comes, after how long, and why. */
export type RetryNotice = (o: { attempt: number; attempts: number; delayMs: number; error: Error }) => void;

/** The delay before try `attempt` (2, 3, …): exponential with jitter, or what Retry-After asked for. */
export function backoffMs(policy: RetryPolicy, attempt: number, error: unknown, random = Math.random): number {
  if (error instanceof ApiError && error.retryAfterS !== undefined) return Math.min(policy.maxDelayMs * 4, error.retryAfterS * 1000);
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 2));
  return Math.round(exp * (0.8 + 0.4 * random()));
}

/** Runs `once` until it succeeds, fails for good, or the policy's tries run out. */
export async function withRetry<T>(policy: RetryPolicy, once: (attempt: number) => Promise<T>, onRetry?: RetryNotice): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await once(attempt);
    } catch (e) {
      if (!retryable(e) || attempt >= policy.attempts) throw e;
      const delayMs = backoffMs(policy, attempt + 1, e);
      onRetry?.({ attempt: attempt + 1, attempts: policy.attempts, delayMs, error: e as Error });
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

/** A random Idempotency-Key: a retried command then returns the first answer. */
export const newIdempotencyKey = () => `cli-${randomBytes(16).toString('hex')}`;

/** One field of a multipart/form-data body. */
export type FormPart = { name: string; value: string } | { name: string; filename: string; contentType: string; data: Uint8Array };

export interface Workspace { id: string; name: string; code: string; type: string; role: string }
export interface Me { user: { id: string; email: string; name: string; isOperator: boolean }; workspaces: Workspace[] }
export interface MiniProgram { id: string; name: string; status: string; liveVersion: string | null; versionCount: number; category: string }
export interface Version { id: string; version: string; status: string; pageCount: number; packageSize: number; packageSha256: string; notes?: string }
/** A timeline entry as the API sends it: the actor's name may come inline or through `names`. */
export type TimelineEntry = ReleaseState['timeline'][number] & { actorName?: string | null };
/**
 * The pipeline of a version as the API sends it. The fields past status/waitingFor/timeline come
 * with the staged-rollout API; older servers leave them out, so they are optional here.
 */
export type Pipeline = Partial<Omit<ReleaseState, 'timeline'>> & {
  status: string;
  waitingFor: string;
  timeline: TimelineEntry[];
  /** User id → name, for the timeline's actors. */
  names?: Record<string, string>;
  /** What it waits for and on whom, in words, with the SLA clock. */
  waitingWords?: string;
};
export interface VersionDetail { version: Version; pipeline: Pipeline | null }
export interface PreviewLink { url: string; path: string; expiresAt: string; qrPng: string; qrSvg: string }

export interface RequestOptions {
  body?: unknown;
  /** Sent as Idempotency-Key; a request with one (or a GET) is retried by the client's policy. */
  idempotencyKey?: string;
  timeoutMs?: number;
}

/** A thin client of the mpdp HTTP API, authenticated with a bearer token. */
export class ApiClient {
  constructor(
    readonly creds: Credentials,
    readonly retry: RetryPolicy = defaultRetry,
    readonly onRetry?: RetryNotice,
  ) {}

  private url(path: string) {
    return `${this.creds.server}/api/v1${path}`;
  }

  private headers(extra: Record<string, string> = {}) {
    return { authorization: `Bearer ${this.creds.token}`, accept: 'application/json', 'user-agent': userAgent, ...extra };
  }

  /**
   * A JSON request; resolves with the parsed answer or rejects with an {@link ApiError} or a
   * {@link NetworkError}. GETs, and commands that carry an Idempotency-Key, are tried again on a
   * dropped connection, a timeout or a 5xx: the key makes the server answer a repeat with the
   * first outcome instead of doing it twice.
   */
  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const once = async () => {
      let res: Response;
      try {
        res = await fetch(this.url(path), {
          method,
          headers: this.headers({
            ...(o.body === undefined ? {} : { 'content-type': 'application/json' }),
            ...(o.idempotencyKey ? { 'idempotency-key': o.idempotencyKey } : {}),
          }),
          body: o.body === undefined ? undefined : JSON.stringify(o.body),
          signal: AbortSignal.timeout(o.timeoutMs ?? 60_000),
        });
      } catch (err) {
        throw unreachable(this.creds.server, err);
      }
      let text: string;
      try {
        text = await res.text();
      } catch (err) {
        throw unreachable(this.creds.server, err);
      }
      return answer<T>(res.status, res.statusText, text, res.headers.get('retry-after'));
    };
    const safe = method === 'GET' || !!o.idempotencyKey;
    return safe ? withRetry(this.retry, once, this.onRetry) : once();
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body?: unknown, idempotencyKey?: string): Promise<T> {
    return this.request<T>('POST', path, { body, idempotencyKey });
  }

  /**
   * POSTs a multipart/form-data body written by hand with `node:http(s)`, so the bytes actually
   * handed to the socket can be counted: `onProgress(sent, total, attempt)` runs after each chunk
   * is flushed. Tried again (whole body, same Idempotency-Key) when the connection drops, the
   * server goes quiet for `timeoutMs`, or it answers 5xx: the server derives the version id from
   * the key, so a repeat lands on the same version rather than making a second one.
   */
  upload<T>(path: string, parts: FormPart[], o: { idempotencyKey: string; onProgress: (sent: number, total: number, attempt: number) => void; timeoutMs?: number }): Promise<T> {
    const boundary = `----mpdp-${randomBytes(12).toString('hex')}`;
    const body = multipartBody(boundary, parts);
    return withRetry(this.retry, (attempt) => this.uploadOnce<T>(path, boundary, body, attempt, o), this.onRetry);
  }

  private async uploadOnce<T>(path: string, boundary: string, body: Buffer, attempt: number, o: { idempotencyKey: string; onProgress: (sent: number, total: number, attempt: number) => void; timeoutMs?: number }): Promise<T> {
    const url = new URL(this.url(path));
    const timeoutMs = o.timeoutMs ?? 120_000;
    const { status, statusText, text, retryAfter } = await new Promise<{ status: number; statusText: string; text: string; retryAfter: string | null }>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? https : http).request(url, {
        method: 'POST',
        // A fresh connection per try: a kept-alive socket is what a dropped connection just broke.
        agent: false,
        headers: this.headers({ 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(body.length), 'idempotency-key': o.idempotencyKey }),
      });
      // An answer can come before the whole body went out (e.g. 413 from the size limit): then
      // writing stops, and the errors of the abandoned body do not matter.
      let answered = false;
      let sent = 0;
      const fail = (err: unknown) => {
        if (!answered) reject(unreachable(this.creds.server, err));
      };
      req.on('response', (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        // The answer itself cut short: the server may have done the work, so this is worth a
        // retry with the same key (it returns that work's outcome).
        res.on('error', (err) => reject(unreachable(this.creds.server, err)));
        res.on('aborted', () => reject(new NetworkError(`the connection to ${this.creds.server} dropped while reading the answer`, 'ECONNRESET')));
        res.on('end', () => {
          if (sent < body.length) req.destroy();
          resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', text: Buffer.concat(chunks).toString('utf8'), retryAfter: (res.headers['retry-after'] as string | undefined) ?? null });
        });
      });
      req.on('error', fail);
      req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no progress for ${Math.round(timeoutMs / 1000)} s`), { code: 'ETIMEDOUT' })));
      const chunkSize = 64 * 1024;
      const pump = async () => {
        o.onProgress(0, body.length, attempt);
        while (sent < body.length && !answered) {
          const chunk = body.subarray(sent, sent + chunkSize);
          await new Promise<void>((done, failed) => req.write(chunk, (err) => (err ? failed(err) : done())));
          sent += chunk.length;
          o.onProgress(sent, body.length, attempt);
        }
        if (!answered) req.end();
      };
      pump().catch(fail);
    });
    return answer<T>(status, statusText, text, retryAfter);
  }

  /**
   * Server-sent events of a path, as `{ event, data }`, until `signal` aborts or the stream ends.
   * Used only to wake a watcher early; every caller also polls.
   */
  async *events(path: string, signal: AbortSignal): AsyncGenerator<{ event: string; data: string }> {
    let res: Response;
    try {
      res = await fetch(this.url(path), { headers: this.headers({ accept: 'text/event-stream' }), signal });
    } catch (err) {
      throw unreachable(this.creds.server, err);
    }
    if (!res.ok || !res.body) {
      answer(res.status, res.statusText, await res.text().catch(() => ''), null);
      return;
    }
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        yield { event, data: data.join('\n') };
      }
    }
  }
}

/** The body of a multipart/form-data request (RFC 7578) with the given boundary. */
export function multipartBody(boundary: string, parts: FormPart[]): Buffer {
  const quote = (s: string) => s.replace(/["\r\n]/g, (c) => encodeURIComponent(c));
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${quote(part.name)}"`;
    if ('data' in part) head += `; filename="${quote(part.filename)}"\r\nContent-Type: ${part.contentType}`;
    chunks.push(Buffer.from(`${head}\r\n\r\n`), 'data' in part ? Buffer.from(part.data.buffer, part.data.byteOffset, part.data.byteLength) : Buffer.from(part.value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

function answer<T>(status: number, statusText: string, text: string, retryAfter: string | null): T {
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch { /* not JSON: a proxy's error page, say */ }
  if (status >= 200 && status < 300) return parsed as T;
  const wait = retryAfter && /^\d+$/.test(retryAfter) ? Number(retryAfter) : undefined;
  const e = (parsed as { error?: { code?: string; message?: string; details?: Record<string, unknown>; requestId?: string } } | undefined)?.error;
  if (e?.message) throw new ApiError(status, e.code ?? `http_${status}`, e.message, e.details ?? {}, e.requestId, wait);
  throw new ApiError(status, `http_${status}`, `The server answered ${status} ${statusText}`.trim(), {}, undefined, wait);
}

function unreachable(server: string, err: unknown): Error {
  if (err instanceof ApiError || err instanceof NetworkError) return err;
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return new NetworkError(`${server} did not answer in time`, 'ETIMEDOUT');
  const why = e.cause?.code ?? e.code ?? e.cause?.message ?? e.message ?? String(err);
  if (why === 'ETIMEDOUT' || why === 'UND_ERR_HEADERS_TIMEOUT' || why === 'UND_ERR_BODY_TIMEOUT') return new NetworkError(`${server} did not answer in time (${e.message ?? why})`, why);
  if (/ECONNRESET|EPIPE|socket hang up|UND_ERR_SOCKET|other side closed|terminated/i.test(why)) return new NetworkError(`the connection to ${server} dropped (${why})`, why);
  return new NetworkError(`cannot reach ${server}: ${why}`, why);
}
