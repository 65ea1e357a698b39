/**
 * A stacked bar chart in plain SVG (the app takes no chart library): one bar per day, one coloured
 * segment per series (a model or a key), with a value axis, a legend and a tooltip on each segment.
 */

export interface Series {
  name: string;
  /** One value per entry of `days`. */
  values: number[];
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function seriesColor(index: number): string {
  return PALETTE[index % PALETTE.length]!;
}

/** One colour per name for a whole page, in the order given (biggest first); unknown names are grey. */
export function colorMap(names: string[]): (name: string) => string {
  const colors = new Map(names.map((name, i) => [name, seriesColor(i)]));
  return (name) => colors.get(name) ?? '#8c8c8c';
}

/** A round axis maximum and its ticks: 1, 2 or 5 times a power of ten per step. */
function niceTicks(max: number, count = 4): number[] {
  if (max <= 0) return [0, 1];
  const rough = max / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough)!;
  const ticks: number[] = [];
  for (let v = 0; v < max + step; v += step) ticks.push(v);
  return ticks;
}

function compactNumber(value: number): string {
  return new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 }).format(value);
}

const WIDTH = 560;
const HEIGHT = 220;
const MARGIN = { top: 10, right: 10, bottom: 36, left: 44 };

/**
 * `colorOf` names each series' colour, so that a page's charts give the same model or key the same
 * colour whatever its rank in each chart; without it, colours follow the series' order.
 */
export function StackedBarChart({ title, days, series, colorOf }: { title: string; days: string[]; series: Series[]; colorOf?: (name: string) => string }) {
  const color = (s: Series, i: number) => colorOf?.(s.name) ?? seriesColor(i);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const totals = days.map((_, d) => series.reduce((sum, s) => sum + (s.values[d] ?? 0), 0));
  const ticks = niceTicks(Math.max(0, ...totals));
  const top = ticks[ticks.length - 1]!;
  const y = (value: number) => MARGIN.top + plotH - (value / top) * plotH;
  const slot = plotW / Math.max(days.length, 1);
  const barW = Math.min(48, slot * 0.7);
  // Label every nth day so the labels never overlap however long the range.
  const labelEvery = Math.max(1, Math.ceil(days.length / Math.floor(plotW / 64)));

  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      {series.length === 0 ? (
        <p className="empty">No requests recorded yet.</p>
      ) : (
        <>
          <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={title}>
            {ticks.map((tick) => (
              <g key={tick} className="tick">
                <line x1={MARGIN.left} x2={WIDTH - MARGIN.right} y1={y(tick)} y2={y(tick)} />
                <text x={MARGIN.left - 6} y={y(tick)} dy="0.32em" textAnchor="end">
                  {compactNumber(tick)}
                </text>
              </g>
            ))}
            {days.map((day, d) => {
              const x = MARGIN.left + slot * d + (slot - barW) / 2;
              let base = 0;
              return (
                <g key={day}>
                  {series.map((s, i) => {
                    const value = s.values[d] ?? 0;
                    if (value <= 0) return null;
                    const rect = (
                      <rect key={s.name} x={x} width={barW} y={y(base + value)} height={y(base) - y(base + value)} fill={color(s, i)}>
                        <title>{`${day} · ${s.name}: ${value.toLocaleString()}`}</title>
                      </rect>
                    );
                    base += value;
                    return rect;
                  })}
                  {d % labelEvery === 0 && (
                    <text className="day" x={x + barW / 2} y={HEIGHT - MARGIN.bottom + 16} textAnchor="middle">
                      {day.slice(5)}
                    </text>
                  )}
                </g>
              );
            })}
            <line className="axis" x1={MARGIN.left} x2={WIDTH - MARGIN.right} y1={y(0)} y2={y(0)} />
          </svg>
          <ul className="legend">
            {series.map((s, i) => (
              <li key={s.name}>
                <span className="swatch" style={{ background: color(s, i) }} />
                {s.name}
              </li>
            ))}
          </ul>
        </>
      )}
    </figure>
  );
}
