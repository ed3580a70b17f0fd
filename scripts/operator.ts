import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';
import { createSequelize, migrate } from '../db/index.js';
import { ensureOperator } from '../db/seed.js';
import { loadConfig } from '../lib/config.js';

/**
 * Bootstraps (or resets) a platform operator: `npm run operator -- <email>`.
 * The password comes from MPDP_OPERATOR_PASSWORD, or is read from stdin (never from the
 * command line, where it would land in the shell history and the process list).
 */
const email = process.argv[2];
if (!email || !/^[^@\s]+@[^@\s]+$/.test(email)) {
  console.error('usage: npm run operator -- <email>   (password from MPDP_OPERATOR_PASSWORD or stdin)');
  process.exit(2);
}
let password = process.env.MPDP_OPERATOR_PASSWORD ?? '';
if (!password) {
  // Typed on a terminal, the password is not echoed: the prompt is written, then output is muted.
  let muted = false;
  const output = new Writable({
    write(chunk, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: !!process.stdin.isTTY });
  const answer = rl.question(`Password for ${email} (at least 10 characters): `);
  muted = true;
  password = (await answer).trim();
  rl.close();
  process.stderr.write('\n');
}
if (password.length < 10) {
  console.error('The operator password must be at least 10 characters.');
  process.exit(2);
}
const config = loadConfig();
await migrate(config.databaseUrl);
const sequelize = createSequelize(config.databaseUrl, { pool: 1 });
try {
  const { id, created } = await ensureOperator(sequelize, { email, password });
  console.log(`Platform operator ${email} ${created ? 'created' : 'updated'} (${id}).`);
} finally {
  await sequelize.close();
}
