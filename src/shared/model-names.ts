/** Adds `:latest` to a name without a tag, as Ollama does. */
export function normaliseModelName(name: string): string {
  const trimmed = name.trim();
  const slash = trimmed.lastIndexOf('/');
  return trimmed.slice(slash + 1).includes(':') ? trimmed : `${trimmed}:latest`;
}
