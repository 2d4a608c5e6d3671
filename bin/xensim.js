#!/usr/bin/env node
// The `xensim` command: registers tsx so the TypeScript sources run as they are,
// then hands over to the toolstack's command-line entry point.
import { register } from 'tsx/esm/api';

register();
await import('../dom0/toolstack/cli.ts');
