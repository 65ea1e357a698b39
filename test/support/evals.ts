import { expect } from 'vitest';
import { ndjsonLines, postJson } from './server.js';

/** Helpers of the evaluation tests: start a suite, follow it to its end, read it. */

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export async function startEval(url: string, suite: unknown, headers: Record<string, string> = {}): Promise<string> {
  const response = await postJson(`${url}/api/evals`, suite, headers);
  const body = (await response.json()) as Json;
  expect(response.status, JSON.stringify(body)).toBe(201);
  return body.id as string;
}

/** Reads the NDJSON events until the evaluation's end; returns them all. */
export async function followEval(url: string, id: string, headers: Record<string, string> = {}): Promise<Json[]> {
  const response = await fetch(`${url}/api/evals/${id}/events`, { headers });
  expect(response.status).toBe(200);
  const events: Json[] = [];
  for await (const event of ndjsonLines<Json>(response)) {
    events.push(event);
    if (event.type === 'end') break;
  }
  return events;
}

export async function getEval(url: string, id: string, headers: Record<string, string> = {}): Promise<Json> {
  const response = await fetch(`${url}/api/evals/${id}`, { headers });
  expect(response.status).toBe(200);
  return (await response.json()) as Json;
}

export async function runEval(url: string, suite: unknown, headers: Record<string, string> = {}): Promise<Json> {
  const id = await startEval(url, suite, headers);
  await followEval(url, id, headers);
  return getEval(url, id, headers);
}

/** Short answers keep the suites fast; fixed seeds keep them reproducible. */
export const STORY = { model: 'stories260K', num_predict: 8 };
