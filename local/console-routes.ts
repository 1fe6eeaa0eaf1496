import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { consoleFiles } from '../console/files';

type Route = (request: IncomingMessage, response: ServerResponse) => Promise<void>;

/**
 * The usage console's static files at `/console/`, as CloudFront serves them on AWS: read once, with
 * the headers a static site should have (no sniffing, no framing, revalidated on each load).
 */
export function consoleRoutes(): Record<string, Route> {
  const routes: Record<string, Route> = {};
  for (const { path, contentType, file } of consoleFiles()) {
    const body = readFileSync(file);
    const serve: Route = async (_request, response) => {
      response.writeHead(200, {
        'content-type': contentType,
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'referrer-policy': 'no-referrer',
      });
      response.end(body);
    };
    routes[`GET /console/${path}`] = serve;
    if (path === 'index.html') routes['GET /console/'] = serve;
  }
  routes['GET /console'] = async (_request, response) => {
    response.writeHead(301, { location: '/console/' });
    response.end();
  };
  return routes;
}
