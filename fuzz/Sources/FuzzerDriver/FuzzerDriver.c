// libFuzzer's LLVMFuzzerRunDriver is defined in libFuzzer itself (-sanitize=fuzzer); this file
// holds the one helper every target's @main calls (include/FuzzerDriver.h).
#include "FuzzerDriver.h"

int tokengate_fuzz_main(int argc, char **argv, int (*callback)(const uint8_t *data, size_t size)) {
    return LLVMFuzzerRunDriver(&argc, &argv, callback);
}
