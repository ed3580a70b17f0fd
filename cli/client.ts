import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Credentials } from './config.js';

const userAgent = 'mpdp-cli/0.1';

/** An error answer of the API: `{ error: { code, message, details, requestId } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** One field of a multipart/form-data body. */
export type FormPart = { name: string; value: string } | { name: string; filename: string; contentType: string; data: Uint8Array };

export interface Workspace { id: string; name: string; code: string; type: string; role: string }
export interface Me { user: { id: string; email: string; name: string; isOperator: boolean }; workspaces: Workspace[] }
export interface MiniProgram { id: string; name: string; status: string; liveVersion: string | null; versionCount: number; category: string }
export interface Version { id: string; version: string; status: string; pageCount: number; packageSize: number; packageSha256: string }
export interface TimelineEntry { at: string; status: string; actorName: string | null; action: string; comment?: string }
export interface Pipeline { status: string; waitingFor: string; timeline: TimelineEntry[] }
export interface VersionDetail { version: Version; pipeline: Pipeline | null }

/** A thin client of the mpdp HTTP API, authenticated with a bearer token. */
export class ApiClient {
  constructor(readonly creds: Credentials) {}

  private url(path: string) {
    return `${this.creds.server}/api/v1${path}`;
  }

  private headers(extra: Record<string, string> = {}) {
    return { authorization: `Bearer ${this.creds.token}`, accept: 'application/json', 'user-agent': userAgent, ...extra };
  }

  /** A JSON request; resolves with the parsed answer or rejects with an {@link ApiError}. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.url(path), {
        method,
        headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(120_000),
      });
    } catch (err) {
      throw unreachable(this.creds.server, err);
    }
    return answer<T>(res.status, res.statusText, await res.text());
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  /**
   * POSTs a multipart/form-data body written by hand with `node:http(s)`, so the bytes actually
   * handed to the socket can be counted: `onProgress(sent, total)` runs after each chunk is flushed.
   */
  async upload<T>(path: string, parts: FormPart[], onProgress: (sent: number, total: number) => void): Promise<T> {
    const boundary = `----mpdp-${randomBytes(12).toString('hex')}`;
    const body = multipartBody(boundary, parts);
    const url = new URL(this.url(path));
    const { status, statusText, text } = await new Promise<{ status: number; statusText: string; text: string }>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? https : http).request(url, {
        method: 'POST',
        headers: this.headers({ 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(body.length) }),
      });
      // An answer can come before the whole body went out (e.g. 413 from the size limit): then
      // writing stops, and the errors of the abandoned body do not matter.
      let answered = false;
      let sent = 0;
      req.on('response', (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          if (sent < body.length) req.destroy();
          resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.on('error', (err) => {
        if (!answered) reject(unreachable(this.creds.server, err));
      });
      req.setTimeout(120_000, () => req.destroy(new Error('no progress for 120 s')));
      const chunkSize = 64 * 1024;
      const pump = async () => {
        onProgress(0, body.length);
        while (sent < body.length && !answered) {
          const chunk = body.subarray(sent, sent + chunkSize);
          await new Promise<void>((done, fail) => req.write(chunk, (err) => (err ? fail(err) : done())));
          sent += chunk.length;
          onProgress(sent, body.length);
        }
        if (!answered) req.end();
      };
      pump().catch((err: unknown) => {
        if (!answered) reject(unreachable(this.creds.server, err));
      });
    });
    return answer<T>(status, statusText, text);
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

function answer<T>(status: number, statusText: string, text: string): T {
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch { /* not JSON: a proxy's error page, say */ }
  if (status >= 200 && status < 300) return parsed as T;
  const e = (parsed as { error?: { code?: string; message?: string; details?: Record<string, unknown>; requestId?: string } } | undefined)?.error;
  if (e?.message) throw new ApiError(status, e.code ?? `http_${status}`, e.message, e.details ?? {}, e.requestId);
  throw new ApiError(status, `http_${status}`, `The server answered ${status} ${statusText}`.trim());
}

function unreachable(server: string, err: unknown): Error {
  if (err instanceof ApiError) return err;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message;
  return new Error(`cannot reach ${server}: ${why}`);
}
