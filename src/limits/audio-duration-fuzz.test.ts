// Mutation fuzzing of the upload duration readers (audio-duration.ts and the per-format readers beside it): every
// file the tests build, broken thousands of ways (bytes flipped, sizes set to 0, 1, all ones, 64-bit sizes, EBML
// vints of length 8 and unknown size, slices cut, repeated or moved, the file cut short), must give a finite,
// non-negative count within what its bytes can hold, at once. Seeded: a failure names its case, which replays alone.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  adtsFile,
  flacFile,
  mp3File,
  oggFlacFile,
  oggOpusFile,
  wavFile,
  webmFile,
} from "../../test/helpers/audio-files.ts";
import { Random, seededRandom } from "../../test/helpers/structural-fuzz.ts";
import { threadCpuMs } from "../../test/helpers/thread-cpu.ts";
import { audioDurationOf, ESTIMATED_BYTES_PER_SECOND, MIN_BYTES_PER_SECOND } from "./audio-duration.ts";

const SEED = 20_261_206;

function box(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(8 + body.length);
  header.write(type, 4, "ascii");
  return Buffer.concat([header, body]);
}

/** An M4A with one AAC sound track (`soun`, `mp4a`) whose mvhd says `durationMs`, then `audioBytes` of media data. */
function mp4File(durationMs: number, audioBytes: number): Buffer {
  const mvhd = Buffer.alloc(100);
  mvhd.writeUInt32BE(1_000, 12);
  mvhd.writeUInt32BE(durationMs, 16);
  const hdlr = Buffer.alloc(24);
  hdlr.write("soun", 8, "ascii");
  const entry = Buffer.alloc(36);
  entry.writeUInt32BE(36);
  entry.write("mp4a", 4, "ascii");
  const stsd = box("stsd", Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]), entry]));
  const trak = box("trak", box("mdia", Buffer.concat([box("hdlr", hdlr), box("minf", box("stbl", stsd))])));
  return Buffer.concat([
    box("ftyp", Buffer.from("M4A \0\0\0\0", "ascii")),
    box("moov", Buffer.concat([box("mvhd", mvhd), trak])),
    box("mdat", Buffer.alloc(audioBytes)),
  ]);
}

const SEEDS: readonly [string, Buffer][] = [
  ["wav", wavFile(0.5)],
  ["flac", flacFile(1)],
  ["ogg opus", oggOpusFile(1)],
  ["ogg flac", oggFlacFile(1)],
  ["mp3", mp3File(1)],
  ["mp3 xing", mp3File(1, { xing: true })],
  ["mp4", mp4File(1_000, 2_000)],
  ["webm live", webmFile(1, { bytesPerSecond: 1_000 })],
  ["webm sized", webmFile(1, { bytesPerSecond: 1_000, isSized: true, durationMs: 1_000 })],
  ["aac", adtsFile(1)],
];

/** Values that break a size or a count: zero, one, the largest of each width, EBML's markers of every length. */
const HOSTILE_RUNS: readonly number[][] = [
  [0x00, 0x00, 0x00, 0x00],
  [0x00, 0x00, 0x00, 0x01],
  [0xff, 0xff, 0xff, 0xff],
  [0x7f, 0xff, 0xff, 0xff],
  [0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // MP4 64-bit size
  [0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // EBML 8-byte vint: unknown size
  [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // EBML 8-byte vint: 0
  [0x01, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // EBML 8-byte vint: 2^55
  [0x1f, 0x43, 0xb6, 0x75], // a Cluster ID
  [0xff, 0xf1], // ADTS sync
  [0xff, 0xfb], // MP3 sync
  [0x4f, 0x67, 0x67, 0x53], // OggS
];

/** One mutation of `file`, chosen by `random`: the file is never written in place. */
function mutate(random: Random, file: Buffer): Buffer {
  const copy = Buffer.from(file);
  const at = random.int(copy.length);
  switch (random.int(7)) {
    case 0: {
      for (let flips = random.between(1, 8); flips > 0; flips -= 1) copy[random.int(copy.length)] = random.int(256);
      return copy;
    }
    case 1: {
      Buffer.from(random.pick(HOSTILE_RUNS)).copy(copy, at);
      return copy;
    }
    case 2:
      return copy.subarray(0, at);
    case 3: {
      const length = random.between(1, 64);
      return Buffer.concat([copy.subarray(0, at), copy.subarray(at + length)]);
    }
    case 4: {
      const slice = copy.subarray(at, at + random.between(1, 256));
      const times = random.between(1, 32);
      return Buffer.concat([copy.subarray(0, at), ...Array.from({ length: times }, () => slice), copy.subarray(at)]);
    }
    case 5: {
      const run = Buffer.from(random.pick(HOSTILE_RUNS));
      return Buffer.concat([copy.subarray(0, at), run, copy.subarray(at)]);
    }
    default: {
      // Several at once: the readers see more than one broken field.
      let mutated: Buffer = copy;
      for (let rounds = random.between(2, 4); rounds > 0; rounds -= 1) {
        const next = random.int(6);
        mutated = mutate(new Random(random.int(2 ** 31) + next), mutated);
        if (mutated.length === 0) break;
      }
      return mutated;
    }
  }
}

function assertBounded(file: Uint8Array, what: string): void {
  let seconds: number;
  try {
    seconds = audioDurationOf(file).seconds;
  } catch (error) {
    assert.fail(`${what}: threw ${String(error)}`);
  }
  assert.ok(Number.isFinite(seconds) && seconds >= 0, `${what}: ${seconds}`);
  const most = Math.max(file.byteLength / MIN_BYTES_PER_SECOND, file.byteLength / ESTIMATED_BYTES_PER_SECOND);
  assert.ok(seconds <= most, `${what}: ${seconds} s in ${file.byteLength} bytes`);
}

describe("audioDurationOf under mutation fuzzing", () => {
  test("4,000 mutations of every format's file: a finite count within its bytes' bound, never a throw, at once", () => {
    const startedMs = performance.now();
    let slowestMs = 0;
    for (const [name, file] of SEEDS) {
      for (let index = 0; index < 400; index += 1) {
        const mutated = mutate(seededRandom(SEED, name, index), file);
        const { ms } = threadCpuMs(() => assertBounded(mutated, `${name} #${index} (seed ${SEED})`));
        slowestMs = Math.max(slowestMs, ms);
      }
    }
    // Files of a few KB to a few hundred KB: each a single bounded pass (a few ms of this thread's CPU, which a loaded
    // machine's other processes do not lengthen; an unbounded walk takes far longer).
    assert.ok(slowestMs < 500, `slowest case ${slowestMs.toFixed(0)} ms of CPU`);
    assert.ok(performance.now() - startedMs < 20_000, "all cases");
  });

  test("25 MB files, mutated near their start, middle and end, are each read within a bounded time", () => {
    const large: [string, Buffer][] = [
      ["webm 25 MB", webmFile(1_500, { bytesPerSecond: 16_000 })],
      ["aac 25 MB", adtsFile(6_000, { bytesPerSecond: 4_000 })],
      ["mp3 25 MB", mp3File(6_000)],
    ];
    for (const [name, file] of large) {
      for (let index = 0; index < 12; index += 1) {
        const random = seededRandom(SEED, name, index);
        const copy = Buffer.from(file);
        const region = [0, copy.length >> 1, copy.length - 70_000][index % 3] ?? 0;
        for (let flips = 0; flips < 16; flips += 1) {
          const run = Buffer.from(random.pick(HOSTILE_RUNS));
          run.copy(copy, Math.max(0, region + random.int(65_536)));
        }
        const { ms: tookMs } = threadCpuMs(() => assertBounded(copy, `${name} #${index}`));
        // ~20 ms of CPU each; a walk of every byte's element or frame took over half a second.
        assert.ok(tookMs < 500, `${name} #${index}: ${tookMs.toFixed(0)} ms of CPU`);
      }
    }
  });
});
