/** Step progress for `skiff up`: a spinner on a terminal, plain lines otherwise. */
export class Progress {
  private current?: string;
  private t0 = 0;
  private timer?: NodeJS.Timeout;
  private frame = 0;
  private readonly tty = !!process.stderr.isTTY;
  private readonly frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

  start(step: string): void {
    this.current = step;
    this.t0 = Date.now();
    if (this.tty) {
      this.timer = setInterval(() => {
        process.stderr.write(`\r${this.frames[this.frame++ % this.frames.length]} starting ${step}...`);
      }, 80);
    } else process.stderr.write(`... starting ${step}\n`);
  }

  done(step: string): void {
    if (this.timer) clearInterval(this.timer);
    process.stderr.write(`${this.tty ? '\r\x1b[K' : ''}✓ ${step} (${Date.now() - this.t0} ms)\n`);
    this.current = undefined;
  }

  finish(): void {
    if (this.timer) clearInterval(this.timer);
  }

  fail(err: unknown): void {
    if (this.timer) clearInterval(this.timer);
    process.stderr.write(`${this.tty ? '\r\x1b[K' : ''}✗ ${this.current ?? 'startup'} failed: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}
