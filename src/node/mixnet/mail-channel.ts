/**
 * The mixnet as the daemon's store-and-forward mail (../../feature/mail.ts): a node's mailbox is
 * its identity key at its home provider; a message is sealed to the recipient (./message.ts,
 * authenticated sender) and sent on a 5-hop route to that mailbox, where the provider keeps it
 * until the recipient fetches it (on every (re)connect and every fetch interval). Opened bodies
 * that are not text messages arrive as the service's 'data' events; those of a kind some feature
 * registered go to it.
 */
import type { MailChannel, MailHub } from '../../feature/mail.js';
import { sealBody } from './message.js';
import type { MixnetService } from './service.js';

/** Attaches `mix` to `hub` (sending, own mailbox, delivery); the returned function detaches it. */
export function attachMixnetMail(mix: MixnetService, hub: MailHub, identity: Parameters<typeof sealBody>[0]): () => void {
  const channel: MailChannel = {
    own: () => {
      const home = mix.connected ? mix.home : null;
      return home ? { provider: home, mailbox: mix.identityKey } : null;
    },
    send: async (to, plain) => {
      if (!mix.connected) throw new Error('mixnet: no link to a provider yet');
      // A stranger's provider is not in the directory of a node that replicates nothing of it:
      // its own provider knows the descriptors.
      if (!mix.directory.get(to.provider)?.provider) await mix.refreshDirectory();
      if (!mix.directory.get(to.provider)?.provider) throw new Error('mixnet: the mailbox\'s provider is not a known provider');
      mix.sendTo(to.provider, to.mailbox, sealBody(identity, to.mailbox, plain));
    },
  };
  const onData = (from: Uint8Array, plain: Uint8Array): void => void hub.deliver(from, plain);
  mix.on('data', onData);
  hub.attach(channel);
  return () => {
    mix.off('data', onData);
    hub.attach(null);
  };
}
