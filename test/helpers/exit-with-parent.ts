// Preloaded (`node --import`) into processes that tests start (gateways, the CLI): the process exits when its
// stdin closes (the test process ended or died), so no test run can leave a server behind. stdin is unref'd: it
// never keeps a process alive that would otherwise end (a CLI command that set process.exitCode).
const exit = (): void => process.exit(0);
process.stdin.on("close", exit);
process.stdin.on("end", exit);
process.stdin.resume();
(process.stdin as { unref?: () => void }).unref?.();
