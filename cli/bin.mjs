#!/usr/bin/env node
// Launcher for the mpdp CLI: the CLI is TypeScript, run through tsx's loader.
// tsconfig: false keeps a tsconfig.json in the caller's working directory from changing how the
// CLI itself is compiled.
import { register } from 'tsx/esm/api';

register({ tsconfig: false });
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
