#!/usr/bin/env node
// The `ollama-arena` command: the sources are TypeScript, run through tsx as `npm start` does.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
