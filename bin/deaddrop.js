#!/usr/bin/env node
// Runs the TypeScript CLI directly (tsx), so there is no build step and no stale output.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
