/** A JSON object (not an array, not null): what a request body or one of its fields must be to be read by key. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
