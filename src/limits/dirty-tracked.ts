// Whether a book changed since its store last wrote it: each change marks it, a flush takes it, and a write that
// failed puts it back. Shared by the books the embedded store writes whole at a flush (availability, prompt
// calibrations, refused features); the budget ledger tracks its changed scopes instead.
export abstract class DirtyTracked {
  #isDirty = false;

  /** Something changed: the book is written at the next flush. */
  protected markDirty(): void {
    this.#isDirty = true;
  }

  /** Whether something changed since the last call (the state store writes the book then). */
  takeDirty(): boolean {
    const wasDirty = this.#isDirty;
    this.#isDirty = false;
    return wasDirty;
  }

  /** A write taken by `takeDirty()` failed (a locked or full disk): written at the next flush. */
  restoreDirty(): void {
    this.#isDirty = true;
  }
}
