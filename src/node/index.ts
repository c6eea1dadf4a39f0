/**
 * The peer node: signed hash-linked logs, Noise over WebSocket, replication, whereabouts, invites.
 * See docs/protocol/node.md.
 */
export { PeerNode } from './node.js';
export type { PeerNodeOptions, PeerNodeEvents } from './node.js';
export type { Contact } from './contacts.js';
export type { Introduction, IssuedIntroductionToken } from './introduction-token.js';
export { TOKEN_BYTES, DROP_TOKEN_BYTES, dropTokenId, expandDropToken } from './introduction-token.js';
export { NodeIdentity } from './identity.js';
export { FeedStore } from './log/feed-store.js';
export type { FeedInfo, IngestResult } from './log/feed-store.js';
export { createBatch, createEntry, feedLeaf, decodeEntry, openEntry, verifyEntry, encodeHeader, decodeHeader, ZERO_HASH, MAX_BODY_BYTES, MAX_BATCH_ENTRIES } from './log/codec.js';
export type { BatchItem, BatchSeal, EntryDraft, EntryHeader, HeaderValue, LogEntry } from './log/codec.js';
export { verifyEntries } from './log/batch-verify.js';
export { entryToJson, headerToJson } from './log/json.js';
export type { EntryJson } from './log/json.js';
export { decodeForkProof, encodeForkProof, verifyForkProof } from './log/fork.js';
export type { ForkProof } from './log/fork.js';
export { leafHash, verifyInclusion, verifyTreeHead, encodeTreeHead, decodeTreeHead } from './log/merkle.js';
export type { InclusionProof, SignedTreeHead } from './log/merkle.js';
export { decodeWhereabouts, openWhereabouts, verifyWhereabouts } from './whereabouts.js';
export type { WhereaboutsRecord } from './whereabouts.js';
export { openNodeDatabase } from './db.js';
