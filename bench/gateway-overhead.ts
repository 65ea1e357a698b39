/**
 * Gateway overhead, measured the way TensorZero, Bifrost and LiteLLM publish theirs: a mock upstream
 * that answers at once (test/support/mock-upstream.ts, OpenAI and Ollama wire formats), and the same requests
 * sent to it directly and through the gateway (OpenAI backend behind /v1, Ollama backend behind /api),
 * interleaved in one run. Reports the latency the gateway adds (p50, p99) at concurrency 1 and 10, and
 * the highest request rate at which the added p99 stays under 5 ms, streamed and not, and the CPU time
 * the answering process (the gateway, or the bare proxy of the reference rows) spends per request,
 * with its ratio to the bare proxy's for the same kind of answer (a whole body or a stream). The
 * "keys on" rows go through a second gateway whose requests carry an API key with a rate limit, so
 * that the key lookup, the limit and the usage record are in the figures.
 *
 * The mock, the gateway and this load generator are three processes on loopback.
 * Usage: npx tsx bench/gateway-overhead.ts [pairs at concurrency 1, default 1500] [turns of the CPU column, default 10]
 */
import { fmt, machine, percentile, table } from './lib.js';
import { pinToCores, closedLoop, cpuRatio, interleavedCpu, send, startGateway, startGatewayWithKey, startMockProcessWithPid, stopAll, cpuLoadText, processFigures, type CpuMeasure, type Replica, type Samples, type Scenario } from './proxy-harness.js';

const PAIRS = Number(process.argv[2] ?? 1500);
const RATES = [100, 250, 500, 750, 1000, 1500, 2000, 3000];
/** Each rate window lasts at least this long and holds at least WINDOW_REQUESTS requests, so a p99 rests on enough samples. */
const WINDOW_MS = 1000;
const WINDOW_REQUESTS = 400;
const P99_BUDGET_MS = 5;
/** Requests for the CPU column, at CPU_CONCURRENCY: enough to keep the process busy, as real traffic does. */
const CPU_REQUESTS = 3000;
const CPU_CONCURRENCY = 4;
/** Turns of the CPU measurement, the rows taking turns: its ratios are the median of the turns' ratios. */
const CPU_TURNS = Number(process.argv[3] ?? 10);
/** Processes of the bare proxy and of the gateway with keys on, whose median is the CPU figure of their rows. */
const REPLICAS = 3;
const messages = [{ role: 'user', content: 'Tell me a story' }];

/** Requests started at a fixed rate for one window (open loop); latencies of those that completed. */
async function openLoop(url: string, body: string | undefined, rate: number, headers: Record<string, string> = {}): Promise<{ latencies: number[]; failures: number; achieved: number }> {
  const latencies: number[] = [];
  let failures = 0;
  let sent = 0;
  const pending: Promise<void>[] = [];
  const started = performance.now();
  const windowMs = Math.max(WINDOW_MS, (WINDOW_REQUESTS / rate) * 1000);
  while (performance.now() - started < windowMs) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    for (; sent < due; sent++) {
      pending.push(send(url, body, headers).then((ms) => void (ms < 0 ? failures++ : latencies.push(ms))));
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const windowEnd = performance.now();
  await Promise.race([Promise.all(pending), new Promise((resolve) => setTimeout(resolve, 5_000))]);
  const completedIn = Math.max(performance.now() - started, windowEnd - started);
  return { latencies, failures, achieved: (latencies.length / completedIn) * 1000 };
}

/** The highest rate at which both paths kept up and the gateway's p99 stayed within the budget. */
async function maxRate(scenario: Scenario): Promise<{ rate: number; note: string }> {
  let best = 0;
  let note = '';
  for (const rate of RATES) {
    const direct: number[] = [];
    const gateway: number[] = [];
    let held = true;
    for (let round = 0; round < 2; round++) {
      const d = await openLoop(scenario.direct, scenario.body, rate);
      const g = await openLoop(scenario.gateway, scenario.body, rate, scenario.headers);
      direct.push(...d.latencies);
      gateway.push(...g.latencies);
      if (d.failures || d.achieved < rate * 0.9) {
        note = `direct path itself stopped keeping up at ${rate}/s (load generator or mock limit)`;
        held = false;
      }
      if (g.failures || g.achieved < rate * 0.9) held = false;
    }
    const p99 = percentile(gateway, 99) - percentile(direct, 99);
    if (!held || p99 >= P99_BUDGET_MS) {
      if (!note) note = `at ${rate}/s: added p99 ${fmt(p99)} ms`;
      break;
    }
    best = rate;
  }
  return { rate: best, note: best === RATES.at(-1) ? `highest rate tried` : note };
}

// One server for the Ollama backend, one for the OpenAI one.
const { urls, pid: mockPid } = await startMockProcessWithPid(['mock-ollama:latest', 'mock-openai:latest']);
// The floor of one extra hop: a bare pass-through proxy, in a process of its own like the gateway.
const bareProxy = await startMockProcessWithPid([`proxy=${urls['mock-openai:latest']}`]);
const bare = Object.values(bareProxy.urls)[0]!;
const backends = { ollama: urls['mock-ollama:latest'], openai: urls['mock-openai:latest'] };
const models = ['mock-ollama:latest', 'mock-openai:latest'];
const { url: gatewayUrl, pid: gatewayPid } = await startGateway(backends, models);
const keyed = await startGatewayWithKey(backends, models);
// The rows with keys on and the bare proxy's are measured in three processes each, a turn's figure
// being their median: one process's JIT can make it cost a sixth more or less than another of the
// same build, for as long as it lives (see CpuTarget.replicas).
const bareReplicas = await Promise.all(Array.from({ length: REPLICAS - 1 }, () => startMockProcessWithPid([`proxy=${urls['mock-openai:latest']}`])));
const keyedReplicas = await Promise.all(Array.from({ length: REPLICAS - 1 }, () => startGatewayWithKey(backends, models)));
pinToCores([bareProxy.pid, gatewayPid, keyed.pid, ...bareReplicas.map((p) => p.pid), ...keyedReplicas.map((p) => p.pid)], [mockPid]);
const bareReplicaTargets: Replica[] = bareReplicas.map((replica) => ({ pid: replica.pid, url: `${Object.values(replica.urls)[0]!}/v1/chat/completions` }));
const openaiBody = (stream: boolean) => JSON.stringify({ model: 'mock-openai:latest', messages, stream, ...(stream ? { stream_options: { include_usage: true } } : {}) });
const ollamaBody = (stream: boolean) => JSON.stringify({ model: 'mock-ollama:latest', messages, stream });
/** A scenario, the process that answers it (for the CPU column), and whether its answer is a stream. */
type Measured = Scenario & { pid: number; stream: boolean; replicas?: Replica[] };
const scenarios: Measured[] = [
  { name: 'OpenAI chat, not streamed', direct: `${urls['mock-openai:latest']}/v1/chat/completions`, gateway: `${gatewayUrl}/v1/chat/completions`, body: openaiBody(false), pid: gatewayPid, stream: false },
  { name: 'OpenAI chat, streamed (SSE)', direct: `${urls['mock-openai:latest']}/v1/chat/completions`, gateway: `${gatewayUrl}/v1/chat/completions`, body: openaiBody(true), pid: gatewayPid, stream: true },
  { name: 'Ollama chat, not streamed', direct: `${urls['mock-ollama:latest']}/api/chat`, gateway: `${gatewayUrl}/api/chat`, body: ollamaBody(false), pid: gatewayPid, stream: false },
  { name: 'Ollama chat, streamed (NDJSON)', direct: `${urls['mock-ollama:latest']}/api/chat`, gateway: `${gatewayUrl}/api/chat`, body: ollamaBody(true), pid: gatewayPid, stream: true },
];
const keysOn: Measured[] = scenarios.map((scenario) => ({
  ...scenario,
  name: `${scenario.name}, keys on (API key, rate limit, usage)`,
  gateway: scenario.gateway.replace(gatewayUrl, keyed.url),
  headers: keyed.headers,
  pid: keyed.pid,
  replicas: keyedReplicas.map((replica) => ({ pid: replica.pid, url: scenario.gateway.replace(gatewayUrl, replica.url), headers: replica.headers })),
}));

// References: a route of ours that calls no backend, and a bare proxy that only forwards (the floor of
// one more process hop on this machine), each against the mock directly.
const references: Measured[] = [
  { name: 'reference: our GET /api/version (no backend call)', direct: `${urls['mock-ollama:latest']}/api/version`, gateway: `${gatewayUrl}/api/version`, pid: gatewayPid, stream: false },
  { name: 'reference: bare node:http proxy, OpenAI chat not streamed', direct: scenarios[0]!.direct, gateway: `${bare}/v1/chat/completions`, body: openaiBody(false), pid: bareProxy.pid, stream: false, replicas: bareReplicaTargets },
  { name: 'reference: bare node:http proxy, OpenAI chat streamed', direct: scenarios[1]!.direct, gateway: `${bare}/v1/chat/completions`, body: openaiBody(true), pid: bareProxy.pid, stream: true, replicas: bareReplicaTargets },
];
const bareCpu = new Map<boolean, CpuMeasure>();

const measured: { scenario: Measured; cells: (string | number)[] }[] = [];
for (const scenario of [...scenarios, ...keysOn, ...references]) {
  await closedLoop(scenario, 10, 300); // warm-up: JIT, keep-alive sockets, router listing
  // The other processes of the row get the same traffic as its own, the latency rounds' included.
  for (const replica of scenario.replicas ?? []) await closedLoop({ ...scenario, gateway: replica.url, headers: replica.headers ?? scenario.headers }, 10, 300 + PAIRS * 3);
  const c1 = await closedLoop(scenario, 1, PAIRS);
  const c10 = await closedLoop(scenario, 10, PAIRS * 2);
  const rate = await maxRate(scenario);
  const added = (s: Samples, p: number) => percentile(s.gateway, p) - percentile(s.direct, p);
  measured.push({
    scenario,
    cells: [
      scenario.name,
      fmt(percentile(c1.direct, 50), 3),
      fmt(percentile(c1.gateway, 50), 3),
      `**${fmt(added(c1, 50), 3)}**`,
      fmt(added(c1, 99), 3),
      fmt(added(c10, 50), 3),
      fmt(added(c10, 99), 3),
      `${rate.rate}/s${rate.note ? ` (${rate.note})` : ''}`,
      c1.failures + c10.failures,
    ],
  });
  console.error(`${scenario.name}: done`);
}
// CPU per request of every row, the rows taking turns; the ratio is to the bare proxy's for the same
// kind of answer, measured in the same turns.
const cpu = await interleavedCpu(
  measured.map(({ scenario }) => ({ pid: scenario.pid, url: scenario.gateway, body: scenario.body, headers: scenario.headers, replicas: scenario.replicas })),
  CPU_REQUESTS,
  CPU_CONCURRENCY,
  CPU_TURNS,
);
measured.forEach(({ scenario }, i) => scenario.pid === bareProxy.pid && bareCpu.set(scenario.stream, cpu[i]!));
const rows = measured.map(({ scenario, cells }, i) => {
  const base = bareCpu.get(scenario.stream);
  const ratio = base ? `${fmt(cpuRatio(cpu[i]!, base), 2)}×` : 'n/a';
  return [...cells.slice(0, 8), fmt(cpu[i]!.ms, 3), ratio, Number(cells[8]) + cpu[i]!.failures];
});

console.log(`## Gateway overhead (${new Date().toISOString().slice(0, 10)})

\`bench/gateway-overhead.ts\`: \`test/support/mock-upstream.ts\` answering at once (11 chunks) and the same
request sent directly to it and through the gateway (OpenAI-compatible backend behind \`/v1\`, Ollama
backend behind \`/api\`), interleaved; mock, gateway and load generator in three processes on loopback.
Latencies are to the last byte, in milliseconds; "added" is the gateway percentile minus the direct one.

Machine: ${machine()}. ${PAIRS} pairs at concurrency 1, ${PAIRS * 2} at 10; rate steps of windows of at least ${WINDOW_MS} ms and ${WINDOW_REQUESTS} requests, direct and gateway alternating twice per step. CPU: the answering process's own user + system time per request at concurrency ${CPU_CONCURRENCY} (${cpuLoadText()}), the median of ${CPU_TURNS} turns with the rows taking turns, and the median of each turn's ratio to the bare proxy's for a whole body or a stream. The rows with keys on and the bare proxy's are each measured in ${REPLICAS} processes of their program, started and loaded alike, a turn's figure being their median; each process's own figure (the median of its turns, ms per request) is listed under the table.

${table(
  ['request', 'c=1 direct p50', 'c=1 gateway p50', 'c=1 added p50', 'c=1 added p99', 'c=10 added p50', 'c=10 added p99', 'max rate, added p99 < 5 ms', 'CPU ms/request', 'CPU / bare proxy', 'failures'],
  rows,
)}

CPU ms per request of each process, for the rows measured in several:
${measured
  .flatMap(({ scenario }, i) => (scenario.replicas?.length ? [`- ${scenario.name}: ${processFigures(cpu[i]!)}`] : []))
  .join('\n')}
`);
await stopAll();
