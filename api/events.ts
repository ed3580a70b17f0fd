import pg from 'pg';
import { changeChannel, type ChangeEvent } from '../activities/index.js';

type Listener = (e: ChangeEvent) => void;

/**
 * Fans PostgreSQL notifications from the projection activities out to server-sent-event streams.
 * Works across many API instances: each one listens on the same channel.
 */
export class ChangeHub {
  private client: pg.Client | null = null;
  private readonly listeners = new Set<Listener>();
  private closed = false;

  constructor(private readonly databaseUrl: string) {}

  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    client.on('notification', (msg) => {
      if (!msg.payload) return;
      let event: ChangeEvent;
      try {
        event = JSON.parse(msg.payload) as ChangeEvent;
      } catch {
        return;
      }
      for (const l of this.listeners) l(event);
    });
    client.on('error', (err) => {
      console.error('[events] listener connection lost, reconnecting', err.message);
      this.client = null;
      if (!this.closed) setTimeout(() => void this.start().catch((e: Error) => console.error('[events] reconnect failed', e.message)), 1000);
    });
    await client.connect();
    await client.query(`LISTEN ${changeChannel}`);
    this.client = client;
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => undefined);
  }
}
