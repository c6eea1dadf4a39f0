/**
 * Mixnet commands: `deaddrop message send <contact> <text>`, `deaddrop message reply <id> <text>`,
 * `deaddrop messages`, `deaddrop mixnet` (roles, provider link, verified directory). They talk
 * to the running daemon's API like the other node commands.
 */
import type { Command } from 'commander';
import type { ContextFactory } from '../context.js';
import { print } from '../output.js';
import { DeaddropError } from '../../util/errors.js';
import { daemonApi } from './node.js';

interface MessageJson {
  id: string;
  direction: 'in' | 'out';
  contact: string;
  text: string;
  at: number;
  canReply: boolean;
  inReplyTo: string | null;
}

function line(m: MessageJson): string {
  const who = m.direction === 'in' ? `from ${m.contact.slice(0, 12)}` : `to ${m.contact.slice(0, 12)}`;
  return `${new Date(m.at).toISOString()} ${m.id} ${who}${m.inReplyTo ? ' (reply)' : ''}: ${m.text}`;
}

export function registerMessageCommands(program: Command, context: ContextFactory): void {
  const message = program.command('message').description('messages to contacts through the mixnet');
  message
    .command('send <contact> <text>')
    .description('send a message to a contact (64 hex node id) through the mixnet; it waits at the contact\'s provider until fetched')
    .action(async (contact: string, text: string) => {
      const ctx = context();
      if (!/^[0-9a-f]{64}$/.test(contact)) throw DeaddropError.badInput('contact must be a node id (64 hex characters)');
      const r = await daemonApi<{ message: MessageJson }>(ctx, 'POST', '/node/messages', { contact, text });
      print(ctx, r.message, `sent ${r.message.id}`);
    });
  message
    .command('reply <id> <text>')
    .description('answer a received message once, through the reply block its sender included')
    .action(async (id: string, text: string) => {
      const ctx = context();
      if (!/^[0-9a-f]{32}$/.test(id)) throw DeaddropError.badInput('id must be a message id (32 hex characters)');
      const r = await daemonApi<{ message: MessageJson }>(ctx, 'POST', '/node/messages', { replyTo: id, text });
      print(ctx, r.message, `sent ${r.message.id}`);
    });
  program
    .command('messages')
    .description('messages sent and received through the mixnet since the daemon started')
    .action(async () => {
      const ctx = context();
      const r = await daemonApi<{ messages: MessageJson[] }>(ctx, 'GET', '/node/messages');
      print(ctx, r, r.messages.length === 0 ? 'no messages' : r.messages.map(line));
    });
  program
    .command('mixnet')
    .description('mixnet: this node\'s roles, its provider link and the mixes and providers it verified')
    .action(async () => {
      const ctx = context();
      const r = await daemonApi<{ layer: number; provider: boolean; url: string | null; home: string | null; connected: boolean; layers: number[]; providers: string[] }>(ctx, 'GET', '/node/mixnet');
      const roles = [r.layer ? `mix layer ${r.layer}` : '', r.provider ? 'provider' : ''].filter((x) => x !== '').join(' and ') || 'client only';
      print(ctx, r, [
        `roles: ${roles}${r.url ? ` (listener ${r.url})` : ''}`,
        `provider link: ${r.home ? `${r.home.slice(0, 12)} ${r.connected ? 'connected' : 'down'}` : 'none yet (no verified provider known)'}`,
        `verified mixes per layer: ${r.layers.join(' / ')}; providers: ${r.providers.length}`,
        ...(r.layers.some((n) => n === 0) ? ['too few mixes: messages cannot be sent until every layer has a verified mix'] : []),
      ]);
    });
}
