import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import type http from 'node:http';

/** Samples of the upstreams' wire formats, as their documentation shows them, under test/fixtures/. */
const DIR = path.join(import.meta.dirname, '..', 'fixtures');

const fixtureText = (name: string): string => fs.readFileSync(path.join(DIR, name), 'utf8');

export const fixtureJson = <T>(name: string): T => JSON.parse(fixtureText(name)) as T;

/** An NDJSON fixture's lines, parsed. */
export const fixtureLines = <T>(name: string): T[] =>
  fixtureText(name)
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);

/**
 * A fixture as the body of an upstream response, cut in chunks of `chunkSize` bytes so that lines and
 * events split across network chunks are read as a real socket would deliver them.
 */
export function fixtureResponse(name: string, chunkSize = 64): http.IncomingMessage {
  const bytes = Buffer.from(fixtureText(name), 'utf8');
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += chunkSize) chunks.push(bytes.subarray(at, at + chunkSize));
  return Readable.from(chunks) as unknown as http.IncomingMessage;
}

export async function collectBatches<T>(batches: AsyncIterable<T[]>): Promise<T[]> {
  const all: T[] = [];
  for await (const batch of batches) all.push(...batch);
  return all;
}
