import crypto from 'node:crypto';
import type { LlamaContextSequence, LlamaGrammar, Token } from 'node-llama-cpp';
import type { ChatRequest, DoneReason, OutputFormat, StreamPart, TokenLogprob } from '../provider.js';
import type { GenerationOptions, ToolCall } from '../../domain/chat.js';
import { PushStream } from '../../shared/push-stream.js';
import { withModelDefaults } from '../model-defaults.js';
import { contextOverflow } from '../truncate-prompt.js';
import { couldFit, fewestTokens } from './input-bound.js';
import type { LoadedModel, ModelPool } from './model-pool.js';
import type { SamplingSettings } from './sampling-settings.js';

/** node-llama-cpp's generation options, as chat and completion both pass them. */
type CommonGenerationOptions = SamplingSettings & {
  stopOnAbortSignal: true;
  grammar?: LlamaGrammar;
  onTextChunk: (text: string) => void;
  onToken: (tokens: Token[]) => void;
};

/** What chat or completion hands the shared loop: everything that differs between the two. */
export interface GenerationRun {
  live: LoadedModel;
  sequence: LlamaContextSequence;
  /** node-llama-cpp's options for a prompt of this many tokens (tells the stream the prompt's size). */
  common: (promptTokens: number) => CommonGenerationOptions;
  /** The request's options with the model's and Ollama's defaults filled in. */
  options: GenerationOptions;
  /** The answer's token ids so far (complete once the run resolves). */
  generatedTokens: Token[];
  /** Sends text with its tokens' log-probabilities (generations that asked for them). */
  emit: (text: string, logprobs: TokenLogprob[]) => void;
}

export interface RunResult {
  promptTokens: number;
  stopReason: string;
  toolCalls?: ToolCall[];
  context?: number[];
}

/** The engine's parts the loop uses. */
export interface GenerationHost {
  readonly pool: ModelPool;
  grammarFor(format: OutputFormat | undefined): Promise<LlamaGrammar | undefined>;
  /** Tokens generated since start, generations running and aborted: observable state for tests. */
  readonly stats: { generated: number; running: number; aborted: number };
  /** The abort controller of every generation running: what closing the engine stops. */
  readonly inFlight: Set<AbortController>;
}

function nowNs(): bigint {
  return process.hrtime.bigint();
}

/**
 * The sampler's seed: llama.cpp takes 32 bits, so larger seeds wrap. With none we draw one, since
 * node-llama-cpp's own fallback is the current second: two "random" requests in one second would
 * otherwise answer alike.
 */
function samplingSeed(seed: number | undefined): number {
  return seed === undefined ? crypto.randomInt(0xffffffff) : seed >>> 0;
}

function mapStopReason(reason: string, aborted: boolean): DoneReason {
  if (aborted || reason === 'abort') return 'abort';
  if (reason === 'maxTokens') return 'length';
  if (reason === 'functionCalls') return 'tool_calls';
  return 'stop';
}

/**
 * The part chat and completion share: model and sequence acquisition, option mapping, streaming the
 * parts through a PushStream, timing in Ollama's units, and cleanup whether the consumer finishes,
 * stops reading or aborts.
 */
export async function* generate(
  host: GenerationHost,
  request: Pick<ChatRequest, 'model' | 'options' | 'format' | 'keepAliveMs' | 'signal' | 'truncate'>,
  /** The prompt's text length in UTF-16 code units, for the check that needs no tokenising. */
  promptLength: number,
  run: (run: GenerationRun) => Promise<RunResult>,
): AsyncGenerator<StreamPart> {
  const { pool, stats } = host;
  const started = nowNs();
  const abort = new AbortController();
  const onAbort = () => abort.abort(request.signal.reason);
  if (request.signal.aborted) return;
  request.signal.addEventListener('abort', onAbort, { once: true });
  const grammar = await host.grammarFor(request.format);
  const wasLoaded = pool.has(request.model);
  const live = await pool.acquire(request.model, request.keepAliveMs);
  live.active++;
  const loadDurationNs = wasLoaded ? 0 : Number(nowNs() - started);
  const overflow = (tokens: number, atLeast: boolean) => contextOverflow(tokens, live.contextSizePerSequence, request.model, atLeast);
  let sequence: LlamaContextSequence | undefined;
  const stream = new PushStream<StreamPart>();
  let firstTokenAt: bigint | undefined;
  let generated = 0;
  let running: Promise<unknown> | undefined;
  let finished = false;
  stats.running++;
  host.inFlight.add(abort);
  try {
    // Before queueing for a sequence and before tokenising: a prompt too long by its length alone is
    // refused at once when the client asked for no truncation (else the run cuts it by length first).
    if (request.truncate === false && !couldFit(live.model, promptLength, live.contextSizePerSequence)) {
      throw overflow(fewestTokens(live.model, promptLength), true);
    }
    sequence = await pool.sequence(live, abort.signal);
    const options = withModelDefaults(request.options, live.entry.info.modelInfo);
    const generatedTokens: Token[] = [];
    const common = (promptTokens: number): CommonGenerationOptions => {
      // The prompt's size goes out first: a generation refused or stopped from here on is charged for it.
      stream.push({ type: 'prompt-tokens', count: promptTokens });
      const room = Math.max(1, live.contextSizePerSequence - promptTokens);
      if (promptTokens >= live.contextSizePerSequence) throw overflow(promptTokens, false);
      const wanted = options.num_predict === undefined || options.num_predict < 0 ? room : options.num_predict;
      return {
        signal: abort.signal,
        stopOnAbortSignal: true,
        maxTokens: Math.min(wanted, room),
        temperature: options.temperature,
        topK: options.top_k,
        topP: options.top_p,
        minP: options.min_p,
        seed: samplingSeed(options.seed),
        repeatPenalty:
          options.repeat_penalty !== undefined || options.presence_penalty !== undefined || options.frequency_penalty !== undefined
            ? {
                penalty: options.repeat_penalty,
                presencePenalty: options.presence_penalty,
                frequencyPenalty: options.frequency_penalty,
                lastTokens: options.repeat_last_n !== undefined && options.repeat_last_n > 0 ? options.repeat_last_n : undefined,
              }
            : undefined,
        customStopTriggers: options.stop?.filter((s) => s.length > 0),
        grammar,
        onTextChunk: (text: string) => {
          if (text === '') return;
          firstTokenAt ??= nowNs();
          stream.push({ type: 'token', text });
        },
        onToken: (tokens: Token[]) => {
          generatedTokens.push(...tokens);
          generated += tokens.length;
          stats.generated += tokens.length;
        },
      };
    };
    const emit = (text: string, logprobs: TokenLogprob[]) => {
      if (text === '' && logprobs.length === 0) return;
      firstTokenAt ??= nowNs();
      stream.push({ type: 'token', text, logprobs });
    };
    const generation = run({ live, sequence, common, options, generatedTokens, emit }).then(
      (result) => {
        stream.end();
        return result;
      },
      (error: unknown) => {
        stream.end(error);
        throw error;
      },
    );
    running = generation.catch(() => undefined); // errors surface through the stream
    yield* stream;
    const result = await generation;
    finished = true;
    const end = nowNs();
    const evalStart = firstTokenAt ?? end;
    for (const call of result.toolCalls ?? []) yield { type: 'tool-call', call };
    yield {
      type: 'finish',
      stats: {
        promptTokens: result.promptTokens,
        completionTokens: generated,
        loadDurationNs,
        promptEvalDurationNs: Math.max(0, Number(evalStart - started) - loadDurationNs),
        evalDurationNs: Number(end - evalStart),
        totalDurationNs: Number(end - started),
        doneReason: mapStopReason(result.stopReason, abort.signal.aborted),
        ...(result.context ? { context: result.context } : {}),
      },
    };
  } finally {
    // Runs on normal end, on error, and when the consumer stops iterating (client disconnected):
    // then the generation is stopped at once and its sequence freed only after llama.cpp let go.
    if (!finished && !abort.signal.aborted) abort.abort(new Error('consumer stopped'));
    // Counted here, once, however it was stopped: the client's signal may abort it before or after
    // the consumer stops iterating, and the generation may or may not reach its end in between.
    if (abort.signal.aborted) stats.aborted++;
    await running;
    request.signal.removeEventListener('abort', onAbort);
    host.inFlight.delete(abort);
    stats.running--;
    pool.release(live, sequence);
  }
}
