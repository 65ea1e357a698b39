import { BackendError } from '../types.js';
import { malformed, parseRegistryName, splitRegistryName } from './ollama-registry.js';
import { redactUrl, type PullPolicy } from './pull-policy.js';

/** Far longer than any model URL or name; a longer one is not a pull request. */
const MAX_SOURCE_LENGTH = 2048;

const HF_PART = '[A-Za-z0-9][A-Za-z0-9_.+-]*';
const HF_REFERENCE = new RegExp(`^hf:${HF_PART}/${HF_PART}/(${HF_PART}/)*${HF_PART}\\.gguf$`, 'i');
/** A `..` path segment, spelled out or percent-encoded: the URL parser would resolve it away. */
const DOT_DOT_SEGMENT = /\/(\.|%2e){2}(?=[/?#]|$)/i;

function refused(why: string): BackendError {
  return new BackendError(`cannot pull this source: ${why}`, 400);
}

/**
 * Checks what a pull asks for before any job starts, so a source that can never be pulled is a 400
 * at once: an http(s) URL (no credentials, no `..` segments, not a literal refused address), an
 * `hf:owner/repo/file.gguf` reference, or an Ollama name (`[host[:port]/][namespace/]model[:tag]`).
 * Returns the source as it may be shown and logged: a URL without its query, where tokens travel.
 */
export function checkPullSource(source: string, policy: PullPolicy): string {
  if (source.length > MAX_SOURCE_LENGTH) throw refused(`longer than ${MAX_SOURCE_LENGTH} characters`);
  if (source.startsWith('hf:')) {
    if (!HF_REFERENCE.test(source) || source.includes('..')) throw refused('hf: references look like hf:owner/repo/file.gguf');
    return source;
  }
  if (/^https?:\/\//.test(source)) {
    // The URL parser would drop or encode these; what is fetched must be what was asked for.
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f\s]/.test(source)) throw refused('a URL cannot contain spaces or control characters');
    let url: URL;
    try {
      url = new URL(source);
    } catch {
      throw refused('not a valid URL');
    }
    if (url.username || url.password) throw refused('credentials in a URL are not supported; put a token in the query string');
    if (DOT_DOT_SEGMENT.test(source.replace(/^https?:\/\/[^/?#]*/, ''))) throw refused("'..' is not allowed in the path");
    policy.checkLiteralHost(url.hostname);
    return redactUrl(source);
  }
  const { host } = splitRegistryName(source, true);
  // The host is fetched as https://host, whose parser reads `2130706433` as 127.0.0.1: check it so.
  if (host === undefined) return source;
  let hostname: string;
  try {
    hostname = new URL(`https://${host}`).hostname;
  } catch {
    throw malformed(source, `'${host}' is not a host name`);
  }
  policy.checkLiteralHost(hostname);
  return source;
}

/** A URL or an `hf:` reference names one file; anything else is an Ollama registry name. */
export function isFileSource(source: string): boolean {
  return source.startsWith('hf:') || /^https?:\/\//.test(source);
}

/** The name a pull of `source` gives the model here; throws a 400 for a source that cannot be pulled. */
export function pullTargetName(source: string): string {
  if (!isFileSource(source)) return parseRegistryName(source).localName;
  resolveSource(source);
  return nameFromSource(source);
}

/** `hf:owner/repo/file.gguf` is a Hugging Face file; anything else must be an http(s) URL. */
export function resolveSource(source: string): string {
  if (source.startsWith('hf:')) {
    const parts = source.slice(3).split('/');
    if (parts.length < 3) throw new BackendError('hf: references look like hf:owner/repo/file.gguf', 400);
    const [owner, repo, ...file] = parts;
    return `https://huggingface.co/${owner}/${repo}/resolve/main/${file.join('/')}`;
  }
  if (/^https?:\/\//.test(source)) return source;
  throw new BackendError(`cannot pull '${source}': give an http(s) URL or an hf:owner/repo/file.gguf reference`, 400);
}

/** `https://host/path/My-Model.Q4_K_M.gguf` becomes `my-model.q4_k_m:latest`. */
export function nameFromSource(source: string): string {
  const last = source.split(/[/?#]/).filter(Boolean).reverse().find((part) => /\.gguf$/i.test(part)) ?? 'model.gguf';
  const stem = last.replace(/\.gguf$/i, '').replace(/[^A-Za-z0-9._-]/g, '-');
  return `${stem}:latest`;
}
