import { useEffect, useMemo, useRef, useState } from 'react';
import { getToken } from '../../api.js';
import { listModels } from './adminApi.js';
import { CopyButton } from './clipboard.js';
import {
  API_LABELS,
  buildRequest,
  curlCommand,
  KEY_PLACEHOLDER,
  readAnswer,
  readAnswerLine,
  type PlaygroundApi,
  type PlaygroundForm,
  type PlaygroundParams,
} from './playgroundRequest.js';
import './admin.css';

/** The response headers worth showing: what the gateway adds (rate limits, request id) and the type. */
const SHOWN_HEADERS = ['content-type', 'x-request-id', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'retry-after'];

interface Exchange {
  status: string;
  headers: [string, string][];
  /** Raw body lines, appended as they arrive when streamed. */
  lines: string[];
  answer: string;
  error?: string;
  firstByteMs?: number;
  totalMs?: number;
  running: boolean;
}

const PARAM_FIELDS: { name: keyof PlaygroundParams; label: string; step: string; hint: string }[] = [
  { name: 'temperature', label: 'temperature', step: '0.05', hint: 'randomness, 0 = greedy' },
  { name: 'top_p', label: 'top_p', step: '0.05', hint: 'nucleus sampling, 0–1' },
  { name: 'top_k', label: 'top_k', step: '1', hint: 'keep the k likeliest tokens' },
  { name: 'repeat_penalty', label: 'repeat_penalty', step: '0.05', hint: '1 = no penalty' },
  { name: 'max_tokens', label: 'max tokens', step: '1', hint: 'num_predict on Ollama' },
  { name: 'seed', label: 'seed', step: '1', hint: 'same seed, same answer' },
];

const EMPTY_PARAMS: PlaygroundParams = { temperature: '', top_p: '', top_k: '', repeat_penalty: '', max_tokens: '', seed: '', stop: '' };

async function readBody(response: Response, stream: boolean, onLine: (line: string) => void): Promise<void> {
  if (!stream) {
    const text = await response.text();
    // A JSON answer is shown indented; anything else exactly as it came.
    let shown = text;
    try {
      shown = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // not JSON
    }
    onLine(shown);
    return;
  }
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    pending += value;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) if (line.trim() !== '') onLine(line);
  }
  if (pending.trim() !== '') onLine(pending);
}

export function PlaygroundPage() {
  const [models, setModels] = useState<string[]>([]);
  const [loadError, setLoadError] = useState<string>();
  const [form, setForm] = useState<PlaygroundForm>({
    api: 'ollama-chat',
    model: '',
    system: '',
    prompt: 'Once upon a time',
    stream: true,
    events: false,
    params: EMPTY_PARAMS,
  });
  const [key, setKey] = useState('');
  const [exchange, setExchange] = useState<Exchange>();
  const abort = useRef<AbortController>(undefined);
  const rawResponse = useRef<HTMLPreElement>(null);
  const lineCount = exchange?.lines.length ?? 0;
  // While lines stream in, keep the newest in view unless the user scrolled up to read.
  useEffect(() => {
    const pre = rawResponse.current;
    if (pre && pre.scrollHeight - pre.scrollTop - pre.clientHeight < 80) pre.scrollTop = pre.scrollHeight;
  }, [lineCount]);

  useEffect(() => {
    listModels()
      .then((names) => {
        setModels(names);
        setForm((f) => (f.model ? f : { ...f, model: names[0] ?? '' }));
      })
      .catch((error: Error) => setLoadError(error.message));
    return () => abort.current?.abort();
  }, []);

  const request = useMemo(() => buildRequest(form), [form]);
  const keyInUse = key.trim() || getToken() || undefined;
  const origin = window.location.origin;
  const rawRequest = [
    `${request.method} ${request.path} HTTP/1.1`,
    `Host: ${window.location.host}`,
    ...(keyInUse ? [`Authorization: Bearer ${KEY_PLACEHOLDER}`] : []),
    ...Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`),
    '',
    JSON.stringify(request.body, null, 2),
  ].join('\n');
  const shownCurl = curlCommand(origin, request, keyInUse ? KEY_PLACEHOLDER : undefined);

  const set = <K extends keyof PlaygroundForm>(field: K, value: PlaygroundForm[K]) => setForm((f) => ({ ...f, [field]: value }));
  const setParam = (field: keyof PlaygroundParams, value: string) => setForm((f) => ({ ...f, params: { ...f.params, [field]: value } }));

  async function send() {
    abort.current?.abort();
    const controller = new AbortController();
    abort.current = controller;
    const started = performance.now();
    const headers: Record<string, string> = { ...request.headers };
    if (keyInUse) headers.Authorization = `Bearer ${keyInUse}`;
    setExchange({ status: 'sending…', headers: [], lines: [], answer: '', running: true });
    try {
      const response = await fetch(request.path, { method: 'POST', headers, body: JSON.stringify(request.body), signal: controller.signal });
      const firstByteMs = performance.now() - started;
      setExchange((e) => ({
        ...e!,
        status: `HTTP ${response.status} ${response.statusText}`,
        headers: SHOWN_HEADERS.flatMap((name) => {
          const value = response.headers.get(name);
          return value === null ? [] : [[name, value] as [string, string]];
        }),
        firstByteMs,
      }));
      const streamed = request.body.stream === true && response.ok;
      await readBody(response, streamed, (line) => {
        const reading = streamed ? readAnswerLine(line) : readAnswer(line);
        setExchange((e) => ({ ...e!, lines: [...e!.lines, line], answer: e!.answer + reading.text, error: reading.error ?? e!.error }));
      });
      setExchange((e) => ({ ...e!, running: false, totalMs: performance.now() - started }));
    } catch (error) {
      const message = controller.signal.aborted ? 'stopped' : (error as Error).message;
      setExchange((e) => ({ ...e!, running: false, error: message, totalMs: performance.now() - started }));
    }
  }

  return (
    <div className="admin-page playground">
      <h1>Playground</h1>
      {loadError && <p className="error">Could not list the models: {loadError}</p>}
      <div className="playground-grid">
        <form
          className="panel settings"
          onSubmit={(event) => {
            event.preventDefault();
            void send();
          }}
        >
          <label>
            API
            <select value={form.api} onChange={(e) => set('api', e.target.value as PlaygroundApi)} aria-label="API">
              {(Object.keys(API_LABELS) as PlaygroundApi[]).map((api) => (
                <option key={api} value={api}>
                  {API_LABELS[api]}
                </option>
              ))}
            </select>
          </label>
          <label>
            Model
            <select value={form.model} onChange={(e) => set('model', e.target.value)} aria-label="model">
              {models.map((name) => (
                <option key={name} value={name}>
                  {name}
                </option>
              ))}
            </select>
          </label>
          <label className="inline">
            <input type="checkbox" checked={form.stream} onChange={(e) => set('stream', e.target.checked)} aria-label="stream" />
            Stream the answer
          </label>
          {form.stream && form.api !== 'openai-chat' && (
            <label className="inline">
              <input type="checkbox" checked={form.events} onChange={(e) => set('events', e.target.checked)} aria-label="server-sent events" />
              as Server-Sent Events (Accept: text/event-stream)
            </label>
          )}
          <label>
            API key
            {/* Uncontrolled: React would copy a controlled value into the DOM attribute, i.e. the page source. */}
            <input
              type="password"
              defaultValue=""
              onChange={(e) => setKey(e.target.value)}
              placeholder={getToken() ? 'empty: your saved token' : 'empty: no key'}
              autoComplete="off"
              aria-label="API key"
            />
          </label>
          <fieldset>
            <legend>Parameters (empty = the model's default)</legend>
            <div className="param-grid">
              {PARAM_FIELDS.map((field) => (
                <label key={field.name} title={field.hint}>
                  {field.label}
                  <input
                    type="number"
                    step={field.step}
                    value={form.params[field.name]}
                    onChange={(e) => setParam(field.name, e.target.value)}
                    placeholder="default"
                    aria-label={field.name}
                  />
                </label>
              ))}
            </div>
            <label>
              stop (one sequence per line, \n for a line break)
              <textarea rows={2} value={form.params.stop} onChange={(e) => setParam('stop', e.target.value)} aria-label="stop" />
            </label>
          </fieldset>
          <label>
            System prompt
            <textarea rows={2} value={form.system} onChange={(e) => set('system', e.target.value)} aria-label="system prompt" />
          </label>
          <label>
            Prompt
            <textarea rows={4} value={form.prompt} onChange={(e) => set('prompt', e.target.value)} aria-label="prompt" />
          </label>
          <div className="actions">
            <button type="submit" disabled={!form.model || exchange?.running}>
              Send
            </button>
            {exchange?.running && (
              <button type="button" className="secondary" onClick={() => abort.current?.abort()}>
                Stop
              </button>
            )}
          </div>
        </form>

        <div className="panel exchange">
          <h2>Request</h2>
          <pre className="raw" data-testid="raw-request">
            {rawRequest}
          </pre>
          <div className="curl">
            <code data-testid="curl">{shownCurl}</code>
            <div className="actions">
              <CopyButton label="Copy curl" text={() => shownCurl} />
              {keyInUse && <CopyButton label="Copy curl with the key in use" text={() => curlCommand(origin, request, keyInUse)} />}
            </div>
          </div>

          <h2>Response</h2>
          {!exchange ? (
            <p className="empty">Send the request to see the raw response here.</p>
          ) : (
            <>
              <p className="status" data-testid="response-status">
                {exchange.status}
                {exchange.firstByteMs !== undefined && <span> · first byte {Math.round(exchange.firstByteMs)} ms</span>}
                {exchange.totalMs !== undefined && <span> · total {Math.round(exchange.totalMs)} ms</span>}
                {exchange.running && <span> · receiving…</span>}
              </p>
              {exchange.headers.length > 0 && (
                <pre className="raw headers">{exchange.headers.map(([name, value]) => `${name}: ${value}`).join('\n')}</pre>
              )}
              <pre ref={rawResponse} className="raw body" data-testid="raw-response">
                {exchange.lines.join('\n')}
              </pre>
              {exchange.error && <p className="error">{exchange.error}</p>}
              {(exchange.answer || !exchange.error) && (
                <>
                  <h2>Answer</h2>
                  <div className="answer" data-testid="answer">
                    {exchange.answer}
                  </div>
                </>
              )}
            </>
          )}
        </div>
      </div>
    </div>
  );
}
