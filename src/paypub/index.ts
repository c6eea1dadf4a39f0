/** PayPub: pay-to-release content keys (docs/protocol/paypub.md). Re-exports only. */
export * from './params.js';
export * from './content.js';
export * from './manifest.js';
export * from './sample.js';
export * from './scripts.js';
export * from './pledges.js';
export * from './private.js';
export * from './adaptor.js';
export * from './bundle.js';
export * from './hint.js';
