import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics for the whole server. One registry per server instance (not the global one), so
 * several servers in one process — as the tests start them — keep separate counts.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'arena_http_requests_total',
    help: 'HTTP requests answered, by route, method and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpErrors = new Counter({
    name: 'arena_http_errors_total',
    help: 'HTTP requests answered with a 4xx or 5xx status',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'arena_http_request_duration_seconds',
    help: 'Time to answer an HTTP request (to the last byte of a stream)',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly tokensGenerated = new Counter({
    name: 'arena_tokens_generated_total',
    help: 'Completion tokens generated, by model',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly promptTokens = new Counter({
    name: 'arena_prompt_tokens_total',
    help: 'Prompt tokens evaluated, by model',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly timeToFirstToken = new Histogram({
    name: 'arena_time_to_first_token_seconds',
    help: 'Time from request to the first generated token, by model',
    labelNames: ['model'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly tokensPerSecond = new Histogram({
    name: 'arena_tokens_per_second',
    help: 'Generation speed of each finished request, by model',
    labelNames: ['model'] as const,
    buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
    registers: [this.registry],
  });
  readonly generations = new Counter({
    name: 'arena_generations_total',
    help: 'Generations by model and outcome (stop, length, abort, error, ...)',
    labelNames: ['model', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly generationsRunning = new Gauge({
    name: 'arena_generations_running',
    help: 'Generations in progress right now',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /*
   * The series of one label set, looked up once and kept: prom-client hashes the labels on every call
   * made with them, several times a request on the gateway's busiest path. Label values come from
   * bounded sets (models served, routes, statuses, outcomes), so the caches stay small.
   */
  private readonly modelSeries = new Map<string, ModelSeries>();
  private readonly outcomeSeries = new Map<string, Counter.Internal>();
  private readonly routeSeries = new Map<string, RouteSeries>();

  forModel(model: string): ModelSeries {
    let series = this.modelSeries.get(model);
    if (!series) {
      series = {
        timeToFirstToken: this.timeToFirstToken.labels({ model }),
        tokensGenerated: this.tokensGenerated.labels({ model }),
        promptTokens: this.promptTokens.labels({ model }),
        tokensPerSecond: this.tokensPerSecond.labels({ model }),
      };
      this.modelSeries.set(model, series);
    }
    return series;
  }

  generationEnded(model: string, outcome: string): void {
    const key = `${model}\0${outcome}`;
    let counter = this.outcomeSeries.get(key);
    if (!counter) this.outcomeSeries.set(key, (counter = this.generations.labels({ model, outcome })));
    counter.inc();
  }

  httpAnswered(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${route} ${status}`;
    let series = this.routeSeries.get(key);
    if (!series) {
      const labels = { method, route, status: String(status) };
      series = {
        requests: this.httpRequests.labels(labels),
        errors: status >= 400 ? this.httpErrors.labels({ route, status: labels.status }) : undefined,
        duration: this.httpDuration.labels({ route }),
      };
      this.routeSeries.set(key, series);
    }
    series.requests.inc();
    series.errors?.inc();
    series.duration.observe(seconds);
  }
}

interface ModelSeries {
  timeToFirstToken: Histogram.Internal<'model'>;
  tokensGenerated: Counter.Internal;
  promptTokens: Counter.Internal;
  tokensPerSecond: Histogram.Internal<'model'>;
}

interface RouteSeries {
  requests: Counter.Internal;
  errors?: Counter.Internal;
  duration: Histogram.Internal<'route'>;
}
