import { readNdjson as readLines } from '../../src/shared/ndjson.js';

/**
 * The browser's client for our own API. The WEB_CHAT_TOKEN (or an API key) is asked for once, when the
 * server first answers 401, and kept in localStorage.
 */
const TOKEN_KEY = 'ollama-arena-token';

export function getToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Listeners told when the server wants a token (the app shows its token prompt). */
const unauthorizedListeners = new Set<() => void>();
export function onUnauthorized(listener: () => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = getToken();
  if (token) headers.set('Authorization', `Bearer ${token}`);
  if (init.body && !headers.has('content-type')) headers.set('content-type', 'application/json');
  const response = await fetch(path, { ...init, headers });
  if (response.status === 401) unauthorizedListeners.forEach((listener) => listener());
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = (await response.clone().json()) as { error?: string | { message?: string } };
      message = typeof body.error === 'string' ? body.error : (body.error?.message ?? message);
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, message);
  }
  return response;
}

export async function apiJson<T>(path: string, init: RequestInit = {}): Promise<T> {
  return (await apiFetch(path, init)).json() as Promise<T>;
}

/** Reads an NDJSON response as it arrives, calling `onLine` for each object. */
export async function readNdjson<T>(response: Response, onLine: (line: T) => void): Promise<void> {
  for await (const line of readLines<T>(response.body!)) onLine(line);
}
