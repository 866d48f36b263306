import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { flacFile, mp3File, oggOpusFile, wavFile } from "../../test/helpers/audio-files.ts";
import { audioDurationOf, ESTIMATED_BYTES_PER_SECOND } from "./audio-duration.ts";

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
    const file = Buffer.concat([box("ftyp", Buffer.from("M4A \0\0\0\0", "ascii")), box("moov", box("mvhd", mvhd))]);
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
