// A provider's day boundary as configured (`day_reset: "00:00 America/Los_Angeles"`): parsed here, with the
// config, so that config never depends on limits; limits/day-window computes the windows from it.

export interface DayReset {
  /** Minutes after local midnight. */
  readonly minuteOfDay: number;
  readonly timeZone: string;
}

export const UTC_MIDNIGHT: DayReset = Object.freeze({ minuteOfDay: 0, timeZone: "UTC" });

/** Zones already checked: the first `Intl.DateTimeFormat` of a zone loads ICU data (~100 ms at startup). */
const knownTimeZones = new Set<string>(["UTC"]);

/** Parses `"00:00"`, `"00:00 America/Los_Angeles"`, `"07:30 UTC"`; throws with a readable message. */
export function parseDayReset(text: string): DayReset {
  const match = /^\s*(\d{1,2}):(\d{2})(?:\s+(\S+))?\s*$/.exec(text);
  if (match === null) throw new Error(`expected "HH:MM" or "HH:MM Area/City", got "${text}"`);
  const hours = Number(match[1]);
  const minutes = Number(match[2]);
  if (hours > 23 || minutes > 59) throw new Error(`not a time of day: "${text}"`);
  const timeZone = match[3] ?? "UTC";
  if (!knownTimeZones.has(timeZone)) {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone });
    } catch {
      throw new Error(`unknown time zone "${timeZone}"`);
    }
    knownTimeZones.add(timeZone);
  }
  return { minuteOfDay: hours * 60 + minutes, timeZone };
}
