import { describe, expect, it } from 'vitest';
import { Histogram, Registry } from 'prom-client';
import { TallyHistogram } from '../../src/gateway/metrics.js';

/** The gateway's histograms count in plain numbers; what a scrape reads must be prom-client's own. */

const config = (registry: Registry) => ({
  name: 'arena_test_seconds',
  help: 'A test histogram, by model',
  labelNames: ['model'] as const,
  buckets: [0.01, 0.1, 1, 10],
  registers: [registry],
});

const observations: [string, number][] = [
  ['a:latest', 0.005],
  ['a:latest', 0.01],
  ['a:latest', 0.5],
  ['b "quoted"\\model', 3],
  ['a:latest', 42],
  ['b "quoted"\\model', 0.09],
];

describe('TallyHistogram', () => {
  it('reads out as prom-client’s Histogram does for the same observations, as text and as JSON', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const tally = new TallyHistogram(config(ours));
    const reference = new Histogram(config(theirs));
    for (const [model, value] of observations) {
      tally.series(model, { model }).observe(value);
      reference.observe({ model }, value);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  });

  it('leaves out a value that is not a finite number instead of throwing, and starts afresh on reset', async () => {
    const registry = new Registry();
    const tally = new TallyHistogram(config(registry));
    const series = tally.series('a', { model: 'a' });
    series.observe(Number.NaN);
    series.observe(Number.POSITIVE_INFINITY);
    series.observe(0.2);
    expect(await registry.metrics()).toContain('arena_test_seconds_count{model="a"} 1');
    registry.resetMetrics();
    expect(await registry.metrics()).not.toContain('arena_test_seconds_count');
  });
});
