import type { FastifyInstance } from 'fastify';
import type { EventBus } from '../../daemon/event-bus.js';

/**
 * `GET /events` upgrades to a websocket that streams every daemon event as one JSON text frame.
 * `?types=drop.,chain.` filters by type prefix; `?replay=1` first sends the recent history.
 * A slow client is dropped rather than buffered without bound.
 */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export async function eventRoutes(app: FastifyInstance, opts: { events: EventBus }): Promise<void> {
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
      const send = (payload: unknown): void => {
        if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
          socket.close(1008, 'client too slow');
          return;
        }
        socket.send(JSON.stringify(payload));
      };
      if (query.replay === '1') for (const e of opts.events.history()) if (wanted(e.type)) send(e);
      const unsubscribe = opts.events.subscribe((e) => {
        if (wanted(e.type)) send(e);
      });
      socket.on('close', unsubscribe);
      socket.on('error', unsubscribe);
      socket.on('message', () => {
        // The stream is one-way; inbound frames are ignored.
      });
    },
  );
}
