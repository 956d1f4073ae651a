// libFuzzer's entry point for programs that have a main of their own (compiler-rt, FuzzerDriver.cpp).
//
// SwiftPM links every executable on Linux with `--defsym main=<Target>_main`, and under
// -parse-as-library no <Target>_main exists unless the target has an @main type, so libFuzzer's own
// main cannot be used: each target's @main hands its arguments to LLVMFuzzerRunDriver instead.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

// What each target's @main calls with the process's arguments and its LLVMFuzzerTestOneInput.
int tokengate_fuzz_main(int argc, char **argv, int (*callback)(const uint8_t *data, size_t size));
