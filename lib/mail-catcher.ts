import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ReceivedMail } from './smtp-peer.js';

let counter = 0;

/** Stores a caught mail as <dir>/<time>-<n>.eml: the dev mailbox (console page /dev/mail) lists these. */
export function writeCaughtMail(dir: string, mail: ReceivedMail): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${new Date(mail.receivedAt).toISOString().replace(/[:.]/g, '-')}-${process.pid}-${++counter}.eml`);
  writeFileSync(file, mail.raw);
  return file;
}
