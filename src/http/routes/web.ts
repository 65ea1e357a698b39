import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import { withAccess } from '../../access/route-access.js';

/**
 * The project's root: the nearest folder above this module with a package.json. The module runs from
 * src/ under tsx and from the one-file build in dist/ under `npm start`, at different depths.
 */
function projectRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return from;
  }
}

/** Where `vite build` puts the web app; absent until it has been built. */
const WEB_DIST = path.join(projectRoot(import.meta.dirname), 'web', 'dist');

/** The single-page app's own paths; a browser opening one of them (a reload, a shared link) gets the app. */
const APP_PATHS = ['/battle', '/leaderboard', '/runs', '/runs/:id', '/evals', '/evals/:id', '/models', '/admin', '/admin/*'];

export function wantsHtml(request: FastifyRequest): boolean {
  return (request.headers.accept ?? '').includes('text/html');
}

/**
 * Sends the app's index.html, or returns false when the app has not been built. It is never cached:
 * it names the hashed asset files of the current build.
 */
export function sendWebApp(reply: FastifyReply): boolean {
  const index = path.join(WEB_DIST, 'index.html');
  if (!fs.existsSync(index)) return false;
  reply.header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(fs.createReadStream(index));
  return true;
}

/**
 * The web UI's files: the hashed bundles under `/assets/` (cached for good, since a new build has new
 * names), and index.html for browser requests to the app's pages. `GET /` is answered in info.ts, which
 * also serves the JSON of the extended Ollama API to non-browsers. Other clients asking these paths get the usual 404.
 */
export function webRoutes() {
  return async function (app: FastifyInstance): Promise<void> {
    // The app's files are public: the page asks for the token once it runs.
    await app.register(
      withAccess('public', async (assets) => {
        await assets.register(fastifyStatic, {
          root: path.join(WEB_DIST, 'assets'),
          prefix: '/assets/',
          immutable: true,
          maxAge: '365d',
          index: false,
          schemaHide: true,
        });
      }),
    );

    for (const url of APP_PATHS) {
      app.get(url, { config: { access: 'public' }, schema: { hide: true } }, async (request, reply) => {
        if (wantsHtml(request) && sendWebApp(reply)) return reply;
        return reply.callNotFound();
      });
    }
  };
}
