/**
 * Stop sequences as a text field holds them: one per line. Only line breaks separate sequences (a
 * run of spaces is a legitimate stop string), so a line break inside a sequence is written \n, a tab
 * \t, a backslash \\. The playground and the catalog's defaults both edit them this way.
 */
const ESCAPES: Record<string, string> = { n: '\n', t: '\t', '\\': '\\' };

export function parseStops(text: string): string[] | undefined {
  const list = text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.replace(/\\([nt\\])/g, (_, c: string) => ESCAPES[c]!));
  return list.length > 0 ? list : undefined;
}

/** The inverse of parseStops, so a saved list shows in the field exactly as it would be typed. */
export function formatStops(list: readonly string[] | undefined): string {
  return (list ?? []).map((stop) => stop.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\t/g, '\\t')).join('\n');
}
