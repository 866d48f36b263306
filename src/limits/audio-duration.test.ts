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
import { threadCpuMs } from "../../test/helpers/thread-cpu.ts";
import { audioDurationOf, ESTIMATED_BYTES_PER_SECOND, MIN_BYTES_PER_SECOND } from "./audio-duration.ts";
import { MATROSKA_TAIL_BYTES } from "./matroska-duration.ts";

function near(actual: number, expected: number, tolerance = 0.05): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${actual} is not ${expected} ± ${tolerance}`);
}

describe("audioDurationOf", () => {
  test("WAV: the data chunk's size over the byte rate", () => {
    const duration = audioDurationOf(wavFile(12.5));
    assert.equal(duration.source, "header");
    assert.equal(duration.format, "wav");
    near(duration.seconds, 12.5, 0.001);
  });

  test("WAV written while recording (data size 0xFFFFFFFF): the bytes that came count", () => {
    const file = wavFile(3);
    file.writeUInt32LE(0xffffffff, 40);
    near(audioDurationOf(file).seconds, 3, 0.001);
  });

  test("MP3 without a Xing header: constant bit rate, after the ID3v2 tag", () => {
    const duration = audioDurationOf(mp3File(20));
    assert.equal(duration.format, "mp3");
    assert.equal(duration.source, "header");
    near(duration.seconds, 20);
  });

  test("MP3 with a Xing header: its frame count, not the byte size", () => {
    const file = mp3File(30, { xing: true });
    // The same bytes padded with a long tail of zeros: a bit-rate reading would grow, the frame count does not.
    const duration = audioDurationOf(Buffer.concat([file, Buffer.alloc(50_000)]));
    assert.equal(duration.source, "header");
    near(duration.seconds, 30);
  });

  test("FLAC: STREAMINFO's samples over its rate", () => {
    const duration = audioDurationOf(flacFile(61.25));
    assert.equal(duration.format, "flac");
    near(duration.seconds, 61.25, 0.001);
  });

  test("Ogg Opus: the last page's granule at 48 kHz, less the pre-skip", () => {
    const duration = audioDurationOf(oggOpusFile(7.5));
    assert.equal(duration.format, "ogg");
    near(duration.seconds, 7.5, 0.001);
  });

  test("MP4: mvhd's duration over its timescale", () => {
    const box = (type: string, body: Buffer) => {
      const header = Buffer.alloc(8);
      header.writeUInt32BE(8 + body.length);
      header.write(type, 4, "ascii");
      return Buffer.concat([header, body]);
    };
    const mvhd = Buffer.alloc(100);
    mvhd.writeUInt32BE(1000, 12); // timescale
    mvhd.writeUInt32BE(42_000, 16); // duration
    const file = Buffer.concat([
      box("ftyp", Buffer.from("M4A \0\0\0\0", "ascii")),
      box("moov", box("mvhd", mvhd)),
      box("mdat", Buffer.alloc(42_000)), // 42 s at 8 kbit/s: a header is believed only as far as the bytes go
    ]);
    const duration = audioDurationOf(file);
    assert.equal(duration.format, "mp4");
    near(duration.seconds, 42, 0.001);
  });

  test("an unread container is estimated from its size, at a low byte rate (never NaN, never negative)", () => {
    const bytes = Buffer.alloc(80_000, 0x1a); // no header any reader knows
    const duration = audioDurationOf(bytes);
    assert.equal(duration.source, "estimate");
    assert.equal(duration.seconds, 80_000 / ESTIMATED_BYTES_PER_SECOND);
    assert.equal(audioDurationOf(Buffer.alloc(0)).seconds, 0);
    // Truncated headers fall back, they do not throw.
    for (const file of [wavFile(5), flacFile(5), oggOpusFile(5), mp3File(5)]) {
      for (const cut of [4, 12, 20, 30, 40]) {
        const duration = audioDurationOf(file.subarray(0, cut));
        assert.ok(Number.isFinite(duration.seconds) && duration.seconds >= 0);
      }
    }
  });
});

/** An MP4 box (32-bit size). */
function box(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(8 + body.length);
  header.write(type, 4, "ascii");
  return Buffer.concat([header, body]);
}

/** An M4A whose mvhd (version 1) says `duration` over `timescale`, then `audioBytes` of media data. */
function mp4File(duration: bigint, timescale: number, audioBytes: number): Buffer {
  const mvhd = Buffer.alloc(108);
  mvhd[0] = 1; // version 1: 64-bit times
  mvhd.writeUInt32BE(timescale, 20);
  mvhd.writeBigUInt64BE(duration, 24);
  return Buffer.concat([
    box("ftyp", Buffer.from("M4A \0\0\0\0", "ascii")),
    box("moov", box("mvhd", mvhd)),
    box("mdat", Buffer.alloc(audioBytes)),
  ]);
}

/** The duration's seconds are a number the budgets can hold: finite, not negative, within what the bytes can hold. */
function assertBounded(file: Uint8Array, what: string): number {
  const { seconds } = audioDurationOf(file);
  assert.ok(Number.isFinite(seconds) && seconds >= 0, `${what}: ${seconds}`);
  assert.ok(
    seconds <= Math.max(file.byteLength / MIN_BYTES_PER_SECOND, file.byteLength / ESTIMATED_BYTES_PER_SECOND),
    `${what}: ${seconds} s in ${file.byteLength} bytes`,
  );
  return seconds;
}

describe("audioDurationOf on hostile uploads", () => {
  test("a small file whose header claims days (or 10^12 s) is counted by what its bytes can hold", () => {
    const flac = flacFile(1);
    flac.writeUInt32BE(0xffffffff, 8 + 14); // total samples ~2^32 at 16 kHz: 3 days
    const ogg = oggOpusFile(1);
    ogg.writeBigUInt64LE(2n ** 62n, ogg.length - 128 + 6); // the last page's granule: 10^14 s
    const mp3 = mp3File(1, { xing: true });
    mp3.writeUInt32BE(0xffffffff, 30 + 4 + 17 + 8); // Xing frame count: 2^32 frames
    const wav = wavFile(1);
    wav.writeUInt16LE(2, 20); // ADPCM: the byte-rate field is the rate
    wav.writeUInt32LE(1, 28); // 1 byte a second
    const mp4 = mp4File(10n ** 12n, 1, 2_000);
    for (const [what, file] of [
      ["flac", flac],
      ["ogg", ogg],
      ["mp3", mp3],
      ["wav", wav],
      ["mp4", mp4],
    ] as const) {
      const seconds = assertBounded(file, what);
      // Under 1 KB a second, however the header says: the day's asd is not spent by one small upload.
      assert.ok(seconds <= file.byteLength / MIN_BYTES_PER_SECOND, `${what}: ${seconds} s in ${file.byteLength} bytes`);
    }
  });

  test("a long file whose header claims 0 s is not free: at least what its bytes hold at the format's top rate", () => {
    // 400 KB of 32 kbit/s MP3 frames (100 s) behind a Xing header counting 0 frames.
    const mp3 = mp3File(100, { xing: true });
    mp3.writeUInt32BE(0, 30 + 4 + 17 + 8);
    assert.ok(audioDurationOf(mp3).seconds >= mp3.length / 56_000, "mp3: at most 448 kbit/s");
    // A 16 kHz 16-bit mono PCM WAV whose byte-rate field says 4 GB/s: a decoder plays it at 32 KB/s.
    const wav = wavFile(60, 16_000);
    wav.writeUInt32LE(0xffffffff, 28);
    assert.ok(Math.abs(audioDurationOf(wav).seconds - 60) < 0.01, `wav: ${audioDurationOf(wav).seconds}`);
    // An M4A of 3 MB whose movie header says 0 s; an Ogg Opus whose pre-skip eats its whole granule.
    assert.ok(audioDurationOf(mp4File(0n, 1_000, 3_000_000)).seconds >= 1.9);
    const ogg = oggOpusFile(100);
    ogg.writeBigUInt64LE(0n, ogg.length - 128 + 6);
    assert.ok(audioDurationOf(ogg).seconds >= ogg.length / 64_000, `ogg: ${audioDurationOf(ogg).seconds}`);
  });

  test("huge or zero MP4 box sizes, a 1-byte upload, every truncation and random headers: a bounded number, at once", () => {
    const huge = Buffer.alloc(16);
    huge.writeUInt32BE(1);
    huge.write("free", 4, "ascii");
    huge.writeBigUInt64BE(2n ** 63n, 8); // a 64-bit size past any file
    const zeroSized = Buffer.from(box("ftyp", Buffer.from("M4A \0\0\0\0", "ascii")));
    const tiny = Buffer.alloc(4);
    tiny.write("moov", 0, "ascii"); // size 0: "to the end of the file", here 4 bytes short of a header
    const files: [string, Buffer][] = [
      ["huge box", Buffer.concat([box("ftyp", Buffer.from("M4A \0\0\0\0", "ascii")), huge, mp4File(1_000n, 1, 500)])],
      ["zero-sized box", Buffer.concat([zeroSized, Buffer.alloc(4), tiny, Buffer.alloc(64)])],
      ["1 byte", Buffer.from([0xff])],
      ["11 bytes", Buffer.from("RIFF\0\0\0\0WAV", "ascii")],
    ];
    for (const [what, file] of files) assertBounded(file, what);
    const startedMs = performance.now();
    for (const file of [
      wavFile(2),
      flacFile(2),
      oggOpusFile(2),
      oggFlacFile(2),
      mp3File(2, { xing: true }),
      mp4File(5_000n, 1_000, 500),
      webmFile(0.2, { bytesPerSecond: 1_000 }),
      adtsFile(0.5),
    ]) {
      for (let cut = 0; cut <= Math.min(file.length, 600); cut += 1)
        assertBounded(file.subarray(0, cut), `cut at ${cut}`);
    }
    // Random bytes behind every magic the reader knows.
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (const magic of [
      "RIFF\0\0\0\0WAVEfmt ",
      "fLaC\0",
      "OggS\0",
      "\0\0\0\x20ftyp",
      "ID3\x04\0\0",
      "\xff\xfb",
      "\xff\xf1",
      "\x1a\x45\xdf\xa3",
      "\x1a\x45\xdf\xa3\x80\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff",
    ]) {
      for (let index = 0; index < 300; index += 1) {
        const file = Buffer.alloc(12 + Math.floor(random() * 3_000));
        for (let at = 0; at < file.length; at += 1) file[at] = Math.floor(random() * 256);
        Buffer.from(magic, "latin1").copy(file);
        assertBounded(file, `random after ${JSON.stringify(magic)}`);
      }
    }
    assert.ok(performance.now() - startedMs < 5_000, "hostile headers are read in one pass");
  });

  test("a 16 MB WAV or MP4 of 8-byte chunks is given up on after a few, not walked to its end", () => {
    const wav = Buffer.alloc(16 * 1024 * 1024);
    wav.write("RIFF", 0, "ascii");
    wav.write("WAVE", 8, "ascii");
    for (let at = 12; at + 8 <= wav.length; at += 8) wav.write("junk", at, "ascii"); // size 0: the next is 8 bytes on
    const mp4 = Buffer.alloc(16 * 1024 * 1024);
    mp4.writeUInt32BE(16);
    mp4.write("ftyp", 4, "ascii");
    for (let at = 16; at + 8 <= mp4.length; at += 8) {
      mp4.writeUInt32BE(8, at);
      mp4.write("free", at + 4, "ascii");
    }
    for (const [what, file] of [
      ["wav", wav],
      ["mp4", mp4],
    ] as const) {
      // This thread's CPU, not the clock: a loaded machine's other processes are not the walk's cost.
      const { value: duration, ms: tookMs } = threadCpuMs(() => audioDurationOf(file));
      // Walked whole, each took ~600 ms of the event loop here; a thousand chunks take well under a millisecond.
      assert.ok(tookMs < 100, `${what}: ${tookMs.toFixed(0)} ms of CPU`);
      assert.equal(duration.source, "estimate", what);
      assert.equal(duration.seconds, file.length / ESTIMATED_BYTES_PER_SECOND);
    }
  });
});

describe("audioDurationOf: WebM/Matroska, AAC in ADTS, Ogg FLAC", () => {
  test("a MediaRecorder WebM (no Duration, clusters of unknown size): its last block's time, not its size", () => {
    const file = webmFile(30, { bytesPerSecond: 16_000 }); // 128 kbit/s Opus: 480 KB, estimated from size at 120 s
    const duration = audioDurationOf(file);
    assert.equal(duration.source, "header");
    assert.equal(duration.format, "webm");
    // The last 20 ms block starts at 29.98 s; its own length is not in a SimpleBlock.
    near(duration.seconds, 30, 0.03);
  });

  test("a WebM whose Info has a Duration: Duration x TimecodeScale, clusters of known size", () => {
    near(audioDurationOf(webmFile(12.5, { durationMs: 12_500, isSized: true })).seconds, 12.5, 0.001);
  });

  test("a WebM's Duration and its last cluster disagree: the later one counts", () => {
    // A Duration of 1 s over 30 s of blocks (or a muxer that wrote the Duration of a shorter take).
    near(audioDurationOf(webmFile(30, { durationMs: 1_000 })).seconds, 30, 0.03);
    near(audioDurationOf(webmFile(5, { durationMs: 40_000 })).seconds, 40, 0.001);
  });

  test("a WebM cut mid-block (an upload of a recording still going) still counts its last whole cluster's blocks", () => {
    const file = webmFile(20, { bytesPerSecond: 8_000 });
    const cut = audioDurationOf(file.subarray(0, file.length - 57));
    assert.equal(cut.source, "header");
    near(cut.seconds, 20, 0.1);
  });

  test("a WebM whose last cluster starts over MATROSKA_TAIL_BYTES from the end is estimated from its size", () => {
    // 5 s clusters at 250 KB/s: the last one begins 1.25 MB from the end, past the bounded tail read.
    const file = webmFile(10, { bytesPerSecond: 250_000 });
    assert.ok(file.length - MATROSKA_TAIL_BYTES > 0);
    const duration = audioDurationOf(file);
    assert.equal(duration.source, "estimate");
    assert.equal(duration.seconds, file.length / ESTIMATED_BYTES_PER_SECOND);
  });

  test("a WebM whose timestamps claim 1 s for 480 KB of Opus counts what Opus's top rate holds", () => {
    const file = webmFile(1, { bytesPerSecond: 480_000 });
    assert.ok(audioDurationOf(file).seconds >= file.length / 64_000, `${audioDurationOf(file).seconds}`);
    // The same with A_AAC: AAC's top rate (576 kbit/s).
    const aac = webmFile(1, { bytesPerSecond: 480_000, codecId: "A_AAC" });
    assert.ok(audioDurationOf(aac).seconds >= aac.length / 72_000);
  });

  test("a WebM with a video track: its bytes are mostly video, so they do not raise its seconds", () => {
    // 10 s with 200 KB/s of video: at Opus's top rate the bytes alone would say 31 s.
    const duration = audioDurationOf(webmFile(10, { bytesPerSecond: 4_000, videoBytesPerSecond: 200_000 }));
    near(duration.seconds, 10, 0.03);
  });

  test("a tail of fake Cluster IDs before runs of tiny elements is given up on at once", () => {
    const file = Buffer.concat([webmFile(1, { bytesPerSecond: 1_000 }), Buffer.alloc(MATROSKA_TAIL_BYTES)]);
    // Every 64 bytes a Cluster of unknown size whose children are 2-byte Void elements to the end of the file.
    for (let at = file.length - MATROSKA_TAIL_BYTES; at + 2 <= file.length; at += 2) {
      file[at] = 0xec;
      file[at + 1] = 0x80;
    }
    for (let at = file.length - MATROSKA_TAIL_BYTES; at + 12 <= file.length; at += 64) {
      Buffer.from([0x1f, 0x43, 0xb6, 0x75, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).copy(file, at);
    }
    const { ms: tookMs } = threadCpuMs(() => assertBounded(file, "fake clusters"));
    assert.ok(tookMs < 200, `${tookMs.toFixed(0)} ms of CPU`);
  });

  test("AAC in ADTS: the frames' samples over their rate, after an ID3v2 tag", () => {
    // 128 kbit/s: estimated from its size, 20 s would be 80 s.
    const duration = audioDurationOf(adtsFile(20, { bytesPerSecond: 16_000 }));
    assert.equal(duration.source, "header");
    assert.equal(duration.format, "aac");
    near(duration.seconds, 20, 0.07);
    near(audioDurationOf(adtsFile(7, { sampleRate: 44_100, bytesPerSecond: 8_000 })).seconds, 7, 0.03);
  });

  test("ADTS: frames claiming 1 s for 400 KB count what AAC's top rate holds; junk after them is not free", () => {
    const frames = adtsFile(60, { bytesPerSecond: 4_000 });
    const withJunk = Buffer.concat([frames, Buffer.alloc(2_000_000, 0x55)]);
    const duration = audioDurationOf(withJunk);
    assert.equal(duration.format, "aac");
    assert.ok(duration.seconds >= withJunk.length / 72_000, `${duration.seconds}`);
  });

  test("a 25 MB ADTS file of the smallest (8-byte) frames is read at once: its first 262,144 frames walked", () => {
    const file = adtsFile(25_000_000 / 8 / 15.625, { bytesPerSecond: 125 });
    // This thread's CPU time, not the clock: a loaded machine's other processes are not the code's cost.
    const { value: duration, ms: tookMs } = threadCpuMs(() => audioDurationOf(file));
    assert.equal(duration.format, "aac");
    // Walked whole (3 million frames), ~50 ms of the event loop.
    assert.ok(tookMs < 200, `${tookMs.toFixed(0)} ms of CPU`);
    assertBounded(file, "tiny frames");
  });

  test("ADTS past the frames walked: the rest counts at the walked frames' rate", () => {
    // 300,000 frames of 40 bytes at 16 kHz (5 kbit/s): 19,200 s, 37,856 frames past the walk.
    near(audioDurationOf(adtsFile(19_200, { bytesPerSecond: 625 })).seconds, 19_200, 0.1);
  });

  test("Ogg FLAC: the last page's granule over STREAMINFO's rate", () => {
    const duration = audioDurationOf(oggFlacFile(12.5));
    assert.equal(duration.format, "ogg");
    assert.equal(duration.source, "header");
    near(duration.seconds, 12.5, 0.001);
  });
});

describe("audioDurationOf: a header saying too few seconds is bounded by its codec's top rate", () => {
  test("FLAC: at most its STREAMINFO format's PCM rate (16 kHz mono 16-bit: 32 KB/s, +10 % for frame headers)", () => {
    // 1 s claimed, 200 KB of frames: at the old 192 kHz 32-bit stereo bound, 0.13 s.
    const flac = flacFile(200);
    flac.writeUInt32BE(16_000, 8 + 14);
    const seconds = audioDurationOf(flac).seconds;
    assert.ok(seconds >= (flac.length - 42) / 35_200 - 0.01, `${seconds}`);
    assert.ok(seconds < 10);
  });

  test("FLAC whose STREAMINFO claims 655 kHz, 8 channels, 32 bits: at most 48 kHz 24-bit stereo (288 KB/s)", () => {
    const flac = flacFile(2_000); // 2 MB of frames
    flac.writeUInt32BE(1, 8 + 14); // 1 sample
    flac[8 + 10] = 0x9f; // sample rate 0x9FFF0 (655,350 Hz)
    flac[8 + 11] = 0xff;
    flac[8 + 12] = 0x0f; // rate's low nibble 0, 8 channels, bits-per-sample high bit 1
    flac[8 + 13] = 0xf0; // 32 bits
    assert.ok(audioDurationOf(flac).seconds >= (flac.length - 42) / 288_000);
  });

  test("FLAC's metadata blocks (a cover picture) are not audio: an honest file's count is not raised by them", () => {
    const flac = flacFile(10);
    flac[4] = 0x00; // STREAMINFO is no longer the last block
    const picture = Buffer.alloc(4 + 500_000);
    picture[0] = 0x80 | 6; // last block, PICTURE
    picture.writeUIntBE(500_000, 1, 3);
    const file = Buffer.concat([flac.subarray(0, 42), picture, flac.subarray(42)]);
    near(audioDurationOf(file).seconds, 10, 0.001);
  });

  test("MP4 whose sound track is AAC (`mp4a`): 3 MB said to be 0 s count at least what 576 kbit/s holds", () => {
    const file = mp4WithTrack(0n, 3_000_000, "soun", "mp4a");
    assert.ok(audioDurationOf(file).seconds >= file.length / 72_000, `${audioDurationOf(file).seconds}`);
  });

  test("MP4 with a video track keeps the PCM bound: a video's bytes are not its audio", () => {
    const file = mp4WithTrack(60_000n, 3_000_000, "vide", "avc1");
    near(audioDurationOf(file).seconds, 60, 0.001);
  });
});

/** An MP4 of one track (`handler`: soun, vide) whose first sample entry is `entry`, mvhd saying `durationMs`. */
function mp4WithTrack(durationMs: bigint, audioBytes: number, handler: string, entry: string): Buffer {
  const mvhd = Buffer.alloc(108);
  mvhd[0] = 1;
  mvhd.writeUInt32BE(1_000, 20);
  mvhd.writeBigUInt64BE(durationMs, 24);
  const hdlr = Buffer.alloc(24);
  hdlr.write(handler, 8, "ascii");
  const sampleEntry = Buffer.alloc(36);
  sampleEntry.writeUInt32BE(36);
  sampleEntry.write(entry, 4, "ascii");
  const stsdBody = Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]), sampleEntry]);
  const stbl = box("stbl", box("stsd", stsdBody));
  const trak = box("trak", box("mdia", Buffer.concat([box("hdlr", hdlr), box("minf", stbl)])));
  return Buffer.concat([
    box("ftyp", Buffer.from("M4A \0\0\0\0", "ascii")),
    box("moov", Buffer.concat([box("mvhd", mvhd), trak])),
    box("mdat", Buffer.alloc(audioBytes)),
  ]);
}

describe("audioDurationOf: what a decoder plays, not what a header field says", () => {
  test("a G.711 WAV (A-law, µ-law: a byte per sample) is timed by its sample rate, not its byte-rate field", () => {
    for (const [law, tag] of [
      ["A-law", 6],
      ["µ-law", 7],
    ] as const) {
      // 8 kHz mono, a byte a sample: 960,000 bytes are 120 s of a phone call, whatever the byte-rate field says.
      const wav = wavFile(60);
      wav.writeUInt16LE(tag, 20);
      wav.writeUInt16LE(1, 32); // block align: one byte
      wav.writeUInt16LE(8, 34); // bits per sample
      wav.writeUInt32LE(0xffffffff, 28); // 4 GB/s: the old count was 0.6 s (its bytes at 192 kHz 32-bit stereo)
      const seconds = audioDurationOf(wav).seconds;
      assert.ok(Math.abs(seconds - 120) < 0.01, `${law}: ${seconds}`);
    }
  });

  test("a compressed WAV (ADPCM) takes no more bytes a second than 16-bit PCM of its rate and channels", () => {
    const wav = wavFile(60); // 960,000 bytes of data
    wav.writeUInt16LE(0x11, 20); // IMA ADPCM: 4 bits a sample, 4,000 bytes a second at 8 kHz mono
    wav.writeUInt16LE(256, 32); // block align: a 256-byte block
    wav.writeUInt32LE(0xffffffff, 28);
    assert.ok(audioDurationOf(wav).seconds >= 960_000 / 16_000 - 0.01, `${audioDurationOf(wav).seconds}`);
  });
});

/** `count` MPEG-1 layer III frames at 32 kHz mono of `kbps` (no padding): 36 ms each, 4.5 bytes per kbit/s. */
function mp3Frames(count: number, kbps: number): Buffer {
  const index = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320].indexOf(kbps);
  const frameBytes = (144 * kbps * 1_000) / 32_000;
  const frames = Buffer.alloc(count * frameBytes);
  for (let at = 0; at < frames.length; at += frameBytes)
    frames.writeUInt32BE((0xff_fb_08_c0 | (index << 12)) >>> 0, at);
  return frames;
}

describe("audioDurationOf: MP3 and ADTS frames as a decoder plays them", () => {
  test("an MP3 whose first two frames are 320 kbit/s and the rest 32 kbit/s (VBR, no Xing): every frame counts", () => {
    // 2,778 frames of 32 kbit/s are 100 s; read as constant bit rate from the first frame it was 10 s.
    const file = Buffer.concat([mp3Frames(2, 320), mp3Frames(2_778, 32)]);
    near(audioDurationOf(file).seconds, 100.08, 0.05);
  });

  test("an MP3 whose Xing header counts 1 frame for 100 s of frames: the frames that came count", () => {
    const file = mp3File(100, { xing: true });
    file.writeUInt32BE(1, 30 + 4 + 17 + 8);
    near(audioDurationOf(file).seconds, 100, 0.05); // was 11.6 s: its bytes at 320 kbit/s
  });

  test("two .aac files joined (an ID3v2 tag between them): a decoder skips the tag and plays both", () => {
    const file = Buffer.concat([adtsFile(30, { bytesPerSecond: 2_000 }), adtsFile(30, { bytesPerSecond: 2_000 })]);
    near(audioDurationOf(file).seconds, 60, 0.2); // was 30.9 s: the walk stopped at the tag, the rest at 576 kbit/s
  });

  test("ADTS: a junk byte after two frames does not make the frames behind it count at AAC's top rate", () => {
    const frames = adtsFile(100, { bytesPerSecond: 2_000 });
    const second = 30 + 2 * 128; // after the ID3 tag and two 128-byte frames
    const file = Buffer.concat([frames.subarray(0, second), Buffer.from([0x00]), frames.subarray(second)]);
    near(audioDurationOf(file).seconds, 100, 0.2); // was 3 s
  });

  test("MP3 and ADTS: zero padding after the frames plays nothing and counts nothing, at any length", () => {
    // (Under the bound of its bytes at the top bit rate: 560 KB at 320 kbit/s are 14 s.)
    near(audioDurationOf(Buffer.concat([mp3File(40), Buffer.alloc(400_000)])).seconds, 40, 0.05);
    const aac = adtsFile(10, { bytesPerSecond: 2_000 });
    near(audioDurationOf(Buffer.concat([aac, Buffer.alloc(400_000)])).seconds, 10, 0.05);
  });

  test("MP3 and ADTS: junk past what a decoder would skip counts as an unread file's bytes, not as free", () => {
    for (const [what, frames] of [
      ["mp3", mp3File(10)],
      ["aac", adtsFile(10, { bytesPerSecond: 2_000 })],
    ] as const) {
      // Bytes a decoder scans for a frame in (0xFF every 256): past 64 KB of them, not free.
      const junk = Buffer.from(Array.from({ length: 400_000 }, (_, index) => index % 256));
      const seconds = audioDurationOf(Buffer.concat([frames, junk])).seconds;
      assert.ok(seconds >= 10 + (junk.length - 65_536) / ESTIMATED_BYTES_PER_SECOND - 0.1, `${what}: ${seconds}`);
    }
  });
});

/**
 * A fragmented M4A as a browser's MediaRecorder (`audio/mp4`) writes it live: `moov` first with mvhd's duration 0 (not
 * known yet) and an `mvex`, then `moof`+`mdat` fragments of `bytesPerSecond` for `seconds`; `mehdMs` adds a Movie
 * Extends Header (version 0) saying the whole length, as a muxer that seeks back may.
 */
function fragmentedMp4(seconds: number, bytesPerSecond: number, mehdMs?: number): Buffer {
  const mvhd = Buffer.alloc(100);
  mvhd.writeUInt32BE(1_000, 12); // timescale; duration (at 16) stays 0
  const hdlr = Buffer.alloc(24);
  hdlr.write("soun", 8, "ascii");
  const entry = Buffer.alloc(36);
  entry.writeUInt32BE(36);
  entry.write("mp4a", 4, "ascii");
  const stsd = box("stsd", Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]), entry]));
  const trak = box("trak", box("mdia", Buffer.concat([box("hdlr", hdlr), box("minf", box("stbl", stsd))])));
  const mvexChildren = [box("trex", Buffer.alloc(24))];
  if (mehdMs !== undefined) {
    const mehd = Buffer.alloc(8);
    mehd.writeUInt32BE(mehdMs, 4);
    mvexChildren.unshift(box("mehd", mehd));
  }
  const fragments: Buffer[] = [];
  for (let second = 0; second < seconds; second += 1) {
    fragments.push(box("moof", box("traf", Buffer.alloc(32))), box("mdat", Buffer.alloc(bytesPerSecond)));
  }
  return Buffer.concat([
    box("ftyp", Buffer.from("iso5\0\0\0\0", "ascii")),
    box("moov", Buffer.concat([box("mvhd", mvhd), trak, box("mvex", Buffer.concat(mvexChildren))])),
    ...fragments,
  ]);
}

describe("audioDurationOf: a fragmented MP4 (MediaRecorder's audio/mp4)", () => {
  test("mvhd's duration 0 with fragments after it is not 0 s: estimated from its size, not at AAC's top rate", () => {
    // 60 s of 128 kbit/s AAC: 960 KB. At AAC's top rate that was 13 s; as an unread file it is 240 s, never short.
    const duration = audioDurationOf(fragmentedMp4(60, 16_000));
    assert.ok(duration.seconds >= 60, `${duration.seconds}`);
  });

  test("a Movie Extends Header (mehd) says the fragments' whole length: that counts", () => {
    const duration = audioDurationOf(fragmentedMp4(60, 16_000, 60_000));
    assert.equal(duration.source, "header");
    near(duration.seconds, 60, 0.001);
  });
});

describe("audioDurationOf: chained Ogg", () => {
  test("two Ogg Opus files joined (a chained Ogg, a second serial): not the last one's granule alone", () => {
    // 60 s and 5 s of Opus at 32 kbit/s. Each chain's granule starts again at 0: the last page said 5 s.
    const first = oggOpusFile(240);
    first.writeBigUInt64LE(BigInt(60 * 48_000 + 312), first.length - 128 + 6);
    const second = oggOpusFile(20);
    second.writeBigUInt64LE(BigInt(5 * 48_000 + 312), second.length - 128 + 6);
    for (let at = second.indexOf("OggS"); at >= 0; at = second.indexOf("OggS", at + 4))
      second.writeUInt32LE(1, at + 14);
    const duration = audioDurationOf(Buffer.concat([first, second]));
    assert.ok(duration.seconds >= 65, `${duration.seconds}`);
  });
});
