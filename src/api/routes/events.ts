import type { FastifyInstance } from 'fastify';
import type { EventBus } from '../../util/event-bus.js';
import { EventStream, type EventStreamLimits } from '../event-stream.js';

/**
 * `GET /events` upgrades to a websocket that streams every daemon event as one JSON text frame.
 * `?types=drop.,chain.` filters by type prefix; `?replay=1` first sends the recent history.
 * A client that falls too far behind is disconnected at once (see ../event-stream.ts) rather
 * than buffered: it reconnects with `?replay=1` and drops the ids it has already seen.
 */
export async function eventRoutes(app: FastifyInstance, opts: { events: EventBus; limits?: EventStreamLimits }): Promise<void> {
  app.get(
    '/events',
    {
      websocket: true,
      schema: {
        summary: 'Websocket stream of daemon events (JSON text frames)',
        querystring: {
          type: 'object',
          properties: { types: { type: 'string', maxLength: 512 }, replay: { type: 'string', enum: ['0', '1'] } },
          additionalProperties: false,
        },
      },
    },
    (socket, request) => {
      const query = request.query as { types?: string; replay?: string };
      const prefixes = (query.types ?? '').split(',').map((p) => p.trim()).filter(Boolean);
      const wanted = (type: string): boolean => prefixes.length === 0 || prefixes.some((p) => type.startsWith(p));
      let unsubscribe = (): void => undefined;
      const stream = new EventStream(socket, () => unsubscribe(), opts.limits);
      if (query.replay === '1') stream.replay(opts.events.history().filter((e) => wanted(e.type)));
      if (stream.ended) return;
      unsubscribe = opts.events.subscribe((e) => {
        if (wanted(e.type)) stream.push(e);
      });
      socket.on('message', () => {
        // The stream is one-way; inbound frames are ignored.
      });
    },
  );
}
