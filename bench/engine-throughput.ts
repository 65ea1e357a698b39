/**
 * Tokens per second through the gateway's /api/chat against node-llama-cpp called directly on the
 * same model with the same settings, interleaved in one run so both see the same machine state.
 * Usage: npx tsx bench/engine-throughput.ts [rounds]
 */
import path from 'node:path';
import { getLlama, GeneralChatWrapper, LlamaChat, LlamaLogLevel } from 'node-llama-cpp';
import { loadConfig } from '../src/config.js';
import { spawnServer, SHARED_MODELS } from '../test/support/server.js';
import { fmt, machine, mean, percentile, table } from './lib.js';

const ROUNDS = Number(process.argv[2] ?? 8);
const TOKENS = 400;
const settings = { temperature: 0.8, topP: 0.9, topK: 40, repeatPenalty: 1.1, seed: 42 };
const prompt = 'Once upon a time';
const threads = loadConfig().threads;

const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: path.join(SHARED_MODELS, 'stories260K.gguf') });
const context = await model.createContext({ contextSize: 512, threads });

async function direct(): Promise<{ tokens: number; seconds: number }> {
  const sequence = context.getSequence();
  const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: new GeneralChatWrapper(), autoDisposeSequence: false });
  let tokens = 0;
  const started = performance.now();
  await chat.generateResponse([{ type: 'user', text: prompt }, { type: 'model', response: [] }], {
    maxTokens: TOKENS,
    temperature: settings.temperature,
    topP: settings.topP,
    topK: settings.topK,
    seed: settings.seed,
    repeatPenalty: { penalty: settings.repeatPenalty },
    onToken: (t) => (tokens += t.length),
  });
  const seconds = (performance.now() - started) / 1000;
  chat.dispose({ disposeSequence: false });
  await sequence.dispose();
  return { tokens, seconds };
}

const server = await spawnServer({ LLAMA_PARALLEL: '1' });
async function gateway(): Promise<{ tokens: number; seconds: number; serverTps: number }> {
  const started = performance.now();
  const response = await fetch(`${server.url}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      history: [{ role: 'user', content: prompt }],
      model_instances: [{ model: 'stories260K', temperature: 0.8, top_p: 0.9, top_k: 40, repeat_penalty: 1.1, num_predict: TOKENS, seed: 42 }],
    }),
  });
  const body = (await response.json()) as { metrics: { tokens: number; tokens_per_sec: number } };
  return { tokens: body.metrics.tokens, seconds: (performance.now() - started) / 1000, serverTps: body.metrics.tokens_per_sec };
}

// Warm both paths (model load, first-context allocation) before measuring.
await direct();
await gateway();
const directTps: number[] = [];
const gatewayTps: number[] = [];
const gatewayServerTps: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const d = await direct();
  const g = await gateway();
  directTps.push(d.tokens / d.seconds);
  gatewayTps.push(g.tokens / g.seconds);
  gatewayServerTps.push(g.serverTps);
}
await server.stop();
await context.dispose();
await model.dispose();

const ratio = mean(gatewayTps) / mean(directTps);
console.log(`## Embedded engine throughput (${new Date().toISOString().slice(0, 10)})\n`);
console.log(`Machine: ${machine()}. Model stories260K (F32), ${TOKENS} tokens per request, ${threads} thread(s), ${ROUNDS} interleaved rounds.\n`);
console.log(
  table(
    ['path', 'mean tok/s', 'p50 tok/s', 'min tok/s'],
    [
      ['node-llama-cpp directly (LlamaChat)', fmt(mean(directTps), 0), fmt(percentile(directTps, 50), 0), fmt(Math.min(...directTps), 0)],
      ['gateway /api/chat, end to end at the client', fmt(mean(gatewayTps), 0), fmt(percentile(gatewayTps, 50), 0), fmt(Math.min(...gatewayTps), 0)],
      ['gateway /api/chat, its tokens_per_sec metric (tokens / duration_s)', fmt(mean(gatewayServerTps), 0), fmt(percentile(gatewayServerTps, 50), 0), fmt(Math.min(...gatewayServerTps), 0)],
    ],
  ),
);
console.log(`\nRatio gateway / direct (end to end): **${fmt(ratio, 3)}** (goal ≥ 0.95).`);
