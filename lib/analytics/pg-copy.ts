import type pg from 'pg';

/**
 * `COPY … FROM STDIN` over a pg client without another dependency: a submittable query that, once
 * the server asks for the data, sends the chunks given (text in COPY's text format) and ends.
 * Resolves with the rows copied.
 */
export function copyIn(client: pg.ClientBase, sql: string, chunks: Iterable<string | Buffer>): Promise<number> {
  return new Promise((resolve, reject) => {
    let rows = 0;
    let failure: Error | undefined;
    const none = () => undefined;
    const submittable = {
      submit(connection: { query(text: string): void }) {
        connection.query(sql);
      },
      handleCopyInResponse(connection: { sendCopyFromChunk(c: Buffer): void; endCopyFrom(): void; sendCopyFail(m: string): void }) {
        try {
          for (const chunk of chunks) connection.sendCopyFromChunk(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
          connection.endCopyFrom();
        } catch (err) {
          connection.sendCopyFail(String((err as Error).message));
        }
      },
      handleCommandComplete(msg: { text?: string }) {
        rows = Number(/COPY (\d+)/.exec(msg.text ?? '')?.[1] ?? 0);
      },
      handleError(err: Error) {
        // Also called when the connection dies (no ReadyForQuery follows then).
        failure = err;
        reject(err);
      },
      handleReadyForQuery() {
        if (failure) reject(failure);
        else resolve(rows);
      },
      handleRowDescription: none, handleDataRow: none, handleEmptyQuery: none, handlePortalSuspended: none, handleCopyData: none,
    };
    (client as unknown as { query(s: unknown): void }).query(submittable);
  });
}

/** A value in COPY's text format (tab-separated; `\N` is NULL). */
export function copyText(v: string | number | null): string {
  if (v === null) return '\\N';
  if (typeof v === 'number') return String(v);
  return /[\\\t\n\r]/.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : v;
}
