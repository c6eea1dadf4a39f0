/** Network parameters shared by every layer. */
export type Network = 'mainnet' | 'testnet' | 'signet' | 'regtest';

export const NETWORKS: readonly Network[] = ['mainnet', 'testnet', 'signet', 'regtest'];

export interface NetworkParams {
  readonly name: Network;
  /** bech32 human-readable part for segwit addresses. */
  readonly bech32: string;
  /** BIP352 silent-payment address hrp. */
  readonly silentPaymentHrp: string;
  readonly pubKeyHash: number;
  readonly scriptHash: number;
  readonly wif: number;
  /** BIP44 coin type: 0 on mainnet, 1 on every test network. */
  readonly coinType: number;
  /** Genesis block hash (display byte order). Used to detect a backend on the wrong network. */
  readonly genesisHash: string;
}

export const NETWORK_PARAMS: Record<Network, NetworkParams> = {
  mainnet: {
    name: 'mainnet', bech32: 'bc', silentPaymentHrp: 'sp', pubKeyHash: 0x00, scriptHash: 0x05, wif: 0x80, coinType: 0,
    genesisHash: '000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f',
  },
  testnet: {
    name: 'testnet', bech32: 'tb', silentPaymentHrp: 'tsp', pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef, coinType: 1,
    genesisHash: '000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943',
  },
  signet: {
    name: 'signet', bech32: 'tb', silentPaymentHrp: 'tsp', pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef, coinType: 1,
    genesisHash: '00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6',
  },
  regtest: {
    name: 'regtest', bech32: 'bcrt', silentPaymentHrp: 'sprt', pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef, coinType: 1,
    genesisHash: '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206',
  },
};

export function parseNetwork(value: string): Network {
  const v = value === 'main' || value === 'bitcoin' ? 'mainnet' : value === 'test' || value === 'testnet3' ? 'testnet' : value;
  if (!(NETWORKS as readonly string[]).includes(v)) {
    throw new TypeError(`network must be one of ${NETWORKS.join(', ')}; got ${JSON.stringify(value)}`);
  }
  return v as Network;
}

/** The network whose genesis block hash this is, or undefined. */
export function networkFromGenesis(hash: string): Network | undefined {
  // testnet and signet differ; mainnet and regtest are unique.
  for (const n of NETWORKS) if (NETWORK_PARAMS[n].genesisHash === hash) return n;
  return undefined;
}

/** The scure/btc-signer network object for address encoding. */
export function btcSignerNetwork(network: Network): { bech32: string; pubKeyHash: number; scriptHash: number; wif: number } {
  const p = NETWORK_PARAMS[network];
  return { bech32: p.bech32, pubKeyHash: p.pubKeyHash, scriptHash: p.scriptHash, wif: p.wif };
}
