import type { FastifyContextConfig, FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { AccessLevel } from './auth.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; every route declares it where it is registered (see declareRouteAccess). */
    access?: AccessLevel;
  }
  interface FastifyRequest {
    /** The matched route, once read (see routeOf). */
    matchedRoute: MatchedRoute | null;
  }
}

/** The route a request matched: its URL pattern (undefined when none matched) and its config. */
export interface MatchedRoute {
  url: string | undefined;
  config: FastifyContextConfig;
}

/**
 * The route a request matched, read once per request. Fastify's `request.routeOptions` builds a new
 * object of a dozen fields on every read, and the hooks ask about the route about ten times a
 * request: together that was a measurable share of the gateway's CPU per request.
 */
export function routeOf(request: FastifyRequest): MatchedRoute {
  if (request.matchedRoute) return request.matchedRoute;
  const { url, config } = request.routeOptions;
  return (request.matchedRoute = { url, config: config ?? {} });
}

/** One entry of the server's route table, as registered: what the router matches and who may call it. */
export interface RouteEntry {
  method: string;
  url: string;
  access: AccessLevel;
}

/** The access level an encapsulated context gives the routes its plugins register (see withAccess). */
const CONTEXT_ACCESS = Symbol('access of the routes registered in this context');

/**
 * Routes that plugins register on the root context itself, where no context level can reach them:
 * @fastify/cors's preflight route, which answers browsers that send no credentials and no data.
 */
const ROOT_PLUGIN_ROUTES: Record<string, AccessLevel> = { 'OPTIONS *': 'public' };

function contextAccess(instance: FastifyInstance): AccessLevel | undefined {
  return (instance as unknown as Record<symbol, AccessLevel | undefined>)[CONTEXT_ACCESS];
}

/**
 * The one place a route's access level comes from: every route declares `config.access` where it is
 * registered (or is registered through withAccess), and a route that declares none stops the server
 * from starting. The level is then read from the matched route only, never from the request's URL,
 * whose spelling (percent-encoding, absolute form) the router does not care about. Returns the route
 * table, which fills as routes are registered (HEAD routes Fastify adds for GETs included).
 */
export function declareRouteAccess(app: FastifyInstance): RouteEntry[] {
  const routes: RouteEntry[] = [];
  app.decorateRequest('matchedRoute', null);
  app.addHook('onRoute', function (this: FastifyInstance, route) {
    const methods = [route.method].flat().map(String);
    const access = route.config?.access ?? contextAccess(this) ?? ROOT_PLUGIN_ROUTES[`${methods.join(',')} ${route.url}`];
    if (access === undefined) {
      throw new Error(`Route ${methods.join(',')} ${route.url} declares no access level: give it config.access (public, model, manage or admin)`);
    }
    route.config = { ...route.config, access };
    for (const method of methods) routes.push({ method, url: route.url, access });
  });
  return routes;
}

/**
 * Registers a plugin whose routes cannot be given a config (swagger-ui, @fastify/static) in a context
 * of its own, where every route it registers gets `access`.
 */
export function withAccess(access: AccessLevel, plugin: FastifyPluginAsync): FastifyPluginAsync {
  return async (app) => {
    app.decorate(CONTEXT_ACCESS, access);
    await app.register(plugin);
  };
}

/**
 * The access level a request needs: its matched route's. A request no route matches needs what a
 * model route needs, so that a locked server answers it 401 without credentials and 404 only with
 * them: an unknown path tells nothing to someone who may not call the API.
 */
export function accessOf(request: FastifyRequest): AccessLevel {
  return routeOf(request).config.access ?? 'model';
}

/** Whether the request reached a route that uses or manages models (allow-lists, usage). */
export function usesModels(request: FastifyRequest): boolean {
  if (routeOf(request).url === undefined) return false;
  const access = accessOf(request);
  return access === 'model' || access === 'manage';
}
