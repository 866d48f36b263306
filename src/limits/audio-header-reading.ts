// What the per-format readers of an upload's duration (audio-duration.ts, mp4-duration.ts, mpeg-audio-duration.ts)
// share: the byte bounds of one read, each codec's highest byte rate, the shape of what a reader returns.
// Pure: no I/O, no clock.

// The most bytes a second of each codec plausibly takes: a header saying fewer seconds than the file's bytes hold at
// its codec's rate is not believed, since a header claiming 0 s would let a long file past the budgets, its decoder
// playing every frame that came. The tighter the rate, the less a lying header can take off; a real file above it is
// counted long (the budgets' safe side), never short. docs/limits.md "Audio seconds" lists them.

/**
 * Uncompressed audio at its most: 192 kHz, 32-bit, stereo PCM. For a PCM WAV (or PCM in Matroska or MP4) the header
 * is how a decoder plays the bytes, so a high rate there is what the provider hears too; it also bounds a container
 * whose codec is not known here, or that holds a video track (its bytes are mostly not audio).
 */
export const MAX_PCM_BYTES_PER_SECOND = 1_536_000;

/**
 * Lossless audio (FLAC, ALAC) as a recording for transcription plausibly is: 48 kHz, 24-bit, stereo (2.3 Mbit/s of
 * PCM, which lossless coding does not exceed by more than its frame headers). A FLAC's own STREAMINFO format lowers it
 * further (losslessBytesPerSecond). A 96 kHz studio file is counted up to ~2x long.
 */
export const MAX_LOSSLESS_BYTES_PER_SECOND = 288_000;

/** Lossless coding's frame headers over verbatim PCM: a few bytes per block of 192 to 4,096 samples; 10 % covers them. */
export const LOSSLESS_FRAME_OVERHEAD = 1.1;

/** Ogg's and Matroska's lossy codecs at their highest bit rate: Opus 510 kbit/s (Vorbis tops out near 500). */
export const MAX_OPUS_BYTES_PER_SECOND = 64_000;

/**
 * AAC (ADTS, MP4's `mp4a`, Matroska's A_AAC): AAC-LC's ceiling of 6,144 bits per channel per 1,024-sample frame, at
 * 48 kHz stereo (576 kbit/s). MP3 in MP4 (at most 320 kbit/s) is under it too.
 */
export const MAX_AAC_BYTES_PER_SECOND = 72_000;

/** MPEG audio in Matroska (A_MPEG/L1, L2, L3): layer I's top rate, 448 kbit/s. A bare MP3 uses its own layer's. */
export const MAX_MPEG_BYTES_PER_SECOND = 56_000;

/**
 * The byte rate an unread file is assumed to have: 32 kbit/s, the low end of speech as uploads carry it (a voice
 * memo's Opus or AAC, a phone call's MP3). Assuming a low rate over-counts the seconds of a richer file, so the
 * estimate reserves too much rather than too little and the provider's own window (which counts the real seconds)
 * is not met first; a `verbose_json` answer's `duration` puts the exact count in its place afterwards.
 */
export const ESTIMATED_BYTES_PER_SECOND = 4_000;

/**
 * The most WAV chunks or MP4 boxes walked before the file is estimated instead: a real file has a handful (`fmt `,
 * `LIST`, `data`; `ftyp`, `moov`, `mdat`, `free`). Unbounded, a hostile 25 MB upload of 8-byte chunks took some
 * 3 million steps, a second of the event loop each time it was sent, every stream of the process waiting.
 */
export const MAX_CHUNKS = 1_024;

/** How far from either end a header is looked for: more than any ID3 tag or Ogg page the reader skips. */
export const SCAN_BYTES = 65_536;

/** A header's seconds and the fewest its bytes can hold, before the format is named. */
export interface HeaderRead {
  readonly seconds: number;
  readonly leastSeconds: number;
}

export function ascii(bytes: Uint8Array, offset: number, length: number): string {
  if (offset < 0 || offset + length > bytes.byteLength) return "";
  return String.fromCharCode(...bytes.subarray(offset, offset + length));
}

/**
 * The most bytes a second of a lossless stream takes: its PCM (rate, channels, bits as STREAMINFO says) with frame
 * headers, and never more than MAX_LOSSLESS_BYTES_PER_SECOND, since a header stating 655 kHz, 8 channels, 32 bits is
 * no more believed than one stating 0 s.
 */
export function losslessBytesPerSecond(sampleRate: number, channels: number, bitsPerSample: number): number {
  const pcm = (sampleRate * channels * bitsPerSample) / 8;
  return Math.min(MAX_LOSSLESS_BYTES_PER_SECOND, pcm * LOSSLESS_FRAME_OVERHEAD);
}
