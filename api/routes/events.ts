import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import type { ChangeEvent } from '../../activities/index.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { requirePermission } from '../middleware.js';
import { WorkspaceParams } from '../schemas.js';

/** Live changes of a workspace (optionally one mini program) as server-sent events. */
export function eventRoutes({ hub }: ApiDeps) {
  return new OpenAPIHono<AppEnv>().openapi(
    createRoute({
      method: 'get', path: '/workspaces/{workspaceId}/events', tags: ['events'],
      summary: 'Server-sent events: `change` whenever a mini program or version of this workspace changes',
      middleware: [requirePermission('workspace.read')],
      request: { params: WorkspaceParams, query: z.object({ miniProgramId: z.string().max(100).optional() }) },
      responses: { 200: { description: 'An event stream', content: { 'text/event-stream': { schema: z.string() } } } },
    }),
    (c) => {
      const { workspaceId } = c.req.valid('param');
      const { miniProgramId } = c.req.valid('query');
      return streamSSE(c, async (stream) => {
        const queue: ChangeEvent[] = [];
        let wake: (() => void) | null = null;
        const unsubscribe = hub.subscribe((e) => {
          if (e.workspaceId !== workspaceId || (miniProgramId && e.miniProgramId !== miniProgramId)) return;
          queue.push(e);
          wake?.();
        });
        let open = true;
        stream.onAbort(() => {
          open = false;
          wake?.();
        });
        await stream.writeSSE({ event: 'ready', data: JSON.stringify({ workspaceId, miniProgramId: miniProgramId ?? null }) });
        try {
          while (open) {
            if (!queue.length) {
              // Wake on a change, or every 15 s to send a heartbeat through proxies.
              await new Promise<void>((resolve) => {
                wake = resolve;
                setTimeout(resolve, 15_000);
              });
              wake = null;
            }
            if (!open) break;
            if (!queue.length) await stream.writeSSE({ event: 'ping', data: '{}' });
            while (queue.length) await stream.writeSSE({ event: 'change', data: JSON.stringify(queue.shift()) });
          }
        } finally {
          unsubscribe();
        }
      });
    },
  );
}
