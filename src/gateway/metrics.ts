import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type CounterConfiguration, type HistogramConfiguration, type LabelValues, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client';

/** The count of one series of a TallyCounter, added to with `count += n`. */
interface Tally {
  count: number;
}

/**
 * A counter whose series count in plain numbers, handed to prom-client when the metrics are read.
 * prom-client builds a key from the labels and checks them on every increment, and the busiest path
 * makes several increments a request; a scrape makes one per series instead.
 */
class TallyCounter<L extends string> {
  private readonly tallies = new Map<string, Tally & { labels: LabelValues<L> }>();

  constructor(config: Omit<CounterConfiguration<L>, 'collect' | 'registers'>, registry: Registry) {
    const tallies = this.tallies;
    new Counter<L>({
      ...config,
      registers: [registry],
      collect() {
        for (const tally of tallies.values()) {
          if (tally.count === 0) continue;
          this.inc(tally.labels, tally.count);
          tally.count = 0;
        }
      },
    });
  }

  /** The tally of one label set under `key` (one string per label set), made on first use. */
  series(key: string, labels: LabelValues<L>): Tally {
    let tally = this.tallies.get(key);
    if (!tally) this.tallies.set(key, (tally = { labels, count: 0 }));
    return tally;
  }
}

/** One label set of a TallyHistogram: observations counted per bucket, with their sum and count. */
class HistogramSeries {
  /** Per bucket, not cumulative; observations above the last bound count in `count` only (`+Inf`). */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(
    private readonly bounds: readonly number[],
    readonly labels: LabelValues<string>,
  ) {
    this.counts = bounds.map(() => 0);
  }

  /** A value that is not a finite number is left out: a metric never fails a request. */
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) {
      if (value <= this.bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

type HistogramValue = MetricValueWithName<string> & { sharedLabels?: LabelValues<string>; exemplar?: null };
/** A histogram as prom-client's registry reads it (its types give `type` as an enum; it reads a string). */
interface HistogramExport {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: HistogramValue[];
}

/**
 * A histogram whose series count in plain numbers, read out when the metrics are read. prom-client's
 * own `observe` validates the labels, builds a key from them and keys the bucket by its bound turned
 * into a string, on every observation; three are made per relayed request, which came to about 3% of
 * the gateway's CPU per request. Its name, help, buckets and output are prom-client's.
 */
export class TallyHistogram<L extends string> extends Histogram<L> {
  private readonly tallies = new Map<string, HistogramSeries>();
  private readonly bounds: readonly number[];
  private readonly metricName: string;
  private readonly metricHelp: string;

  constructor(config: HistogramConfiguration<L> & { buckets: number[] }) {
    super(config);
    this.bounds = [...config.buckets];
    this.metricName = config.name;
    this.metricHelp = config.help;
  }

  /** The series of one label set under `key` (one string per label set), made on first use. */
  series(key: string, labels: LabelValues<L>): HistogramSeries {
    let series = this.tallies.get(key);
    if (!series) this.tallies.set(key, (series = new HistogramSeries(this.bounds, labels)));
    return series;
  }

  /** A fresh start (prom-client's constructor asks for one too, before this class's fields are set). */
  override reset(): void {
    (this.tallies as typeof this.tallies | undefined)?.clear();
  }

  /** What the registry writes in Prometheus's text format: each series' labels apart from the bucket's. */
  async getForPromString(): Promise<HistogramExport> {
    const values: HistogramValue[] = [];
    for (const series of this.tallies.values()) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += series.counts[i]!;
        values.push({ labels: { le: bound }, sharedLabels: series.labels, value: cumulative, metricName: `${this.metricName}_bucket`, exemplar: null });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: series.labels, value: series.count, metricName: `${this.metricName}_bucket`, exemplar: null },
        { labels: {}, sharedLabels: series.labels, value: series.sum, metricName: `${this.metricName}_sum` },
        { labels: {}, sharedLabels: series.labels, value: series.count, metricName: `${this.metricName}_count` },
      );
    }
    return { name: this.metricName, help: this.metricHelp, type: 'histogram', aggregator: 'sum', values };
  }

  /** The same values with each series' labels in every value's own, as prom-client's histograms give them. */
  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<L>>> {
    const data = await this.getForPromString();
    const values = data.values.map(({ sharedLabels, labels, ...value }) => ({ ...value, labels: { ...labels, ...sharedLabels } }));
    return { ...data, values } as unknown as MetricObjectWithValues<MetricValueWithName<L>>;
  }
}

/**
 * Prometheus metrics for the whole server. One registry per server instance (not the global one), so
 * several servers in one process — as the tests start them — keep separate counts.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly httpRequests = new TallyCounter(
    { name: 'arena_http_requests_total', help: 'HTTP requests answered, by route, method and status code', labelNames: ['method', 'route', 'status'] as const },
    this.registry,
  );
  private readonly httpErrors = new TallyCounter(
    { name: 'arena_http_errors_total', help: 'HTTP requests answered with a 4xx or 5xx status', labelNames: ['route', 'status'] as const },
    this.registry,
  );
  private readonly httpDuration = new TallyHistogram({
    name: 'arena_http_request_duration_seconds',
    help: 'Time to answer an HTTP request (to the last byte of a stream)',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  private readonly tokensGenerated = new TallyCounter(
    { name: 'arena_tokens_generated_total', help: 'Completion tokens generated, by model', labelNames: ['model'] as const },
    this.registry,
  );
  private readonly promptTokens = new TallyCounter(
    { name: 'arena_prompt_tokens_total', help: 'Prompt tokens evaluated, by model', labelNames: ['model'] as const },
    this.registry,
  );
  private readonly timeToFirstToken = new TallyHistogram({
    name: 'arena_time_to_first_token_seconds',
    help: 'Time from request to the first generated token, by model',
    labelNames: ['model'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly tokensPerSecond = new TallyHistogram({
    name: 'arena_tokens_per_second',
    help: 'Generation speed of each finished request, by model',
    labelNames: ['model'] as const,
    buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
    registers: [this.registry],
  });
  private readonly generations = new TallyCounter(
    { name: 'arena_generations_total', help: 'Generations by model and outcome (stop, length, abort, error, ...)', labelNames: ['model', 'outcome'] as const },
    this.registry,
  );
  /** Generations in progress: a plain number, read into its gauge when the metrics are read. */
  generationsRunning = 0;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const running: Gauge = new Gauge({
      name: 'arena_generations_running',
      help: 'Generations in progress right now',
      registers: [this.registry],
      collect: () => running.set(this.generationsRunning),
    });
  }

  /*
   * The series of one label set, looked up once and kept. Label values come from bounded sets (models
   * served, routes, statuses, outcomes), so the caches stay small.
   */
  private readonly modelSeries = new Map<string, ModelSeries>();
  private readonly routeSeries = new Map<string, RouteSeries>();

  forModel(model: string): ModelSeries {
    let series = this.modelSeries.get(model);
    if (!series) {
      series = {
        timeToFirstToken: this.timeToFirstToken.series(model, { model }),
        tokensGenerated: this.tokensGenerated.series(model, { model }),
        promptTokens: this.promptTokens.series(model, { model }),
        tokensPerSecond: this.tokensPerSecond.series(model, { model }),
      };
      this.modelSeries.set(model, series);
    }
    return series;
  }

  generationEnded(model: string, outcome: string): void {
    this.generations.series(`${model}\0${outcome}`, { model, outcome }).count++;
  }

  httpAnswered(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${route} ${status}`;
    let series = this.routeSeries.get(key);
    if (!series) {
      const labels = { method, route, status: String(status) };
      series = {
        requests: this.httpRequests.series(key, labels),
        errors: status >= 400 ? this.httpErrors.series(`${route} ${status}`, { route, status: labels.status }) : undefined,
        duration: this.httpDuration.series(route, { route }),
      };
      this.routeSeries.set(key, series);
    }
    series.requests.count++;
    if (series.errors) series.errors.count++;
    series.duration.observe(seconds);
  }
}

interface ModelSeries {
  timeToFirstToken: HistogramSeries;
  tokensGenerated: Tally;
  promptTokens: Tally;
  tokensPerSecond: HistogramSeries;
}

interface RouteSeries {
  requests: Tally;
  errors?: Tally;
  duration: HistogramSeries;
}
