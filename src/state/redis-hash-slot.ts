// Which Redis Cluster slot a key hashes to, as `CLUSTER KEYSLOT` answers: CRC16 (XMODEM) of its hash tag (the text
// between its first `{` and the next `}`, when not empty; else the whole key), modulo 16384. The link uses it to
// find a key's master in the cluster connection's slot table, so that failures on one master count together.

const SLOTS = 16_384;

/** CRC16/XMODEM (polynomial 0x1021, initial 0), Redis Cluster's key hash; one table entry per byte value. */
const TABLE = Array.from({ length: 256 }, (_, byte) => {
  let crc = byte << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  return crc;
});

/** What Redis hashes of `key`: its hash tag's content when it has one, else the key. */
export function hashPartOf(key: string): string {
  const open = key.indexOf("{");
  if (open < 0) return key;
  const close = key.indexOf("}", open + 1);
  return close <= open + 1 ? key : key.slice(open + 1, close);
}

/** The slot of a key (or of a bare hash tag: `hashSlot("groq")` is the slot of every `...{groq}...` key). */
export function hashSlot(key: string): number {
  let crc = 0;
  for (const byte of Buffer.from(hashPartOf(key), "utf8"))
    crc = ((crc << 8) & 0xffff) ^ (TABLE[(crc >> 8) ^ byte] ?? 0);
  return crc % SLOTS;
}
